"""Entry point of the twin's background AWS endpoint: ``python -m ops.local.motoserver``.

moto keeps everything in memory, so a restart would lose a developer's data. This process
pickles the persisted backends to a snapshot when it is asked to stop (SIGTERM/SIGINT, which
is what ``local.down`` sends) and journals every write in between (``ops.local.journal``), so
a crash (kill -9) loses nothing that was acknowledged. At start it restores the snapshot,
replays the journal over it and writes ``aws-restore.json`` (what it found) before it listens.
Pickling the backends and replaying with pinned randomness keep ids exactly (user pool id,
Cognito subs, security-group rule ids, stream ARNs and records), which a re-creation through
the API could not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.files import write_atomic
from ops.local import journal

# The services the twin persists; everything else a developer pokes at is throwaway.
SERVICES = ("dynamodb", "dynamodbstreams", "cognito-idp", "ec2", "sqs", "kms")
SNAPSHOT_FORMAT = 2  # 2: the snapshot names the last journaled write it covers
READABLE_FORMATS = (1, 2)


def snapshot_bytes(journal_seq: int = 0, taken_at: str | None = None) -> bytes:
    import moto
    from moto.backends import get_backend

    return journal.state_dumps(
        {
            "format": SNAPSHOT_FORMAT,
            "moto": moto.__version__,
            "journal_seq": journal_seq,
            "taken_at": taken_at or datetime.now(UTC).isoformat(),
            "backends": {n: dict(get_backend(n)) for n in SERVICES},  # type: ignore[call-overload]
        }
    )


def save_snapshot(path: Path, journal_seq: int = 0) -> None:
    write_atomic(
        path, snapshot_bytes(journal_seq), mode=0o600, fsync=True
    )  # a crash mid-write never leaves half a snapshot


def restore_snapshot(path: Path, log: logging.Logger) -> tuple[journal.SnapshotInfo | None, str | None]:
    """Load the snapshot into moto: (what it covers, None), (None, None) when there is none, (None, why) when
    unreadable."""
    import moto
    from moto.backends import get_backend

    if not path.exists():
        return None, None
    try:
        data = pickle.loads(path.read_bytes())
        if data.get("format") not in READABLE_FORMATS or data.get("moto") != moto.__version__:
            raise ValueError(f"snapshot from moto {data.get('moto')}, running {moto.__version__}")
        for name, accounts in data["backends"].items():
            get_backend(name).update(accounts)  # type: ignore[call-overload]
    except Exception as err:  # keep the unreadable file for the developer, start empty
        aside = path.with_suffix(f".unreadable-{int(time.time())}")
        os.replace(path, aside)
        log.error("could not restore %s (%s); kept it as %s and started empty", path, err, aside)
        return None, f"snapshot unreadable ({err}), kept as {aside.name}"
    taken = data.get("taken_at") or datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
    log.info("restored state from %s", path)
    return journal.SnapshotInfo(taken, int(data.get("journal_seq", 0))), None


def _fixed_hash_seed(argv: list[str] | None) -> None:
    # replay must walk sets and dicts of strings in the order the first run did
    if os.environ.get("PYTHONHASHSEED") != "0":
        args = sys.argv[1:] if argv is None else argv
        os.execve(
            sys.executable, [sys.executable, "-m", "ops.local.motoserver", *args], {**os.environ, "PYTHONHASHSEED": "0"}
        )


def build(snapshot: Path, log: logging.Logger, settings: journal.Settings | None = None) -> journal.DurableApp:
    """moto's WSGI application inside the journal, its state restored (tests call this in-process)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from ops.local.moto_patches import exports as moto_exports
    from ops.local.moto_patches import gaps as moto_gaps
    from ops.local.moto_patches.isolation import dynamodb_lock, serialise_dynamodb

    serialise_dynamodb()  # DynamoDB's transaction isolation, which threaded moto lacks
    moto_gaps.install()  # UpdateUserPool and UpdateTable as AWS answers them, so local.up can update in place
    moto_exports.install()  # an export's files and manifests laid out as AWS writes them (ddb.export, --from-export)
    journal.install_determinism(SERVICES)
    app = journal.DurableApp(
        DomainDispatcherApplication(create_backend_app),
        snapshot,
        services=SERVICES,
        take_snapshot=snapshot_bytes,
        load_snapshot=lambda path: restore_snapshot(path, log),
        settings=settings,
        extra_locks=(dynamodb_lock(),),
        log=log,
    )
    app.restore()
    return app


# The JSON APIs of DynamoDB and its streams name themselves in this header (X-Amz-Target: DynamoDB_20120810.Query)
ELSEWHERE_TARGETS = ("DynamoDB_", "DynamoDBStreams_")
ELSEWHERE_CODE = "DynamoDBServedElsewhere"


class ServedElsewhere:
    """Refuses DynamoDB and DynamoDB Streams calls while another engine serves them for this twin.

    moto keeps what it once served (a stack that ran on moto before, its snapshot): answering from
    it would hand a program given the general endpoint an old copy of the tables, with no error.
    Which engine serves DynamoDB is what ``local.up`` records in the stack's twin.json (a
    ``dynamodb`` entry with its endpoint), whatever that engine is; the file is read again when it
    changes. Refused requests never reach moto nor its journal.
    """

    def __init__(self, app: Any, twin_json: Path) -> None:
        self.app = app
        self.twin_json = twin_json
        self._seen: tuple[int, int] | None = None
        self._elsewhere: str | None = None
        self._lock = threading.Lock()

    def elsewhere(self) -> str | None:
        """The endpoint of the engine that serves DynamoDB for this twin, when it is not this server."""
        try:
            st = self.twin_json.stat()
        except OSError:
            return None
        with self._lock:
            if self._seen != (st.st_mtime_ns, st.st_size):
                try:
                    record = json.loads(self.twin_json.read_text())
                    self._elsewhere = str((record.get("dynamodb") or {}).get("endpoint") or "") or None
                except (OSError, ValueError, AttributeError):
                    self._elsewhere = None  # being replaced, or not ours: serve as moto does
                self._seen = (st.st_mtime_ns, st.st_size)
            return self._elsewhere

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        where = self.elsewhere() if target.startswith(ELSEWHERE_TARGETS) else None
        if where is None:
            return self.app(environ, start_response)
        stack = self.twin_json.parent.name
        message = (
            f"this endpoint does not serve DynamoDB or DynamoDB Streams for the twin of stack {stack}: {where} does; "
            "set AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_DYNAMODB_STREAMS to it "
            f'(eval "$(invoke local.env --stack {stack})")'
        )
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{ELSEWHERE_CODE}", "message": message})
        start_response(
            "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body.encode())))],
        )
        return [body.encode()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--snapshot", type=Path, required=True)
    args = parser.parse_args(argv)
    from ops.local.moto_patches import MotoVersionError, check_version, install

    try:
        # first of all (before the restart with a fixed hash seed, before the snapshot is read): on
        # another moto version the server must not start at all
        check_version()
    except MotoVersionError as err:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("twin").error(
            "motoserver: %s", err
        )  # the log is the process's stderr: local.up shows its last line
        return 2
    _fixed_hash_seed(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the log
    log = logging.getLogger("twin")

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    install()  # reads and transactions that cost the page, not the table (ops/local/moto_patches)
    app = build(args.snapshot, log)
    log.info("%s", journal.restore_summary(journal.read_report(journal.report_path(args.snapshot))))
    served = ServedElsewhere(app, args.snapshot.parent / "twin.json")  # local.up's record of the stack's twin
    server: Any = make_server(args.host, args.port, served, threaded=True, request_handler=MotoRequestHandler)
    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    app.start_compactor()
    log.info("serving on %s:%s (pid %s)", args.host, args.port, os.getpid())

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    server.shutdown()
    serving.join()
    try:
        covered = app.close()  # a write still in flight gets a 503 rather than vanish
    except OSError as err:  # a full or read-only disk: the journal it could not fold in still holds every write
        log.error(
            "could NOT save state to %s (%s); the journal keeps every acknowledged write, replayed at the next start",
            args.snapshot,
            err,
        )
        return 1
    log.info("state saved to %s (covers write %d); journal emptied; stopped", args.snapshot, covered)
    return 0


if __name__ == "__main__":
    code = main()
    # the state is saved (or its journal kept): skip the interpreter's teardown, which frees a large
    # twin's objects one by one for seconds and would make local.down wait, or kill it, for nothing
    logging.shutdown()  # flushes the log, where everything this server says goes
    os._exit(code)
