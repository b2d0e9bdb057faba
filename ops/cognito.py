"""Cognito users of a stack, and the link from each PostgreSQL user to its Cognito ``sub``.

Replaces the seeds' ``bin/cognito/list-users`` and ``update_cognito_user_ids``, which read one
page (60 users), crashed on a user without ``preferred_username`` and committed one UPDATE per
user (a failure half-way left the table half-updated). Here the listing pages to the end, a user
without a handle is reported, and the sync is one transaction with a fixed number of statements.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import psycopg

from ops import aws, db
from ops.errors import CloudError, ConfigError, NotFoundError, RefusedError
from ops.outputs import USER_POOL_ID, output
from ops.target import Target

# ListUsers refuses Limit > 60 in AWS; moto accepts more, so the limit is enforced here or a
# page size that passes the tests would fail against the real service.
MAX_PAGE = 60


@dataclass(frozen=True)
class CognitoUser:
    username: str
    sub: str
    handle: str | None  # preferred_username; None when the user never set one
    email: str | None
    status: str
    enabled: bool


class NewMember(Protocol):
    """What ``create_users`` needs of a user (``ops.db.User`` fits)."""

    @property
    def handle(self) -> str: ...

    @property
    def email(self) -> str: ...


def _from_api(raw: dict[str, Any]) -> CognitoUser:
    attrs = {a["Name"]: a.get("Value", "") for a in raw.get("Attributes", [])}
    return CognitoUser(
        username=raw["Username"],
        # a pool that signs in by email uses the sub as Username; keep a fallback for old pools
        sub=attrs.get("sub") or raw["Username"],
        handle=attrs.get("preferred_username") or None,
        email=attrs.get("email") or None,
        status=str(raw.get("UserStatus", "UNKNOWN")),
        enabled=bool(raw.get("Enabled", True)),
    )


def iter_users(
    client: Any, pool_id: str, *, page_size: int = MAX_PAGE, sleep: Callable[[float], None] = time.sleep
) -> Iterator[CognitoUser]:
    """Every user of the pool, page after page (following ``PaginationToken``); throttling is retried."""
    if not 1 <= page_size <= MAX_PAGE:
        raise ConfigError(f"page size {page_size} is out of range: Cognito's ListUsers takes 1 to {MAX_PAGE}")
    for raw in aws.items(
        client,
        "list_users",
        f"Cognito ListUsers on pool {pool_id}",
        "Users",
        sleep=sleep,
        UserPoolId=pool_id,
        Limit=page_size,
    ):
        yield _from_api(raw)


# ------------------------------------------------------------------------------------ sync


@dataclass(frozen=True)
class SyncReport:
    """What a sync did (or, with ``dry_run``, would do). Every list is sorted."""

    dry_run: bool
    cognito_users: int
    database_users: int
    updated: list[str] = field(default_factory=list)  # handles whose cognito_user_id was set
    already_right: list[str] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)  # handles whose sub moved to another handle: now NULL
    without_handle: list[str] = field(
        default_factory=list
    )  # Cognito users (email or username) without preferred_username
    not_in_database: list[str] = field(default_factory=list)  # Cognito handles with no users row
    not_in_cognito: list[str] = field(default_factory=list)  # users rows no Cognito user claims
    ambiguous: list[str] = field(default_factory=list)  # handles claimed by several Cognito users: left alone
    stale_links: list[str] = field(default_factory=list)  # handles whose cognito_user_id is the sub of no Cognito user

    @property
    def drift(self) -> bool:
        """Whether PostgreSQL's links disagree with the pool (what local.up reports after a restore)."""
        return bool(self.updated or self.unlinked or self.stale_links or self.ambiguous)

    @property
    def changed(self) -> bool:
        return bool(self.updated or self.unlinked)


# FOR UPDATE locks every row the decision is made from: another sync or an edit of these rows
# waits the few milliseconds the sync takes, so the decision still holds when the UPDATEs run
# (a sign-up meanwhile is a new row, which the UPDATE's RETURNING still reports honestly).
SELECT_SQL = "SELECT handle, cognito_user_id FROM users"
SELECT_FOR_UPDATE_SQL = SELECT_SQL + " FOR UPDATE"
# cognito_user_id is UNIQUE: a sub that moved to another handle (or two swapped subs) must be
# released first, or the UPDATE below would hit the constraint on the first moved row.
RELEASE_SQL = """
UPDATE users SET cognito_user_id = NULL
FROM unnest(%s::text[], %s::text[]) AS v(handle, sub)
WHERE users.cognito_user_id = v.sub
  AND users.handle <> v.handle
  AND EXISTS (SELECT 1 FROM users AS owner WHERE owner.handle = v.handle)
RETURNING users.handle
"""
# One statement for every user: the seeds ran (and committed) one UPDATE per user.
UPDATE_SQL = """
UPDATE users SET cognito_user_id = v.sub
FROM unnest(%s::text[], %s::text[]) AS v(handle, sub)
WHERE users.handle = v.handle
  AND users.cognito_user_id IS DISTINCT FROM v.sub
RETURNING users.handle
"""


def _decide(
    cognito_users: list[CognitoUser], db_rows: list[tuple[str, str | None]], dry_run: bool
) -> tuple[SyncReport, dict[str, str]]:
    """The report a sync would give, and the (handle → sub) pairs it writes."""
    counts = Counter(u.handle for u in cognito_users if u.handle)
    ambiguous = sorted(h for h, n in counts.items() if n > 1)
    pairs = {u.handle: u.sub for u in cognito_users if u.handle and counts[u.handle] == 1}
    current = dict(db_rows)
    to_update = sorted(h for h, sub in pairs.items() if h in current and current[h] != sub)
    holder = {sub: h for h, sub in current.items() if sub}
    moved = {holder[pairs[h]] for h in to_update if pairs[h] in holder}
    report = SyncReport(
        dry_run=dry_run,
        cognito_users=len(cognito_users),
        database_users=len(current),
        updated=to_update,
        already_right=sorted(h for h, sub in pairs.items() if current.get(h) == sub),
        unlinked=sorted(moved - set(to_update)),
        without_handle=sorted(u.email or u.username for u in cognito_users if not u.handle),
        not_in_database=sorted(h for h in counts if h not in current),
        not_in_cognito=sorted(h for h in current if h not in counts),
        ambiguous=ambiguous,
        stale_links=sorted(h for h, sub in current.items() if sub and sub not in {u.sub for u in cognito_users}),
    )
    return report, pairs


def sync_ids(conn: psycopg.Connection[Any], cognito_users: Iterable[CognitoUser], dry_run: bool = False) -> SyncReport:
    """Set ``users.cognito_user_id`` to the Cognito ``sub`` of the user with the same handle.

    One transaction and the same few statements whatever the number of users; any failure
    (including at COMMIT) leaves the table exactly as it was. ``dry_run`` only reads.
    """
    users = list(cognito_users)
    try:
        with conn.transaction():
            rows = conn.execute(SELECT_SQL if dry_run else SELECT_FOR_UPDATE_SQL).fetchall()
            report, pairs = _decide(users, rows, dry_run)
            if dry_run:
                return report
            handles, subs = list(pairs), list(pairs.values())
            held = {sub for _, sub in rows if sub}
            released: set[str] = set()
            if any(pairs[h] in held for h in report.updated):  # only when a sub moved between handles
                released = {r[0] for r in conn.execute(RELEASE_SQL, (handles, subs)).fetchall()}
            updated = sorted(r[0] for r in conn.execute(UPDATE_SQL, (handles, subs)).fetchall())
    except psycopg.errors.UndefinedTable:
        raise NotFoundError("the users table does not exist: run `invoke db.setup`") from None
    except psycopg.Error as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CloudError(f"the id sync was rolled back, nothing was written: {first}") from None
    # the rows were locked, so these equal the decision; taking them from RETURNING keeps the report honest
    return replace(report, updated=updated, unlinked=sorted(released - set(updated)))


# ------------------------------------------------------------------------- twin users


@dataclass(frozen=True)
class CreateResult:
    created: list[str]  # handles
    existing: list[str]  # handles whose email or handle was already in the pool


def create_users(
    client: Any, pool_id: str, users: Iterable[NewMember], *, sleep: Callable[[float], None] = time.sleep
) -> CreateResult:
    """Create a Cognito user per person (sign-in by email, handle as preferred_username); skips existing ones.

    For twins only: no invitation is sent and the address is marked verified, as if the person
    had signed up and confirmed it.
    """
    present = list(iter_users(client, pool_id, sleep=sleep))
    emails = {u.email for u in present if u.email}
    handles = {u.handle for u in present if u.handle}
    created: list[str] = []
    existing: list[str] = []
    for person in users:
        # a second user with the same handle would make the sync skip it as ambiguous
        if person.email in emails or person.handle in handles:
            existing.append(person.handle)
            continue

        def create(p: NewMember = person) -> bool:
            try:
                client.admin_create_user(
                    UserPoolId=pool_id,
                    Username=p.email,  # the pool signs in by email
                    UserAttributes=[
                        {"Name": "email", "Value": p.email},
                        {"Name": "email_verified", "Value": "true"},
                        {"Name": "preferred_username", "Value": p.handle},
                    ],
                    MessageAction="SUPPRESS",
                )
                return True
            except client.exceptions.UsernameExistsException:
                return False  # created meanwhile by someone else: the same end state

        made = aws.call(create, f"Cognito AdminCreateUser {person.email} in pool {pool_id}", sleep=sleep)
        (created if made else existing).append(person.handle)
        emails.add(person.email)
        handles.add(person.handle)
    return CreateResult(created, existing)


# ------------------------------------------------------------------------ whole targets


def pool_id(target: Target) -> str:
    return str(output(target, USER_POOL_ID))


def list_target_users(target: Target) -> list[CognitoUser]:
    return list(iter_users(target.client("cognito-idp"), pool_id(target)))


def sync_target(target: Target, dry_run: bool = False) -> SyncReport:
    """Read every Cognito user first, then sync in one short transaction (never held open while paging)."""
    users = list_target_users(target)
    with db.connect(target) as conn:
        return sync_ids(conn, users, dry_run=dry_run)


def create_target_users(target: Target) -> CreateResult:
    """Cognito users for every row of the twin's users table (in the cloud, people sign up themselves)."""
    if target.cloud:
        raise RefusedError(
            "Cognito users are created only in a twin: in the cloud people sign up themselves (nothing was sent)"
        )
    pool = pool_id(target)
    client = target.client("cognito-idp")
    with db.connect(target) as conn:
        people = db.list_users(conn)
    return create_users(client, pool, people)
