"""The durable server: which requests are writes, applying them, replaying the journal, compaction."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import random
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ops.files import write_atomic
from ops.local.journal.determinism import MOTO_PACKAGES, _Draws, _pinned
from ops.local.journal.record import Record, SegmentReader, segments
from ops.local.journal.report import REPORT_FORMAT, journal_dir, report_path
from ops.local.journal.writer import DEFAULT_RESERVE, ENV_RESERVE, JournalWriter

ENV_ENABLED = "CRUDDUR_TWIN_JOURNAL"  # "0" turns journaling off (the cost measurement's baseline)
ENV_FSYNC = "CRUDDUR_TWIN_JOURNAL_FSYNC"  # "1": fsync every record (survives a power loss, not only a crash)
ENV_MAX_BYTES = "CRUDDUR_TWIN_JOURNAL_MAX_BYTES"  # compact once the active segment is this large
ENV_MAX_ENTRIES = "CRUDDUR_TWIN_JOURNAL_MAX_ENTRIES"  # ... or holds this many writes (bounds the replay at start)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


DEFAULT_MAX_ENTRIES = 5000  # a replay runs a few hundred writes a second: a restart stays within seconds


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
