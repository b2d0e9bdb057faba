"""What our jobs and the baselines' jobs share: the job contract, the registry lookup, warmed clients and counters.

A job is a function of plain JSON parameters that prepares everything (data built, client
created and warmed with one cheap request) and returns the run to time: a callable that does
only the work and returns what it did (``items``, ``requests`` ...). Jobs run inside
``bench.worker``, on the twin that the parent's environment points at. Ours live in
``bench.ours``, the baselines' in ``bench.baselines``, each registered by name in its ``JOBS``
(both below this module; ``bench.registry`` above them finds a job by name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.twin import STACK

Job = Callable[[], dict[str, Any]]
JobFactory = Callable[..., Job]


def target() -> Any:
    from ops.target import resolve_target

    return resolve_target(STACK)


def dynamodb(endpoint: str | None = None, **config: Any) -> Any:
    """A warmed DynamoDB client of the bench's twin, or of ``endpoint`` (the simulated-distance proxy in front of
    it)."""
    if endpoint:
        import boto3
        from botocore.config import Config

        from ops.target import LOCAL_CREDENTIALS

        cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, **config)  # as Target.client makes them
        client = boto3.client(
            "dynamodb", region_name=target().region, endpoint_url=endpoint, config=cfg, **LOCAL_CREDENTIALS
        )
    else:
        client = target().client("dynamodb", **config)
    client.list_tables(Limit=1)  # loads the service model and opens a connection before the clock starts
    return client


def kms_client() -> Any:
    client = target().client("kms")
    client.list_aliases(Limit=1)  # loads the service model and opens a connection before the clock starts
    return client


def seed_items(conversation: str) -> Any:
    """What ``invoke ddb.seed --conversation F`` writes for the default pair (ada, bram: fixed uuids), built the same
    way."""
    from pathlib import Path

    from ops import db, seed

    ada, bram = db.SEED_USERS[0].person(), db.SEED_USERS[1].person()
    return seed.build(seed.parse_conversation(Path(conversation)), ada, bram)


def count_requests(client: Any, operation: str, service: str = "dynamodb") -> list[int]:
    """Counts the requests a client makes (botocore's before-call event), retries excluded."""
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    client.meta.events.register(f"before-call.{service}.{operation}", count)
    return calls


def counting_connection(url: str) -> Any:
    """A psycopg connection that counts the SQL statements sent through cursors and the transactions it ends."""
    import psycopg

    class Cursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            self.connection.statements += 1  # type: ignore[attr-defined]
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            params_seq = list(params_seq)
            self.connection.statements += len(params_seq)  # type: ignore[attr-defined]
            super().executemany(query, params_seq, **kwargs)

    class Connection(psycopg.Connection[Any]):
        statements = 0
        transactions = 0

        def transaction(self, *args: Any, **kwargs: Any) -> Any:
            self.transactions += 1
            return super().transaction(*args, **kwargs)

        def commit(self) -> None:
            self.transactions += 1
            super().commit()

    return Connection.connect(url, cursor_factory=Cursor, connect_timeout=5)


def sync_prepare(pool_id: str) -> tuple[Any, list[Any], float]:
    """Both sync jobs: the whole pool read (not timed) and a counting connection to unlinked users."""
    import time

    from ops.cognito import iter_users

    t = target()
    cognito = t.client("cognito-idp")
    started = time.perf_counter()
    users = list(iter_users(cognito, pool_id))  # both ways read the whole pool first; not timed
    list_s = time.perf_counter() - started
    conn = counting_connection(t.database_url())
    conn.execute("UPDATE users SET cognito_user_id = NULL")  # every run starts unlinked: all N rows get written
    conn.commit()
    conn.statements = conn.transactions = 0
    return conn, users, list_s


def count_all_requests(client: Any, service: str = "dynamodb") -> list[int]:
    """Counts every request a client makes, whatever the operation (retries excluded)."""
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    client.meta.events.register(f"before-call.{service}", count)
    return calls


def fanout_message(client: Any, table: str, group: str, sender: dict[str, str]) -> tuple[dict[str, Any], str]:
    """A new message of ``group`` stored (not timed) and its stream record as Lambda hands it over; and its key."""
    import uuid

    from ops.messages.model import Message, now_iso

    msg = Message(
        group, now_iso(), str(uuid.uuid4()), "to every member", sender["uuid"], sender["name"], sender["handle"]
    )
    item = msg.to_item()
    client.put_item(TableName=table, Item=item)
    record = {
        "eventID": uuid.uuid4().hex,
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "NewImage": item, "SequenceNumber": "1"},
    }
    return record, msg.created_at
