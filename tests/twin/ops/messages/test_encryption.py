"""Encrypted conversations on the twin's moto server (DynamoDB, Streams and KMS): what is stored, what reads back,
what fails."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from ops import doctor, migrate, seed
from ops.crypto import MessageCipher
from ops.errors import EncryptionError
from ops.local.streams import process_stream
from ops.messages import bodies
from ops.messages.model import GSI_NAME, GroupKey, Message, group_uuid_for, row_sort_key
from ops.messages.read import get_conversation, iter_messages_newest_first, list_conversations
from ops.messages.send import send_message
from ops.seed import SeedItems
from tests.support.kms import KmsCalls, new_key
from tests.support.lambda_package import lambda_package, run_in_package
from tests.support.original_backend import OriginalBackend
from tests.support.streams import person, stream_records

CONVERSATION = seed.parse_conversation(seed.DEFAULT_CONVERSATION)


@pytest.fixture(scope="module")
def key_alias(twin: Any) -> str:
    return new_key(twin.client("kms"))


@pytest.fixture
def cipher(twin: Any, key_alias: str) -> MessageCipher:
    """The writer's cipher, as a task of a stack with encryptMessages builds it."""
    return MessageCipher(twin.client("kms"), key_alias)


def _reader(twin: Any, key_alias: str) -> tuple[MessageCipher, KmsCalls]:
    """A cipher of another process: an empty data-key cache, its KMS requests counted."""
    kms = KmsCalls(twin.client("kms"))
    return MessageCipher(kms.client, key_alias), kms


def _raw(ddb: Any, table: str) -> list[dict[str, Any]]:
    return [
        i for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True) for i in page["Items"]
    ]


def _stored_bytes(items: list[dict[str, Any]]) -> bytes:
    """Every attribute value of every item, as one byte string to search for text in."""
    return json.dumps(items, default=lambda b: b.hex() + b.decode("latin-1")).encode()


def _seeded(ddb: Any, table: str, cipher: MessageCipher, lines: int | None = None) -> tuple[SeedItems, Any, Any]:
    ada, bram = person("ada"), person("bram")
    conv = (
        CONVERSATION
        if lines is None
        else CONVERSATION.__class__(
            CONVERSATION.path,
            CONVERSATION.start,
            CONVERSATION.spacing,
            tuple(CONVERSATION.lines[i % len(CONVERSATION.lines)] for i in range(lines)),
        )
    )
    built = seed.build(conv, ada, bram)
    seed.seed(ddb, table, built, cipher=cipher)
    return built, ada, bram


def _message_item(ddb: Any, table: str, m: Message) -> dict[str, Any]:
    return ddb.get_item(
        TableName=table,
        Key={"pk": {"S": f"MSG#{m.message_group_uuid}"}, "sk": {"S": m.created_at}},
        ConsistentRead=True,
    )["Item"]


# ---------------------------------------------------------------- round trips


def test_seed_send_list_and_get_read_back_in_order_while_the_table_holds_no_text(
    twin: Any, ddb: Any, streams: Any, table: str, cipher: MessageCipher, key_alias: str, tmp_path: Path
) -> None:
    # GIVEN a seeded conversation and two replies, sealed, with the consumer run over the stream
    built, ada, bram = _seeded(ddb, table, cipher)
    send_message(ddb, table, bram, "a reply nobody else reads", receiver=ada, cipher=cipher)
    send_message(ddb, table, ada, "and its answer", group_uuid=built.group_uuid, cipher=cipher)
    process_stream(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json")
    texts = [text for _, text in CONVERSATION.lines] + ["a reply nobody else reads", "and its answer"]

    # WHEN another process reads both patterns
    reader, _ = _reader(twin, key_alias)
    read = [m.message for m in iter_messages_newest_first(ddb, table, built.group_uuid, page_size=7, cipher=reader)][
        ::-1
    ]
    [row] = list_conversations(ddb, table, ada.uuid, cipher=reader).items

    # THEN the text is all there, in order, and the last message is on the row
    assert read == texts
    assert (row.message, row.user_handle) == ("and its answer", bram.handle)
    # AND nothing stored holds a message's text: no `message` attribute, no text in any value
    items = _raw(ddb, table)
    stored = _stored_bytes(items)
    assert not [i for i in items if i["pk"]["S"][:4] in ("MSG#", "GRP#") and "message" in i]
    assert not [t for t in set(texts) if t.encode() in stored and len(t) > 3]
    # AND the group's one key item holds the key every body carries
    [key] = [GroupKey.from_item(i) for i in items if GroupKey.matches(i)]
    assert key.group == built.group_uuid and key.kms_key_id.startswith("arn:aws:kms:")
    assert {bytes(i["message_key"]["B"]) for i in items if "message_sealed" in i} == {key.message_key}


def test_a_new_pairs_group_is_created_with_its_key_and_its_rows_carry_the_messages_ciphertext(
    ddb: Any, table: str, cipher: MessageCipher
) -> None:
    ada, bram = person("ada"), person("bram")
    sent = send_message(ddb, table, ada, "the very first secret", receiver=bram, cipher=cipher)
    items = _raw(ddb, table)
    [message] = [i for i in items if i["pk"]["S"].startswith("MSG#") and i["sk"]["S"] != "KEY"]
    rows = [i for i in items if i["pk"]["S"].startswith("GRP#")]
    assert [GroupKey.from_item(i).group for i in items if GroupKey.matches(i)] == [sent.group_uuid]
    assert len(rows) == 2 and all(
        r["message_sealed"] == message["message_sealed"] and r["message_uuid"] == message["message_uuid"] for r in rows
    )
    assert list_conversations(ddb, table, bram.uuid, cipher=cipher).items[0].message == "the very first secret"


def test_the_consumer_copies_sealed_bodies_without_a_key_from_its_lambda_package(
    twin: Any, ddb: Any, streams: Any, lambda_env: str, cipher: MessageCipher, tmp_path: Path
) -> None:
    # GIVEN a group with a sealed reply whose rows still carry the first message
    table = lambda_env
    ada, bram = person("ada"), person("bram")
    group = send_message(ddb, table, ada, "first", receiver=bram, cipher=cipher).group_uuid
    reply = send_message(ddb, table, bram, "moved without a key", receiver=ada, cipher=cipher)
    event = {"Records": stream_records(streams, ddb, table)}  # Lambda's shape: binary values as base64 text

    # WHEN the handler runs from the Lambda's files alone, with neither cryptography nor ops.crypto importable
    code = (
        "import importlib.abc, json\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'cryptography' or name == 'ops.crypto': raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from ops.messages.consumer import handler\n"
        "print(json.dumps(handler(json.loads(sys.stdin.read()), None)))"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        in (
            "TABLE_NAME",
            "GSI_NAME",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        )
    }
    proc = run_in_package(
        lambda_package(tmp_path), code, env | {"AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:9"}, stdin=json.dumps(event)
    )

    # THEN every record succeeds and both rows carry the reply's ciphertext byte for byte, and no text
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    stored = _message_item(ddb, table, reply.message)
    rows = [i for i in _raw(ddb, table) if i.get("message_group_uuid", {}).get("S") == group]
    assert len(rows) == 2 and all(r["sk"]["S"] == row_sort_key(reply.message.created_at, group) for r in rows)
    assert all(
        (r["message_sealed"], r["message_key"], r["message_uuid"])
        == (stored["message_sealed"], stored["message_key"], stored["message_uuid"])
        for r in rows
    )
    assert all("message" not in r for r in rows), "the first message's plain text does not linger: it was never there"
    assert list_conversations(ddb, table, ada.uuid, cipher=cipher).items[0].message == "moved without a key"


# ---------------------------------------------------------------- what does not open


def _sealed_pair(ddb: Any, table: str, cipher: MessageCipher) -> tuple[Message, Message]:
    ada, bram = person("ada"), person("bram")
    first = send_message(ddb, table, ada, "first secret", receiver=bram, cipher=cipher).message
    second = send_message(ddb, table, bram, "second secret", receiver=ada, cipher=cipher).message
    return first, second


def _flip_a_byte(item: dict[str, Any], other: dict[str, Any], foreign_key: bytes) -> dict[str, Any]:
    sealed = bytearray(item["message_sealed"]["B"])
    sealed[-5] ^= 0x40
    return item | {"message_sealed": {"B": bytes(sealed)}}


TAMPERING = {
    "a changed byte of the body": (_flip_a_byte, "its body does not authenticate"),
    "the body of another message": (
        lambda item, other, _: item | {"message_sealed": other["message_sealed"]},
        "its body does not authenticate",
    ),
    "another message uuid (its associated data)": (
        lambda item, other, _: item | {"message_uuid": other["message_uuid"]},
        "its body does not authenticate",
    ),
    "the data key of another group": (
        lambda item, other, key: item | {"message_key": {"B": key}},
        "its data key does not open for this table and group",
    ),
}


@pytest.mark.parametrize("change", list(TAMPERING))
def test_a_tampered_body_or_associated_data_fails_with_one_line_naming_the_group_and_message(
    twin: Any, ddb: Any, table: str, cipher: MessageCipher, key_alias: str, change: str
) -> None:
    # GIVEN two sealed messages of one group and the key of another group
    first, second = _sealed_pair(ddb, table, cipher)
    foreign = cipher.new_group_key(table, "00000000-0000-4000-8000-000000000000")
    alter, reason = TAMPERING[change]
    stored, other = _message_item(ddb, table, second), _message_item(ddb, table, first)

    # WHEN the second message's stored item is altered
    ddb.put_item(TableName=table, Item=alter(stored, other, foreign))

    # THEN reading the conversation (in a fresh process) fails, naming it; the untouched message still reads
    reader, _ = _reader(twin, key_alias)
    uuid = other["message_uuid"]["S"] if change.startswith("another message uuid") else second.message_uuid
    with pytest.raises(EncryptionError) as err:
        get_conversation(ddb, table, second.message_group_uuid, cipher=reader)
    assert (
        str(err.value)
        == f"message {uuid} of group {second.message_group_uuid} cannot be read: {reason}"
        + str(err.value).partition(reason)[2]
    )
    assert "\n" not in str(err.value) and "secret" not in str(err.value)
    assert (
        get_conversation(ddb, table, first.message_group_uuid, page_size=1, before=second.created_at, cipher=reader)
        .items[0]
        .message
        == "first secret"
    )


def test_a_sealed_body_read_without_a_cipher_is_refused_by_name(ddb: Any, table: str, cipher: MessageCipher) -> None:
    first, _ = _sealed_pair(ddb, table, cipher)
    with pytest.raises(EncryptionError, match=f"of group {first.message_group_uuid} is encrypted"):
        get_conversation(ddb, table, first.message_group_uuid)


# ---------------------------------------------------------------- KMS requests


def test_a_page_of_100_costs_one_decrypt_per_group_and_later_pages_none(
    twin: Any, ddb: Any, streams: Any, table: str, cipher: MessageCipher, key_alias: str, tmp_path: Path
) -> None:
    # GIVEN a 250-message group, and a user with three groups
    built, ada, bram = _seeded(ddb, table, cipher, lines=250)
    for name in ("chidi", "dana"):
        send_message(ddb, table, ada, f"hello {name}", receiver=person(name), cipher=cipher)
    process_stream(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json")

    # WHEN a fresh reader pages through the group, 100 a page
    reader, kms = _reader(twin, key_alias)
    page = get_conversation(ddb, table, built.group_uuid, page_size=100, cipher=reader)
    # THEN the first page costs one Decrypt, and the next two none
    assert len(page.items) == 100 and kms.calls == {"Decrypt": 1}
    rest = get_conversation(ddb, table, built.group_uuid, page_size=100, cursor=page.next_cursor, cipher=reader)
    get_conversation(ddb, table, built.group_uuid, page_size=100, cursor=rest.next_cursor, cipher=reader)
    assert kms.calls == {"Decrypt": 1}

    # AND a fresh reader listing the three groups costs one Decrypt per group
    reader, kms = _reader(twin, key_alias)
    assert len(list_conversations(ddb, table, ada.uuid, page_size=100, cipher=reader).items) == 3
    assert kms.calls == {"Decrypt": 3}


def test_seeding_makes_one_data_key_and_reseeding_none(twin: Any, ddb: Any, table: str, key_alias: str) -> None:
    writer, kms = _reader(twin, key_alias)
    built, _, _ = _seeded(ddb, table, writer)
    assert kms.calls == {"GenerateDataKey": 1}
    again, kms = _reader(twin, key_alias)
    seed.seed(ddb, table, built, cipher=again)
    assert kms.calls == {"Decrypt": 1}, "the group's key item is read and opened once, not made again"
    assert len([i for i in _raw(ddb, table) if GroupKey.matches(i)]) == 1


# ---------------------------------------------------------------- mixed tables, the migration and the doctor


def test_a_mixed_table_reads_plain_and_sealed_messages_and_rows_follow_the_newest_body(
    ddb: Any, streams: Any, table: str, cipher: MessageCipher, tmp_path: Path
) -> None:
    # GIVEN a group the original backend made (plain text, no key item), then a sealed reply, then a plain one again
    ada, bram = person("ada"), person("bram")
    old = OriginalBackend(
        ddb, table, offset_hours=0
    )  # a host in UTC: its keys sort among ours (other offsets are the doctor's finding)
    group = old.create_message_group(ada, bram, "written before encryption")
    send_message(ddb, table, bram, "sealed reply", receiver=ada, cipher=cipher)
    process_stream(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json")
    rows = [i for i in _raw(ddb, table) if i.get("message_group_uuid", {}).get("S") == group]
    assert all("message_sealed" in r and "message" not in r for r in rows), (
        "a row taking a sealed body keeps none of the plain one"
    )

    old.create_message(group, ada, "plain again, from the old app")
    process_stream(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json")

    # WHEN it is read
    page = get_conversation(ddb, table, group, cipher=cipher)
    # THEN both kinds read, in order, and the rows carry the newest (plain) body only
    assert [m.message for m in page.items] == [
        "written before encryption",
        "sealed reply",
        "plain again, from the old app",
    ]
    rows = [i for i in _raw(ddb, table) if i.get("message_group_uuid", {}).get("S") == group]
    assert all(
        r["message"]["S"] == "plain again, from the old app"
        and not {"message_sealed", "message_key", "message_uuid"} & set(r)
        for r in rows
    )


def test_the_migration_seals_every_plain_body_once_and_a_second_run_changes_nothing(
    twin: Any, ddb: Any, streams: Any, table: str, cipher: MessageCipher, key_alias: str, tmp_path: Path
) -> None:
    # GIVEN plain groups of the original backend and of this suite before encryption, and one sealed group
    old = OriginalBackend(ddb, table)
    pairs = [(person(f"a{i}"), person(f"b{i}")) for i in range(4)]
    plain_groups = [old.create_message_group(a, b, f"old hello {i}") for i, (a, b) in enumerate(pairs[:2])]
    plain_groups.append(send_message(ddb, table, pairs[2][0], "plain from us", receiver=pairs[2][1]).group_uuid)
    send_message(ddb, table, pairs[2][1], "plain reply", receiver=pairs[2][0])
    sealed_group = send_message(
        ddb, table, pairs[3][0], "already sealed", receiver=pairs[3][1], cipher=cipher
    ).group_uuid
    process_stream(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json")
    before = {
        g: [m.message for m in get_conversation(ddb, table, g, cipher=cipher).items]
        for g in [*plain_groups, sealed_group]
    }
    found = doctor.examine(ddb, table, cipher=cipher)
    assert {f.kind: f.count for f in found.findings}.get("plain-text-bodies") == 10  # 4 messages, 6 rows
    assert "old hello" not in json.dumps(found.to_dict()), "the doctor names items, never their text"

    # WHEN the migration runs (a dry run first), then again
    dry = migrate.run(ddb, table, "encrypt-messages", tmp_path, "twin", dry_run=True, cipher=cipher)
    assert dict(dry.changed) == {"would encrypt a message": 4, "would encrypt a group row": 6}
    assert not [i for i in _raw(ddb, table) if GroupKey.matches(i) and GroupKey.from_item(i).group in plain_groups], (
        "a dry run makes no key"
    )
    first = migrate.run(ddb, table, "encrypt-messages", tmp_path, "twin", cipher=cipher, segments=2)
    second = migrate.run(ddb, table, "encrypt-messages", tmp_path, "twin", cipher=cipher, segments=2)

    # THEN every plain body was sealed once, the text reads the same, and nothing is left to do
    assert dict(first.changed) == {"encrypted a message": 4, "encrypted a group row": 6}
    items = _raw(ddb, table)
    assert (
        dict(second.changed) == {} and second.scanned == len(items) == first.scanned + 3
    )  # the three key items the first run made
    assert not [i for i in items if i["pk"]["S"][:4] in ("MSG#", "GRP#") and "message" in i]
    assert sorted(GroupKey.from_item(i).group for i in items if GroupKey.matches(i)) == sorted(
        [*plain_groups, sealed_group]
    )
    reader, _ = _reader(twin, key_alias)
    assert {g: [m.message for m in get_conversation(ddb, table, g, cipher=reader).items] for g in before} == before
    assert {r.message for r in list_conversations(ddb, table, pairs[2][1].uuid, cipher=reader).items} == {"plain reply"}
    left = {f.kind for f in doctor.examine(ddb, table, cipher=reader).findings}
    assert (
        not {"plain-text-bodies", "unreadable-bodies"} & left
    )  # the old app's keys and missing pair entries are other findings


def test_the_migration_leaves_an_item_that_changed_since_it_was_read(
    ddb: Any, table: str, cipher: MessageCipher
) -> None:
    ada, bram = person("ada"), person("bram")
    sent = send_message(ddb, table, ada, "as first written", receiver=bram)
    read_earlier = _message_item(ddb, table, sent.message)
    ddb.update_item(
        TableName=table,
        Key={"pk": read_earlier["pk"], "sk": read_earlier["sk"]},
        UpdateExpression="SET message = :m",
        ExpressionAttributeValues={":m": {"S": "edited meanwhile"}},
    )
    step = migrate.MIGRATIONS["encrypt-messages"](cipher)
    assert step(ddb, table, read_earlier, False) == "left a message that changed meanwhile (run again)"
    assert _message_item(ddb, table, sent.message)["message"] == {"S": "edited meanwhile"}


def test_the_migration_needs_a_stack_that_encrypts(ddb: Any, table: str, twin: Any, tmp_path: Path) -> None:
    from ops.errors import ConfigError

    with pytest.raises(ConfigError, match="encryptMessages"):
        migrate.run(ddb, table, "encrypt-messages", tmp_path, "twin", cipher=MessageCipher(twin.client("kms"), None))


def test_the_doctor_names_bodies_that_do_not_open_and_plain_ones_only_where_the_stack_encrypts(
    twin: Any, ddb: Any, table: str, cipher: MessageCipher
) -> None:
    first, second = _sealed_pair(ddb, table, cipher)
    stored = _message_item(ddb, table, second)
    ddb.put_item(TableName=table, Item=stored | {"message_sealed": _message_item(ddb, table, first)["message_sealed"]})
    OriginalBackend(ddb, table).create_message_group(person("c"), person("d"), "plain")

    found = {f.kind: f for f in doctor.examine(ddb, table, cipher=cipher).findings}
    assert found["unreadable-bodies"].count == 1 and found["unreadable-bodies"].examples[0]["sk"] == second.created_at
    assert "does not authenticate" in found["unreadable-bodies"].examples[0]["error"]
    assert found["plain-text-bodies"].count == 3
    on_a_plain_stack = {
        f.kind for f in doctor.examine(ddb, table, cipher=MessageCipher(twin.client("kms"), None)).findings
    }
    assert "plain-text-bodies" not in on_a_plain_stack and "unreadable-bodies" in on_a_plain_stack


# ---------------------------------------------------------------- a race


def test_two_first_messages_at_once_seal_under_one_key_per_group(
    isolated_moto: Any, isolated_table: str, tmp_path: Path
) -> None:
    table, ddb = isolated_table, isolated_moto.client("dynamodb")
    alias = new_key(isolated_moto.client("kms"))
    pairs = [(person("ada"), person("bram")) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2 * len(pairs))

    def send(i: int, side: int) -> None:
        a, b = pairs[i] if side == 0 else pairs[i][::-1]
        try:
            barrier.wait(timeout=30)
            send_message(
                isolated_moto.client("dynamodb"),
                table,
                a,
                f"first from {a.handle}",
                receiver=b,
                cipher=MessageCipher(isolated_moto.client("kms"), alias),
            )
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=send, args=(i, side)) for i in range(len(pairs)) for side in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors

    reader = MessageCipher(isolated_moto.client("kms"), alias)
    items = _raw(ddb, table)
    keys = {k.group: k.message_key for k in (GroupKey.from_item(i) for i in items if GroupKey.matches(i))}
    assert sorted(keys) == sorted(group_uuid_for(a.uuid, b.uuid) for a, b in pairs)
    sealed = [i for i in items if "message_sealed" in i]
    assert len(sealed) == 4 * len(pairs) and all(
        bytes(i["message_key"]["B"])
        == keys[i["pk"]["S"][4:] if i["pk"]["S"].startswith("MSG#") else i["message_group_uuid"]["S"]]
        for i in sealed
    ), "every body of a group carries the group's one key"
    for a, b in pairs:
        texts = sorted(
            m.message or "" for m in get_conversation(ddb, table, group_uuid_for(a.uuid, b.uuid), cipher=reader).items
        )
        assert texts == sorted([f"first from {a.handle}", f"first from {b.handle}"]), (
            "the loser sealed under the winner's key"
        )


def test_items_keep_their_shape_for_the_rest_of_the_model(ddb: Any, table: str, cipher: MessageCipher) -> None:
    ada, bram = person("ada"), person("bram")
    sent = send_message(ddb, table, ada, "shape", receiver=bram, cipher=cipher)
    item = _message_item(ddb, table, sent.message)
    assert set(item) == {
        "pk",
        "sk",
        "message_uuid",
        "user_uuid",
        "user_display_name",
        "user_handle",
        bodies.SEALED,
        bodies.KEY,
    }
    assert Message.from_item(item).message is None and Message.from_item(cipher.open(table, item)).message == "shape"
