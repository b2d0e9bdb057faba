"""One redaction for every connection-string form libpq accepts, and libpq's own errors that repeat a password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops import redact as r
from ops.errors import ConfigError

CANARY = "Zq7canaryX"

# every form libpq accepts (and two it refuses), each holding the canary as its password
FORMS = {
    "url": f"postgresql://cruddur:{CANARY}@db.example.internal:5432/cruddur",
    "url-no-user": f"postgres://:{CANARY}@127.0.0.1/cruddur",
    "query": f"postgresql://cruddur@db.example.internal/cruddur?sslmode=disable&password={CANARY}",
    "keyword": f"host=db.example.internal port=5432 user=cruddur password={CANARY} dbname=cruddur",
    "keyword-quoted": f"host=db.example.internal user=cruddur password = '{CANARY} it\\'s' dbname=cruddur",
    "multi-host": f"postgresql://cruddur:{CANARY}@h1.internal:5432,h2.internal:5433/cruddur?target_session_attrs=read-write",
    "percent-encoded": "postgresql://cruddur:"
    + "".join(f"%{ord(c):02X}" for c in CANARY)
    + "@db.example.internal/cruddur",
    "raw-at": f"postgresql://cruddur:{CANARY}@x@db.example.internal/cruddur",
    "bad-percent": f"postgresql://cruddur:{CANARY}%zz@db.example.internal/cruddur",
    "bad-percent-short": f"postgresql://cruddur:{CANARY}%2@db.example.internal/cruddur",
    "unterminated-quote": f"host=db.example.internal password='{CANARY} dbname=cruddur",
}


@pytest.fixture(autouse=True)
def no_known_secrets() -> Iterator[None]:
    r.forget_all()
    yield
    r.forget_all()


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_patterns_alone_mask_the_password_of_every_form(form: str) -> None:
    text = f"error: PostgreSQL at {FORMS[form]}: connection refused"
    shown = r.redact(text)
    assert CANARY not in shown and "%5A%71" not in shown, shown
    assert r.MASK in shown


def test_what_is_not_a_password_is_left_exactly_as_it_was() -> None:
    for text in [
        "postgresql://postgres@127.0.0.1:5442/cruddur",
        "target: stack dev · local twin · http://127.0.0.1:8000 · us-east-1",
        "host=127.0.0.1 port=5432 user=postgres dbname=cruddur",
        'password authentication failed for user "postgres"',
        "",
    ]:
        assert r.redact(text) == text


def test_the_url_form_keeps_everything_but_the_password() -> None:
    assert r.redact(FORMS["url"]) == "postgresql://cruddur:***@db.example.internal:5432/cruddur"
    assert (
        r.redact(FORMS["multi-host"])
        == "postgresql://cruddur:***@h1.internal:5432,h2.internal:5433/cruddur?target_session_attrs=read-write"
    )
    assert r.redact(FORMS["keyword"]) == "host=db.example.internal port=5432 user=cruddur password=*** dbname=cruddur"
    assert r.redact(FORMS["keyword-quoted"]) == "host=db.example.internal user=cruddur password = *** dbname=cruddur"


@pytest.mark.parametrize("form", ["bad-percent", "bad-percent-short"])
def test_libpq_repeating_a_malformed_password_out_of_context_is_masked_once_the_string_was_seen(form: str) -> None:
    # GIVEN libpq's own error for the form: it quotes the token, password included, with no password= around it
    with pytest.raises(ConfigError) as caught:
        r.parse(FORMS[form])
    # THEN our error names the problem without the password, and so does libpq's raw text once redacted
    assert CANARY not in str(caught.value) and "not one libpq accepts" in str(caught.value)
    from psycopg.conninfo import conninfo_to_dict

    with pytest.raises(Exception) as raw:
        conninfo_to_dict(FORMS[form])
    assert CANARY in str(raw.value), "libpq repeats it: the reason this test exists"
    assert CANARY not in r.redact(str(raw.value))


def test_a_remembered_password_is_masked_in_any_text_and_any_of_its_forms() -> None:
    r.remember(FORMS["percent-encoded"])
    r.remember(FORMS["keyword-quoted"])
    assert r.redact(f"password authentication failed, tried {CANARY}") == "password authentication failed, tried ***"
    assert CANARY not in r.redact(f"'{CANARY} it's'") and CANARY not in r.redact(f"{CANARY} it\\'s")


def test_short_passwords_are_not_masked_out_of_context_but_are_in_a_connection_string() -> None:
    r.remember("postgresql://u:pw@h/db")
    assert r.redact("pw is two letters of a prose line") == "pw is two letters of a prose line"
    assert r.redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


@pytest.mark.parametrize(
    "form", ["url", "query", "keyword", "keyword-quoted", "multi-host", "percent-encoded", "raw-at"]
)
def test_libpq_parses_every_accepted_form_and_the_password_comes_apart(form: str) -> None:
    assert r.database_name(FORMS[form]) == "cruddur"
    conninfo, password = r.split_password(FORMS[form])
    assert password is not None and password.startswith(CANARY)  # a raw '@' ends it, as libpq reads it
    assert CANARY not in conninfo and "dbname=cruddur" in conninfo
    assert r.database_name(r.with_database(FORMS[form], "postgres")) == "postgres"


def test_a_connection_string_without_a_database_is_one_line() -> None:
    with pytest.raises(ConfigError, match="names no database"):
        r.database_name(f"host=h password={CANARY}")
