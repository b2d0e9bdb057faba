"""ops.messages.model: each item kind maps to DynamoDB and back from one declaration."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ops.messages.model import (
    NEVER,
    TIME_CEILING,
    GroupRow,
    LegacyPairMarker,
    Message,
    PairEntry,
    Person,
    group_rows_for,
    iso,
    key_instant_or_never,
    key_time,
    pair_entry_for,
)

ADA = Person("11111111-1111-4111-8111-111111111111", "Ada Okafor", "ada")
BRAM = Person("22222222-2222-4222-8222-222222222222", "Bram Lindqvist", "bram")
MSG = Message("g-1", "2026-01-05T09:00:00.000000+00:00", "m-1", "hi", ADA.uuid, ADA.display_name, ADA.handle)


def test_a_message_item_has_the_data_models_keys_and_no_group_attribute() -> None:
    item = MSG.to_item()
    assert item["pk"] == {"S": "MSG#g-1"} and item["sk"] == {"S": MSG.created_at}
    # no message_group_uuid on messages: that keeps them out of the group index
    assert set(item) == {"pk", "sk", "message_uuid", "message", "user_uuid", "user_display_name", "user_handle"}


@pytest.mark.parametrize(
    "kind",
    [
        MSG,
        *group_rows_for("g-1", ADA, BRAM, MSG),
        pair_entry_for("g-1", BRAM, ADA, MSG.created_at),
        LegacyPairMarker("g-2", MSG.created_at, (ADA.uuid, BRAM.uuid)),
    ],
)
def test_every_kind_reads_back_what_it_wrote(kind: Message | GroupRow | PairEntry | LegacyPairMarker) -> None:
    assert type(kind).from_item(kind.to_item()) == kind
    assert type(kind).matches(kind.to_item())


def test_group_rows_name_the_other_participant() -> None:
    mine, theirs = group_rows_for("g-1", ADA, BRAM, MSG)
    assert mine.to_item()["pk"] == {"S": f"GRP#{ADA.uuid}"} and mine.user_handle == "bram"
    assert theirs.to_item()["pk"] == {"S": f"GRP#{BRAM.uuid}"} and theirs.user_handle == "ada"


def test_the_pair_entry_is_keyed_by_both_users_in_either_order_and_stays_out_of_the_group_index() -> None:
    item = pair_entry_for("g-1", BRAM, ADA, MSG.created_at).to_item()
    assert item["pk"] == {"S": f"PAIR#{ADA.uuid}#{BRAM.uuid}"} and item["sk"] == {"S": "PAIR"}
    assert (
        PairEntry.key_of(BRAM.uuid, ADA.uuid)
        == PairEntry.key_of(ADA.uuid, BRAM.uuid)
        == {"pk": item["pk"], "sk": item["sk"]}
    )
    assert "message_group_uuid" not in item and item["group_uuid"] == {"S": "g-1"}
    assert item["participant_uuids"] == {"SS": sorted([ADA.uuid, BRAM.uuid])}


def test_a_legacy_marker_and_a_pair_entry_are_told_apart() -> None:
    entry = pair_entry_for("g-1", BRAM, ADA, MSG.created_at).to_item()
    legacy = LegacyPairMarker("g-1", MSG.created_at, (ADA.uuid, BRAM.uuid)).to_item()
    assert PairEntry.matches(entry) and not LegacyPairMarker.matches(entry)
    assert LegacyPairMarker.matches(legacy) and not PairEntry.matches(legacy)


def test_an_item_missing_an_attribute_names_it() -> None:
    item = MSG.to_item()
    del item["user_handle"]
    with pytest.raises(KeyError, match="user_handle"):
        Message.from_item(item)


def test_kinds_tell_their_items_apart() -> None:
    assert not Message.matches(GroupRow.from_item(group_rows_for("g-1", ADA, BRAM, MSG)[0].to_item()).to_item())
    assert not PairEntry.matches({"pk": {"S": "PAIR#x#y"}, "sk": {"S": "other"}})


# ---------------------------------------------------------------- the group row's key


def _row(owner: str, at: str, group: str) -> GroupRow:
    return GroupRow(owner, at, group, "hi", BRAM.uuid, BRAM.display_name, BRAM.handle)


def test_a_group_rows_key_is_its_time_then_its_group() -> None:
    row = _row(ADA.uuid, MSG.created_at, "g-1")
    assert row.key() == {"pk": {"S": f"GRP#{ADA.uuid}"}, "sk": {"S": f"{MSG.created_at}#g-1"}}
    assert row.key()["sk"]["S"].startswith("2026")  # the original reader's begins_with(sk, year) still finds it
    back = GroupRow.from_item(row.to_item())
    assert back.last_reply_at == MSG.created_at and not back.old_shape and back.stored_key() == row.key()
    assert "stored_sk" not in row.to_item() and "stored_sk" not in back.to_item()


def test_an_old_shape_row_reads_with_its_time_and_is_deleted_by_the_key_it_is_stored_under() -> None:
    # the original backend (and earlier versions) keyed a row by the bare time
    item = _row(ADA.uuid, MSG.created_at, "g-1").to_item() | {"sk": {"S": MSG.created_at}}
    old = GroupRow.from_item(item)
    assert old.last_reply_at == MSG.created_at and old.old_shape
    assert old.stored_key()["sk"] == {"S": MSG.created_at} and old.key()["sk"] == {"S": f"{MSG.created_at}#g-1"}
    # a key carrying another group's id is no row of this group's key either
    assert GroupRow.from_item(item | {"sk": {"S": f"{MSG.created_at}#g-2"}}).old_shape


def test_key_time_reads_both_shapes_and_message_keys() -> None:
    assert key_time(f"{MSG.created_at}#g-1") == key_time(MSG.created_at) == MSG.created_at
    assert key_instant_or_never("not a time#g-1") == NEVER


def test_any_groups_of_an_owner_with_equal_instants_get_distinct_keys_in_time_order() -> None:
    """Property, over many random draws: distinct groups never share a key; key order is time order."""
    rnd = random.Random(19)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(200):
        instants = [iso(base + timedelta(microseconds=rnd.randrange(3))) for _ in range(rnd.randint(2, 12))]
        rows = [_row(ADA.uuid, at, str(uuid.UUID(int=rnd.getrandbits(128), version=4))) for at in instants]
        keys = [r.key()["sk"]["S"] for r in rows]
        assert len(set(keys)) == len(rows)  # one key each, however many share an instant
        newest_first = sorted(keys, reverse=True)
        assert [key_time(k) for k in newest_first] == sorted(instants, reverse=True)
        # and the bound every read uses (below ':') keeps all of them
        assert all(k < TIME_CEILING for k in keys)
