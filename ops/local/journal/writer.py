"""The journal's writer: appends records durably (fsync) and reserves disk space ahead."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from ops.files import fsync_dir
from ops.local.journal.record import encode_record, segment_path, segments

ENV_RESERVE = "CRUDDUR_TWIN_JOURNAL_RESERVE_BYTES"  # disk space taken ahead for the next records ("0": none)


DEFAULT_RESERVE = 4 * 1024 * 1024  # a few thousand writes' worth: one allocation per few thousand appends
RESERVE_MARGIN = 64 * 1024  # room for a record's metadata (its tape of KMS key material) beyond its body


def _allocate_ahead(fd: int, offset: int, length: int) -> bool:
    """fallocate(FALLOC_FL_KEEP_SIZE): blocks for later appends, the file's size unchanged; False where unsupported."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fallocate = libc.fallocate
    except (OSError, AttributeError):
        return False
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    if fallocate(fd, 1, offset, length) == 0:  # 1: FALLOC_FL_KEEP_SIZE
        return True
    code = ctypes.get_errno()
    if code in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, os.strerror(code))


class JournalWriter:
    """Appends records to the active segment: one unbuffered write each, before the response is sent."""

    def __init__(self, directory: Path, first_seq: int, fsync: bool, reserve: int = 0) -> None:
        self.directory = directory
        self.fsync = fsync
        self.reserve_bytes = reserve
        directory.mkdir(parents=True, exist_ok=True)
        self._open(first_seq)

    def _open(self, first_seq: int) -> None:
        self.path = segment_path(self.directory, first_seq)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size
        self._reserved_to = self.size  # the file's blocks are allocated up to here (past its end: KEEP_SIZE)
        self.count = 0  # records appended since this segment was opened
        if self.fsync:
            fsync_dir(self.directory)  # the new file's name survives a power loss too

    def reserve(self, body_bytes: int) -> None:
        """Make sure a record of this body can be appended on a full disk: allocate the space ahead (OSError if not).

        Called before a write is applied: a disk that filled up refuses the write here, while
        nothing has changed yet, instead of after moto applied it (a write then seen by reads but
        in no journal). Where the file system cannot allocate ahead, nothing is reserved.
        """
        need = body_bytes + RESERVE_MARGIN
        if not self.reserve_bytes or self._reserved_to - self.size >= need:
            return
        length = max(need, self.reserve_bytes)
        if _allocate_ahead(self._fd, self.size, length):
            self._reserved_to = self.size + length
        else:
            self.reserve_bytes = 0  # not supported here: the append itself is the check

    def append(self, meta: dict[str, Any], body: bytes) -> None:
        data = memoryview(encode_record(meta, body))
        start = self.size
        try:
            while data:  # a regular file takes it in one write; loop for the rare short write
                n = os.write(self._fd, data)
                data = data[n:]
                self.size += n
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            # never leave half a record: the next good one after it would be unreadable (a torn record ends a segment)
            try:
                os.ftruncate(self._fd, start)
                self.size = start
            except OSError:
                pass
            raise
        self.count += 1

    def rotate(self, next_seq: int) -> list[Path]:
        """Start a new segment at ``next_seq``; returns the older segments (a snapshot will cover them)."""
        os.close(self._fd)
        self._open(next_seq)
        return [p for p in segments(self.directory) if p != self.path]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
