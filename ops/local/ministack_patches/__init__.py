"""Narrow patches of MiniStack, installed by ``ops.local.ministack_server`` in MiniStack's own virtualenv.

Like ``ops.local.moto_patches``: one module per patch, each saying why; they reach into MiniStack's
internals, so ``install()`` refuses any MiniStack but ``MINISTACK_VERSION``; a differential test
(``tests/twin/ops/local/test_ministack_patches.py``) compares a patched server with a plain one on
random data. Standard library only (this runs beside MiniStack, not in ``.venv``).

- ``query``: a Query with a ``Limit`` on a base table reads only the page's slice of the partition
  instead of sorting and filtering all of it (3 s for 20 items of a 20,000-item partition).
"""

from __future__ import annotations

import os

MINISTACK_VERSION = "1.5.33"
DISABLE_ENV = "CRUDDUR_MINISTACK_PATCHES"  # "0": a plain MiniStack (the differential test's reference)


class MiniStackVersionError(RuntimeError):
    """The installed MiniStack is not the version these patches were written for."""


def install() -> bool:
    """Install every patch into this process; False when switched off by ``DISABLE_ENV``."""
    from importlib.metadata import version

    found = version("ministack")
    if found != MINISTACK_VERSION:
        raise MiniStackVersionError(
            f"ministack {found} is installed, but ops.local.ministack_patches was written for {MINISTACK_VERSION}: "
            "run bin/bootstrap (requirements-ministack.txt)"
        )
    if os.environ.get(DISABLE_ENV) == "0":
        return False
    from ops.local.ministack_patches import query

    query.install()
    return True
