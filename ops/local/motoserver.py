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
    """Load the snapshot into moto: (what it covers, None), (None, None) when there is none, (None, why) when unreadable."""
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
    server: Any = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
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
    covered = app.close()  # a write still in flight gets a 503 rather than vanish
    log.info("state saved to %s (covers write %d); journal emptied; stopped", args.snapshot, covered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
