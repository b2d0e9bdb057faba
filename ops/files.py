"""Writing a file so that a reader never sees half of it, whoever else writes it at the same time."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one step: a crash or a concurrent writer never leaves half a file.

    The temporary file is unique to this call (two processes writing the same path at once each
    rename their own, and the last one wins whole), created with ``mode`` from the start so a
    file meant to be private (0600) is never readable by others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
