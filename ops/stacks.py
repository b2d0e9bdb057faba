"""Per-stack settings, read from the same Pulumi.yaml / Pulumi.<stack>.yaml files Pulumi uses.

Pulumi.yaml holds every default (project config with ``default:``/``value:``); a stack file
holds only what differs. This module merges the two exactly like ``pulumi config`` would.

The tasks call ``load_stack`` (the files, no Pulumi SDK); the Pulumi program gets the same
values from the engine through ``pulumi.Config`` (``infra/config.py``), so a value set with
``pulumi config set --secret`` reaches it as a secret. Both hand the values to one parser,
``settings_from``, so they can never disagree about a stack's table name or region.

Physical names that AWS wants unique in an account (tables, queues, functions, roles, log
groups, pools, aliases…) are derived per stack by ``StackSettings.physical_name``; the table's
name is ``<project>-messages-<stack>`` unless the stack file pins one (prod pins
``cruddur-messages``, the name the existing application reads).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ops.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Shifts every local port of every stack: lets a second set of twins (the test suite's)
# run beside a developer's own without touching the stack files.
PORT_OFFSET_ENV = "CRUDDUR_LOCAL_PORT_OFFSET"

# What the offline plan hands the program for a `secure:` value: it cannot decrypt one (that
# needs the stack's secrets provider), and the ciphertext is nobody's business either.
SECRET_PLACEHOLDER = "[secret: not decrypted offline]"


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
    raw: dict[str, str]  # every key Pulumi.yaml declares, as the engine hands it to the program (text)

    def get(self, key: str, default: Any = None) -> Any:
        """A config value by its full key (``cruddur:foo`` or ``aws:region``)."""
        return self.raw.get(key, default)

    def physical_name(self, part: str) -> str:
        """``<project>-<stack>-<part>``: the name of a resource AWS wants unique in an account or region.

        Two stacks in one account (dev beside prod, or a developer's own stack) then never ask
        for the same function, queue, role, log group or pool name.
        """
        return f"{self.project}-{self.name}-{part}"


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


LIST_SETTINGS = frozenset({"messagesKeyUsers"})  # the settings that take a list (of IAM role names)


def _config_of(path: Path) -> dict[str, Any]:
    """A stack file's ``config:`` mapping; anything else is one line naming the file."""
    config = _load_yaml(path).get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: config must be a mapping of key: value, not a {type(config).__name__}")
    for key, value in config.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path.name}: config key {key!r} must be text (e.g. cruddur:tableName)")
        if (
            isinstance(value, list)
            and key.rpartition(":")[2] in LIST_SETTINGS
            and all(isinstance(v, str) for v in value)
        ):
            continue  # a setting that is a list of names
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
    span = (
        f" from {low} to {high}"
        if low is not None and high is not None
        else (f" of at least {low}" if low is not None else "")
    )
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
        raise ConfigError(
            f"{where}config {key} is {port}, and with {PORT_OFFSET_ENV}={offset} it becomes {port + offset}: a port "
            f"is 1 to {MAX_PORT}"
        )
    return port + offset


def _as_names(key: str, value: Any, where: str = "") -> tuple[str, ...]:
    """A list of names: a YAML list (as text: JSON, the way the engine hands it over) or one comma-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{where}config {key} must be a list of names, not {value!r}") from None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}config {key} must be a list of names, not {value!r}")
    return tuple(v.strip() for v in value if v.strip())


def default_table_name(project: str, stack: str) -> str:
    """The table name of a stack that pins none: one per stack, so stacks can share an account."""
    return f"{project}-messages-{stack}"


def config_text(value: Any) -> str:
    """A config value as the engine hands it to a program: text (booleans lower-case, objects as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def declared_keys(project: dict[str, Any]) -> list[str]:
    """Every key Pulumi.yaml declares, in full (``cruddur:tableName``, ``aws:region``)."""
    name = project["name"]
    return [key if ":" in key else f"{name}:{key}" for key in project.get("config") or {}]


@dataclass(frozen=True)
class StackConfig:
    """A stack's configuration as the Pulumi engine would hand it to the program."""

    project: str
    values: dict[str, str]  # full key -> text; project defaults merged under the stack file's values
    secret_keys: tuple[str, ...]  # keys the stack file holds encrypted (`pulumi config set --secret`)
    declared: tuple[str, ...]  # the keys Pulumi.yaml declares (the settings read only these)
    in_stack_file: tuple[str, ...] = ()  # the keys the stack file sets (an error names the file a value came from)


def stack_config(name: str, root: Path | None = None) -> StackConfig:
    """Pulumi.yaml's defaults merged with Pulumi.<name>.yaml, as text; secure values only marked.

    An unknown name lists the known ones.
    """
    base = root or PROJECT_ROOT
    stacks = list_stacks(base)
    if name not in stacks:
        known = ", ".join(stacks) or "none"
        raise ConfigError(f"unknown stack {name!r}: the stacks are {known} (one Pulumi.<stack>.yaml each)")
    project = project_file(base)
    values = {key: config_text(value) for key, value in _project_defaults(project).items()}
    secret: list[str] = []
    stack_cfg = _config_of(base / f"Pulumi.{name}.yaml")
    for key, value in stack_cfg.items():
        full = key if ":" in key else f"{project['name']}:{key}"
        if isinstance(value, dict) and "secure" in value:
            # encrypted by Pulumi; the tasks never need (or show) it, and cannot decrypt it
            values[full] = SECRET_PLACEHOLDER
            secret.append(full)
            continue
        values[full] = config_text(value)
    in_stack_file = tuple(key if ":" in key else f"{project['name']}:{key}" for key in stack_cfg)
    return StackConfig(project["name"], values, tuple(secret), tuple(declared_keys(project)), in_stack_file)


def load_stack(name: str, root: Path | None = None) -> StackSettings:
    """The settings of stack ``name`` from its files (what every task uses; no Pulumi SDK)."""
    config = stack_config(name, root)
    declared = {k: v for k, v in config.values.items() if k in config.declared}
    stack_file = f"Pulumi.{name}.yaml"
    return settings_from(
        name,
        config.project,
        declared,
        secret_keys=frozenset(config.secret_keys),
        origin=lambda key: f"{stack_file}: " if key in config.in_stack_file else "Pulumi.yaml: ",
    )


def settings_from(
    name: str,
    project: str,
    values: Mapping[str, str],
    secret_keys: tuple[str, ...] | frozenset[str] = (),
    origin: Callable[[str], str] | None = None,
) -> StackSettings:
    """Typed, checked settings from a stack's config values (full key -> text).

    The one parser of both readers: ``load_stack`` (the files) and the Pulumi program
    (``pulumi.Config``). A key it needs may not be a secret: both would then see different
    values (the tasks cannot decrypt it), and names, ports and flags are no secrets anyway.
    """
    ns = project

    def req(key: str, default: str | None = None) -> str:
        full = key if ":" in key else f"{ns}:{key}"
        if full in secret_keys:
            raise ConfigError(
                f"{full} of stack {name!r} is set as a secret: set it in plain "
                f"(`pulumi config set {full} … --stack {name}`); only values the program alone reads may be secrets"
            )
        if full not in values:
            if default is not None:
                return default
            raise ConfigError(f"stack {name!r} has no {full}: set it in Pulumi.{name}.yaml")
        return values[full]

    def where(key: str) -> str:
        """The file a value came from, for the error that names it."""
        return origin(key if ":" in key else f"{ns}:{key}") if origin else ""

    try:
        offset = int(os.environ.get(PORT_OFFSET_ENV, "0") or "0")
    except ValueError:
        raise ConfigError(
            f"{PORT_OFFSET_ENV} must be a whole number, not {os.environ.get(PORT_OFFSET_ENV)!r}"
        ) from None
    billing = str(req("billingMode"))
    if billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
        raise ConfigError(
            f"{where('billingMode')}{ns}:billingMode of stack {name!r} must be PAY_PER_REQUEST or PROVISIONED, not "
            f"{billing!r}"
        )
    table_name = str(req("tableName")).strip() or default_table_name(ns, name)
    if not TABLE_NAME.match(table_name):
        raise ConfigError(
            f"{where('tableName')}config {ns}:tableName must be 3 to 255 letters, digits, '_', '-' or '.', not "
            f"{table_name!r}"
        )
    url_env = str(req("databaseUrlEnv"))
    if not ENV_NAME.match(url_env):
        raise ConfigError(
            f"{where('databaseUrlEnv')}config {ns}:databaseUrlEnv must name an environment variable (e.g. "
            f"CONNECTION_URL), not {url_env!r}"
        )
    region = req("aws:region", "") or "us-east-1"
    if not REGION.match(region):
        raise ConfigError(
            f"{where('aws:region')}config aws:region must be an AWS region such as us-east-1, not {region!r}"
        )
    return StackSettings(
        name=name,
        project=ns,
        region=region,
        table_name=table_name,
        billing_mode=billing,
        read_capacity=_as_int(f"{ns}:readCapacity", req("readCapacity"), 1, None, where("readCapacity")),
        write_capacity=_as_int(f"{ns}:writeCapacity", req("writeCapacity"), 1, None, where("writeCapacity")),
        protected=_as_bool(f"{ns}:protected", req("protected"), where("protected")),
        database_url_env=url_env,
        local_aws_port=_port(f"{ns}:localAwsPort", req("localAwsPort"), offset, where("localAwsPort")),
        local_dynamo_port=_port(f"{ns}:localDynamoPort", req("localDynamoPort"), offset, where("localDynamoPort")),
        local_postgres_port=_port(
            f"{ns}:localPostgresPort", req("localPostgresPort"), offset, where("localPostgresPort")
        ),
        rds_security_group_id=str(req("rdsSecurityGroupId") or ""),
        rds_rule_description=str(req("rdsRuleDescription")),
        rds_initial_ip=str(req("rdsInitialIp")),
        stream_batch_size=_as_int(f"{ns}:streamBatchSize", req("streamBatchSize"), 1, 10000, where("streamBatchSize")),
        log_retention_days=_as_int(
            f"{ns}:logRetentionDays", req("logRetentionDays"), 1, None, where("logRetentionDays")
        ),
        encrypt_messages=_as_bool(f"{ns}:encryptMessages", req("encryptMessages"), where("encryptMessages")),
        messages_key_users=_as_names(f"{ns}:messagesKeyUsers", req("messagesKeyUsers"), where("messagesKeyUsers")),
        raw=dict(values),
    )
