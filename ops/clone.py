"""ddb.clone: a stack's messages (its twin, or its cloud table) copied into a twin, anonymised by default.

The clone is built whole in memory first, then checked, then written:

1. **read** the source's items (``read_items``: the table scan by default; the seam where a
   budgeted scan or an export plugs in) and the users the selected items refer to from its
   PostgreSQL; sealed bodies are opened with the source's key;
2. **rewrite** each item through the model's own kinds (``Message``, ``GroupRow``, ``PairEntry``,
   ``LegacyPairMarker``, ``Membership``: ``from_item`` → replaced fields → ``to_item``), so the keys
   (``MSG#<group>``, ``GRP#<owner>``, ``PAIR#<a>#<b>``) are rebuilt from the anonymised values by
   the same code that writes them everywhere else. ``FIELD_RULES`` says what each field becomes;
   a field or attribute no rule names is copied as it is, and the leak check judges it;
3. **re-seal** bodies for the target: with the target's KMS key when it encrypts (a fresh data key
   per group, a nonce derived from the clone key so a resumed run seals the same bytes, a group
   row's body byte-identical to its message's), as plain text when it does not;
4. **leak check**: no source uuid, handle, display name, email, Cognito id or text may appear in
   any output string (items, users rows, Cognito users); one that does stops the clone before
   anything is written, naming the source field;
5. **write**: the users (PostgreSQL upsert, Cognito users, the id sync), then the items in chunks,
   with a checkpoint in the target's state directory so an interrupted clone resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ops.anonymise import Faker, Leak, Secrets, find_leak
from ops.errors import ConfigError, RefusedError
from ops.files import write_atomic
from ops.messages import bodies
from ops.messages.model import (
    GroupKey,
    GroupRow,
    ItemKind,
    LegacyPairMarker,
    Membership,
    Message,
    PairEntry,
    instant,
    pair_key,
)

KINDS: tuple[type[ItemKind], ...] = (Message, GroupRow, PairEntry, LegacyPairMarker, Membership)
CHUNK = 100  # items per checkpoint: a resumed clone rewrites at most this many

# What each field of the model's kinds becomes. A field that is not here is copied unchanged,
# and the leak check stops the clone if it carried a source value.
FIELD_RULES: dict[str, str] = {
    "message_group_uuid": "id",
    "group_uuid": "id",
    "group": "id",
    "message_uuid": "id",
    "owner_uuid": "person",
    "user_uuid": "person",
    "participant_uuids": "people",
    "user_handle": "handle",  # of the item's user_uuid (a named group's row: its name)
    "user_display_name": "display_name",  # of the item's user_uuid (a named group's row: its name)
    "message": "text",
    "group_name": "name",  # a named group's: keyed nonsense like a text, even with --keep-text (it is no message)
    "created_by": "person",  # a named group's creator
    "members": "members",  # a named group's uuid -> {handle, display_name}: each entry its person's fake
    "pair": "pair",  # rebuilt from the anonymised participants
    "created_at": "keep",
    "last_reply_at": "keep",
}
# The source fields whose values the leak check looks for (and the users' own columns).
SECRET_FIELDS = ("message_group_uuid", "group_uuid", "group", "message_uuid", "owner_uuid", "user_uuid", "user_handle")
SECRET_FIELDS += ("user_display_name", "participant_uuids", "message", "group_name", "created_by", "members")


@dataclass(frozen=True)
class Selection:
    handles: tuple[str, ...] = ()  # the groups these users belong to
    since: str | None = None  # groups with a message at or after this time, and those messages
    everything: bool = False

    def check(self) -> None:
        chosen = sum([bool(self.handles), self.since is not None, self.everything])
        if chosen != 1:
            raise ConfigError("say what to clone: exactly one of --users h1,h2, --since TIME or --all")
        if self.since is not None:
            try:
                instant(self.since)
            except ValueError:
                raise ConfigError(
                    f"--since {self.since!r} is not an ISO time with a zone: e.g. 2026-11-01T00:00:00+00:00"
                ) from None


@dataclass(frozen=True)
class Options:
    anonymise: bool = True
    keep_text: bool = False
    restart: bool = False


@dataclass
class CloneResult:
    source: str
    target: str
    items_read: int = 0
    items_selected: int = 0
    items_written: int = 0
    resumed_at: int = 0
    users: int = 0
    cognito_created: int = 0
    groups: int = 0
    anonymised: bool = True
    keep_text: bool = False
    sealed: bool = False  # the bodies were sealed with the target's key
    handles: list[str] = field(default_factory=list)  # the (fake) handles of the cloned users, a few to try


class LeakError(RefusedError):
    """A source value would reach the target: nothing was written."""


# ---------------------------------------------------------------- reading


def scan_items(source: Any) -> Iterator[dict[str, Any]]:
    """The default reader: the source table's items as stored (the bulk reads' budget or an export can replace it)."""
    from ops import ddb

    yield from ddb.scan(source.client("dynamodb"), source.stack.table_name, raw=True)


def _kind(item: dict[str, Any]) -> type[ItemKind] | None:
    if GroupKey.matches(item):
        return GroupKey
    return next((k for k in KINDS if k.matches(item)), None)


def _group_of(item: dict[str, Any]) -> str | None:
    kind = _kind(item)
    if kind in (Message, GroupKey, Membership):
        return str(item["pk"]["S"]).partition("#")[2]
    for name in ("message_group_uuid", "group_uuid"):
        if name in item:
            return str(item[name]["S"])
    return None


def select(items: list[dict[str, Any]], selection: Selection, user_uuids: set[str]) -> list[dict[str, Any]]:
    """The items of the chosen groups (keys of the source's groups are never copied: the target makes its own)."""
    items = [i for i in items if _kind(i) is not GroupKey]
    if selection.everything:
        return items
    if selection.handles:
        groups = {
            _group_of(i)
            for i in items
            if _kind(i) in (GroupRow, PairEntry, LegacyPairMarker)
            and (
                {(i.get("user_uuid") or {}).get("S"), str(i["pk"]["S"]).partition("#")[2]} & user_uuids
                or set((i.get("participant_uuids") or {}).get("SS", ())) & user_uuids
            )
        }
        return [i for i in items if _group_of(i) in groups]
    since = instant(str(selection.since))
    recent = {
        _group_of(i) for i in items if _kind(i) is Message and _after(str(i["sk"]["S"]), since)
    }  # groups with news
    return [
        i for i in items if _group_of(i) in recent and (_kind(i) is not Message or _after(str(i["sk"]["S"]), since))
    ]


def _after(ts: str, since: Any) -> bool:
    try:
        return instant(ts) >= since
    except ValueError:
        return False


# ---------------------------------------------------------------- rewriting


class Rewriter:
    """Turns source items into target items; remembers what it replaced for the leak check."""

    def __init__(self, faker: Faker, options: Options, secrets: Secrets) -> None:
        self.faker, self.options, self.secrets = faker, options, secrets
        self.people: set[str] = set()  # source user uuids the items name
        self.names: set[str] = set()  # source group names (judged like texts: a short one only as a whole value)

    def _value(self, rule: str, name: str, value: Any, obj: Any) -> Any:
        f = self.faker
        if value is None or rule == "keep" or not self.options.anonymise:
            return value
        group_name = getattr(obj, "group_name", None)
        if group_name is not None and name in ("user_uuid", "user_handle", "user_display_name"):
            # a named group's row names the group itself: its id's fake and its name's, as the membership item has
            return f.uuid(value) if name == "user_uuid" else f.text(group_name)
        if rule == "id":
            return f.uuid(value)
        if rule == "person":
            self.people.add(value)
            return f.person(value).uuid
        if rule == "people":
            self.people.update(value)
            return tuple(sorted(f.person(u).uuid for u in value))
        if rule == "members":
            self.people.update(value)
            return {
                f.person(u).uuid: {"handle": f.person(u).handle, "display_name": f.person(u).display_name}
                for u in value
            }
        if rule == "name":
            return f.text(value)
        if rule == "handle":
            return f.person(obj.user_uuid).handle
        if rule == "display_name":
            return f.person(obj.user_uuid).display_name
        if rule == "text":
            return value if self.options.keep_text else f.text(value)
        if rule == "pair":
            a, b = obj.participant_uuids
            return pair_key(f.person(a).uuid, f.person(b).uuid)
        raise AssertionError(rule)

    def rewrite(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item with every ruled field replaced and its key rebuilt; its body as plain text (sealed later)."""
        kind = _kind(item)
        if kind is None:
            return dict(item)  # a shape the model does not know: as it is, for the leak check to judge
        obj = kind.from_item(item)
        names = {f.name for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
        for name in names & set(SECRET_FIELDS):
            for v in _secret_values(getattr(obj, name)):
                if name != "message" or not self.options.keep_text:
                    self.secrets.add(name, v)
        if getattr(obj, "group_name", None) is not None:
            self.names.add(obj.group_name)
        changes = {
            name: self._value(FIELD_RULES[name], name, getattr(obj, name), obj) for name in names if name in FIELD_RULES
        }
        for name in ("owner_uuid", "user_uuid"):
            if name in names:
                self.people.add(getattr(obj, name))
        new = dataclasses.replace(obj, **changes).to_item()  # type: ignore[type-var]
        extras = {
            k: v for k, v in item.items() if k not in names and k not in ("pk", "sk") and k not in bodies.ROW_BODY
        }
        if kind is GroupRow and bodies.UUID in item:  # a sealed row names its message: the same message in the clone
            self.secrets.add("message_uuid", item[bodies.UUID]["S"])
            new[bodies.UUID] = {"S": self._value("id", "message_uuid", item[bodies.UUID]["S"], obj)}
        return new | extras


def _secret_values(value: Any) -> Iterator[Any]:
    """The source values one field holds: itself, a tuple's members, or a members map's uuids, handles and names."""
    if isinstance(value, tuple):
        yield from value
    elif isinstance(value, dict):  # uuid -> {"handle": …, "display_name": …}: the uuids and the entries' values
        for k, v in value.items():
            yield k
            yield from v.values() if isinstance(v, dict) else (v,)
    else:
        yield value


# ---------------------------------------------------------------- sealing for the target


class Sealer:
    """Bodies for the target: sealed under its key (deterministic nonces), or plain."""

    def __init__(self, cipher: Any, client: Any, table: str, faker: Faker) -> None:
        self.cipher, self.client, self.table, self.faker = cipher, client, table, faker
        self.keys: dict[str, bytes] = {}  # target group -> encrypted data key
        self.new_keys: list[dict[str, Any]] = []  # key items to write

    @property
    def sealing(self) -> bool:
        return bool(self.cipher is not None and self.cipher.encrypting)

    def _key(self, group: str) -> bytes:
        if group not in self.keys:
            stored = (  # a resumed clone made it already (no table yet: no key either)
                self.cipher.stored_group_key(self.client, self.table, group) if self.client is not None else None
            )
            if stored is None:
                stored = self.cipher.new_group_key(self.table, group)  # KMS only: the table is written later
                self.new_keys.append(self.cipher.key_item(group, stored).to_item())
            self.keys[group] = stored
        return self.keys[group]

    def body(self, group: str, message_uuid: str, text: str, what: str) -> dict[str, Any]:
        from ops.crypto import seal_text

        if not self.sealing:
            return {bodies.TEXT: {"S": text}}
        blob = self._key(group)
        plain = self.cipher.keys.plain(self.table, group, blob, what)
        sealed = seal_text(plain, text, group, message_uuid, nonce=self.faker.nonce(group, message_uuid, text))
        return {bodies.SEALED: {"B": sealed}, bodies.KEY: {"B": blob}, bodies.UUID: {"S": message_uuid}}


def _with_bodies(items: list[dict[str, Any]], sealer: Sealer) -> list[dict[str, Any]]:
    """Every message and group row with its body for the target; a row's is its last message's, byte for byte."""
    by_time = {
        (str(i["pk"]["S"]).partition("#")[2], str(i["sk"]["S"])): i["message_uuid"]["S"]
        for i in items
        if _kind(i) is Message and "message_uuid" in i
    }
    out = []
    for item in items:
        kind = _kind(item)
        text = (item.get(bodies.TEXT) or {}).get("S")
        if kind not in (Message, GroupRow) or text is None:
            out.append(item)
            continue
        if kind is Message:
            group, message_uuid = str(item["pk"]["S"]).partition("#")[2], item["message_uuid"]["S"]
        else:
            group = item["message_group_uuid"]["S"]
            at = GroupRow.from_item(
                item
            ).last_reply_at  # the model reads the row's time out of its key, whatever its shape
            message_uuid = (item.get(bodies.UUID) or {}).get("S") or by_time.get((group, at))
            if message_uuid is None and sealer.sealing:  # a plain row whose message is not in the clone
                message_uuid = sealer.faker.uuid(f"row:{group}:{item['pk']['S']}")
        body = sealer.body(group, str(message_uuid), text, bodies.describe(item))
        if kind is Message:  # a message keeps its uuid whatever its body (with_body is a row's: it drops the uuid)
            out.append({k: v for k, v in item.items() if k not in (bodies.TEXT, bodies.SEALED, bodies.KEY)} | body)
        else:
            out.append(bodies.with_body(item, body))
    return out


# ---------------------------------------------------------------- the whole clone


def _map_keys(value: Any) -> list[str]:
    """The keys of every map inside an attribute value (a members map is keyed by uuid): outputs too."""
    if not isinstance(value, dict):
        return []
    inner = value.get("M")
    if not isinstance(inner, dict):
        return []
    keys: list[str] = []
    for k, v in inner.items():
        keys += [k, *_map_keys(v)]
    return keys


def _outputs(items: list[dict[str, Any]], users: list[Any], members: list[Any]) -> Iterator[tuple[str, str, Any]]:
    for item in items:
        where = f"item {item['pk']['S']}/{item['sk']['S']}"
        for name, value in item.items():
            yield where, name, value
            keys = _map_keys(value)
            if keys:
                yield where, f"{name} (its keys)", keys
    for u in users:
        yield f"users row {u.uuid}", "", [u.uuid, u.handle, u.display_name, u.email]
    for m in members:
        yield f"Cognito user {m.email}", "", [m.email, m.handle]


def plan_digest(items: list[dict[str, Any]], options: Options, source: str) -> str:
    keys = sorted(f"{i['pk']['S']}\0{i['sk']['S']}" for i in items)
    return hashlib.sha256(json.dumps([source, dataclasses.asdict(options) | {"restart": 0}, keys]).encode()).hexdigest()


def clone(
    source: Any,
    target: Any,
    selection: Selection,
    options: Options,
    key: bytes,
    *,
    read_items: Callable[[Any], Iterable[dict[str, Any]]] = scan_items,
    on_progress: Callable[[str, int], None] | None = None,
) -> CloneResult:
    """Read, rewrite, re-seal, check, then write (see the module's docstring); ``LeakError`` before any write."""
    from ops import db
    from ops.crypto import cipher_for
    from ops.ddb import describe

    selection.check()
    if source.stack.name == target.stack.name and source.cloud == target.cloud:
        raise RefusedError(f"stack {source.stack.name!r} cannot be cloned into itself: give --to-stack another stack")
    if target.cloud:
        raise RefusedError("ddb.clone writes into a twin only: the target is never a cloud stack")
    result = CloneResult(
        source.stack.name, target.stack.name, anonymised=options.anonymise, keep_text=options.keep_text
    )

    with db.connect(source) as conn:
        source_users = {u.uuid: u for u in db.list_users(conn)}
        wanted = set(db.users_by_handle(conn, list(selection.handles))) if selection.handles else set()
    chosen = {u.uuid for u in source_users.values() if u.handle in wanted}
    source_cipher = cipher_for(source)
    raw = list(read_items(source))
    result.items_read = len(raw)
    picked = [bodies.readable(source_cipher, source.stack.table_name, i) for i in select(raw, selection, chosen)]
    result.items_selected = len(picked)

    faker, secrets = Faker(key), Secrets()
    rewriter = Rewriter(faker, options, secrets)
    rewritten = [rewriter.rewrite(i) for i in picked]
    client = target.client("dynamodb", max_pool_connections=16)
    table = target.stack.table_name
    sealer = Sealer(cipher_for(target), client if describe(client, table) else None, table, faker)
    items = sorted(_with_bodies(rewritten, sealer), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    result.sealed = sealer.sealing
    result.groups = len({_group_of(i) for i in items if _kind(i) is Message})

    users, members = [], []
    for uuid_ in sorted(rewriter.people):
        user = source_users.get(uuid_)
        if user is None:
            continue
        for name in ("uuid", "handle", "display_name", "email", "cognito_user_id"):
            secrets.add(f"users.{name}", getattr(user, name))
        fake = faker.person(user.uuid) if options.anonymise else None
        users.append(
            db.User(fake.uuid, fake.display_name, fake.handle, fake.email)
            if fake
            else db.User(user.uuid, user.display_name, user.handle, user.email)
        )
        members.append(users[-1])
    if options.anonymise:
        leak = find_leak(
            secrets,
            _outputs(items + sealer.new_keys, users, members),
            {v for v, n in secrets.values.items() if n == "message"} | rewriter.names,
        )
        if leak is not None:
            raise LeakError(_leak_line(leak))
    result.users = len(users)
    result.handles = [u.handle for u in users[:4]]

    _write_users(target, users, result)
    _write_items(target, client, sealer.new_keys, items, source.stack.name, options, result, on_progress)
    return result


def _leak_line(leak: Leak) -> str:
    return (
        f"leak check failed, nothing was written: a value of the source's {leak.field} would reach the target "
        f"({leak.where}); give that field a rule in ops/clone.py FIELD_RULES (or drop the attribute at the source)"
    )


def _write_users(target: Any, users: list[Any], result: CloneResult) -> None:
    from ops import db
    from ops.cognito import create_users, pool_id, sync_target

    db.create_database(target)  # a fresh twin has neither the database nor its users table yet
    with db.connect(target) as conn:
        db.load_schema(conn)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO users (uuid, display_name, handle, email) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (uuid) DO UPDATE SET display_name = EXCLUDED.display_name,
                   handle = EXCLUDED.handle, email = EXCLUDED.email""",
                [(u.uuid, u.display_name, u.handle, u.email) for u in users],
            )
    result.cognito_created = len(create_users(target.client("cognito-idp"), pool_id(target), users).created)
    sync_target(target)  # the new Cognito users' subs into cognito_user_id


def _write_items(
    target: Any,
    client: Any,
    keys: list[dict[str, Any]],
    items: list[dict[str, Any]],
    source: str,
    options: Options,
    result: CloneResult,
    on_progress: Callable[[str, int], None] | None,
) -> None:
    from ops.ddb import batch_write, describe, schema_load
    from ops.table_spec import table_spec
    from ops.target import stack_state_dir

    table = target.stack.table_name
    if not describe(client, table):
        schema_load(client, table_spec(target.stack))
    # the groups' new data keys first, outside the checkpoint: a resumed run finds them stored and seals with them
    batch_write(client, table, keys)
    checkpoint = stack_state_dir(target.stack.name) / f"clone-from-{source}.json"
    digest = plan_digest(items, options, source)
    start = 0
    if checkpoint.exists() and not options.restart:
        try:
            saved = json.loads(checkpoint.read_text())
            start = int(saved["written"]) if saved.get("digest") == digest else 0
        except (OSError, ValueError, KeyError):
            start = 0
    result.resumed_at = start
    if on_progress:
        on_progress("total", len(items) - start)
    for at in range(start, len(items), CHUNK):
        chunk = items[at : at + CHUNK]
        batch_write(client, table, chunk)
        write_atomic(checkpoint, json.dumps({"digest": digest, "written": at + len(chunk)}))
        result.items_written += len(chunk)
        if on_progress:
            on_progress("written", len(chunk))
    checkpoint.unlink(missing_ok=True)


def clone_target(
    source: Any,
    target: Any,
    selection: Selection,
    options: Options,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> CloneResult:
    """ddb.clone: the clone key from the environment or the state root's 0600 file, progress by items written."""
    from ops.anonymise import load_key
    from ops.target import state_root

    bar: list[Callable[[int], None]] = []

    def on_progress(stage: str, n: int) -> None:
        if progress is None:
            return
        if stage == "total":
            bar.append(progress(n))
        elif bar:
            bar[0](n)

    key = load_key(state_root()) if options.anonymise else b""
    return clone(source, target, selection, options, key, on_progress=on_progress)
