"""The infra tasks as a user runs them, the architecture diagram, and the CI workflow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops import outputs
from ops.diagram import GRAPHVIZ_HINT, VIEWS, draw, flow_labels, references
from ops.errors import ConfigError, ToolMissingError
from ops.stacks import PROJECT_ROOT
from tests.support.helpers import assert_one_line_error, run_invoke
from tests.support.plans import planned

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "preview.yml"
COMMENT_WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "plan-diff-comment.yml"
VENV_BIN = Path(sys.executable).parent


def test_plan_json_is_the_whole_plan_and_parses() -> None:
    proc = run_invoke("infra.plan", "--stack", "prod", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["stack"] == "prod"
    assert set(outputs.ALL) <= set(plan["outputs"])
    assert {r["type"] for r in plan["resources"]} >= {"aws:dynamodb/table:Table", "aws:lambda/function:Function"}


def test_plan_of_an_unknown_stack_is_one_line() -> None:
    assert_one_line_error(run_invoke("infra.plan", "--stack", "staging", timeout=60), "unknown stack 'staging'")


def test_preview_without_the_pulumi_cli_is_one_line_with_the_install_hint() -> None:
    proc = run_invoke("infra.preview", "--stack", "dev", env={"PATH": str(VENV_BIN)}, timeout=60)
    assert_one_line_error(proc, "pulumi CLI is not installed", "get.pulumi.com")


FAKE_PULUMI = """#!/bin/sh
# Stands in for the Pulumi CLI (not installable here): says what it was given and which backend it would use.
echo "args=$*" >&2
echo "backend=${PULUMI_BACKEND_URL:-unset}" >&2
if [ "$1" = stack ] && [ -n "$FAKE_OUTPUTS" ]; then echo "$FAKE_OUTPUTS"; elif [ "$1" = stack ]; then echo '{"tableName": "cruddur-messages-dev"}'; fi
"""  # noqa: E501


@pytest.fixture
def fake_pulumi(tmp_path: Path) -> dict[str, str]:
    exe = tmp_path / "bin" / "pulumi"
    exe.parent.mkdir()
    exe.write_text(FAKE_PULUMI)
    exe.chmod(0o755)
    return {"PATH": f"{exe.parent}:{VENV_BIN}"}


def test_cloud_outputs_without_the_pulumi_cli_is_one_line_with_the_install_hint() -> None:
    proc = run_invoke("infra.outputs", "--stack", "dev", "--cloud", env={"PATH": str(VENV_BIN)}, timeout=60)
    assert_one_line_error(proc, "pulumi CLI is not installed", "get.pulumi.com")


def test_cli_tasks_pass_the_backend_through_and_say_which_it_is(fake_pulumi: dict[str, str]) -> None:
    backend = "s3://cruddur-pulumi-state?region=us-east-1"
    preview = run_invoke(
        "infra.preview", "--stack", "dev", env=fake_pulumi | {"PULUMI_BACKEND_URL": backend}, timeout=60
    )
    assert preview.returncode == 0, preview.stderr
    assert f"state backend: {backend} (from $PULUMI_BACKEND_URL)" in preview.stderr.splitlines()
    assert f"backend={backend}" in preview.stderr.splitlines(), "the CLI got the variable"
    assert f"args=preview --stack dev --policy-pack {PROJECT_ROOT / 'policy'}" in preview.stderr.splitlines(), (
        "and runs the policy pack, as CI does"
    )

    shown = run_invoke(
        "infra.outputs",
        "--stack",
        "dev",
        "--json",
        "--cloud",
        env=fake_pulumi | {"PULUMI_BACKEND_URL": backend},
        timeout=60,
    )
    assert shown.returncode == 0 and json.loads(shown.stdout) == {"tableName": "cruddur-messages-dev"}, shown.stderr
    assert f"state backend: {backend} (from $PULUMI_BACKEND_URL)" in shown.stderr
    garbled = run_invoke(
        "infra.outputs",
        "--stack",
        "dev",
        "--cloud",
        env=fake_pulumi | {"FAKE_OUTPUTS": "warning: something"},
        timeout=60,
    )
    # the backend line first, then the one error line; no traceback
    assert garbled.returncode == 1 and "Traceback" not in garbled.stderr
    assert garbled.stderr.splitlines()[1:] == [
        "error: pulumi stack output --stack dev did not print a JSON object: 'warning: something'"
    ]


def test_without_a_backend_url_the_tasks_say_pulumi_login_decides(fake_pulumi: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PULUMI_BACKEND_URL"} | fake_pulumi
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "infra.up", "--stack", "dev"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "state backend: the one `pulumi login` chose ($PULUMI_BACKEND_URL is unset; `pulumi whoami -v` names it)"
        in proc.stderr
    )
    assert (
        "backend=unset" in proc.stderr and f"args=up --stack dev --policy-pack {PROJECT_ROOT / 'policy'}" in proc.stderr
    )


def test_cloud_drift_without_credentials_is_the_one_line_error_before_any_planning(tmp_path: Path) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": f"{tmp_path}/none",
        "AWS_CONFIG_FILE": f"{tmp_path}/none",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CRUDDUR_STATE_DIR": str(tmp_path),
    }
    assert_one_line_error(
        run_invoke("infra.drift", "--stack", "prod", "--cloud", env=env, timeout=60),
        "--cloud needs AWS credentials",
        "AWS_PROFILE",
    )
    assert not (tmp_path / "prod" / "plan.json").exists(), "refused before the program was planned"


def test_drift_of_an_unknown_stack_is_one_line() -> None:
    assert_one_line_error(run_invoke("infra.drift", "--stack", "staging", timeout=60), "unknown stack 'staging'")


def test_up_with_yes_on_a_protected_stack_needs_the_confirmation() -> None:
    proc = run_invoke("infra.up", "--stack", "prod", "--yes", env={"PATH": str(VENV_BIN)}, timeout=60)
    assert_one_line_error(proc, "protected", "--confirm-protected")


def test_diagram_without_graphviz_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="apt-get install graphviz"):
        draw(planned("dev"), tmp_path / "arch.png")
    assert "apt-get install graphviz" in GRAPHVIZ_HINT


def test_diagram_edges_follow_the_references_in_the_plan() -> None:
    edges = {(e.source.split("::")[-1], e.target.split("::")[-1]) for e in references(planned("dev"))}
    assert ("messages", "stream-consumer-mapping") in edges  # the stream feeds the mapping
    assert ("stream-consumer-function", "stream-consumer-mapping") in edges
    assert ("stream-consumer-dlq", "stream-consumer-mapping") in edges  # failures are parked
    assert ("identity-users", "identity-web-client") in edges


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (CI installs it)")
@pytest.mark.parametrize("view", VIEWS)
def test_diagram_is_a_png_drawn_from_the_plan(tmp_path: Path, view: str) -> None:
    written = draw(planned("dev"), tmp_path / "out" / "architecture-dev.png", view)
    assert written == (tmp_path / "out" / "architecture-dev.png").resolve()
    width, height = _png_size(written)
    assert 800 < width < 4000 and 600 < height < 3000, "a picture one can read on a screen"


def test_the_flow_view_says_what_the_plan_says_and_marks_the_protections() -> None:
    prod, dev = flow_labels(planned("prod")), flow_labels(planned("dev"))
    assert "PROTECTED:\npoint-in-time recovery, deletion protection, Pulumi protect" in prod["table"]
    assert "PROTECTED:\ndeletion protection, Pulumi protect" in prod["pool"]
    assert not [key for key, label in dev.items() if "PROTECTED" in label], "dev protects nothing"
    assert prod["mapping"] == "event source mapping\nbatches of 25, 5 retries"
    assert "kept 14 days" in prod["queue"] and "90 days" in prod["logs"] and "14 days" in dev["logs"]
    assert "192.0.2.10/32 → tcp 5432" in dev["rule"] and "sg-0a1b2c3d4e5f60001" in dev["postgres"]
    assert {
        "writers",
        "people",
        "developer",
        "postgres",
        "table",
        "mapping",
        "function",
        "queue",
        "logs",
        "pool",
        "client",
        "rule",
    } <= set(prod)


def test_a_diagram_name_that_is_no_png_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ending in .png"):
        draw(planned("dev"), tmp_path / "architecture.svg")


# ---------------------------------------------------------------- the CI workflow


def test_workflow_is_a_valid_github_workflow() -> None:
    proc = subprocess.run(
        [
            str(VENV_BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
            str(COMMENT_WORKFLOW),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _run_commands() -> list[str]:
    """The project commands the workflow runs (invoke tasks, the test entry point, the install)."""
    wanted = re.compile(r"^(invoke |bash \.ci/run|python -m pytest|pip install -r requirements\.txt)")
    commands = []
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                if wanted.match(line.strip()):
                    commands.append(line.strip())
    return commands


def test_workflow_runs_the_documented_commands() -> None:
    documented = "\n".join(p.read_text() for p in [PROJECT_ROOT / "README.md", *(PROJECT_ROOT / "docs").glob("*.md")])
    commands = _run_commands()
    assert "invoke infra.plan --stack dev" in commands and "invoke infra.plan --stack prod" in commands
    for command in commands:
        assert command in documented, f"the workflow runs `{command}`, which neither the README nor docs/ documents"


def test_workflow_previews_both_stacks_with_the_pulumi_action() -> None:
    jobs = _workflow()["jobs"]
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert preview["permissions"]["pull-requests"] == "write"
    [pulumi] = [s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True
    # the same rules as the offline plan, through the policy pack that calls them
    assert pulumi["with"]["policyPacks"].split() == ["policy"]
    assert (PROJECT_ROOT / "policy" / "PulumiPolicy.yaml").exists() and (
        PROJECT_ROOT / "policy" / "__main__.py"
    ).exists()
    assert "matrix.stack" in pulumi["with"]["stack-name"]
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    [aws] = [s for s in preview["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
    assert aws["with"]["role-to-assume"].startswith("${{ secrets.")


def test_workflow_lints_the_workflows_with_a_pinned_actionlint() -> None:
    steps = [
        s
        for job in _workflow()["jobs"].values()
        for s in job["steps"]
        if str(s.get("uses", "")).startswith("docker://rhysd/actionlint")
    ]
    assert len(steps) == 1 and re.fullmatch(r"docker://rhysd/actionlint:\d+\.\d+\.\d+", steps[0]["uses"]), (
        "one actionlint step, a pinned release"
    )


ACTIONLINT = PROJECT_ROOT / ".tools" / "actionlint" / "node_modules" / "@tktco" / "node-actionlint" / "bin"


def _actionlint(pattern: str | None = None) -> subprocess.CompletedProcess[str]:
    """actionlint (WebAssembly, under Node) as bin/bootstrap installs it from lint/package-lock.json."""
    node, cli = shutil.which("node"), ACTIONLINT / "node-actionlint.js"
    if node is None or not cli.exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint (.tools/actionlint) is missing: bin/bootstrap installs it with npm")
        pytest.skip("actionlint is not installed here: run bin/bootstrap")
    env = {**os.environ, "FORCE_COLOR": "0"}
    args = [node, str(cli)] + ([pattern] if pattern else [])
    return subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env=env)


def test_workflows_pass_actionlint() -> None:
    proc = _actionlint()
    workflows = len(list((PROJECT_ROOT / ".github" / "workflows").glob("*.yml")))
    # the count proves it read every workflow, not none
    assert f"Checking {workflows} workflow file(s)" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_here_fails_a_pull_request_title_in_a_script(tmp_path: Path) -> None:
    # the linter the suite runs must catch what the workflows most need caught: an injectable expression
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = _actionlint(str(bad))
    assert proc.returncode == 1 and "potentially untrusted" in proc.stdout, proc.stdout + proc.stderr


def test_preview_honours_the_backend_variable() -> None:
    [pulumi] = [
        s for s in _workflow()["jobs"]["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    assert pulumi["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"  # empty: Pulumi Cloud
    assert pulumi["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_workflow_only_triggers_on_pull_requests() -> None:
    # PyYAML reads the bare key `on` as True.
    triggers = _workflow().get(True) or _workflow().get("on")
    assert set(triggers) == {"pull_request"}


def test_the_test_job_writes_the_plan_diff_of_every_stack_without_secrets() -> None:
    job = _workflow()["jobs"]["test"]
    [checkout] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert checkout["with"]["fetch-depth"] == 0, "the base commit is needed for its plan"
    [step] = [s for s in job["steps"] if "infra.plan-diff" in str(s.get("run", ""))]
    script = step["run"]
    assert "for stack in dev prod" in script and "--markdown" in script and "--json" in script
    assert "secrets." not in yaml.safe_dump(job), "a fork's pull request gets no secrets: the plan diff needs none"
    assert step["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    [upload] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert upload["with"]["name"] == "plan-diff" and upload["if"] == step["if"] == "${{ !cancelled() }}"


def test_the_comment_workflow_posts_from_the_artifact_and_never_runs_the_pull_requests_code() -> None:
    workflow = yaml.safe_load(COMMENT_WORKFLOW.read_text())
    triggers = workflow.get(True) or workflow.get("on")
    assert set(triggers) == {"workflow_run"} and triggers["workflow_run"]["workflows"] == [_workflow()["name"]]
    assert workflow["permissions"] == {}
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    uses = [str(s.get("uses", "")) for s in job["steps"]]
    assert not [u for u in uses if u.startswith("actions/checkout")], "the pull request's code is never checked out"
    [download] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@")]
    assert download["with"]["name"] == "plan-diff"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    script = "\n".join(str(s.get("run", "")) for s in job["steps"])
    # one comment, found again by its marker and updated; the pull request number is checked to be a number
    assert "--method PATCH" in script and "--method POST" in script and "$MARKER" in script
    assert "*[!0-9]*" in script and "python" not in script and "invoke" not in script
    # the number must name the pull request whose run made the artifact
    assert '--jq .head.sha)" != "$HEAD_SHA"' in script
    [post] = [s for s in job["steps"] if "--method POST" in str(s.get("run", ""))]
    assert post["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
