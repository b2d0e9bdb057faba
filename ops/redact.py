"""Secrets never shown: one redaction for every connection-string form libpq accepts, and the DSN helpers.

``redact(text)`` is applied to every line the tasks print, every error they pass on and every
file they write that is not a credentials file. It masks passwords in:

- URLs with credentials, ``postgresql://user:secret@host/db``, also multi-host
  (``…@h1:5432,h2:5433/db``), percent-encoded, or malformed (a bad ``%`` escape, a raw ``@``);
- query parameters, ``…/db?password=secret`` (and ``sslpassword``);
- keyword DSNs, ``host=h password=secret`` or ``password = 'with \\' quotes'``, even unterminated;
- anywhere else, the passwords of the connection strings this process has parsed (``remember``):
  libpq's own errors repeat a password out of context, e.g. ``invalid percent-encoded token:
  "s%zzecret"``, and only knowing the secret finds it there.

Parsing (database name, another database on the same server, the password apart for psql) is
libpq's own, through ``psycopg.conninfo``, so every form libpq accepts works and a malformed one
is one line that names the problem, never the password.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import unquote

from ops.errors import ConfigError

MASK = "***"
# Shorter secrets are not masked out of context: masking "pw" in every line would garble the output
# more than it protects (the patterns below still mask them where a connection string shows them).
MIN_KNOWN_SECRET = 4

# scheme://[user]:password@ … : the password runs to the last '@' of the token, so a raw '@' in it
# (malformed, but people write it) is masked whole rather than cut at the first one
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@?#]*:)(?P<secret>[^\s]*)(?=@)")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:ssl)?password=)(?P<secret>[^&\s#'\"]*)", re.IGNORECASE)
# keyword DSN: password=value, password = 'quoted \' value' (an unterminated quote runs to the end)
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\b(?:ssl)?password\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*(?:'|\\?$)|[^\s'\"]+)", re.IGNORECASE
)

_known: set[str] = set()
_lock = threading.Lock()


def _forms(secret: str) -> set[str]:
    """A password as it may show up: as written, percent-decoded, with a keyword DSN's quoting undone."""
    forms = {secret}
    if "%" in secret:
        forms.add(unquote(secret))  # a malformed escape stays as it is: that is the form libpq repeats
    if secret.startswith("'"):
        inner = secret[1:-1] if len(secret) > 1 and secret.endswith("'") else secret[1:]
        forms |= {inner, re.sub(r"\\(.)", r"\1", inner)}
    return {f for f in forms if len(f) >= MIN_KNOWN_SECRET}


def candidate_secrets(dsn: str) -> set[str]:
    """Every password a connection string holds, found without libpq (so a malformed one still yields it)."""
    found: set[str] = set()
    for pattern in (_URL_USERINFO, _QUERY_PASSWORD, _KEYWORD_PASSWORD):
        for m in pattern.finditer(dsn):
            found |= _forms(m.group("secret"))
    return found


def remember(dsn: str | None) -> None:
    """Mask this connection string's passwords wherever they appear from now on, in any form."""
    if not dsn:
        return
    secrets = candidate_secrets(dsn)
    try:
        password = _parse(dsn).get("password")
    except ConfigError:
        password = None
    if password and len(password) >= MIN_KNOWN_SECRET:
        secrets.add(password)
    with _lock:
        _known.update(secrets)


def forget_all() -> None:
    """Tests only: start again with no known secrets."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    """``text`` with every password masked: connection-string patterns first, then every known secret."""
    if not text:
        return text
    out = _URL_USERINFO.sub(lambda m: m.group("head") + MASK, text)
    out = _QUERY_PASSWORD.sub(lambda m: m.group("head") + MASK, out)
    out = _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, out)
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # longest first: a secret that contains another goes whole
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


# ---------------------------------------------------------------- parsing, by libpq


def _parse(dsn: str) -> dict[str, Any]:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(dsn)
    except ProgrammingError as err:
        # libpq's message repeats the offending token, which may be the password: mask it first
        with _lock:
            _known.update(candidate_secrets(dsn))
        reason = redact(str(err).strip().splitlines()[0] if str(err).strip() else "malformed")
        raise ConfigError(f"the connection string {redact(dsn)} is not one libpq accepts: {reason}") from None


def parse(dsn: str) -> dict[str, Any]:
    """A connection string's parameters as libpq reads them (URL or keyword form); malformed → one line."""
    remember(dsn)
    return _parse(dsn)


def database_name(dsn: str) -> str:
    name = parse(dsn).get("dbname")
    if not name:
        raise ConfigError(f"the connection string {redact(dsn)} names no database (…/dbname or dbname=…)")
    return str(name)


def with_database(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database (a keyword DSN: libpq takes either form)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo("", **(parse(dsn) | {"dbname": dbname}))


def split_password(dsn: str) -> tuple[str, str | None]:
    """The connection string without its password (keyword form), and the password apart."""
    from psycopg.conninfo import make_conninfo

    params = parse(dsn)
    password = params.pop("password", None)
    return make_conninfo("", **params), password


def with_password(dsn: str, password: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo("", **(parse(dsn) | {"password": password}))
