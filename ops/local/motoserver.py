"""Entry point of the twin's background AWS endpoint: ``python -m ops.local.motoserver``.

moto keeps everything in memory, so a restart would lose a developer's seeded data. This
process restores the services' state from a snapshot when it starts and writes a new one
when it is asked to stop (SIGTERM/SIGINT, which is what ``local.down`` sends). Pickling the
backends keeps ids exactly (user pool id, Cognito subs, security-group rule ids, stream
records), which a re-creation through the API could not.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# The services the twin persists; everything else a developer pokes at is throwaway.
SERVICES = ("dynamodb", "dynamodbstreams", "cognito-idp", "ec2")
SNAPSHOT_FORMAT = 1


def _moto_jwk() -> Any:
    # Cognito pools hold an RSA key that moto loads from a bundled file; it does not pickle,
    # so the snapshot stores a call that reloads the same file.
    from joserfc import jwk
    from moto.utilities.utils import load_resource

    return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        from joserfc import jwk

        if isinstance(obj, jwk.RSAKey):
            return (_moto_jwk, ())
        return NotImplemented


def snapshot_bytes() -> bytes:
    import moto
    from moto.backends import get_backend

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(
        {"format": SNAPSHOT_FORMAT, "moto": moto.__version__, "backends": {n: dict(get_backend(n)) for n in SERVICES}}  # type: ignore[arg-type]
    )
    return buf.getvalue()


def save_snapshot(path: Path) -> None:
    data = snapshot_bytes()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves half a snapshot


def restore_snapshot(path: Path, log: logging.Logger) -> bool:
    import moto
    from moto.backends import get_backend

    if not path.exists():
        return False
    try:
        data = pickle.loads(path.read_bytes())
        if data.get("format") != SNAPSHOT_FORMAT or data.get("moto") != moto.__version__:
            raise ValueError(f"snapshot from moto {data.get('moto')}, running {moto.__version__}")
        for name, accounts in data["backends"].items():
            get_backend(name).update(accounts)  # type: ignore[arg-type]
    except Exception as err:  # keep the unreadable file for the developer, start empty
        aside = path.with_suffix(f".unreadable-{int(time.time())}")
        os.replace(path, aside)
        log.error("could not restore %s (%s); kept it as %s and started empty", path, err, aside)
        return False
    log.info("restored state from %s", path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--snapshot", type=Path, required=True)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the log
    log = logging.getLogger("twin")

    from ops.local.moto_patches import MotoVersionError, install
    from ops.local.moto_patches.isolation import serialise_dynamodb

    try:
        # before the snapshot is read: on another moto version the server must not start at all
        install()  # reads that cost the page, not the table (ops/local/moto_patches)
    except MotoVersionError as err:
        print(f"motoserver: {err}", file=sys.stderr)
        return 2
    serialise_dynamodb()  # DynamoDB's transaction isolation, which threaded moto lacks (install() does it too)

    restore_snapshot(args.snapshot, log)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    log.info("serving on %s:%s (pid %s)", args.host, args.port, os.getpid())

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    server.stop()
    save_snapshot(args.snapshot)
    log.info("state saved to %s; stopped", args.snapshot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
