"""Per-stack settings, read from the same Pulumi.yaml / Pulumi.<stack>.yaml files Pulumi uses.

Pulumi.yaml holds every default (project config with ``default:``/``value:``); a stack file
holds only what differs. This module merges the two exactly like ``pulumi config`` would, so
the tasks and the Pulumi program can never disagree about a stack's table name or region.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ops.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Shifts every local port of every stack: lets a second set of twins (the test suite's)
# run beside a developer's own without touching the stack files.
PORT_OFFSET_ENV = "CRUDDUR_LOCAL_PORT_OFFSET"


@dataclass(frozen=True)
class StackSettings:
    """Everything a task needs to know about one stack."""

    name: str
    project: str
    region: str
    table_name: str
    billing_mode: str
    read_capacity: int
    write_capacity: int
    protected: bool
    database_url_env: str
    local_aws_port: int
    local_dynamo_port: int
    local_postgres_port: int
    rds_security_group_id: str
    rds_rule_description: str
    rds_initial_ip: str
    stream_batch_size: int
    log_retention_days: int
    raw: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """A config value by its full key (``cruddur:foo`` or ``aws:region``)."""
        return self.raw.get(key, default)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        # the parser's message spans lines (the offending line, a caret): keep its first, with the position
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path.name} is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path.name} cannot be read: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must be a YAML mapping (key: value lines), not a {type(data).__name__}")
    return data


def _config_of(path: Path) -> dict[str, Any]:
    """A stack file's ``config:`` mapping; anything else is one line naming the file."""
    config = _load_yaml(path).get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: config must be a mapping of key: value, not a {type(config).__name__}")
    for key, value in config.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path.name}: config key {key!r} must be text (e.g. cruddur:tableName)")
        if isinstance(value, list) or (isinstance(value, dict) and "secure" not in value):
            raise ConfigError(f"{path.name}: config {key} must be a single value, not a {type(value).__name__}")
    return config


def project_file(root: Path | None = None) -> dict[str, Any]:
    return _load_yaml((root or PROJECT_ROOT) / "Pulumi.yaml")


def list_stacks(root: Path | None = None) -> list[str]:
    """The stacks that exist: one ``Pulumi.<stack>.yaml`` each."""
    base = root or PROJECT_ROOT
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in base.glob("Pulumi.*.yaml"))


def _project_defaults(project: dict[str, Any]) -> dict[str, Any]:
    name = project["name"]
    merged: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(spec, dict):
            if "value" in spec:
                merged[full] = spec["value"]
            elif "default" in spec:
                merged[full] = spec["default"]
        else:
            merged[full] = spec
    return merged


def _as_bool(key: str, value: Any, where: str = "") -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise ConfigError(f"{where}config {key} must be true or false, not {value!r}")


def _as_int(key: str, value: Any, low: int | None = None, high: int | None = None, where: str = "") -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    span = f" from {low} to {high}" if low is not None and high is not None else (f" of at least {low}" if low is not None else "")
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(f"{where}config {key} must be a whole number{span}, not {value!r}")
    return number


TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")  # DynamoDB's rule for table names
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
MAX_PORT = 65535


def _port(key: str, value: Any, offset: int, where: str) -> int:
    port = _as_int(key, value, 1, MAX_PORT, where)
    if not 1 <= port + offset <= MAX_PORT:
        raise ConfigError(f"{where}config {key} is {port}, and with {PORT_OFFSET_ENV}={offset} it becomes {port + offset}: a port is 1 to {MAX_PORT}")
    return port + offset


def load_stack(name: str, root: Path | None = None) -> StackSettings:
    """Merge Pulumi.yaml defaults with Pulumi.<name>.yaml; an unknown name lists the known ones."""
    base = root or PROJECT_ROOT
    stacks = list_stacks(base)
    if name not in stacks:
        known = ", ".join(stacks) or "none"
        raise ConfigError(f"unknown stack {name!r}: the stacks are {known} (one Pulumi.<stack>.yaml each)")
    project = project_file(base)
    ns = project["name"]
    values = _project_defaults(project)
    stack_file = f"Pulumi.{name}.yaml"
    stack_cfg = _config_of(base / stack_file)

    def where(key: str) -> str:
        """The file a value came from, for the error that names it."""
        return f"{stack_file}: " if key in stack_cfg or f"{ns}:{key}" in stack_cfg else "Pulumi.yaml: "

    for key, value in stack_cfg.items():
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted by Pulumi; the tasks never need (or show) secrets from here
        values[key] = value

    def req(key: str) -> Any:
        full = f"{ns}:{key}"
        if full not in values:
            raise ConfigError(f"stack {name!r} has no {full}: set it in Pulumi.{name}.yaml")
        return values[full]

    try:
        offset = int(os.environ.get(PORT_OFFSET_ENV, "0") or "0")
    except ValueError:
        raise ConfigError(f"{PORT_OFFSET_ENV} must be a whole number, not {os.environ.get(PORT_OFFSET_ENV)!r}") from None
    billing = str(req("billingMode"))
    if billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
        raise ConfigError(f"{where('billingMode')}{ns}:billingMode of stack {name!r} must be PAY_PER_REQUEST or PROVISIONED, not {billing!r}")
    checked = {key: str(req(key)) for key in ("tableName", "databaseUrlEnv")}
    if not TABLE_NAME.match(checked["tableName"]):
        raise ConfigError(f"{where('tableName')}config {ns}:tableName must be 3 to 255 letters, digits, '_', '-' or '.', not {checked['tableName']!r}")
    if not ENV_NAME.match(checked["databaseUrlEnv"]):
        raise ConfigError(f"{where('databaseUrlEnv')}config {ns}:databaseUrlEnv must name an environment variable (e.g. CONNECTION_URL), not {checked['databaseUrlEnv']!r}")
    region = str(values.get("aws:region") or "us-east-1")
    if not REGION.match(region):
        raise ConfigError(f"{where('aws:region')}config aws:region must be an AWS region such as us-east-1, not {region!r}")
    return StackSettings(
        name=name,
        project=ns,
        region=region,
        table_name=checked["tableName"],
        billing_mode=billing,
        read_capacity=_as_int(f"{ns}:readCapacity", req("readCapacity"), 1, None, where("readCapacity")),
        write_capacity=_as_int(f"{ns}:writeCapacity", req("writeCapacity"), 1, None, where("writeCapacity")),
        protected=_as_bool(f"{ns}:protected", req("protected"), where("protected")),
        database_url_env=checked["databaseUrlEnv"],
        local_aws_port=_port(f"{ns}:localAwsPort", req("localAwsPort"), offset, where("localAwsPort")),
        local_dynamo_port=_port(f"{ns}:localDynamoPort", req("localDynamoPort"), offset, where("localDynamoPort")),
        local_postgres_port=_port(f"{ns}:localPostgresPort", req("localPostgresPort"), offset, where("localPostgresPort")),
        rds_security_group_id=str(req("rdsSecurityGroupId") or ""),
        rds_rule_description=str(req("rdsRuleDescription")),
        rds_initial_ip=str(req("rdsInitialIp")),
        stream_batch_size=_as_int(f"{ns}:streamBatchSize", req("streamBatchSize"), 1, 10000, where("streamBatchSize")),
        log_retention_days=_as_int(f"{ns}:logRetentionDays", req("logRetentionDays"), 1, None, where("logRetentionDays")),
        raw=values,
    )
