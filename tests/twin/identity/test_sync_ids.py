"""The Cognito id sync: rows linked by handle, in one transaction, with a fixed number of statements."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from ops.cognito import CognitoUser, iter_users, sync_ids
from ops.errors import CloudError, NotFoundError
from tests.support.cognito import add_users, counting_statements, insert_users, snapshot


def cognito_user(handle: str | None, sub: str | None = None, email: str | None = None) -> CognitoUser:
    sub = sub or str(uuid.uuid4())
    return CognitoUser(
        username=sub,
        sub=sub,
        handle=handle,
        email=email or f"{handle or sub}@cruddur.test",
        status="CONFIRMED",
        enabled=True,
    )


def links(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    return dict(conn.execute("SELECT handle, cognito_user_id FROM users").fetchall())


def test_sync_links_every_handle_and_reports_the_rest(conn: psycopg.Connection[Any], cognito: Any, pool: str) -> None:
    subs = add_users(cognito, pool, 4, prefix="u")  # u0000..u0003
    anonymous = add_users(cognito, pool, 1, prefix="anon", handle=False)
    insert_users(conn, ["u0000", "u0001", "u0002", "zed"])

    report = sync_ids(conn, iter_users(cognito, pool))

    assert links(conn) == {"u0000": subs["u0000"], "u0001": subs["u0001"], "u0002": subs["u0002"], "zed": None}
    assert report.updated == ["u0000", "u0001", "u0002"]
    assert report.without_handle == list(anonymous)  # reported by email, not a crash
    assert report.not_in_database == ["u0003"]
    assert report.not_in_cognito == ["zed"]
    assert report.already_right == [] and report.unlinked == [] and report.ambiguous == []
    assert (report.cognito_users, report.database_users) == (5, 4)
    # rows written by one transaction carry the same xmin
    assert conn.execute(
        "SELECT count(DISTINCT xmin::text) FROM users WHERE cognito_user_id IS NOT NULL"
    ).fetchone() == (1,)


def test_second_sync_updates_nothing(conn: psycopg.Connection[Any]) -> None:
    users = [cognito_user(h) for h in ("ada", "bram", "chidi")]
    insert_users(conn, ["ada", "bram", "chidi"])
    sync_ids(conn, users)
    before = snapshot(conn)

    again = sync_ids(conn, users)

    assert again.updated == [] and again.already_right == ["ada", "bram", "chidi"] and not again.changed
    assert snapshot(conn) == before  # same xmin: not even rewritten with the same value


def test_dry_run_reports_what_a_sync_would_do_and_writes_nothing(conn: psycopg.Connection[Any]) -> None:
    old = str(uuid.uuid4())
    users = [cognito_user("ada"), cognito_user("bram"), cognito_user("chidi", sub=old), cognito_user(None)]
    insert_users(conn, ["ada", "bram", "chidi", "dana"], {"chidi": old})
    before = snapshot(conn)

    dry = sync_ids(conn, users, dry_run=True)

    assert snapshot(conn) == before
    assert (
        dry.dry_run
        and dry.updated == ["ada", "bram"]
        and dry.already_right == ["chidi"]
        and dry.not_in_cognito == ["dana"]
    )
    real = sync_ids(conn, users)
    assert {**dry.__dict__, "dry_run": False} == real.__dict__  # the dry run told the truth


def test_swapped_and_moved_subs_are_relinked_despite_the_unique_constraint(conn: psycopg.Connection[Any]) -> None:
    s1, s2, s3 = (str(uuid.uuid4()) for _ in range(3))
    insert_users(conn, ["ada", "bram", "chidi", "dana"], {"ada": s1, "bram": s2, "chidi": s3})
    # Cognito now says: ada and bram swapped subs; chidi's sub belongs to dana
    users = [cognito_user("ada", s2), cognito_user("bram", s1), cognito_user("dana", s3)]
    statements = counting_statements(conn)

    report = sync_ids(conn, users)

    conn.cursor_factory = psycopg.Cursor
    assert statements == ["SELECT", "UPDATE", "UPDATE"], "a moved sub costs one releasing UPDATE, still at most 3"
    assert links(conn) == {"ada": s2, "bram": s1, "chidi": None, "dana": s3}
    assert report.updated == ["ada", "bram", "dana"]
    assert report.unlinked == ["chidi"] and report.not_in_cognito == ["chidi"]


def test_a_handle_claimed_by_two_cognito_users_is_left_alone(conn: psycopg.Connection[Any]) -> None:
    insert_users(conn, ["ada", "bram"])

    report = sync_ids(conn, [cognito_user("ada"), cognito_user("ada"), cognito_user("bram")])

    assert report.ambiguous == ["ada"] and report.updated == ["bram"]
    assert links(conn)["ada"] is None


def _half_linked(conn: psycopg.Connection[Any], count: int) -> list[CognitoUser]:
    """``count`` users, every other one already linked to a sub Cognito no longer has for them."""
    handles = [f"user{i:04d}" for i in range(count)]
    old = {h: str(uuid.uuid4()) for h in handles[::2]}
    insert_users(conn, handles, old)
    # users[1] takes users[0]'s old sub, so the release statement has work to do too
    fresh = [cognito_user(h) for h in handles]
    fresh[1] = cognito_user(handles[1], old[handles[0]])
    return fresh


def test_a_failure_inside_the_update_leaves_every_row_unchanged(conn: psycopg.Connection[Any]) -> None:
    users = _half_linked(conn, 200)
    conn.execute(
        """CREATE FUNCTION fail_on_user0150() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'injected failure on %', NEW.handle; END $$"""
    )
    # a real error in the middle of the UPDATE, after the release statement already ran
    conn.execute(
        "CREATE TRIGGER fail_mid_update BEFORE UPDATE ON users FOR EACH ROW WHEN (NEW.handle = 'user0150') EXECUTE "
        "FUNCTION fail_on_user0150()"
    )
    before = snapshot(conn)

    try:
        with pytest.raises(CloudError, match="rolled back.*injected failure on user0150"):
            sync_ids(conn, users)
        assert snapshot(conn) == before
    finally:
        conn.execute("DROP FUNCTION fail_on_user0150() CASCADE")


def test_a_failure_at_commit_leaves_every_row_unchanged(conn: psycopg.Connection[Any]) -> None:
    users = _half_linked(conn, 200)
    conn.execute(
        """CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$"""
    )
    # deferred: fires at COMMIT, after every statement of the sync succeeded
    conn.execute(
        "CREATE CONSTRAINT TRIGGER fail_at_commit AFTER UPDATE ON users DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW WHEN (NEW.handle = 'user0199') EXECUTE FUNCTION fail_at_commit()"
    )
    before = snapshot(conn)

    try:
        with pytest.raises(CloudError, match="rolled back.*injected failure at commit"):
            sync_ids(conn, users)
        assert snapshot(conn) == before
    finally:
        conn.execute("DROP FUNCTION fail_at_commit() CASCADE")


def _timed_sync(conn: psycopg.Connection[Any], count: int) -> tuple[list[str], float, Any]:
    conn.execute("TRUNCATE users CASCADE")
    handles = [f"user{i:04d}" for i in range(count)]
    insert_users(conn, handles)
    users = [cognito_user(h) for h in handles] + [cognito_user(None), cognito_user("nobody-here")]
    statements = counting_statements(conn)
    started = time.perf_counter()
    report = sync_ids(conn, users)
    elapsed = time.perf_counter() - started
    conn.cursor_factory = psycopg.Cursor
    wrong = conn.execute(
        "SELECT count(*) FROM users JOIN unnest(%s::text[], %s::text[]) AS v(handle, sub) USING (handle) WHERE "
        "cognito_user_id IS DISTINCT FROM v.sub",
        ([u.handle for u in users[:count]], [u.sub for u in users[:count]]),
    ).fetchone()
    assert wrong == (0,) and len(report.updated) == count
    return statements, elapsed, report


def test_statement_count_does_not_grow_with_the_number_of_users(
    conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    small, small_time, _ = _timed_sync(conn, 3)
    large, large_time, report = _timed_sync(conn, 3000)

    assert large == small  # the same statements, in the same order
    assert len(large) == 2  # SELECT … FOR UPDATE, UPDATE (the seeds: one UPDATE and COMMIT per user)
    assert report.not_in_database == ["nobody-here"] and len(report.without_handle) == 1
    with capsys.disabled():
        print(
            f"\n[identity] sync of 3 users: {small_time * 1000:.1f} ms; of 3,000 users: {large_time * 1000:.1f} ms; "
            f"statements each: {len(large)} ({', '.join(large)})"
        )


def test_without_the_users_table_the_sync_says_what_to_run(scratch_url: str) -> None:
    with psycopg.connect(scratch_url, options="-c search_path=no_such_schema") as other:
        with pytest.raises(NotFoundError, match="db.setup"):
            sync_ids(other, [cognito_user("ada")])
