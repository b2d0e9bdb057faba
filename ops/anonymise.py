"""Keyed, consistent fakes for people and texts, and the leak check that guards every clone.

Every fake is an HMAC-SHA256 of the source value under one secret key, so the same person
becomes the same fake person in every item, row, pair entry, PostgreSQL row and Cognito user,
on every run with the same key, and nobody without the key can go back (or even test a guess).
People are faked from their **uuid**: a handle or a display name seen beside a uuid takes that
uuid's fake, so two spellings of one person still end as one fake.

The key comes from ``CRUDDUR_CLONE_KEY`` (hex or any text) or, when unset, from a file generated
once (0600) in the state root; it is never printed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, RefusedError
from ops.files import write_atomic

KEY_ENV = "CRUDDUR_CLONE_KEY"
KEY_FILE = "clone-key"  # in the state root, 0600

FIRST = (
    "Alex Robin Sam Kai Noor Juno Ira Tove Remy Lior Nika Oren Pia Quin Rune Sasha Teo Uma Vida Wren Yael Zane Arlo Bex"
).split()
LAST = (
    "Vale Moss Finch Hale Rowe Quarry Birch Lund Marsh Pike Reed Stone Thorn Wick Ash Brook Cove Dell Fenn Glade"
).split()
SYLLABLES = "ka lo mi nu pe ra si to vu ze bo da fi gu he jo ku la ma ne".split()
LENGTH_CLASSES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4000)
MIN_SUBSTRING = 4  # shorter source values are looked for as whole values only (a handle "al" is in every "also")
MIN_TEXT_SUBSTRING = 12  # a short text ("ok", "thanks!") is looked for as a whole value only


def load_key(state_root: Path) -> bytes:
    """The clone's secret: the environment's, else the generated local file's (made once, 0600)."""
    given = os.environ.get(KEY_ENV)
    if given:
        if len(given) < 16:
            raise ConfigError(f"${KEY_ENV} is too short to key the fakes: give at least 16 characters")
        return given.encode()
    path = state_root / KEY_FILE
    if not path.exists():
        write_atomic(path, secrets.token_hex(32) + "\n", mode=0o600)
    if path.stat().st_mode & 0o077:
        raise RefusedError(f"{path} is readable by others: chmod 600 {path} (or set ${KEY_ENV})")
    return path.read_text().strip().encode()


@dataclass(frozen=True)
class FakePerson:
    uuid: str
    handle: str
    display_name: str
    email: str


class Faker:
    """The keyed fakes of one clone; each source value's fake is made once and remembered."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._people: dict[str, FakePerson] = {}
        self._uuids: dict[str, str] = {}
        self._texts: dict[str, str] = {}

    def _mac(self, domain: str, value: str) -> bytes:
        return hmac.new(self._key, f"{domain}\0{value}".encode(), hashlib.sha256).digest()

    def uuid(self, value: str) -> str:
        """Any id (a user's, a group's, a message's): a uuid4-shaped keyed hash of it."""
        if value not in self._uuids:
            self._uuids[value] = str(uuid.UUID(bytes=self._mac("uuid", value)[:16], version=4))
        return self._uuids[value]

    def person(self, user_uuid: str) -> FakePerson:
        if user_uuid not in self._people:
            mac = self._mac("person", user_uuid)
            first, last = FIRST[mac[0] % len(FIRST)], LAST[mac[1] % len(LAST)]
            handle = f"u_{mac[2:7].hex()}"  # no name in it: a source handle "robin" must not turn up inside a fake
            self._people[user_uuid] = FakePerson(
                self.uuid(user_uuid), handle, f"{first} {last}", f"{handle}@example.invalid"
            )
        return self._people[user_uuid]

    def text(self, value: str) -> str:
        """A text of the same length class (the next of 8, 16, 32, … 4000 characters) made of keyed nonsense words."""
        if value not in self._texts:
            size = next((c for c in LENGTH_CLASSES if len(value) <= c), LENGTH_CLASSES[-1])
            words: list[str] = []
            stream = b"".join(self._mac(f"text{i}", value) for i in range(size // 16 + 1))
            for i in range(0, len(stream) - 1, 2):
                words.append("".join(SYLLABLES[b % len(SYLLABLES)] for b in stream[i : i + 2]))
                if sum(len(w) + 1 for w in words) > size:
                    break
            self._texts[value] = " ".join(words)[: max(1, size - 1)].strip() or "ka"
        return self._texts[value]

    def nonce(self, *parts: str) -> bytes:
        """A 12-byte AES-GCM nonce per (group, message, text): a resumed clone seals the same bytes again."""
        return self._mac("nonce", "\0".join(parts))[:12]


# ---------------------------------------------------------------- the leak check


@dataclass
class Secrets:
    """The source values no output may hold, by the field they came from."""

    values: dict[str, str] = field(default_factory=dict)  # value -> field name

    def add(self, name: str, value: Any) -> None:
        if isinstance(value, str) and value.strip():
            self.values.setdefault(value, name)


@dataclass(frozen=True)
class Leak:
    field: str  # the source field whose value leaked
    where: str  # the output that holds it (an item's key and attribute, a users row, a Cognito user)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v)


def find_leak(secrets_: Secrets, outputs: Iterable[tuple[str, str, Any]], texts: set[str]) -> Leak | None:
    """The first output that holds a source value; ``outputs`` are (where, attribute, value) triples.

    Long values are looked for anywhere inside every string; short ones (and short texts) as whole values.
    """
    whole = secrets_.values
    long = sorted(
        (v for v in whole if len(v) >= (MIN_TEXT_SUBSTRING if v in texts else MIN_SUBSTRING)), key=len, reverse=True
    )
    pattern = re.compile("|".join(re.escape(v) for v in long)) if long else None
    for where, attribute, value in outputs:
        for s in _strings(value):
            hit = s if s in whole else None
            if hit is None and pattern is not None:
                found = pattern.search(s)
                hit = found.group(0) if found else None
            if hit is not None:
                return Leak(whole[hit], f"{where} {attribute}")
    return None
