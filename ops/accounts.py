"""A stack's people on both sides: its PostgreSQL users and their Cognito identities, set up together.

``db.seed`` and ``db.setup`` touch both stores; they live here, above ``ops.db`` and ``ops.cognito``,
so that neither of those imports the other's whole-stack steps (``ops.cognito`` reads the users
table through ``ops.db``; ``ops.db`` knows nothing of Cognito).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops import cognito, db
from ops.target import Target


@dataclass(frozen=True)
class SeededUsers:
    users: list[db.User]
    cognito: cognito.CreateResult | None  # , or None when the pool was left alone (the cloud)


def seed_target(target: Target, cognito_users: bool) -> SeededUsers:
    """db.seed: the seed users in PostgreSQL and, with ``cognito_users`` (a twin), in the stack's user pool."""
    with db.connect(target) as conn:
        users = db.seed_users(conn)
    # in the cloud people sign up themselves; the twin's pool gets the seed users so the sync has someone to link
    return SeededUsers(users, cognito.create_target_users(target) if cognito_users else None)


def setup(target: Target, cognito_users: bool, on_step: Callable[[str, Any], None], keep: bool = False) -> None:
    """db.setup: drop, create, schema-load, seed, (a twin) Cognito users, Cognito id sync.

    Steps run in that order and the first failure stops the rest; ``on_step(step, result)`` hears
    about each step as it ends, so a caller shows what was done before a failure. With ``keep``
    (quickstart without --reset) nothing is dropped: the "keep" step reports the rows already there
    (None: no database yet), the schema and the seed users are added to them (an upsert by handle).
    """
    if keep:
        on_step("keep", db.row_counts(target))
    else:
        on_step("drop", db.drop_database(target))
    on_step("create", db.create_database(target))
    with db.connect(target) as conn:
        on_step("schema-load", db.load_schema(conn))
        on_step("seed", db.seed_users(conn))
    if cognito_users:
        on_step("cognito users", cognito.create_target_users(target))
    on_step("cognito sync-ids", cognito.sync_target(target))
