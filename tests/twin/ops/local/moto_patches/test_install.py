"""The patches install only on the moto version they were written for, and the server refuses to start otherwise."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ops.local.moto_patches import MOTO_VERSION, MotoVersionError, check_version
from tests.twin.ops.local.moto_patches.conftest import REPO, free_port


def test_the_installed_moto_is_the_one_the_patches_were_written_for() -> None:
    import moto

    assert moto.__version__ == MOTO_VERSION
    check_version()


def test_another_moto_version_is_refused_in_one_line() -> None:
    with pytest.raises(MotoVersionError) as err:
        check_version("5.2.6")
    message = str(err.value)
    assert "\n" not in message and "moto 5.2.6 is installed" in message and f"moto[server]=={MOTO_VERSION}" in message


def test_the_server_does_not_start_on_another_moto_version_and_leaves_its_snapshot(tmp_path: Path) -> None:
    # GIVEN a snapshot from an earlier run, and a moto that says it is another version
    snapshot = tmp_path / "aws.snapshot"
    snapshot.write_bytes(b"earlier state")
    port = free_port()
    code = (
        "import sys, moto; moto.__version__ = '5.3.0'; from ops.local import motoserver; "
        f"sys.exit(motoserver.main(['--port', '{port}', '--snapshot', {str(snapshot)!r}]))"
    )
    # WHEN the twin's server entry point starts
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    # THEN it exits non-zero with one line naming both versions, serves nothing, and has not touched the snapshot
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("motoserver: moto 5.3.0 is installed") and MOTO_VERSION in lines[0]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert snapshot.read_bytes() == b"earlier state" and sorted(p.name for p in tmp_path.iterdir()) == ["aws.snapshot"]
