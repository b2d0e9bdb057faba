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

from __future__ import annotations

import base64
import errno
import functools
import hashlib
import io
import json
import logging
import os
import pickle
import random
import shutil
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ops.files import fsync_dir, write_atomic

REPORT_NAME = "aws-restore.json"
JOURNAL_DIR_NAME = "aws-journal"
REPORT_FORMAT = 1

ENV_ENABLED = "CRUDDUR_TWIN_JOURNAL"  # "0" turns journaling off (the cost measurement's baseline)
ENV_FSYNC = "CRUDDUR_TWIN_JOURNAL_FSYNC"  # "1": fsync every record (survives a power loss, not only a crash)
ENV_MAX_BYTES = "CRUDDUR_TWIN_JOURNAL_MAX_BYTES"  # compact once the active segment is this large
ENV_MAX_ENTRIES = "CRUDDUR_TWIN_JOURNAL_MAX_ENTRIES"  # ... or holds this many writes (bounds the replay at start)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
ENV_RESERVE = "CRUDDUR_TWIN_JOURNAL_RESERVE_BYTES"  # disk space taken ahead for the next records ("0": none)
DEFAULT_MAX_ENTRIES = 5000  # a replay runs a few hundred writes a second: a restart stays within seconds

DEFAULT_RESERVE = 4 * 1024 * 1024  # a few thousand writes' worth: one allocation per few thousand appends
RESERVE_MARGIN = 64 * 1024  # room for a record's metadata (its tape of KMS key material) beyond its body

# ---------------------------------------------------------------- paths and the restore report
# (light: twin.py imports this module to read the report without importing moto)


def journal_dir(snapshot: Path) -> Path:
    return snapshot.with_name(JOURNAL_DIR_NAME)


def report_path(snapshot: Path) -> Path:
    return snapshot.with_name(REPORT_NAME)


def saved_on_stop(snapshot: Path) -> bool:
    """After the server stopped: whether its last snapshot covers every write (a clean stop leaves no journal).

    The final compaction deletes the segments only once the snapshot is on disk; segments left
    with records in them mean it could not be written (a full or read-only disk) or never ran.
    """
    return not any(seg.stat().st_size for seg in segments(journal_dir(snapshot)) if seg.exists())


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == REPORT_FORMAT else None


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


def restore_summary(report: dict[str, Any] | None) -> str:
    """One line for ``local.up``: what the AWS server found and rebuilt when it started."""
    if report is None:
        return "restore: the AWS server wrote no restore report (see its log)"
    snap = report.get("snapshot")
    replayed = int(report.get("replayed", 0))
    failed = report.get("failed") or []
    diverged = report.get("diverged") or []
    torn = report.get("torn") or []
    notes = list(report.get("notes") or [])
    if not snap and not replayed and not failed and not torn and not notes:
        return "nothing to restore"
    base = f"snapshot of {_when(snap['taken_at'])}" if snap else "no snapshot"
    parts = [f"restored: {base} + {replayed} journaled writes; {len(failed)} could not be replayed"]
    if diverged:
        parts.append(f"{len(diverged)} replayed with a different answer")
    if torn:
        parts.append(
            f"a torn last record ({sum(int(t['bytes']) for t in torn)} bytes, cut by a crash mid-write) was ignored"
        )
    parts.extend(notes)
    return "; ".join(parts)


def restored_anything(report: dict[str, Any] | None) -> bool:
    return bool(report and (report.get("snapshot") or report.get("replayed")))


# ---------------------------------------------------------------- pickling moto's objects
# The snapshot and the journal's tapes share it. A few objects moto holds do not pickle.


def _moto_jwk() -> Any:
    # Cognito pools hold an RSA key that moto loads from a bundled file: store a call that reloads it
    from joserfc import jwk
    from moto.utilities.utils import load_resource

    return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def _load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


def _private_key_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


_REDUCERS: dict[type, Callable[[Any], Any] | None] = {}


def _reducer_for(kind: type) -> Callable[[Any], Any] | None:
    # decided once per type: reducer_override runs for every object of a multi-megabyte state
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from joserfc import jwk

    if issubclass(kind, jwk.RSAKey):
        return lambda obj: (_moto_jwk, ())
    if issubclass(kind, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):  # KMS keys (OpenSSL objects)
        return lambda obj: (_load_private_key, (_private_key_der(obj),))
    if issubclass(kind, threading.Condition):  # SQS queues wait on one; waiters do not outlive a process
        return lambda obj: (threading.Condition, ())
    if kind is type(threading.RLock()):
        return lambda obj: (threading.RLock, ())
    if kind is type(threading.Lock()):
        return lambda obj: (threading.Lock, ())
    return None


class StatePickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        try:
            reducer = _REDUCERS[kind]
        except KeyError:
            reducer = _REDUCERS[kind] = _reducer_for(kind)
        return NotImplemented if reducer is None else reducer(obj)


def state_dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    StatePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


# ---------------------------------------------------------------- determinism: what a request draws


@dataclass
class _Draws:
    """What moto may draw while serving one journaled request (or building a backend)."""

    now: float
    rng: random.Random
    tape: list[str] | deque[str] | None = None  # live: values recorded; replay: values handed back
    replaying: bool = False
    tape_short: bool = False  # replay needed a value the tape did not hold


_local = threading.local()


def _draws() -> _Draws | None:
    return getattr(_local, "draws", None)


@contextmanager
def _pinned(draws: _Draws) -> Iterator[None]:
    previous = _draws()
    _local.draws = draws
    try:
        yield
    finally:
        _local.draws = previous


_real_utcnow: Callable[[], datetime] | None = None


def _utcnow() -> datetime:
    d = _draws()
    if d is None:
        return _real_utcnow()  # type: ignore[misc]
    return datetime.fromtimestamp(d.now, UTC).replace(tzinfo=None)  # moto's utcnow is naive UTC


class _TimeProxy:
    """The ``time`` module as the persisted services see it: ``time()`` is the request's instant."""

    def time(self) -> float:
        d = _draws()
        return time.time() if d is None else d.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _OsProxy:
    """The ``os`` module as the persisted services see it: ``urandom`` draws from the request's seed."""

    def urandom(self, n: int) -> bytes:
        d = _draws()
        return os.urandom(n) if d is None else d.rng.randbytes(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _uuid4() -> Any:
    import uuid

    d = _draws()
    return uuid.uuid4() if d is None else uuid.UUID(int=d.rng.getrandbits(128), version=4)


def _taped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Record what ``fn`` returns in a journaled request; hand the recording back during replay."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        d = _draws()
        if d is None or d.tape is None:
            return fn(*args, **kwargs)
        if d.replaying:
            if d.tape:
                return pickle.loads(base64.b64decode(d.tape.popleft()))  # type: ignore[union-attr]
            d.tape_short = True
            return fn(*args, **kwargs)
        value = fn(*args, **kwargs)
        d.tape.append(base64.b64encode(state_dumps(value)).decode())  # type: ignore[union-attr]
        return value

    wrapper._cruddur_taped = True  # type: ignore[attr-defined]
    return wrapper


def _stable_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


# moto's package name of each persisted service (backend names as in moto.backends.get_backend)
MOTO_PACKAGES = {
    "dynamodb": "dynamodb",
    "dynamodbstreams": "dynamodbstreams",
    "cognito-idp": "cognitoidp",
    "ec2": "ec2",
    "sqs": "sqs",
    "kms": "kms",
}
_install_lock = threading.Lock()
_installed = False


def _import_service(package: str) -> None:
    import importlib

    # models, handlers and routes pull in every other module of the service (moto 5.2.5)
    for part in ("models", "responses", "urls"):
        importlib.import_module(f"{package}.{part}")


def install_determinism(services: tuple[str, ...]) -> None:
    """Pin moto's randomness and clock to the journaled request (idempotent, once per process)."""
    global _installed, _real_utcnow
    with _install_lock:
        if _installed:
            return
        import uuid

        import moto.core.utils as core_utils
        from moto.core.base_backend import AccountSpecificBackend, BackendDict
        from moto.moto_api._internal import mock_random
        from moto.moto_api._internal.moto_random import MotoRandom

        packages = [f"moto.{MOTO_PACKAGES[s]}" for s in services if s in MOTO_PACKAGES]
        for pkg in packages:
            _import_service(pkg)  # every module now, so the sweep below sees every binding

        class RoutedRandom(MotoRandom):
            # Random's other methods (choice, randint, uuid4, randbytes...) all come down to these two
            def random(self) -> float:
                d = _draws()
                return d.rng.random() if d is not None else super().random()

            def getrandbits(self, k: int) -> int:
                d = _draws()
                return d.rng.getrandbits(k) if d is not None else super().getrandbits(k)

        mock_random.__class__ = RoutedRandom

        _real_utcnow = core_utils.utcnow
        everywhere = {id(_real_utcnow): (_real_utcnow, _utcnow)}
        # only inside the persisted services: moto.core takes uuid4 for a backend's identity when
        # a module is first imported, which may happen in the middle of any request
        in_services = {id(uuid.uuid4): (uuid.uuid4, _uuid4), id(time): (time, _TimeProxy()), id(os): (os, _OsProxy())}
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "moto" or name.startswith("moto.")):
                continue
            in_service = any(name == p or name.startswith(p + ".") for p in packages)
            for attr, value in list(vars(module).items()):
                hit = everywhere.get(id(value)) or (in_services.get(id(value)) if in_service else None)
                if hit is not None and hit[0] is value:
                    setattr(module, attr, hit[1])

        original_getitem = AccountSpecificBackend.__getitem__

        def getitem(self: Any, region_name: str) -> Any:
            key = "aws" if region_name == "global" else region_name
            if dict.__contains__(self, key):
                return dict.__getitem__(self, key)
            outer = _draws()
            seeded = _Draws(
                outer.now if outer else time.time(),
                random.Random(_stable_seed(self.service_name, self.account_id, key)),
                None,
                bool(outer and outer.replaying),
            )
            with _pinned(seeded):
                return original_getitem(self, region_name)

        AccountSpecificBackend.__getitem__ = getitem  # type: ignore[method-assign]

        original_create = BackendDict._create_account_specific_backend

        def create_account(self: Any, account_id: str) -> None:
            if dict.__contains__(self, account_id):
                return original_create(self, account_id)
            outer = _draws()
            seeded = _Draws(
                outer.now if outer else time.time(),
                random.Random(_stable_seed(self.service_name, account_id)),
                None,
                bool(outer and outer.replaying),
            )
            with _pinned(seeded):
                return original_create(self, account_id)

        BackendDict._create_account_specific_backend = create_account  # type: ignore[method-assign]

        if "kms" in services:
            import moto.kms.models as kms_models

            kms_models.generate_private_key = _taped(kms_models.generate_private_key)  # type: ignore[attr-defined]
        _installed = True


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


def segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"seg-{first_seq:012d}.log"


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log")) if directory.is_dir() else []


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


# ---------------------------------------------------------------- which requests are writes

READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "TransactGet", "Search")
# named like reads, but moto stores what they hand out
WRITES_NAMED_LIKE_READS = {"GetTokensFromRefreshToken", "GetUserAttributeVerificationCode", "GetId", "GetOpenIdToken"}
# KMS calls that use a key without changing it
KMS_READS = {
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateRandom",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
}


def request_action(environ: dict[str, Any], body: bytes) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    sources = [environ.get("QUERY_STRING") or ""]
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        sources.append(body.decode("utf-8", "replace"))
    for source in sources:
        for key, value in parse_qsl(source, keep_blank_values=True):
            if key == "Action":
                return value
    return None


def is_read(service: str, action: str | None, method: str, body: bytes) -> bool:
    if action is None:
        return method in ("GET", "HEAD", "OPTIONS")  # e.g. Cognito's JWKS document
    if service == "kms" and b"alias/aws/" in body:
        return False  # moto creates an AWS-managed key the first time one of its aliases is named
    if service == "dynamodbstreams":
        return True  # iterators are handed out, never part of the table's state
    if action in WRITES_NAMED_LIKE_READS:
        return False
    name = action[5:] if action.startswith("Admin") else action
    return name.startswith(READ_PREFIXES) or (service == "kms" and action in KMS_READS)


# ---------------------------------------------------------------- WSGI plumbing


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    if stream is None:
        body = b""
    elif length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    _set_body(environ, body)
    return body


def _set_body(environ: dict[str, Any], body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


JOURNALED_ENV = (
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
)
NOT_JOURNALED_HEADERS = {
    "HTTP_AMZ_SDK_INVOCATION_ID",
    "HTTP_AMZ_SDK_REQUEST",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_CONNECTION",
    "HTTP_CONTENT_LENGTH",
}


def _journal_env(environ: dict[str, Any]) -> dict[str, Any]:
    from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY

    env = {k: environ[k] for k in JOURNALED_ENV if k in environ}
    env.update(
        (k, v)
        for k, v in environ.items()
        if k.startswith("HTTP_") and k not in NOT_JOURNALED_HEADERS and isinstance(v, str)
    )
    preserved = environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY)
    if preserved:
        env[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = dict(preserved)
    return env


def _replay_environ(env: dict[str, Any], body: bytes) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "0",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(env)
    _set_body(environ, body)
    return environ


@dataclass
class Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])


def call_app(app: Any, environ: dict[str, Any], log: logging.Logger | None = None) -> Answer:
    """Run a WSGI app to completion and keep its whole answer (moto's answers are small and in memory)."""
    got: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        got["status"], got["headers"] = status, list(headers)
        return chunks.append

    try:
        result = app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except Exception as err:  # moto raised: the client gets a 500, and replay must give the same
        if log is not None:
            log.exception("moto failed on a request")
        text = f"{type(err).__name__}: {err}".encode()
        return Answer(
            "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))], text
        )
    return Answer(got.get("status", "500 INTERNAL SERVER ERROR"), got.get("headers", []), b"".join(chunks))


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def _plain(status: str, text: str) -> Answer:
    body = text.encode()
    return Answer(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body)


# ---------------------------------------------------------------- SQS long polls


def _without_wait(environ: dict[str, Any], body: bytes) -> tuple[float | None, bytes, str | None]:
    """The wait a ReceiveMessage asks for, the same request asking for none, and its queue URL."""
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-amz-json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return None, body, None
        wait = data.get("WaitTimeSeconds")
        data["WaitTimeSeconds"] = 0
        return (float(wait) if wait is not None else None), json.dumps(data).encode(), data.get("QueueUrl")
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    found = dict(pairs)
    wait_text = found.get("WaitTimeSeconds")
    pairs = [(k, v) for k, v in pairs if k != "WaitTimeSeconds"] + [("WaitTimeSeconds", "0")]
    try:
        wait = float(wait_text) if wait_text is not None else None
    except ValueError:
        wait = None
    return wait, urlencode(pairs).encode(), found.get("QueueUrl")


def _queue_wait(environ: dict[str, Any], queue_url: str | None) -> float:
    """The queue's ReceiveMessageWaitTimeSeconds, which applies when the request names no wait."""
    try:
        from moto.sqs.models import sqs_backends

        _, account, name = urlsplit(queue_url or "").path.split("/")[:3]
        scope = str(environ.get("HTTP_AUTHORIZATION", "")).split(",")[0].split()[1]
        region = scope.split("/")[2]
        return float(sqs_backends[account][region].get_queue(name).receive_message_wait_time_seconds or 0)
    except Exception:
        return 0.0


def _received_messages(answer: Answer) -> bool:
    if answer.code != 200:
        return True  # an error ends the poll
    if answer.body.lstrip().startswith(b"{"):
        try:
            return bool(json.loads(answer.body).get("Messages"))
        except ValueError:
            return True
    return b"<Message>" in answer.body


# ---------------------------------------------------------------- the durable server


@dataclass
class SnapshotInfo:
    taken_at: str
    journal_seq: int


@dataclass
class Settings:
    enabled: bool = True
    fsync: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    reserve: int = DEFAULT_RESERVE

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env

        def positive(name: str, default: int) -> int:
            raw = env.get(name, "")
            return int(raw) if raw.isdigit() and int(raw) > 0 else default

        return cls(
            enabled=env.get(ENV_ENABLED, "1").lower() not in ("0", "off", "no", "false"),
            fsync=env.get(ENV_FSYNC, "0").lower() in ("1", "on", "yes", "true"),
            max_bytes=positive(ENV_MAX_BYTES, DEFAULT_MAX_BYTES),
            max_entries=positive(ENV_MAX_ENTRIES, DEFAULT_MAX_ENTRIES),
            reserve=int(env[ENV_RESERVE]) if env.get(ENV_RESERVE, "").isdigit() else DEFAULT_RESERVE,
        )


@dataclass
class Report:
    pid: int
    started_at: str
    snapshot: dict[str, Any] | None = None
    replayed: int = 0
    skipped: int = 0  # records a snapshot already covered (a crash in the middle of a compaction)
    failed: list[dict[str, Any]] = field(default_factory=list)
    diverged: list[dict[str, Any]] = field(default_factory=list)
    torn: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"format": REPORT_FORMAT} | asdict(self)


class DurableApp:
    """WSGI middleware around moto's application: journal writes, replay them, compact.

    ``take_snapshot(journal_seq, taken_at)`` pickles the persisted backends;
    ``load_snapshot(path)`` restores them and returns (info, None), (None, None) when there is
    no snapshot, or (None, note) when it could not be read.
    """

    def __init__(
        self,
        app: Any,
        snapshot: Path,
        *,
        services: tuple[str, ...],
        take_snapshot: Callable[[int, str], bytes],
        load_snapshot: Callable[[Path], tuple[SnapshotInfo | None, str | None]],
        settings: Settings | None = None,
        extra_locks: tuple[Any, ...] = (),
        log: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.snapshot = snapshot
        self.directory = journal_dir(snapshot)
        self.report_file = report_path(snapshot)
        self.apps = {MOTO_PACKAGES.get(s, s) for s in services}  # moto names its apps after its packages
        self.take_snapshot = take_snapshot
        self.load_snapshot = load_snapshot
        self.settings = settings or Settings.from_env()
        self.extra_locks = extra_locks
        self.log = log or logging.getLogger("twin.journal")
        self._lock = threading.Lock()  # journaled requests: apply + append, one at a time
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._compact_due = threading.Event()
        self._stop = threading.Event()
        self._compactor: threading.Thread | None = None
        self._writer: JournalWriter | None = None
        self._next_seq = 1
        self._closed = False
        self._broken = ""  # why nothing is served any more (a write applied but not journaled)
        self._replay_apps: dict[Any, Any] = {}
        self.compactions = 0

    # ------------------------------------------------------------ serving

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._broken:
            answer = _plain("503 SERVICE UNAVAILABLE", self._broken)
            start_response(answer.status, answer.headers)
            return [answer.body]
        if not self.settings.enabled or self._writer is None:
            return self.app(environ, start_response)  # plain moto
        body = _read_body(environ)
        try:
            backend_app = self.app.get_application(environ)
        except Exception:
            return self.app(environ, start_response)  # moto answers as it always does
        service = str(getattr(backend_app, "service", ""))
        action = request_action(environ, body)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        if not self._journaled(service, action, method, environ, body):
            return backend_app(environ, start_response)
        if service == "sqs" and action == "ReceiveMessage":
            answer = self._receive(backend_app, environ, body, action)
        else:
            answer = self._apply(backend_app, environ, body, service, action)
        start_response(answer.status, answer.headers)
        return [answer.body]

    def _journaled(self, service: str, action: str | None, method: str, environ: dict[str, Any], body: bytes) -> bool:
        if not self.settings.enabled or self._writer is None:
            return False
        if service == "moto_api":
            return (
                method == "POST" and environ.get("PATH_INFO") == "/moto-api/reset"
            )  # wipes the persisted backends too
        return service in self.apps and not is_read(service, action, method, body)

    def _apply(
        self,
        backend_app: Any,
        environ: dict[str, Any],
        body: bytes,
        service: str,
        action: str | None,
        keep: Callable[[Answer], bool] | None = None,
    ) -> Answer:
        """Apply one write and journal it before anyone sees its answer; ``keep`` may skip journaling an empty poll."""
        compact = False
        with self._lock:
            if self._closed or self._writer is None:
                return _plain("503 SERVICE UNAVAILABLE", "the twin's AWS server is stopping")
            try:
                self._writer.reserve(len(body))  # before applying: a full disk refuses the write while nothing changed
            except OSError as err:
                self.log.error(
                    "journal has no room (%s): answering 503 to %s %s, nothing applied", err, service, action
                )
                return _plain(
                    "503 SERVICE UNAVAILABLE", f"the twin could not journal this write (nothing applied): {err}"
                )
            seed = int.from_bytes(os.urandom(8), "big")
            draws = _Draws(time.time(), random.Random(seed), [])
            with _pinned(draws):
                answer = call_app(backend_app, environ, self.log)
            if keep is not None and not keep(answer):
                return answer
            meta: dict[str, Any] = {
                "seq": self._next_seq,
                "t": draws.now,
                "seed": seed,
                "svc": service,
                "act": action,
                "env": _journal_env(environ),
                "status": answer.code,
                "digest": _digest(answer.body),
            }
            if draws.tape:
                meta["tape"] = draws.tape
            try:
                self._writer.append(meta, body)
            except OSError as err:
                # applied in memory but not durable, and moto cannot take a write back: from now on nothing is
                # served (reads included), so no reader ever sees it; a restart brings back what the disk holds
                self._broken = f"a write could not be journaled ({err}); restart the twin: local.down, then local.up"
                self.log.error(
                    "journal append failed (%s) after %s %s was applied: serving nothing more", err, service, action
                )
                return _plain("503 SERVICE UNAVAILABLE", f"the twin could not journal this write: {err}")
            self._next_seq += 1
            compact = self._writer.size >= self.settings.max_bytes or self._writer.count >= self.settings.max_entries
        if compact:
            self._compact_due.set()
        return answer

    def _receive(self, backend_app: Any, environ: dict[str, Any], body: bytes, action: str) -> Answer:
        """SQS long poll without holding the journal's lock for its wait: poll without waiting until a message or the
        deadline."""
        wait, quick, queue_url = _without_wait(environ, body)
        if wait is None:
            wait = _queue_wait(environ, queue_url)
        deadline = time.monotonic() + min(max(wait, 0.0), 20.0)
        while True:
            attempt = dict(environ)
            _set_body(attempt, quick)
            last = time.monotonic() >= deadline
            answer = self._apply(backend_app, attempt, quick, "sqs", action, keep=None if last else _received_messages)
            if last or _received_messages(answer):
                return answer
            time.sleep(0.05)

    # ------------------------------------------------------------ restoring

    def restore(self) -> dict[str, Any]:
        """Load the snapshot, replay the journal over it, write the restore report, open a new segment."""
        t0 = time.monotonic()
        report = Report(os.getpid(), datetime.now(UTC).isoformat())
        info, note = self.load_snapshot(self.snapshot)
        if note:
            report.notes.append(note)
        covered = info.journal_seq if info else 0
        if info:
            report.snapshot = {"taken_at": info.taken_at, "journal_seq": info.journal_seq}
        found = segments(self.directory)
        if note and found:
            # the records change a state we no longer have: replaying them onto an empty one would invent data
            aside = self.directory / f"unreplayed-{int(time.time())}"
            aside.mkdir(parents=True, exist_ok=True)
            for seg in found:
                shutil.move(str(seg), aside / seg.name)
            report.notes.append(f"journal not replayed (its snapshot is unreadable), kept in {aside}")
            found = []
        last = covered
        for seg in found:
            reader = SegmentReader(seg)
            for rec in reader:
                seq = int(rec.meta.get("seq", 0))
                if seq <= covered:
                    report.skipped += 1
                    continue
                if seq != last + 1:
                    report.notes.append(f"journal jumps from write {last} to {seq}")
                self._replay(rec, report)
                last = seq
            if reader.torn is not None:
                torn = reader.torn
                report.torn.append(
                    {"segment": torn.segment, "offset": torn.offset, "bytes": torn.bytes, "reason": torn.reason}
                )
                self.log.warning(
                    "journal %s: ignored %d bytes at offset %d (%s), cut off",
                    torn.segment,
                    torn.bytes,
                    torn.offset,
                    torn.reason,
                )
                os.truncate(seg, reader.good_end)  # so the next start does not report it again
        self._next_seq = last + 1
        if self.settings.enabled:
            self._writer = JournalWriter(self.directory, self._next_seq, self.settings.fsync, self.settings.reserve)
        report.seconds = round(time.monotonic() - t0, 3)
        data = report.as_dict()
        write_atomic(self.report_file, json.dumps(data, indent=2), mode=0o600, fsync=True)
        if report.replayed or report.torn or report.failed:
            self._compact_due.set()  # fold the replayed writes into a snapshot soon, off the start's path
        return data

    def _replay(self, rec: Record, report: Report) -> None:
        meta = rec.meta
        where = {"seq": meta.get("seq"), "service": meta.get("svc"), "action": meta.get("act")}
        try:
            environ = _replay_environ(meta["env"], rec.body)
            # outside the pinned draws, as when it was served; moto's routing is a sixth of a replay, so once per
            # service
            backend_app = self._replay_apps.get(meta.get("svc"))
            if backend_app is None:
                backend_app = self._replay_apps[meta.get("svc")] = self.app.get_application(environ)
            draws = _Draws(
                float(meta["t"]), random.Random(int(meta["seed"])), deque(meta.get("tape") or []), replaying=True
            )
            with _pinned(draws):
                answer = call_app(backend_app, environ)
        except Exception as err:  # a record this code cannot even dispatch: report it, keep going
            report.failed.append(where | {"reason": f"{type(err).__name__}: {err}"})
            return
        if answer.code != int(meta.get("status", 0)):
            first = answer.body.decode("utf-8", "replace").strip().splitlines()[:1]
            report.failed.append(
                where
                | {
                    "reason": f"answered {answer.code} where it had answered {meta.get('status')}"
                    + (f": {first[0][:200]}" if first else "")
                }
            )
            return
        report.replayed += 1
        if _digest(answer.body) != meta.get("digest") or draws.tape_short or draws.tape:
            report.diverged.append(where | {"reason": "the replayed answer differs from the recorded one"})

    # ------------------------------------------------------------ compaction

    def start_compactor(self) -> None:
        self._compactor = threading.Thread(target=self._compact_loop, name="journal-compactor", daemon=True)
        self._compactor.start()

    def _compact_loop(self) -> None:
        while not self._stop.is_set():
            if not self._compact_due.wait(0.5):
                continue
            self._compact_due.clear()
            if self._stop.is_set():
                return
            try:
                self.compact()
            except Exception:  # the journal still holds everything: log and keep serving
                self.log.exception("journal compaction failed; the journal keeps growing until the next one")

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """No write (and no DynamoDB request) runs while held."""
        with ExitStack() as stack:
            stack.enter_context(self._lock)
            for lock in self.extra_locks:
                stack.enter_context(lock)
            yield

    def _pickle(self, covered: int, taken_at: str) -> bytes:
        for attempt in range(5):
            try:
                return self.take_snapshot(covered, taken_at)
            except RuntimeError:  # a read built a region's backend while we walked the dict: walk again
                if attempt == 4:
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")

    def compact(self, final: bool = False) -> int:
        """Snapshot the state and drop the journal it covers; ``final`` also stops journaling. Returns the seq
        covered."""
        with self._compact_lock:
            t0 = time.monotonic()
            with self._quiet():
                if self._broken:  # memory holds a write the journal lacks: a snapshot would make it durable
                    if final:
                        self._closed = True
                        if self._writer is not None:
                            self._writer.close()
                    raise OSError(errno.EIO, f"no snapshot taken: {self._broken}")
                covered = self._next_seq - 1
                data = self._pickle(covered, datetime.now(UTC).isoformat())
                if final:
                    self._closed = True
                    if self._writer is not None:
                        self._writer.close()
                    old = segments(self.directory)
                elif self._writer is not None:
                    old = self._writer.rotate(
                        self._next_seq
                    )  # later writes go to a segment the snapshot does not cover
                else:
                    old = segments(self.directory)
            held = time.monotonic() - t0
            # outside the lock: writes go on while the snapshot reaches the disk
            write_atomic(self.snapshot, data, mode=0o600, fsync=True)
            for seg in old:
                seg.unlink(missing_ok=True)
            self.compactions += 1
            self.log.info(
                "compacted: snapshot covers write %d (%d bytes; writes held %.3fs, %.3fs in all); %d journal "
                "segment(s) removed",
                covered,
                len(data),
                held,
                time.monotonic() - t0,
                len(old),
            )
            return covered

    def close(self) -> int:
        """Clean stop: the last snapshot, an empty journal, and 503 for any write still arriving."""
        self._stop.set()
        self._compact_due.set()
        if self._compactor is not None:
            self._compactor.join(timeout=60)
        return self.compact(final=True)
