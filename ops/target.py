"""Where a task sends its requests: a stack's local twin (default) or its cloud (explicit).

``resolve_target`` is the single gate: it checks the stack name, refuses writes to a
protected stack without the confirmation flag *before* any client exists, and hands out
boto3 clients and PostgreSQL URLs that point at the right place.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ops.errors import ConfigError, OpsError, RefusedError, TwinDownError
from ops.redact import redact, remember
from ops.stacks import PROJECT_ROOT, StackSettings, load_stack

STATE_DIR_ENV = "CRUDDUR_STATE_DIR"
LOCAL_DB_NAME = "cruddur"
# moto and MiniStack accept any credentials; fixed ones keep a developer's real
# AWS profile out of every local request.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
# Set by `invoke local.env` (ops.local.env) beside the twin's endpoints: a --cloud request in that shell is refused.
TWIN_EXPORTS_MARKER = "CRUDDUR_STACK"


def state_root() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or PROJECT_ROOT / ".twin")


def stack_state_dir(stack: str) -> Path:
    return state_root() / stack


def twin_file(stack: str) -> Path:
    return stack_state_dir(stack) / "twin.json"


def outputs_file(stack: str) -> Path:
    return stack_state_dir(stack) / "outputs.json"


def read_twin(stack: str) -> dict[str, Any] | None:
    path = twin_file(stack)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{path} cannot be read ({err.__class__.__name__}): stop what still runs of the twin by hand, then remove "
            "the file"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} is not what local.up writes: stop what still runs of the twin by hand, then remove the file"
        )
    return data


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Target:
    stack: StackSettings
    cloud: bool
    endpoints: dict[str, str] = field(default_factory=dict)  # service -> URL (local only)

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def where(self) -> str:
        return "cloud" if self.cloud else "local twin"

    def endpoint(self, service: str) -> str | None:
        if self.cloud:
            return None
        return self.endpoints.get(service) or self.endpoints["default"]

    def describe(self, service: str = "dynamodb") -> str:
        """The one line printed before a task changes data."""
        if service == "postgres":
            try:
                endpoint = redact(self.database_url())
            except OpsError:
                endpoint = (
                    f"${self.stack.database_url_env} (not set)" if self.cloud else "PostgreSQL (twin not running)"
                )
        else:
            endpoint = "AWS" if self.cloud else self.endpoint(service)
        protected = " (protected)" if self.stack.protected else ""
        return f"target: stack {self.stack.name}{protected} · {self.where} · {endpoint} · {self.region}"

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client for this target; on the twin, only after the endpoint answers."""
        import boto3
        from botocore.config import Config

        cfg = Config(
            retries={"max_attempts": 5, "mode": "adaptive"} if self.cloud else {"max_attempts": 2, "mode": "standard"},
            **config,
        )
        if self.cloud:
            if os.environ.get(TWIN_EXPORTS_MARKER):
                # boto3 would follow the exported AWS_ENDPOINT_URL to the twin while this task says "cloud"
                raise ConfigError(
                    "--cloud in a shell that holds a twin's exports "
                    f'(eval "$(invoke local.env)" set {TWIN_EXPORTS_MARKER}, '
                    "AWS_ENDPOINT_URL and local credentials): run it from a new shell"
                )
            session = boto3.Session(region_name=self.region)
            if session.get_credentials() is None:  # botocore would only find out mid-request, as a traceback
                raise ConfigError(
                    f"--cloud needs AWS credentials for stack {self.stack.name!r} and none were found: "
                    "set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or run `aws configure` / "
                    "`aws sso login`"
                )
            return session.client(service, config=cfg)
        url = self.endpoint(service)
        assert url is not None
        parts = urlsplit(url)
        # only a twin that local.up recorded counts: whatever else answers on the port is not ours
        if read_twin(self.stack.name) is None or not port_open(parts.hostname or "127.0.0.1", parts.port or 80):
            raise TwinDownError(
                f"the local twin of stack {self.stack.name!r} is not answering at {url}: run "
                f"`invoke local.up --stack {self.stack.name}`"
            )
        return boto3.client(service, region_name=self.region, endpoint_url=url, config=cfg, **LOCAL_CREDENTIALS)

    def database_url(self) -> str:
        """The PostgreSQL URL of this target's application database (may hold a password: never print it raw)."""
        if self.cloud:
            env = self.stack.database_url_env
            url = os.environ.get(env)
            if not url:
                raise ConfigError(
                    f"stack {self.stack.name!r} reads its database URL from ${env}, which is not set: export {env}=postgresql://…"
                )
            remember(url)  # from here on its password is masked in every line this process prints
            return url
        twin = read_twin(self.stack.name) or {}
        pg = twin.get("postgres") or {}
        url = pg.get("url")
        if not url:
            raise TwinDownError(
                f"the local twin of stack {self.stack.name!r} is not running: run "
                f"`invoke local.up --stack {self.stack.name}`"
            )
        if pg.get("password_file"):  # the embedded server's password lives in its own 0600 file, not in twin.json
            url = _with_url_password(url, _read_secret(Path(pg["password_file"]), self.stack.name))
        remember(url)
        return url


def _read_secret(path: Path, stack: str) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        raise TwinDownError(
            f"the password of stack {stack!r}'s twin PostgreSQL ({path}) cannot be read: run "
            f"`invoke local.up --stack {stack}` as the user who started it"
        ) from None


def _with_url_password(url: str, password: str) -> str:
    """A URL we wrote (``postgresql://user@host:port/db``) with the password put in."""
    from urllib.parse import quote, urlunsplit

    parts = urlsplit(url)
    netloc = f"{parts.username}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def local_endpoints(stack: StackSettings) -> dict[str, str]:
    """Endpoints of a stack's twin: what local.up recorded, else what the stack file says."""
    twin = read_twin(stack.name) or {}
    default = (twin.get("aws") or {}).get("endpoint") or f"http://127.0.0.1:{stack.local_aws_port}"
    endpoints = {"default": default}
    ddb = (twin.get("dynamodb") or {}).get("endpoint")
    if ddb:
        # DynamoDB Streams is served by the same process as DynamoDB (MiniStack, moto or the user's endpoint)
        endpoints["dynamodb"] = ddb
        endpoints["dynamodbstreams"] = ddb
    return endpoints


def resolve_target(
    stack: str, *, cloud: bool = False, writes: bool = False, confirm_protected: bool = False, root: Path | None = None
) -> Target:
    """Check the stack, apply the protection rule, and say where requests go.

    Protection applies to the cloud: a twin is a developer's own copy, even of prod.
    """
    settings = load_stack(stack, root)
    if cloud and writes and settings.protected and not confirm_protected:
        raise RefusedError(
            f"stack {stack!r} is protected and this task writes to it: add --confirm-protected to go ahead (nothing "
            "was sent)"
        )
    if cloud:
        return Target(settings, cloud=True)
    return Target(settings, cloud=False, endpoints=local_endpoints(settings))
