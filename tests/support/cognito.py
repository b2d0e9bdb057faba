"""Helpers of the identity tests: clients that show every request, bulk users, row snapshots, statement counts."""

from __future__ import annotations

from typing import Any

import boto3
import psycopg
from botocore.config import Config

from ops.target import LOCAL_CREDENTIALS, Target


def raw_client(target: Target, service: str) -> Any:
    """A client on the twin with botocore's own retries off: one API call is exactly one HTTP request."""
    return boto3.client(
        service,
        region_name=target.region,
        endpoint_url=target.endpoint(service),
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        **LOCAL_CREDENTIALS,
    )


def record_requests(client: Any) -> list[str]:
    """Every request the client is about to send (``before-send``), by operation name."""
    sent: list[str] = []

    def on_send(event_name: str, **_: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])  # before-send.<service>.<Operation>

    client.meta.events.register("before-send", on_send)
    return sent


def add_users(cognito: Any, pool: str, count: int, prefix: str = "user", handle: bool = True) -> dict[str, str]:
    """``count`` users in the pool; returns handle (or email when ``handle`` is False) → sub."""
    made: dict[str, str] = {}
    for i in range(count):
        name = f"{prefix}{i:04d}"
        attrs = [{"Name": "preferred_username", "Value": name}] if handle else []
        user = cognito.admin_create_user(
            UserPoolId=pool, Username=f"{name}@cruddur.test", UserAttributes=attrs, MessageAction="SUPPRESS"
        )["User"]
        sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
        made[name if handle else f"{name}@cruddur.test"] = sub
    return made


def insert_users(conn: psycopg.Connection[Any], handles: list[str], subs: dict[str, str] | None = None) -> None:
    """users rows for these handles (optionally with a cognito_user_id already set), in one COPY."""
    subs = subs or {}
    with conn.cursor() as cur, cur.copy("COPY users (display_name, handle, email, cognito_user_id) FROM STDIN") as copy:
        for h in handles:
            copy.write_row((h.title(), h, f"{h}@cruddur.test", subs.get(h)))


def snapshot(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every row's link and row version (xmin): equal snapshots mean no row was rewritten."""
    return conn.execute("SELECT handle, cognito_user_id, xmin::text FROM users ORDER BY handle").fetchall()


def counting_statements(conn: psycopg.Connection[Any]) -> list[str]:
    """Install a cursor factory that records every statement sent through the connection."""
    seen: list[str] = []

    class CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            seen.append(str(query).strip().split()[0])
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            seen.append(str(query).strip().split()[0])
            return super().executemany(query, params_seq, **kwargs)

    conn.cursor_factory = CountingCursor
    return seen
