"""Per-stack settings, read from the same Pulumi.yaml / Pulumi.<stack>.yaml files Pulumi uses.

Pulumi.yaml holds every default (project config with ``default:``/``value:``); a stack file
holds only what differs. This module merges the two exactly like ``pulumi config`` would, so
the tasks and the Pulumi program can never disagree about a stack's table name or region.
"""

from __future__ import annotations

import os
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
    encrypt_messages: bool  # message bodies sealed under a per-group data key wrapped by the stack's KMS key
    messages_key_users: tuple[str, ...]  # IAM roles (names or ARNs) that may use that key
    raw: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """A config value by its full key (``cruddur:foo`` or ``aws:region``)."""
        return self.raw.get(key, default)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must be a YAML mapping")
    return data


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


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise ConfigError(f"config {key} must be true or false, not {value!r}")


def _as_int(key: str, value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ConfigError(f"config {key} must be a whole number, not {value!r}") from None


def _as_names(key: str, value: Any) -> tuple[str, ...]:
    """A list of names: a YAML list (``pulumi config set --path 'k[0]' …``) or one comma-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config {key} must be a list of names, not {value!r}")
    return tuple(v.strip() for v in value if v.strip())


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
    stack_cfg = _load_yaml(base / f"Pulumi.{name}.yaml").get("config") or {}
    for key, value in stack_cfg.items():
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted by Pulumi; the tasks never need (or show) secrets from here
        values[key] = value

    def req(key: str) -> Any:
        full = f"{ns}:{key}"
        if full not in values:
            raise ConfigError(f"stack {name!r} has no {full}: set it in Pulumi.{name}.yaml")
        return values[full]

    offset = _as_int(PORT_OFFSET_ENV, os.environ.get(PORT_OFFSET_ENV, "0") or "0")
    billing = str(req("billingMode"))
    if billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
        raise ConfigError(f"{ns}:billingMode of stack {name!r} must be PAY_PER_REQUEST or PROVISIONED, not {billing!r}")
    return StackSettings(
        name=name,
        project=ns,
        region=str(values.get("aws:region") or "us-east-1"),
        table_name=str(req("tableName")),
        billing_mode=billing,
        read_capacity=_as_int("readCapacity", req("readCapacity")),
        write_capacity=_as_int("writeCapacity", req("writeCapacity")),
        protected=_as_bool(f"{ns}:protected", req("protected")),
        database_url_env=str(req("databaseUrlEnv")),
        local_aws_port=_as_int("localAwsPort", req("localAwsPort")) + offset,
        local_dynamo_port=_as_int("localDynamoPort", req("localDynamoPort")) + offset,
        local_postgres_port=_as_int("localPostgresPort", req("localPostgresPort")) + offset,
        rds_security_group_id=str(req("rdsSecurityGroupId") or ""),
        rds_rule_description=str(req("rdsRuleDescription")),
        rds_initial_ip=str(req("rdsInitialIp")),
        stream_batch_size=_as_int("streamBatchSize", req("streamBatchSize")),
        log_retention_days=_as_int("logRetentionDays", req("logRetentionDays")),
        encrypt_messages=_as_bool(f"{ns}:encryptMessages", req("encryptMessages")),
        messages_key_users=_as_names(f"{ns}:messagesKeyUsers", req("messagesKeyUsers")),
        raw=values,
    )
