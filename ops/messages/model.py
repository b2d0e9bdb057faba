"""The table's items: their keys, their attributes, and how each maps to and from DynamoDB.

Items (DESIGN.md):
  message    pk ``MSG#<group>``  sk created_at     message_uuid, message, user_uuid/display_name/handle (sender)
  group row  pk ``GRP#<owner>``  sk ``<last_reply_at>#<group>``
                                 message_group_uuid, message, user_uuid/display_name/handle (the other)
  pair entry pk ``PAIR#<lo>#<hi>`` sk ``PAIR``    group_uuid, created_at, participant_uuids (see ``ops.messages.pairs``)
  group key  pk ``MSG#<group>``  sk ``KEY``        message_key, created_at, kms_key_id (stacks that encrypt messages)

(``PAIR#<group>`` items without a second uuid are the pair markers of earlier versions: read, never written.)

A group row's sort key is its last reply's time followed by its group id (``row_sort_key``):
two groups of one owner whose last replies share an instant (a fixture seeded for two pairs,
second-resolution imports, two messages in one microsecond) have two keys, never one. The time
comes first, so the owner's partition still sorts newest reply first, cursors and ``--before``
still page it, and the original backend's reader (``pk = GRP#<owner>``, newest first,
``begins_with(sk, <year>)``) still lists every row. Rows of other writers and of earlier
versions are keyed by the bare time (the *old shape*): they are read as they are (``GroupRow``
remembers the key it was read under, ``stored_key``), moved to the new shape by the stream
consumer on the group's next message, by ``ddb.migrate --name row-keys`` and by ``ddb.doctor --fix``.

On a stack that encrypts messages the text is stored sealed: a message and the group rows that
carry it hold ``message_sealed`` + ``message_key`` (+ ``message_uuid`` on rows) instead of
``message`` (``ops.messages.bodies``). The group key item keeps the group's data key, wrapped by
the stack's KMS key, for the writers; every sealed body carries a copy of it, so each read pattern
stays one query. The key item sorts after every timestamp (``KEY`` > ``2…``) and every message
query is bounded below ``TIME_CEILING``, so no page ever shows it, and it has no
``message_group_uuid``, so the group index never does either.

Each kind is a frozen dataclass whose fields are its attributes: the field named by ``PK`` goes
into the partition key behind ``PREFIX``, the field named by ``SK`` is the sort key (or ``SK``
is a constant), every other field is an attribute of the same name. That one declaration drives
both directions (``to_item`` / ``from_item``), as a PynamoDB model's attributes do. A field in
``OPTIONAL_ON_READ`` reads as ``None`` when the item lacks it: a sealed body, read without
opening it, leaves ``message`` at ``None`` (the read patterns always open it first).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from ops.errors import ConfigError

GSI_NAME = "message-group-sk-index"
MSG_PREFIX = "MSG#"
GRP_PREFIX = "GRP#"
PAIR_PREFIX = "PAIR#"
PAIR_SK = "PAIR"
KEY_SK = "KEY"
# Every ISO-8601 sort key starts with a digit and ':' is the character after '9': a message query
# bounded below it reads timestamps only, never the group's KEY item (or another non-time key).
TIME_CEILING = ":"
# Between a group row's time and its group id: never part of an ISO-8601 time (nor of a uuid),
# and below ':' (TIME_CEILING), so a row key still sorts where its time does.
ROW_KEY_SEP = "#"
# New groups get an id derived from the two participants (reproducible, e.g. for seeding); what
# keeps one group per pair is the pair entry, since other writers' groups have random ids.
GROUP_NAMESPACE = uuid.UUID("6c1f9a0e-2d47-4b8e-93a5-0c7e5d4f1b28")
MESSAGE_NAMESPACE = uuid.UUID("a3e8c5d1-7f20-4e9b-8c64-1d5b2f9e0a37")

K = TypeVar("K", bound="ItemKind")


# ---------------------------------------------------------------- time and ids


def iso(dt: datetime) -> str:
    """UTC, microseconds always present: string order is time order."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: give it a timezone")
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso(datetime.now(UTC))


# What we write: UTC, microseconds always there. Other writers (the original backend) stamp keys
# with their host's offset and drop zero microseconds, so string order is not time order there.
CANONICAL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def is_canonical(ts: str) -> bool:
    return bool(CANONICAL_TIME.match(ts))


def instant(ts: str) -> datetime:
    """The moment an ISO-8601 key names, whatever its offset; a key without one is refused."""
    dt = datetime.fromisoformat(ts)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} has no UTC offset")
    return dt


NEVER = datetime.min.replace(tzinfo=UTC)


def instant_or_never(ts: str) -> datetime:
    """``instant`` for ordering: a key that is no time at all sorts before every real one."""
    try:
        return instant(ts)
    except ValueError:
        return NEVER


def row_sort_key(last_reply_at: str, group_uuid: str) -> str:
    """A group row's sort key: the time first (order, paging, ``begins_with(sk, year)``), then the group (unique)."""
    return f"{last_reply_at}{ROW_KEY_SEP}{group_uuid}"


def key_time(sk: str) -> str:
    """The time part of a sort key: a row key's time, or the whole key of a message (or an old-shape row)."""
    return sk.partition(ROW_KEY_SEP)[0]


def key_instant_or_never(sk: str) -> datetime:
    """``instant_or_never`` of any sort key's time part (a row key of either shape, or a message key)."""
    return instant_or_never(key_time(sk))


def group_uuid_for(user_a: str, user_b: str) -> str:
    """The id this suite gives a new pair's group (other writers use random ids: look groups up, never derive them)."""
    if user_a == user_b:
        raise ConfigError("a conversation needs two different users")
    return str(uuid.uuid5(GROUP_NAMESPACE, ":".join(sorted((user_a, user_b)))))


def message_uuid_for(group_uuid: str, key: str) -> str:
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{group_uuid}:{key}"))


@dataclass(frozen=True)
class Person:
    """A participant as the items name them (a ``users`` row of PostgreSQL, reduced)."""

    uuid: str
    display_name: str
    handle: str


# ---------------------------------------------------------------- the mapping, declared once


def _encode(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, (set, frozenset, tuple)):
        return {"SS": sorted(value)}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def _decode(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    if kind == "SS":
        return tuple(sorted(raw))
    return raw


class ItemKind:
    """One kind of item; subclasses are frozen dataclasses that set the three class variables."""

    PREFIX: ClassVar[str]  # before the partition key's value
    PK: ClassVar[str]  # field whose value follows PREFIX in ``pk``
    SK: ClassVar[str]  # field whose value is ``sk``; or, with SK_CONSTANT, the constant itself
    SK_CONSTANT: ClassVar[bool] = False
    OPTIONAL_ON_READ: ClassVar[tuple[str, ...]] = ()  # fields that read as None when the item lacks them
    NOT_STORED: ClassVar[tuple[str, ...]] = ()  # fields kept beside the item (how it was read), never written

    def key(self) -> dict[str, dict[str, str]]:
        sk = self.SK if self.SK_CONSTANT else getattr(self, self.SK)
        return {"pk": {"S": self.PREFIX + getattr(self, self.PK)}, "sk": {"S": sk}}

    def to_item(self) -> dict[str, dict[str, Any]]:
        """The item in DynamoDB's attribute-value form; ``None`` fields are left out."""
        item = self.key()
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name not in (self.PK, self.SK, *self.NOT_STORED) and value is not None:
                item[f.name] = _encode(value)
        return item

    @classmethod
    def matches(cls, item: dict[str, Any]) -> bool:
        """Whether a stored item (attribute-value form) has this kind's key shape."""
        pk, sk = item.get("pk", {}).get("S", ""), item.get("sk", {}).get("S")
        return pk.startswith(cls.PREFIX) and sk is not None and (not cls.SK_CONSTANT or sk == cls.SK)

    @classmethod
    def from_item(cls: type[K], item: dict[str, Any]) -> K:
        """The item read back; a missing attribute is a ``KeyError`` naming it."""
        values: dict[str, Any] = {cls.PK: item["pk"]["S"][len(cls.PREFIX) :]}
        if not cls.SK_CONSTANT:
            values[cls.SK] = item["sk"]["S"]
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in values or f.name in cls.NOT_STORED:
                continue
            if f.name in item:
                values[f.name] = _decode(item[f.name])
            elif f.name in cls.OPTIONAL_ON_READ:
                values[f.name] = None
            elif f.default is dataclasses.MISSING:
                raise KeyError(f"{cls.__name__} item {item['pk'].get('S')}/{item['sk'].get('S')} has no {f.name!r}")
        return cls(**values)


@dataclass(frozen=True)
class Message(ItemKind):
    PREFIX: ClassVar[str] = MSG_PREFIX
    PK: ClassVar[str] = "message_group_uuid"
    SK: ClassVar[str] = "created_at"
    OPTIONAL_ON_READ: ClassVar[tuple[str, ...]] = ("message",)

    message_group_uuid: str
    created_at: str
    message_uuid: str
    message: str | None  # the text; None only for a sealed body read without opening it
    user_uuid: str  # the sender
    user_display_name: str
    user_handle: str

    @classmethod
    def matches(cls, item: dict[str, Any]) -> bool:
        return super().matches(item) and item["sk"]["S"] != KEY_SK


@dataclass(frozen=True)
class GroupRow(ItemKind):
    PREFIX: ClassVar[str] = GRP_PREFIX
    PK: ClassVar[str] = "owner_uuid"
    SK: ClassVar[str] = "last_reply_at"
    OPTIONAL_ON_READ: ClassVar[tuple[str, ...]] = ("message",)

    NOT_STORED: ClassVar[tuple[str, ...]] = ("stored_sk",)

    owner_uuid: str
    last_reply_at: str  # the time alone (the key's first part)
    message_group_uuid: str
    message: str | None  # the last message's text; None only for a sealed body read without opening it
    user_uuid: str  # the other participant
    user_display_name: str
    user_handle: str
    # the sort key the row was read under (``from_item``); None for a row made here, which is keyed the new way
    stored_sk: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def key(self) -> dict[str, dict[str, str]]:
        """The key this row is written under: unique per owner and group (``row_sort_key``)."""
        return {
            "pk": {"S": GRP_PREFIX + self.owner_uuid},
            "sk": {"S": row_sort_key(self.last_reply_at, self.message_group_uuid)},
        }

    def stored_key(self) -> dict[str, dict[str, str]]:
        """The key the row is stored under now: what deletes and moves must name (an old-shape row's bare time)."""
        if self.stored_sk is None:
            return self.key()
        return {"pk": {"S": GRP_PREFIX + self.owner_uuid}, "sk": {"S": self.stored_sk}}

    @property
    def old_shape(self) -> bool:
        """Read under a key that is not the new shape's (a bare time, or another group's id after the time)."""
        return self.stored_sk is not None and self.stored_sk != self.key()["sk"]["S"]

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> GroupRow:
        row = super().from_item(item)
        sk = item["sk"]["S"]
        return dataclasses.replace(row, last_reply_at=key_time(sk), stored_sk=sk)


def pair_key(user_a: str, user_b: str) -> str:
    """The pair entry's key part: the two user ids in sorted order, so both senders compute the same."""
    if user_a == user_b:
        raise ConfigError("a conversation needs two different users")
    return "#".join(sorted((user_a, user_b)))


@dataclass(frozen=True)
class PairEntry(ItemKind):
    """The pair index: names the one group of two users, whoever created it (``ops.messages.pairs``)."""

    PREFIX: ClassVar[str] = PAIR_PREFIX
    PK: ClassVar[str] = "pair"
    SK: ClassVar[str] = PAIR_SK
    SK_CONSTANT: ClassVar[bool] = True

    pair: str
    group_uuid: str  # not message_group_uuid: that name would put the entry in the group index
    created_at: str
    participant_uuids: tuple[str, ...]

    @classmethod
    def matches(cls, item: dict[str, Any]) -> bool:
        return super().matches(item) and "#" in item["pk"]["S"][len(cls.PREFIX) :]

    @classmethod
    def key_of(cls, user_a: str, user_b: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": PAIR_PREFIX + pair_key(user_a, user_b)}, "sk": {"S": PAIR_SK}}


@dataclass(frozen=True)
class LegacyPairMarker(ItemKind):
    """The pair marker of earlier versions (keyed by a derived group id): read and migrated, never written."""

    PREFIX: ClassVar[str] = PAIR_PREFIX
    PK: ClassVar[str] = "group_uuid"
    SK: ClassVar[str] = PAIR_SK
    SK_CONSTANT: ClassVar[bool] = True

    group_uuid: str
    created_at: str
    participant_uuids: tuple[str, ...]

    @classmethod
    def matches(cls, item: dict[str, Any]) -> bool:
        return super().matches(item) and "#" not in item["pk"]["S"][len(cls.PREFIX) :]


@dataclass(frozen=True)
class GroupKey(ItemKind):
    """A group's data key as stored: encrypted by the stack's KMS key, never in plain (``ops.crypto``).

    What the group's new messages are sealed with; each sealed body also carries a copy, so a
    reader never needs this item. One per group, written with ``attribute_not_exists`` so two
    writers that race to make it agree on the first one.
    """

    PREFIX: ClassVar[str] = MSG_PREFIX
    PK: ClassVar[str] = "group"
    SK: ClassVar[str] = KEY_SK
    SK_CONSTANT: ClassVar[bool] = True

    group: str
    message_key: bytes  # KMS CiphertextBlob of the AES-256 data key (encryption context: table and group)
    created_at: str
    kms_key_id: str  # the KMS key that wrapped it (an ARN): tells a key of another stack or a replaced key apart

    @classmethod
    def key_of(cls, group: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": MSG_PREFIX + group}, "sk": {"S": KEY_SK}}


def group_rows_for(group_uuid: str, a: Person, b: Person, last: Message) -> tuple[GroupRow, GroupRow]:
    """One row per participant, each naming the other, carrying the last message."""
    return (
        GroupRow(a.uuid, last.created_at, group_uuid, last.message, b.uuid, b.display_name, b.handle),
        GroupRow(b.uuid, last.created_at, group_uuid, last.message, a.uuid, a.display_name, a.handle),
    )


def pair_entry_for(group_uuid: str, a: Person, b: Person, created_at: str) -> PairEntry:
    return PairEntry(pair_key(a.uuid, b.uuid), group_uuid, created_at, tuple(sorted((a.uuid, b.uuid))))
