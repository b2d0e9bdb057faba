"""Choosing the twin's DynamoDB engine: the stack's data is never hidden by a switch, and a missing engine is one line.

GIVEN a stack's state directory (which engine served it last) WHEN local.up is asked for an
engine THEN auto keeps the last one, another one is refused unless --empty, and an engine that
cannot start (no Docker, no MiniStack virtualenv, no endpoint of the user's) says so before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops.errors import ConfigError, ToolMissingError
from ops.local import ministack
from ops.local import twin as twinops
from ops.stacks import load_stack


def _last(state: Path, engine: str) -> Path:
    (state / twinops.LAST_ENGINE_FILE).write_text(engine + "\n")
    return state


def test_auto_is_the_engine_of_last_time_and_moto_the_first_time(tmp_path: Path) -> None:
    assert twinops.choose_engine(tmp_path, "auto") == "moto"
    assert twinops.choose_engine(_last(tmp_path, "ministack"), "auto") == "ministack"


@pytest.mark.parametrize(("last", "asked"), [("moto", "ministack"), ("ministack", "moto"), ("docker", "moto")])
def test_switching_engines_is_refused_in_one_line_unless_empty_is_asked(tmp_path: Path, last: str, asked: str) -> None:
    _last(tmp_path, last)
    with pytest.raises(ConfigError) as refused:
        twinops.choose_engine(tmp_path, asked)
    line = str(refused.value)
    assert "\n" not in line and f"on engine {last}" in line and f"--engine {last}" in line and "--empty" in line
    assert twinops.choose_engine(tmp_path, asked, empty=True) == asked
    assert twinops.choose_engine(tmp_path, last) == last  # the same engine again is no switch


def test_a_stack_last_run_on_an_engine_no_longer_run_is_not_switched_silently(tmp_path: Path) -> None:
    _last(tmp_path, "dynamodb-local")  # a state directory from before DynamoDB Local was dropped
    with pytest.raises(ConfigError, match=r"^the stack's DynamoDB data is on engine dynamodb-local, which the twin no"):
        twinops.choose_engine(tmp_path, "auto")
    assert twinops.choose_engine(tmp_path, "auto", empty=True) == "moto"
    assert twinops.choose_engine(tmp_path, "ministack", empty=True) == "ministack"


def test_an_external_endpoint_of_last_time_needs_its_setting_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(twinops.EXTERNAL_ENDPOINT_ENV, raising=False)
    with pytest.raises(ConfigError, match=twinops.EXTERNAL_ENDPOINT_ENV):
        twinops.choose_engine(_last(tmp_path, "external"), "auto")
    monkeypatch.setenv(twinops.EXTERNAL_ENDPOINT_ENV, "http://127.0.0.1:8000")
    assert twinops.choose_engine(tmp_path, "auto") == "external"


@pytest.fixture
def fresh_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path))
    return tmp_path


PLAN: Any = object()  # never reached: each case stops before the plan is used


def test_docker_without_a_docker_engine_is_one_line_and_starts_nothing(
    fresh_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twinops, "docker_answers", lambda timeout=3.0: False)
    with pytest.raises(ToolMissingError, match=r"^--engine docker needs a Docker engine, and none answers: [^\n]*$"):
        twinops.up(load_stack("dev"), engine="docker", plan=PLAN)
    assert not (fresh_state / "dev" / "twin.json").exists()


def test_ministack_without_its_virtualenv_says_to_run_bootstrap(
    fresh_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ministack.INSTALL_DIR_ENV, str(tmp_path / "nothing-here"))
    with pytest.raises(
        ToolMissingError, match=r"needs MiniStack 1\.5\.33 in its own virtualenv .*: run bin/bootstrap$"
    ):
        twinops.up(load_stack("dev"), engine="ministack", plan=PLAN)


def test_external_without_an_endpoint_is_one_line(fresh_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(twinops.EXTERNAL_ENDPOINT_ENV, "localhost:8000")
    with pytest.raises(ConfigError, match=r"set CRUDDUR_DYNAMODB_ENDPOINT to its URL .*not 'localhost:8000'$"):
        twinops.up(load_stack("dev"), engine="external", plan=PLAN)


def test_the_pins_agree() -> None:
    from ops.local import ministack_server

    pinned = ministack.REQUIREMENTS.read_text()
    assert f"ministack=={ministack.VERSION}\n" in pinned and ministack_server.PINNED == ministack.VERSION
    lines = [line for line in pinned.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in lines), "every package of MiniStack's virtualenv is pinned"


def test_local_status_says_a_users_own_endpoint_is_not_managed_by_us(fresh_state: Path) -> None:
    import json

    (fresh_state / "dev").mkdir()
    twin = {"stack": "dev", "dynamodb": {"engine": "external", "endpoint": "http://127.0.0.1:9"}}
    (fresh_state / "dev" / "twin.json").write_text(json.dumps(twin))
    (component,) = twinops.status("dev").components
    assert component.name == "dynamodb (DynamoDB, Streams): not managed by local.up/local.down"
    assert (component.engine, component.started_by_us, component.pid) == ("external", False, None)
    assert twinops.down("dev") == []  # nothing of it is stopped: it is not ours
