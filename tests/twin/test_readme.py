"""The README's two commands: the main job runs end to end on a fresh twin, and CI runs the test command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ops import seed
from tests.support.helpers import REPO

FIRST_BLOCKS = re.compile(r"```bash\n(.+?)\n```", re.S)


def readme_commands() -> list[str]:
    return FIRST_BLOCKS.findall((REPO / "README.md").read_text())[:2]


def test_readme_starts_with_the_two_commands() -> None:
    main, tests = readme_commands()
    assert main == "bin/bootstrap && .venv/bin/invoke quickstart"
    assert tests == "bin/bootstrap && .venv/bin/python -m pytest -q -n 2 --dist loadgroup"
    assert (REPO / "README.md").read_text().index(main) < 300, "the commands come first"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == readme_commands()[1]


@pytest.mark.slow
@pytest.mark.spread
@pytest.mark.parametrize("quickstart_engine", ["auto", "ministack"])
def test_main_command_runs_end_to_end_on_a_fresh_state_dir(quickstart_engine: str) -> None:
    """`invoke quickstart` (the main command after bootstrap) in a subprocess, twice, on its own twin.

    On MiniStack the twin is stopped between the runs: the second `quickstart` (engine auto)
    brings the stack back on the engine it ran on last, with its data.
    """
    from ops.local import ministack

    if quickstart_engine == ministack.ENGINE and not ministack.installed():
        if os.environ.get("CI"):
            pytest.fail(f"MiniStack is not installed: {ministack.INSTALL_COMMAND}")
        pytest.skip(f"MiniStack is not installed: run {ministack.INSTALL_COMMAND}")
    state = tempfile.mkdtemp(prefix="cruddur-e2e-")
    env = {
        **os.environ,
        "CRUDDUR_STATE_DIR": state,
        "CRUDDUR_LOCAL_PORT_OFFSET": os.environ["CRUDDUR_TEST_README_PORT_OFFSET"],
    }
    invoke = [sys.executable, "-m", "invoke"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*invoke, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )

    try:
        first = run("quickstart", "--engine", quickstart_engine)
        assert first.returncode == 0, first.stderr
        assert "twin of stack dev is up" in first.stdout
        assert (ministack.ENGINE in first.stdout) == (quickstart_engine == ministack.ENGINE), first.stdout
        conversation = [text for _, text in seed.parse_conversation(seed.DEFAULT_CONVERSATION).lines]
        shown = first.stdout.split("== ada <-> bram, newest page", 1)[1].strip().splitlines()
        assert len(shown) == len(conversation)
        for line, text in zip(shown, conversation, strict=False):
            assert text[:40] in line, f"out of order: {line!r} should show {text!r}"
        assert (
            "== conversations of ada" in first.stdout and "bram" in first.stdout.split("== conversations of ada", 1)[1]
        )

        def item_count() -> int:
            scan = run("ddb.scan", "--json")
            assert scan.returncode == 0, scan.stderr
            return len([json.loads(line) for line in scan.stdout.splitlines()])

        count = item_count()
        assert count == len(conversation) + 3  # the messages, both group rows and the pair entry
        # a user of the twin adds a row; on MiniStack the twin is then stopped, so the second run also brings it back
        _sql(env, "INSERT INTO users (display_name, handle, email) VALUES ('A', 'added-between', 'a@example.com')")
        if quickstart_engine == ministack.ENGINE:
            assert run("local.down").returncode == 0
        second = run("quickstart")
        assert second.returncode == 0, second.stderr
        assert "kept its rows (5 users" in second.stdout, second.stdout  # the 4 seed users and the one added
        assert "added-between" in _sql(env, "SELECT handle FROM users"), "quickstart must keep the rows a user made"
        if quickstart_engine == ministack.ENGINE:
            assert "ministack: data kept from the last run" in second.stdout, second.stdout
        else:
            assert "already running" in second.stdout
        assert item_count() == count, "running the main command again must not duplicate items"
    finally:
        down = run("local.down")
        assert down.returncode == 0, down.stderr
    assert not list(Path(state).glob("*/twin.json"))


def _sql(env: dict[str, str], statement: str) -> str:
    """Run one statement on the e2e twin's database, in a process with the twin's environment; its rows as text."""
    code = (
        "import sys\nfrom ops import db\nfrom ops.target import resolve_target\n"
        "with db.connect(resolve_target('dev')) as conn, conn.transaction():\n"
        "    cur = conn.execute(sys.argv[1])\n"
        "    print(cur.fetchall() if cur.description else '')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, statement], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
