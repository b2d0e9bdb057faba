"""Write-ahead journal of the twin's AWS server: a crash (kill -9) loses no acknowledged write.

moto keeps its state in memory. The server (``ops.local.motoserver``) pickles the persisted
backends to a snapshot on a clean stop; between two snapshots every mutating request is
appended here, before its response leaves the process, and at the next start the journal is
replayed over the snapshot through the same WSGI application that served it.

Replay reproduces ids exactly because everything moto draws while serving a journaled
request is pinned to the request:

- randomness: moto takes every id from one ``MotoRandom`` (``mock_random``); its class is
  swapped for one that draws from a per-request ``random.Random(seed)`` of the calling thread,
  so concurrent reads never consume a write's numbers; ``os.urandom`` (KMS key material) and
  ``uuid.uuid4`` in the persisted services' modules are routed the same way;
- time: moto's ``utcnow`` (and through it ``unix_time``...) and the ``time`` module seen by the
  persisted services return the request's recorded instant (table creation time is part of the
  stream ARN);
- what cannot be seeded (KMS generates an RSA key per key through OpenSSL) is recorded on a
  per-request tape and handed back during replay;
- a region's backend is built with a seed of its own (service, account, region), so default
  resources (EC2's default VPC and security group) get the same ids whichever request
  happens to create the backend, a read live or a replayed write later;
- journal order is apply order: journaled requests run one at a time under one lock (moto's
  DynamoDB requests were serialised already, see ``moto_patches.isolation``); reads do not take it.

Each record keeps the response's status and a digest of its body; replay compares them, so a
restore proves its own determinism (a mismatch is reported, never hidden).

File format: segments ``aws-journal/seg-<first seq>.log`` of records
``magic | meta length | body length | crc32(meta + body) | meta (JSON) | body (request bytes)``.
A record cut short by a crash (or with a wrong checksum) ends the segment: it is reported,
cut off and ignored. Compaction pickles the state under the lock, starts a new segment, then
writes the snapshot (atomically, fsynced) and deletes the older segments; each record's seq
is compared with the seq the snapshot covers, so a crash at any point of a compaction
replays nothing twice and loses nothing.
"""

# The journal by role: record.py (the file format), writer.py (appending durably), report.py (the restore
# report, light), determinism.py (what a replay must reproduce), server.py (applying, replaying, compacting).
from ops.local.journal.determinism import (
    MOTO_PACKAGES,
    StatePickler,
    # Snapshots and journal tapes written before the split name these two reducers ``ops.local.journal.<name>``
    # (pickle stores a function by its module and name): kept importable here so those files still load.
    _load_private_key,  # noqa: F401
    _moto_jwk,  # noqa: F401
    install_determinism,
    state_dumps,
)
from ops.local.journal.record import (
    HEADER,
    MAGIC,
    MAX_BODY,
    MAX_META,
    Record,
    SegmentReader,
    Torn,
    encode_record,
    segment_path,
    segments,
)
from ops.local.journal.report import (
    JOURNAL_DIR_NAME,
    REPORT_FORMAT,
    REPORT_NAME,
    journal_dir,
    read_report,
    report_path,
    restore_summary,
    restored_anything,
    saved_on_stop,
)
from ops.local.journal.server import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
    ENV_ENABLED,
    ENV_FSYNC,
    ENV_MAX_BYTES,
    ENV_MAX_ENTRIES,
    JOURNALED_ENV,
    KMS_READS,
    NOT_JOURNALED_HEADERS,
    READ_PREFIXES,
    WRITES_NAMED_LIKE_READS,
    Answer,
    DurableApp,
    Report,
    Settings,
    SnapshotInfo,
    call_app,
    is_read,
    request_action,
)
from ops.local.journal.writer import (
    DEFAULT_RESERVE,
    ENV_RESERVE,
    RESERVE_MARGIN,
    JournalWriter,
)

__all__ = [
    "REPORT_NAME",
    "JOURNAL_DIR_NAME",
    "REPORT_FORMAT",
    "journal_dir",
    "report_path",
    "saved_on_stop",
    "read_report",
    "restore_summary",
    "restored_anything",
    "StatePickler",
    "state_dumps",
    "MOTO_PACKAGES",
    "install_determinism",
    "MAGIC",
    "HEADER",
    "MAX_META",
    "MAX_BODY",
    "encode_record",
    "Record",
    "Torn",
    "SegmentReader",
    "segment_path",
    "segments",
    "ENV_RESERVE",
    "DEFAULT_RESERVE",
    "RESERVE_MARGIN",
    "JournalWriter",
    "ENV_ENABLED",
    "ENV_FSYNC",
    "ENV_MAX_BYTES",
    "ENV_MAX_ENTRIES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "READ_PREFIXES",
    "WRITES_NAMED_LIKE_READS",
    "KMS_READS",
    "request_action",
    "is_read",
    "JOURNALED_ENV",
    "NOT_JOURNALED_HEADERS",
    "Answer",
    "call_app",
    "SnapshotInfo",
    "Settings",
    "Report",
    "DurableApp",
]
