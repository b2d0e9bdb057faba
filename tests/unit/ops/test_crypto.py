"""ops.crypto: the sealed body's format, its binding to group and message, and the data-key cache (KMS from moto in
process)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops import crypto
from ops.errors import EncryptionError
from ops.key_spec import encryption_context
from ops.messages import bodies
from ops.messages.model import GroupKey, Message
from tests.support.kms import KmsCalls

KEY = bytes(range(32))
GROUP, OTHER_GROUP = "g-1", "g-2"
TABLE = "t"


def _message(uuid: str = "m-1", text: str = "hello Bram", group: str = GROUP) -> dict[str, Any]:
    return Message(group, "2026-01-05T09:00:00.000000+00:00", uuid, text, "u-ada", "Ada", "ada").to_item()


@pytest.fixture
def kms() -> Iterator[KmsCalls]:
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key = client.create_key(Description="test")["KeyMetadata"]["KeyId"]
        client.create_alias(AliasName="alias/test-messages", TargetKeyId=key)
        yield KmsCalls(client)


# ---------------------------------------------------------------- the format


def test_a_sealed_body_is_version_nonce_then_ciphertext_and_tag() -> None:
    sealed = crypto.seal_text(KEY, "hello", GROUP, "m-1")
    assert sealed[0] == crypto.FORMAT_V1
    assert len(sealed) == 1 + crypto.NONCE_BYTES + len(b"hello") + crypto.TAG_BYTES
    assert b"hello" not in sealed
    assert crypto.open_text(KEY, sealed, GROUP, "m-1") == "hello"


def test_every_seal_draws_a_fresh_nonce() -> None:
    sealed = [crypto.seal_text(KEY, "same text", GROUP, "m-1") for _ in range(200)]
    nonces = {s[1 : 1 + crypto.NONCE_BYTES] for s in sealed}
    assert len(nonces) == 200 and len(set(sealed)) == 200


@pytest.mark.parametrize(("group", "uuid"), [(OTHER_GROUP, "m-1"), (GROUP, "m-2")])
def test_the_associated_data_binds_the_body_to_its_group_and_message(group: str, uuid: str) -> None:
    sealed = crypto.seal_text(KEY, "hello", GROUP, "m-1")
    with pytest.raises(crypto.BodyError, match="does not authenticate"):
        crypto.open_text(KEY, sealed, group, uuid)


@pytest.mark.parametrize("where", [0 + 1, 1 + crypto.NONCE_BYTES, -1])
def test_any_changed_byte_of_nonce_ciphertext_or_tag_fails(where: int) -> None:
    sealed = bytearray(crypto.seal_text(KEY, "hello", GROUP, "m-1"))
    sealed[where] ^= 0x01
    with pytest.raises(crypto.BodyError, match="does not authenticate"):
        crypto.open_text(KEY, bytes(sealed), GROUP, "m-1")


def test_an_unknown_version_or_a_truncated_body_says_so() -> None:
    sealed = crypto.seal_text(KEY, "hello", GROUP, "m-1")
    with pytest.raises(crypto.BodyError, match="format version 2"):
        crypto.open_text(KEY, b"\x02" + sealed[1:], GROUP, "m-1")
    with pytest.raises(crypto.BodyError, match="truncated"):
        crypto.open_text(KEY, sealed[:20], GROUP, "m-1")
    with pytest.raises(crypto.BodyError, match="empty"):
        crypto.open_text(KEY, b"", GROUP, "m-1")


# ---------------------------------------------------------------- the cipher with KMS


def test_seal_and_open_round_trip_and_the_stored_item_has_no_text(kms: KmsCalls) -> None:
    cipher = crypto.MessageCipher(kms.client, "alias/test-messages")
    blob = cipher.new_group_key(TABLE, GROUP)
    item = cipher.seal(None, TABLE, _message(text="secret plans"), key=blob)
    assert set(item) - {"pk", "sk", "message_uuid", "user_uuid", "user_display_name", "user_handle"} == {
        bodies.SEALED,
        bodies.KEY,
    }
    assert b"secret plans" not in item[bodies.SEALED]["B"] and item[bodies.KEY]["B"] == blob
    assert Message.from_item(cipher.open(TABLE, item)).message == "secret plans"
    # a fresh cipher (another process) opens it through KMS with the table and group as context
    assert crypto.MessageCipher(kms.client, "alias/test-messages").open(TABLE, item)["message"] == {"S": "secret plans"}


def test_a_page_of_one_group_costs_one_decrypt_and_a_second_group_one_more(kms: KmsCalls) -> None:
    writer = crypto.MessageCipher(kms.client, "alias/test-messages")
    keys = {g: writer.new_group_key(TABLE, g) for g in (GROUP, OTHER_GROUP)}
    items = [
        writer.seal(None, TABLE, _message(f"m-{i}", f"text {i}", g), key=keys[g])
        for g in (GROUP, OTHER_GROUP)
        for i in range(100)
    ]
    reader = crypto.MessageCipher(kms.client, "alias/test-messages")
    kms.calls.clear()
    assert [reader.open(TABLE, i)["message"]["S"] for i in items[:100]] == [f"text {i}" for i in range(100)]
    assert kms.calls == {"Decrypt": 1}
    [reader.open(TABLE, i) for i in items]
    assert kms.calls == {"Decrypt": 2}


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(kms: KmsCalls) -> None:
    writer = crypto.MessageCipher(kms.client, "alias/test-messages")
    items = [
        writer.seal(None, TABLE, _message(text=g, group=g), key=writer.new_group_key(TABLE, g)) for g in ("a", "b", "c")
    ]
    reader = crypto.MessageCipher(kms.client, "alias/test-messages", cache_size=2)
    kms.calls.clear()
    for item in (*items, items[2], items[0]):  # a, b, c (a goes), c (cached), a (again from KMS)
        reader.open(TABLE, item)
    assert kms.calls == {"Decrypt": 4}


def test_a_key_of_another_group_or_table_does_not_open_and_the_error_names_the_message(kms: KmsCalls) -> None:
    cipher = crypto.MessageCipher(kms.client, "alias/test-messages")
    other_key = cipher.new_group_key(TABLE, OTHER_GROUP)
    moved = cipher.seal(None, TABLE, _message("m-7"), key=cipher.new_group_key(TABLE, GROUP)) | {
        bodies.KEY: {"B": other_key}
    }
    fresh = crypto.MessageCipher(kms.client, "alias/test-messages")
    with pytest.raises(
        EncryptionError,
        match=r"^message m-7 of group g-1 cannot be read: its data key does not open for this table and group",
    ):
        fresh.open(TABLE, moved)
    sealed = cipher.seal(None, TABLE, _message("m-8"), key=cipher.new_group_key(TABLE, GROUP))
    with pytest.raises(EncryptionError, match="message m-8 of group g-1"):
        crypto.MessageCipher(kms.client, "alias/test-messages").open("another-table", sealed)


def test_a_body_moved_to_another_message_of_the_same_group_fails_clearly(kms: KmsCalls) -> None:
    cipher = crypto.MessageCipher(kms.client, "alias/test-messages")
    blob = cipher.new_group_key(TABLE, GROUP)
    first, second = (
        cipher.seal(None, TABLE, _message(u, t), key=blob) for u, t in (("m-1", "first"), ("m-2", "second"))
    )
    swapped = second | {bodies.SEALED: first[bodies.SEALED]}
    with pytest.raises(
        EncryptionError, match="message m-2 of group g-1 cannot be read: its body does not authenticate"
    ):
        cipher.open(TABLE, swapped)


def test_a_missing_key_is_a_clear_error_not_a_traceback(kms: KmsCalls) -> None:
    cipher = crypto.MessageCipher(kms.client, "alias/test-messages")
    sealed = cipher.seal(None, TABLE, _message("m-3"), key=cipher.new_group_key(TABLE, GROUP))
    kms.client.delete_alias(
        AliasName="alias/test-messages"
    )  # moto does not refuse a disabled key; a missing one it does
    with pytest.raises(
        EncryptionError,
        match="message m-3 of group g-1 cannot be read: the KMS key alias/test-messages is missing, disabled",
    ):
        crypto.MessageCipher(kms.client, "alias/test-messages").open(TABLE, sealed)
    with pytest.raises(EncryptionError, match="group g-9: the KMS key alias/test-messages is missing, disabled"):
        crypto.MessageCipher(kms.client, "alias/test-messages").new_group_key(TABLE, "g-9")


def test_a_key_from_another_kms_key_is_refused_when_the_stack_names_its_own(kms: KmsCalls) -> None:
    stranger = kms.client.create_key(Description="someone else's")["KeyMetadata"]["KeyId"]
    foreign = crypto.MessageCipher(kms.client, stranger)
    sealed = foreign.seal(None, TABLE, _message("m-4"), key=foreign.new_group_key(TABLE, GROUP))
    with pytest.raises(EncryptionError, match="message m-4 of group g-1 cannot be read"):
        crypto.MessageCipher(kms.client, "alias/test-messages").open(TABLE, sealed)


def test_the_data_key_is_made_with_the_table_and_group_as_context(kms: KmsCalls) -> None:
    blob = crypto.MessageCipher(kms.client, "alias/test-messages").new_group_key(TABLE, GROUP)
    assert (
        len(kms.client.decrypt(CiphertextBlob=blob, EncryptionContext=encryption_context(TABLE, GROUP))["Plaintext"])
        == 32
    )
    with pytest.raises(kms.client.exceptions.InvalidCiphertextException):
        kms.client.decrypt(CiphertextBlob=blob, EncryptionContext=encryption_context(TABLE, OTHER_GROUP))


def test_a_plain_text_cipher_seals_nothing_but_still_opens(kms: KmsCalls) -> None:
    sealed = (c := crypto.MessageCipher(kms.client, "alias/test-messages")).seal(
        None, TABLE, _message(), key=c.new_group_key(TABLE, GROUP)
    )
    plain = crypto.MessageCipher(kms.client, None)
    assert not plain.encrypting
    assert plain.open(TABLE, sealed)["message"] == {"S": "hello Bram"}
    with pytest.raises(EncryptionError, match="plain text"):
        plain.new_group_key(TABLE, GROUP)


def test_a_sealed_body_without_a_cipher_is_refused_by_name() -> None:
    item = _message("m-5") | {bodies.SEALED: {"B": b"\x01" + os.urandom(40)}, bodies.KEY: {"B": b"k"}}
    del item["message"]
    with pytest.raises(EncryptionError, match="message m-5 of group g-1 is encrypted"):
        bodies.readable(None, TABLE, item)


def test_a_group_row_names_its_owner_and_last_message_in_errors() -> None:
    row = {
        "pk": {"S": "GRP#u-ada"},
        "sk": {"S": "2026"},
        "message_group_uuid": {"S": GROUP},
        bodies.SEALED: {"B": b"\x01"},
        bodies.UUID: {"S": "m-6"},
    }
    assert bodies.describe(row) == "the group row of u-ada (last message m-6) of group g-1"


def test_the_key_item_maps_both_ways_and_is_not_a_message() -> None:
    key = GroupKey(GROUP, b"\x00blob", "2026-01-05T09:00:00.000000+00:00", "arn:aws:kms:us-east-1:1:key/k")
    item = key.to_item()
    assert item["pk"] == {"S": "MSG#g-1"} and item["sk"] == {"S": "KEY"} and "message_group_uuid" not in item
    assert GroupKey.from_item(item) == key and GroupKey.matches(item) and not Message.matches(item)
