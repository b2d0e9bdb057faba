"""The journal file's record format: framing, checksum, reading a segment back, segment names."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- the journal file

MAGIC = b"CRJ1"
HEADER = struct.Struct("<4sIII")  # magic, meta length, body length, crc32 of meta + body
MAX_META = 64 * 1024 * 1024
MAX_BODY = 1024 * 1024 * 1024


def encode_record(meta: dict[str, Any], body: bytes) -> bytes:
    m = json.dumps(meta, separators=(",", ":")).encode()
    return HEADER.pack(MAGIC, len(m), len(body), zlib.crc32(body, zlib.crc32(m))) + m + body


@dataclass
class Record:
    meta: dict[str, Any]
    body: bytes
    offset: int


@dataclass
class Torn:
    segment: str
    offset: int
    bytes: int
    reason: str


class SegmentReader:
    """The valid records of a segment, in order; ``torn`` says where and why reading stopped early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn: Torn | None = None
        self.good_end = 0

    def __iter__(self) -> Iterator[Record]:
        data = self.path.read_bytes()
        pos = 0
        while pos < len(data):
            reason = None
            if len(data) - pos < HEADER.size:
                reason = "record header cut short"
            else:
                magic, mlen, blen, crc = HEADER.unpack_from(data, pos)
                end = pos + HEADER.size + mlen + blen
                if magic != MAGIC or mlen > MAX_META or blen > MAX_BODY:
                    reason = "not a record header"
                elif end > len(data):
                    reason = f"record cut short ({len(data) - pos} of {end - pos} bytes)"
                else:
                    start = pos + HEADER.size
                    m, body = data[start : start + mlen], data[start + mlen : end]
                    if zlib.crc32(body, zlib.crc32(m)) != crc:
                        reason = "checksum mismatch"
                    else:
                        try:
                            meta = json.loads(m)
                        except ValueError:
                            reason = "unreadable record metadata"
            if reason is not None:
                self.torn = Torn(self.path.name, pos, len(data) - pos, reason)
                return
            yield Record(meta, bytes(body), pos)
            pos = end
            self.good_end = pos


def segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"seg-{first_seq:012d}.log"


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log")) if directory.is_dir() else []
