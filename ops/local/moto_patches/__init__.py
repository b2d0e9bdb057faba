"""Narrow patches that let the twin's moto server answer reads at the cost of the page, not the table.

moto 5.2.5 answers every Query by sorting the whole table, re-sorts it for every Scan page, and
spends about 1.5 ms per returned item turning it into JSON. The twin holds tens of thousands of
messages, so a page of 20 cost a quarter of a second and a 5,000-message conversation took
seconds per page. Each module patches one thing and says why:

- ``isolation``: one DynamoDB request at a time (DynamoDB's transaction isolation; the read
  indexes rely on it too);
- ``index``: every table's items kept sorted per partition and per GSI partition, re-filed by
  each write;
- ``reads``: Query and Scan read from those sorted entries, with moto's page logic;
- ``wire``: Query and Scan items written to JSON directly, same bytes;
- ``untracked``: moto stops keeping every item and table object it ever made;
- ``transactions``: TransactWriteItems checks every item, then writes, instead of copying whole tables;
- ``gaps``: two answers ``local.up`` relies on (UpdateUserPool, UpdateTable) made as AWS gives them;
- ``validation``: the requests DynamoDB refuses (batch sizes and duplicate keys, ``Limit`` below 1,
  numbers beyond its range or not in its canonical form, transaction size and token reuse,
  undefined expression names and values) refused by the twin too, with DynamoDB's error class.

The read patches' answers are moto's own, byte for byte: ``tests/twin/ops/local/moto_patches`` compares a
patched server with a plain one on random tables, items and requests; ``validation`` changes answers on
purpose, and its test compares them with MiniStack's on requests around each limit. The patches reach into moto's
internals, so ``install()`` refuses any moto version but the one they were checked against.
"""

from __future__ import annotations

import os
from typing import Any

MOTO_VERSION = "5.2.5"
# "0" leaves ``validation`` out: only for the test that compares the read patches with plain moto, whose
# answers to non-canonical numbers ``validation`` changes on purpose
VALIDATION_ENV = "CRUDDUR_MOTO_VALIDATION"


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these patches were written for."""


def check_version(found: str | None = None) -> None:
    if found is None:
        import moto

        found = moto.__version__
    if found != MOTO_VERSION:
        raise MotoVersionError(
            f"moto {found} is installed, but ops.local.moto_patches was written for moto {MOTO_VERSION}: "
            f"install moto[server]=={MOTO_VERSION} (requirements.txt), or re-check the patches against {found} and "
            "update MOTO_VERSION"
        )


_ABSENT = object()
_REPLACED: list[tuple[Any, str, Any]] = []  # (owner, attribute, what its own __dict__ held before), in order


def replace(owner: Any, name: str, value: Any) -> None:
    """Set ``owner.name`` to ``value``, remembering what was there for ``uninstall``."""
    _REPLACED.append((owner, name, owner.__dict__.get(name, _ABSENT)))
    setattr(owner, name, value)


def install() -> None:
    """Install every patch into this process (the one that serves moto); idempotent."""
    check_version()
    from ops.local.moto_patches import index, isolation, reads, transactions, untracked, validation, wire

    isolation.serialise_dynamodb()  # stays when the others are uninstalled: concurrency tests rely on it
    if _REPLACED:
        return
    untracked.install()
    index.install()
    reads.install()
    wire.install()
    transactions.install()
    if os.environ.get(VALIDATION_ENV) != "0":
        validation.install()


def uninstall() -> None:
    """Put moto's methods back (tests compare both in one process); the indexes are simply no longer used."""
    while _REPLACED:
        owner, name, before = _REPLACED.pop()
        if before is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, before)
