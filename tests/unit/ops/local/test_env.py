"""local.env's forms and the two guards around its exports, without a twin.

GIVEN variables with every character a shell or a dotenv reader treats specially, WHEN rendered, THEN bash (and
zsh, POSIX sh where installed) read back exactly the values, and dotenv carries them or refuses in one line. A shell
holding the exports keeps its twin's server out of local.up's DATABASE_URL and its endpoint out of --cloud.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ops.errors import ConfigError
from ops.local import postgres
from ops.local.env import TwinEnv, render
from ops.local.twin import _a_twins_own
from tests.support.helpers import assert_one_line_error, run_invoke

AWKWARD = {
    "PLAIN": "http://127.0.0.1:8000",
    "QUOTE": 'it\'s $HOME `id` "x" \\ ; & | * ~ # !',
    "SPACES": "  two  spaces  ",
    "EMPTY": "",
    "NEWLINE": "a\nb",
}
SHELLS = [s for s in ("bash", "zsh", "sh") if shutil.which(s)]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_sh_form_gives_a_shell_exactly_the_values(shell: str) -> None:
    text = render(TwinEnv("dev", dict(AWKWARD), ["a note; with 'quotes'"]), "sh")
    script = text + "\n" + "".join(f'printf "%s\\0" "${name}"\n' for name in AWKWARD)
    proc = subprocess.run(
        [shell, "-c", script], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\0")[:-1] == list(AWKWARD.values())


def test_the_sh_form_unsets_what_would_shadow_the_exports() -> None:
    script = render(TwinEnv("dev", {"AWS_REGION": "us-east-1"}), "sh") + '\nprintf "%s" "${AWS_PROFILE-unset}"'
    env = {"PATH": "/usr/bin:/bin", "AWS_PROFILE": "prod-admin", "PGPASSWORD": "other"}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert proc.stdout == "unset"


def test_dotenv_quotes_what_needs_it_and_refuses_what_it_cannot_carry() -> None:
    text = render(TwinEnv("dev", {"URL": "http://127.0.0.1:8000/x?a=b", "SPACED": "a b"}), "dotenv")
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "URL='http://127.0.0.1:8000/x?a=b'",
        "SPACED='a b'",
    ]
    with pytest.raises(ConfigError, match="QUOTE holds a quote or a line break"):
        render(TwinEnv("dev", {"QUOTE": "it's"}), "dotenv")


def test_a_twins_own_url_is_recognised_by_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path))
    password = postgres.ensure_password(tmp_path / "dev")
    assert _a_twins_own(postgres.url(5442, "cruddur", password))
    assert not _a_twins_own(postgres.url(5442, "cruddur", "someone-elses"))
    assert not _a_twins_own(f"postgresql://app:{password}@db.example.com:5432/cruddur")
    assert not _a_twins_own("host=127.0.0.1 user=postgres")


def test_cloud_is_refused_in_a_shell_that_holds_a_twins_exports() -> None:
    exports = {"CRUDDUR_STACK": "dev", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    proc = run_invoke("ddb.list-tables", "--cloud", env=exports)
    assert_one_line_error(proc, "--cloud in a shell that holds a twin's exports", "new shell")
    for task in (["infra.preview"], ["infra.outputs", "--cloud"]):
        assert_one_line_error(run_invoke(*task, env=exports), "the Pulumi CLI in a shell that holds a twin's exports")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret-pw@db.example.com:5433/cruddur",
        "host=db.example.com port=5433 user=app password=s3cret-pw dbname=cruddur",
    ],
)
def test_a_developers_own_server_is_exported_without_its_password(url: str) -> None:
    from ops.local.env import _postgres

    values, notes = _postgres("dev", {"engine": "external", "url": url})
    assert values == {"PGHOST": "db.example.com", "PGPORT": "5433", "PGUSER": "app", "PGDATABASE": "cruddur"}
    assert "s3cret" not in repr((values, notes)) and "keep your DATABASE_URL" in notes[0]
