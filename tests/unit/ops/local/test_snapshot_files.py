"""Snapshots of a stopped twin's state directory, without a twin: what is copied, checked and swapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.errors import ConfigError, NotFoundError
from ops.local import snapshot


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stopped twin's state directory for stack dev: data files, a private one, runtime files."""
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path))
    dev = tmp_path / "dev"
    (dev / "aws-journal").mkdir(parents=True)
    (dev / "aws-state.pickle").write_bytes(b"moto state v1")
    (dev / "aws-journal" / "seg-1").write_bytes(b"journal")
    (dev / "outputs.json").write_text('{"pool": "us-east-1_abc"}')
    (dev / "postgres-password").write_text("secret\n")
    (dev / "postgres-password").chmod(0o600)
    (dev / "empty-dir").mkdir()
    (dev / "aws.log").write_text("log of run 1\n")
    (dev / "plan.json").write_text("{}")
    (dev / ".lifecycle.lock").write_text("")
    return dev


def test_save_then_restore_puts_back_the_data_and_keeps_the_runs_own_files(state: Path) -> None:
    saved = snapshot.save("dev", "one").info
    assert (saved.name, saved.stack, saved.engine) == ("one", "dev", "moto")
    copied = snapshot.snapshot_dir("dev", "one") / "state"
    assert not (copied / "aws.log").exists() and not (copied / "plan.json").exists()
    assert (copied / "empty-dir").is_dir() and (copied / "postgres-password").stat().st_mode & 0o777 == 0o600

    (state / "aws-state.pickle").write_bytes(b"moto state v2")
    (state / "outputs.json").unlink()
    (state / "new-file").write_text("made after the save")
    (state / "aws.log").write_text("log of run 2\n")
    snapshot.restore("dev", "one")
    assert (state / "aws-state.pickle").read_bytes() == b"moto state v1"
    assert (state / "outputs.json").exists() and not (state / "new-file").exists()
    assert (state / "aws.log").read_text() == "log of run 2\n", "the machine's logs are not part of the data"
    assert [i.name for i in snapshot.list_snapshots("dev")] == ["one"]


def test_a_damaged_snapshot_is_refused_and_the_state_left_alone(state: Path) -> None:
    snapshot.save("dev", "one")
    (snapshot.snapshot_dir("dev", "one") / "state" / "outputs.json").write_text("{}")
    (state / "aws-state.pickle").write_bytes(b"current")
    with pytest.raises(ConfigError, match="outputs.json does not match its checksum"):
        snapshot.restore("dev", "one")
    assert (state / "aws-state.pickle").read_bytes() == b"current"
    (snapshot.snapshot_dir("dev", "one") / "state" / "stray").write_text("x")
    with pytest.raises(ConfigError, match="stray is not in its manifest"):
        snapshot.restore("dev", "one")
    with pytest.raises(NotFoundError, match="snapshots: one"):
        snapshot.restore("dev", "two")


def test_a_swap_cut_between_its_two_renames_is_finished_by_the_next_command(state: Path) -> None:
    aside = state.parent / ".dev.replaced-999"
    state.rename(aside)  # the old directory moved aside, the new one never moved in
    (state.parent / ".dev.restoring-999").mkdir()
    snapshot._recover("dev")
    assert (state / "aws-state.pickle").read_bytes() == b"moto state v1"
    assert not aside.exists() and not (state.parent / ".dev.restoring-999").exists()
