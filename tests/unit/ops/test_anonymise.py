"""The clone's keyed fakes and its leak check, without a twin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops.anonymise import KEY_ENV, Faker, Secrets, find_leak, load_key
from ops.clone import Options, Rewriter, Selection, select
from ops.errors import ConfigError, RefusedError
from ops.messages.model import GroupRow, Membership, Message, PairEntry, named_group_row, pair_key

ADA, BRAM = "0b1f5a8e-0000-4000-8000-00000000a0a0", "0b1f5a8e-0000-4000-8000-00000000b0b0"
GROUP = "6f61ada0-ceee-5263-b04a-e81969aaa092"


def test_one_person_is_one_fake_under_one_key_and_another_under_another() -> None:
    a, b = Faker(b"k" * 32), Faker(b"k" * 32)
    assert a.person(ADA) == b.person(ADA) and a.person(ADA) != a.person(BRAM)
    assert Faker(b"j" * 32).person(ADA) != a.person(ADA)
    assert a.person(ADA).uuid == a.uuid(ADA), "a person's fake uuid is the fake of their uuid, wherever it appears"
    assert a.person(ADA).email.endswith("@example.invalid")


@pytest.mark.parametrize(("text", "most"), [("hi", 8), ("a" * 9, 16), ("b" * 100, 128), ("c" * 3999, 4000)])
def test_a_text_becomes_nonsense_of_its_length_class(text: str, most: int) -> None:
    fake = Faker(b"k" * 32).text(text)
    assert 0 < len(fake) <= most and text not in fake
    assert Faker(b"k" * 32).text(text) == fake, "the same text, the same fake (a group row and its message agree)"


def test_the_leak_check_names_the_field_and_where() -> None:
    s = Secrets()
    s.add("users.email", "ada@cruddur.test")
    s.add("user_handle", "ada")
    s.add("message", "ok")
    clean = [("item MSG#x/1", "message", "okay then"), ("item MSG#x/1", "user_handle", "u_123")]
    assert find_leak(s, clean, {"ok"}) is None, "short values count only as whole values"
    leak = find_leak(s, [*clean, ("item MSG#x/2", "note", {"S": "write to ada@cruddur.test"})], {"ok"})
    assert leak is not None and (leak.field, leak.where) == ("users.email", "item MSG#x/2 note")
    assert find_leak(s, [("users row 1", "", ["ada"])], set()) is not None


def test_the_key_comes_from_the_environment_or_a_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    first = load_key(tmp_path)
    assert load_key(tmp_path) == first and (tmp_path / "clone-key").stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "clone-key", 0o644)
    with pytest.raises(RefusedError, match="chmod 600"):
        load_key(tmp_path)
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ConfigError, match="at least 16"):
        load_key(tmp_path)
    monkeypatch.setenv(KEY_ENV, "x" * 20)
    assert load_key(tmp_path) == b"x" * 20


def _items() -> list[dict]:
    msg = Message(GROUP, "2026-11-01T10:00:00.000000+00:00", "m-1", "hello there Bram", ADA, "Ada Okafor", "ada")
    old = Message(GROUP, "2026-10-01T10:00:00.000000+00:00", "m-0", "an old one", BRAM, "Bram L", "bram")
    row = GroupRow(ADA, msg.created_at, GROUP, msg.message, BRAM, "Bram L", "bram")
    entry = PairEntry(pair_key(ADA, BRAM), GROUP, old.created_at, tuple(sorted((ADA, BRAM))))
    return [msg.to_item(), old.to_item(), row.to_item(), entry.to_item()]


def test_keys_are_rebuilt_from_the_fakes_by_the_model() -> None:
    faker, secrets = Faker(b"k" * 32), Secrets()
    out = [Rewriter(faker, Options(), secrets).rewrite(i) for i in _items()]
    msg, _, row, entry = out
    assert msg["pk"]["S"] == "MSG#" + faker.uuid(GROUP) and msg["user_handle"]["S"] == faker.person(ADA).handle
    assert row["pk"]["S"] == "GRP#" + faker.person(ADA).uuid and row["user_uuid"]["S"] == faker.person(BRAM).uuid
    assert entry["pk"]["S"] == "PAIR#" + pair_key(faker.person(ADA).uuid, faker.person(BRAM).uuid)
    assert entry["group_uuid"]["S"] == faker.uuid(GROUP) and row["message"] == msg["message"]
    assert {"ada", "Ada Okafor", ADA, GROUP, "hello there Bram"} <= set(secrets.values)


def test_selection_by_users_and_by_time() -> None:
    items = _items()
    assert len(select(items, Selection(everything=True), set())) == 4
    assert len(select(items, Selection(handles=("ada",)), {ADA})) == 4
    assert select(items, Selection(handles=("x",)), {"someone-else"}) == []
    recent = select(items, Selection(since="2026-10-15T00:00:00+00:00"), set())
    assert [i["sk"]["S"] for i in recent if i["pk"]["S"].startswith("MSG#")] == ["2026-11-01T10:00:00.000000+00:00"]
    with pytest.raises(ConfigError, match="exactly one"):
        Selection().check()
    with pytest.raises(ConfigError, match="with a zone"):
        Selection(since="yesterday").check()


def test_a_named_group_is_anonymised_by_its_members_and_renamed() -> None:
    from ops.clone import _outputs
    from ops.messages.model import Person

    ada, bram = Person(ADA, "Ada Okafor", "ada"), Person(BRAM, "Bram L", "bram")
    first = Message(GROUP, "2026-11-01T10:00:00.000000+00:00", "m-1", "welcome", ADA, "Ada Okafor", "ada")
    members = {p.uuid: Membership.entry(p) for p in (ada, bram)}
    source = [
        Membership(GROUP, "Harbour Lane book club", first.created_at, ADA, members).to_item(),
        named_group_row(bram, GROUP, "Harbour Lane book club", first).to_item(),
    ]
    faker, secrets = Faker(b"k" * 32), Secrets()
    rewriter = Rewriter(faker, Options(keep_text=True), secrets)
    membership, row = (rewriter.rewrite(i) for i in source)
    fake_name = faker.text("Harbour Lane book club")
    m = Membership.from_item(membership)
    assert membership["pk"]["S"] == "MSG#" + faker.uuid(GROUP) and membership["sk"]["S"] == "MEMBERS"
    assert (m.group_name, m.created_by) == (fake_name, faker.person(ADA).uuid)
    assert m.members == {
        faker.person(p).uuid: {"handle": faker.person(p).handle, "display_name": faker.person(p).display_name}
        for p in (ADA, BRAM)
    }
    r = GroupRow.from_item(row)
    assert r.owner_uuid == faker.person(BRAM).uuid and r.message_group_uuid == faker.uuid(GROUP)
    assert (r.user_uuid, r.user_handle, r.user_display_name, r.group_name) == (
        faker.uuid(GROUP),
        fake_name,
        fake_name,
        fake_name,
    ), "the row names the group itself, as the model's named_group_row does"
    assert {ADA, BRAM} <= rewriter.people and {"Harbour Lane book club", "Bram L"} <= set(secrets.values)
    assert find_leak(secrets, _outputs([membership, row], [], []), rewriter.names) is None
    # a source uuid left as a members map key is caught although it is a key, not a value
    kept = dict(membership, members={"M": {ADA: membership["members"]["M"][faker.person(ADA).uuid]}})
    leak = find_leak(secrets, _outputs([kept], [], []), rewriter.names)
    assert leak is not None and leak.where.endswith("members (its keys)")
