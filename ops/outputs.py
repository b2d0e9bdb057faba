"""Stack outputs: their names, defined once, and how a task reads them back.

``infra/__main__.py`` exports under these names; ``outputs_for`` reads them back, from
``pulumi stack output`` for the cloud or from the file ``local.up`` writes for a twin (which
creates the same resources in the embedded server under the same names), so a task never
needs to know which one it is talking to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops.errors import CloudError, ConfigError, NotFoundError, ToolMissingError
from ops.redact import redact
from ops.stacks import PROJECT_ROOT
from ops.target import TWIN_EXPORTS_MARKER, Target, outputs_file

TABLE_NAME = "tableName"
TABLE_ARN = "tableArn"
STREAM_ARN = "streamArn"
USER_POOL_ID = "userPoolId"
USER_POOL_CLIENT_ID = "userPoolClientId"
RDS_SECURITY_GROUP_ID = "rdsSecurityGroupId"
RDS_RULE_ID = "rdsSecurityGroupRuleId"
STREAM_FUNCTION_NAME = "streamFunctionName"
STREAM_DLQ_URL = "streamDeadLetterQueueUrl"
MESSAGES_KEY_ARN = "messagesKeyArn"  # the KMS key that wraps the groups' data keys ("" where bodies are plain text)
MESSAGES_KEY_ALIAS = "messagesKeyAlias"
EXPORT_BUCKET = "exportBucket"  # where ddb.export writes and --from-export reads (ops/export.py)
DOCTOR_WORKGROUP = "doctorWorkgroup"  # the Athena workgroup of ddb.doctor --engine athena

ALL = (
    TABLE_NAME,
    TABLE_ARN,
    STREAM_ARN,
    USER_POOL_ID,
    USER_POOL_CLIENT_ID,
    RDS_SECURITY_GROUP_ID,
    RDS_RULE_ID,
    STREAM_FUNCTION_NAME,
    STREAM_DLQ_URL,
    MESSAGES_KEY_ARN,
    MESSAGES_KEY_ALIAS,
    EXPORT_BUCKET,
    DOCTOR_WORKGROUP,
)

PULUMI_INSTALL_HINT = "install the Pulumi CLI (curl -fsSL https://get.pulumi.com | sh) and run `pulumi login`"
# Where the CLI keeps the stacks' state when set (s3://bucket?region=…, https://api.pulumi.com, file://…);
# otherwise whatever `pulumi login` chose last. The tasks pass it (and every other variable) through.
BACKEND_ENV = "PULUMI_BACKEND_URL"


def state_backend(environ: Mapping[str, str] | None = None) -> str:
    """One line saying which state backend the Pulumi CLI will use, as far as the environment tells."""
    env = os.environ if environ is None else environ
    url = (env.get(BACKEND_ENV) or "").strip()
    if url:
        return f"state backend: {redact(url)} (from ${BACKEND_ENV})"
    return f"state backend: the one `pulumi login` chose (${BACKEND_ENV} is unset; `pulumi whoami -v` names it)"


def policy_pack() -> list[str]:
    """The flags that run policy/ (ops/policy.py's rules) on a preview or up, as CI does."""
    return ["--policy-pack", str(PROJECT_ROOT / "policy")]


def pulumi_env() -> dict[str, str]:
    """The environment the CLI runs with: ours, whole (backend, access token, passphrase, AWS credentials)."""
    return dict(os.environ)


def pulumi_cli() -> str:
    if os.environ.get(TWIN_EXPORTS_MARKER):
        # the CLI would work with the twin's dummy credentials (and its endpoint, where the provider reads it)
        raise ConfigError(
            "the Pulumi CLI in a shell that holds a twin's exports "
            f'(eval "$(invoke local.env)" set {TWIN_EXPORTS_MARKER}, '
            "AWS_ENDPOINT_URL and local credentials): run it from a new shell"
        )
    exe = shutil.which("pulumi")
    if not exe:
        raise ToolMissingError(f"the pulumi CLI is not installed: {PULUMI_INSTALL_HINT}")
    return exe


def run_pulumi(*args: str, cwd: Path) -> int:
    """Run the pulumi CLI in ``cwd`` with the terminal attached (its prompts and output pass straight through);
    returns its exit code."""
    return subprocess.run([pulumi_cli(), *args], cwd=cwd, env=pulumi_env(), check=False).returncode


def read_cloud_outputs(stack: str, cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [pulumi_cli(), "stack", "output", "--json", "--stack", stack],
        cwd=cwd,
        env=pulumi_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CloudError(f"pulumi stack output --stack {stack} failed: {last}")
    try:
        return dict(json.loads(proc.stdout or "{}"))
    except (ValueError, TypeError):
        first = (proc.stdout.strip().splitlines() or [""])[0]
        raise CloudError(f"pulumi stack output --stack {stack} did not print a JSON object: {first[:120]!r}") from None


def read_local_outputs(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise NotFoundError(f"no outputs recorded at {path}: run `invoke local.up` for this stack")
    return json.loads(path.read_text())


def require(outputs: dict[str, Any], name: str, stack: str) -> Any:
    if not outputs.get(name):
        raise NotFoundError(
            f"stack {stack!r} has no output {name!r}: run `invoke infra.up --stack {stack}` (or `invoke local.up` for "
            "the twin)"
        )
    return outputs[name]


def outputs_for(target: Target) -> dict[str, Any]:
    """Every output of the target's stack: cloud (Pulumi) or twin (``outputs.json``)."""
    if target.cloud:
        return read_cloud_outputs(target.stack.name, PROJECT_ROOT)
    return read_local_outputs(outputs_file(target.stack.name))


def output(target: Target, name: str) -> Any:
    """One output by its constant; missing is a NotFoundError saying what to run."""
    return require(outputs_for(target), name, target.stack.name)
