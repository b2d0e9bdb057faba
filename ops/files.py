"""Files the tasks read and write: a named input read as text, and a file written so no reader sees half of it."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ops.errors import ConfigError, InputError, NotFoundError

STATE_DIR_ENV = "CRUDDUR_STATE_DIR"  # ops.target's; named here for the fix the messages suggest


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step: a crash or a concurrent writer never leaves half a file.

    The temporary file is unique to this call (two processes writing the same path at once each
    rename their own, and the last one wins whole), created with ``mode`` from the start so a
    file meant to be private (0600) is never readable by others, not even for a moment. With
    ``fsync`` the data and the rename reach the disk before this returns, so what the new file
    replaces (a journal it covers) may be deleted safely even across a power loss.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` survive a power loss (where the system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not sync directories; the rename is still atomic
    finally:
        os.close(fd)


def disk_problem(directory: Path) -> str | None:
    """Why files cannot be written under ``directory`` in one phrase naming it (full, read-only), or None."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        fs = os.statvfs(probe)
    except OSError as err:
        return f"{probe}: {err.strerror}"
    if fs.f_flag & os.ST_RDONLY:
        return f"{probe} is on a read-only file system"
    if fs.f_bavail == 0 or (fs.f_files and fs.f_favail == 0):
        return f"no space left on the disk of {probe}"
    if not os.access(probe, os.W_OK):
        return f"{probe} is not writable by this user"
    return None


def unwritable(directory: Path, err: OSError | None = None) -> ConfigError:
    """One line for a directory the twin cannot write its state in: which directory, why, and the way out."""
    cause = disk_problem(directory) or (f"{err.filename or directory}: {err.strerror}" if err else f"{directory}")
    return ConfigError(
        f"cannot write the twin's state in {directory}: {cause}; free the disk or make it writable, "
        f"or set {STATE_DIR_ENV} to another directory"
    )


def ensure_writable_dir(directory: Path) -> None:
    """Make ``directory`` (and its parents) and prove a file can be written there, or raise ``unwritable``'s line.

    A path on the way that is a file, a read-only or full disk: found here, before anything starts.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not directory.is_dir():
            raise NotADirectoryError(20, "not a directory", str(directory))
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(probe)
    except (FileExistsError, NotADirectoryError) as err:
        on_way = next((p for p in [directory, *directory.parents] if p.exists() and not p.is_dir()), directory)
        raise ConfigError(
            f"the twin's state directory {directory} cannot be made: {on_way} is a file ({err.strerror}); "
            f"move it away or set {STATE_DIR_ENV} to a directory"
        ) from None
    except OSError as err:
        raise unwritable(directory, err) from None


# What a path is when it is not a regular file, as an error line says it.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of the file a user named (``what``: "conversation file"), one clear line otherwise.

    A path that exists but is no regular file is said to be what it is (a FIFO would block the
    read forever); a byte-order mark, which some editors write at the start of UTF-8, is dropped.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFoundError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise InputError(f"{what} {path} cannot be read: {err.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise InputError(f"{what} {path} is {kind}, not a file: name a text file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{what} {path}: not UTF-8 text (byte {err.start} cannot be read)") from None
    except OSError as err:
        raise InputError(f"{what} {path} cannot be read: {err.strerror}") from None
