"""local.up's error when a port it needs is taken: the real port, where its number comes from, and whose twin holds
it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.errors import ConfigError
from ops.local import twin


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some process listens on (this one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_held_by_another_stacks_twin_names_that_stack_and_the_offset(
    listening: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = listening - 8001
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CRUDDUR_LOCAL_PORT_OFFSET", str(offset))
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "twin.json").write_text(json.dumps({"aws": {"port": listening, "engine": "moto"}}))
    with pytest.raises(ConfigError) as err:
        twin._refuse_busy(listening, "AWS endpoint", "localAwsPort", "prod")
    text = str(err.value)
    assert f"port {listening} for the AWS endpoint of stack 'prod'" in text
    # the number in the file, and the shift that made it this port
    assert f"cruddur:localAwsPort 8001 in Pulumi.prod.yaml + CRUDDUR_LOCAL_PORT_OFFSET={offset}" in text
    assert "the twin of stack 'dev'" in text and "invoke local.down --stack dev" in text
    assert "another program" not in text and "\n" not in text


def test_a_port_held_by_something_else_is_another_program_and_without_offset_no_shift_is_named(
    listening: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CRUDDUR_LOCAL_PORT_OFFSET", raising=False)
    with pytest.raises(ConfigError) as err:
        twin._refuse_busy(listening, "PostgreSQL server", "localPostgresPort", "dev")
    text = str(err.value)
    assert f"(cruddur:localPostgresPort {listening} in Pulumi.dev.yaml)" in text
    assert "another program" in text and "CRUDDUR_LOCAL_PORT_OFFSET=N" in text


def test_a_free_port_is_no_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]  # bound, not listening: nothing answers
    twin._refuse_busy(free, "AWS endpoint", "localAwsPort", "dev")
