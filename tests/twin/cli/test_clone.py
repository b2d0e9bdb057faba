"""ddb.clone: the prod stack's twin (playing the cloud, with planted personal data) cloned into a dev twin.

Both twins are this module's own (a private state directory and ports), so the session twin's
tables are never written. prod encrypts messages: the clone opens them with prod's key and seals
them again with dev's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops import accounts, seed
from ops import db as dbops
from ops import ddb as ddbops
from ops.anonymise import Faker
from ops.cognito import list_target_users
from ops.crypto import cipher_for
from ops.local import twin as twinops
from ops.local.streams import process_target_stream
from ops.messages import bodies
from ops.messages.membership import create_group
from ops.messages.model import MSG_PREFIX, Membership
from ops.messages.send import send_message
from ops.stacks import load_stack
from ops.table_spec import table_spec
from ops.target import resolve_target
from tests.support.helpers import assert_one_line_error, run_invoke

KEY = "test-clone-key-0123456789abcdef"
PLANTED = (
    dbops.seed_user("Marguerite Okonkwo-Bell", "margobell", "margo.bell@private.example"),
    dbops.seed_user("Teodoro Quispe", "teoquispe", "teo.quispe@private.example"),
    dbops.seed_user("Ingrid Solberg-Haugen", "ingridsh", "ingrid.sh@private.example"),
)
SECRET_TEXT = "my bank PIN is 4417 and I live at 12 Harbour Lane"
GROUP_NAME = "Harbour Lane neighbours"  # a named group of three: teoquispe, ingridsh and bram (not margobell)
GROUP_TEXT = "bins go out on Tuesday, the code of the gate is 5521"


@pytest.fixture(scope="module")
def clone_env() -> Iterator[dict[str, str]]:
    """A private state root and port block for this module's two twins; restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("CRUDDUR_STATE_DIR", "CRUDDUR_LOCAL_PORT_OFFSET", "CRUDDUR_CLONE_KEY")}
    root = Path(tempfile.mkdtemp(prefix="clone-", dir=os.environ["CRUDDUR_STATE_DIR"]))
    root.chmod(0o711)  # PostgreSQL's own user passes through
    env = {
        "CRUDDUR_STATE_DIR": str(root),
        "CRUDDUR_LOCAL_PORT_OFFSET": str(int(os.environ["CRUDDUR_LOCAL_PORT_OFFSET"]) + 600),
        "CRUDDUR_CLONE_KEY": KEY,
    }
    os.environ.update(env)
    try:
        yield env
    finally:
        for stack in ("prod", "dev"):
            twinops.down(stack)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def source(clone_env: dict[str, str]) -> dict[str, Any]:
    """prod's twin with the seed users, two planted people, a seeded conversation and a private message."""
    prod = load_stack("prod")
    twinops.up(prod, engine="moto", stream_worker=False)
    twinops.up(load_stack("dev"), engine="moto")  # the target, with its stream worker as a developer has it
    target = resolve_target("prod")
    accounts.setup(target, cognito_users=False, on_step=lambda *_: None)
    with dbops.connect(target) as conn:
        users = dbops.seed_users(conn, dbops.SEED_USERS + PLANTED)
    ddbops.schema_load(target.client("dynamodb"), table_spec(prod))
    seed.seed_target(target, seed.parse_conversation(seed.DEFAULT_CONVERSATION))
    by_handle = {u.handle: u for u in users}
    client, cipher = target.client("dynamodb"), cipher_for(target)
    first = send_message(
        client,
        prod.table_name,
        by_handle["margobell"].person(),
        SECRET_TEXT,
        receiver=by_handle["teoquispe"].person(),
        cipher=cipher,
    )
    send_message(
        client,
        prod.table_name,
        by_handle["teoquispe"].person(),
        "call me on +44 7700 900123",
        group_uuid=first.group_uuid,
        cipher=cipher,
    )
    named = create_group(
        client,
        prod.table_name,
        by_handle["teoquispe"].person(),
        GROUP_NAME,
        [by_handle["ingridsh"].person(), by_handle["bram"].person()],
        text=GROUP_TEXT,
        cipher=cipher,
    )
    process_target_stream(target)
    items = [bodies.readable(cipher, prod.table_name, i) for i in ddbops.scan(client, prod.table_name, raw=True)]
    return {"users": users, "items": items, "group": first.group_uuid, "named_group": named.group_uuid}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):  # keys too: a named group's members map is keyed by uuid
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _target_strings() -> list[str]:
    """Every string of the dev twin: items (sealed bodies opened), users rows, Cognito users."""
    target = resolve_target("dev")
    client, cipher = target.client("dynamodb"), cipher_for(target)
    out = []
    for item in ddbops.scan(client, target.stack.table_name, raw=True):
        out += list(_strings(bodies.readable(cipher, target.stack.table_name, item)))
    with dbops.connect(target) as conn:
        out += [
            s
            for u in dbops.list_users(conn)
            for s in (u.uuid, u.handle, u.display_name, u.email, u.cognito_user_id or "")
        ]
    out += [s for u in list_target_users(target) for s in (u.email or "", u.handle or "", u.sub or "", u.username)]
    return out


def _source_values(source: dict[str, Any]) -> set[str]:
    values = {v for u in source["users"] for v in (u.uuid, u.handle, u.display_name, u.email)}
    for item in source["items"]:
        names = ("message", "user_uuid", "user_handle", "user_display_name", "message_uuid", "message_group_uuid")
        for name in (*names, "group_name", "created_by"):
            if name in item:
                values.add(item[name]["S"])
        for member, entry in (item.get("members") or {}).get("M", {}).items():
            values |= {member, *(v["S"] for v in entry["M"].values())}
        values.add(str(item["pk"]["S"]).partition("#")[2])
    return {v for v in values if len(v) >= 4}


def test_a_field_left_out_of_the_rules_stops_the_clone_with_nothing_written(source: dict[str, Any]) -> None:
    prod = resolve_target("prod")
    client = prod.client("dynamodb")
    planted = next(i for i in source["items"] if i["pk"]["S"] == MSG_PREFIX + source["group"] and "message_uuid" in i)
    key = {"pk": planted["pk"], "sk": planted["sk"]}
    client.update_item(
        TableName=prod.stack.table_name,
        Key=key,
        UpdateExpression="SET sender_email = :e",
        ExpressionAttributeValues={":e": {"S": "margo.bell@private.example"}},
    )
    try:
        proc = run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev", "--users", "margobell")
    finally:
        client.update_item(TableName=prod.stack.table_name, Key=key, UpdateExpression="REMOVE sender_email")
    assert_one_line_error(proc, "leak check failed, nothing was written", "users.email", "sender_email")
    fake = Faker(KEY.encode())
    dev = resolve_target("dev")
    dev_client = dev.client("dynamodb")
    if ddbops.describe(dev_client, dev.stack.table_name):
        got = dev_client.query(
            TableName=dev.stack.table_name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": MSG_PREFIX + fake.uuid(source["group"])}},
        )
        assert got["Items"] == [], "no item of the refused clone was written"
    margo = next(u for u in source["users"] if u.handle == "margobell")
    assert fake.person(margo.uuid).email not in {u.email for u in list_target_users(dev)}


def test_a_named_group_of_three_is_cloned_with_fake_members_and_a_fake_name(source: dict[str, Any]) -> None:
    # first into dev (before the --all tests send on the clone and clone again): the doctor judges this clone alone
    proc = run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev", "--users", "ingridsh", timeout=600)
    assert proc.returncode == 0, proc.stderr  # no leak check failure: the membership item has its rules

    strings = _target_strings()
    for value in _source_values(source) | {GROUP_NAME, GROUP_TEXT}:
        leaked = [s for s in strings if value in s]
        assert not leaked, f"source value {value!r} found in the clone: {leaked[:2]}"

    fake = Faker(KEY.encode())
    by_handle = {u.handle: u for u in source["users"]}
    ingrid, teo = fake.person(by_handle["ingridsh"].uuid), fake.person(by_handle["teoquispe"].uuid)
    listed = run_invoke("ddb.patterns.list-conversations", "--stack", "dev", "--handle", ingrid.handle, "--json")
    assert listed.returncode == 0, listed.stderr
    (group,) = [json.loads(line) for line in listed.stdout.splitlines()]
    fake_name = fake.text(GROUP_NAME)
    assert group["message_group_uuid"] == fake.uuid(source["named_group"])
    assert group["user_handle"] == group["user_display_name"] == fake_name and len(fake_name) <= 32
    assert group["message"] == fake.text(GROUP_TEXT)

    dev = resolve_target("dev")
    membership = Membership.from_item(
        dev.client("dynamodb").get_item(
            TableName=dev.stack.table_name, Key=Membership.key_of(fake.uuid(source["named_group"]))
        )["Item"]
    )
    members = [fake.person(by_handle[h].uuid) for h in ("teoquispe", "ingridsh", "bram")]
    assert (membership.group_name, membership.created_by) == (fake_name, teo.uuid)
    assert membership.members == {p.uuid: {"handle": p.handle, "display_name": p.display_name} for p in members}

    doctor = run_invoke("ddb.doctor", "--stack", "dev", timeout=300)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_clone_all_leaves_no_source_value_and_one_fake_per_person(source: dict[str, Any]) -> None:
    proc = run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev", "--all", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (
        "anonymised" in proc.stdout and "KEY" not in proc.stderr + proc.stdout and KEY not in proc.stdout + proc.stderr
    )

    strings = _target_strings()
    for value in _source_values(source):
        leaked = [s for s in strings if value in s]
        assert not leaked, f"source value {value!r} found in the clone: {leaked[:2]}"

    fake = Faker(KEY.encode())
    dev = resolve_target("dev")
    client = dev.client("dynamodb")
    items = list(ddbops.scan(client, dev.stack.table_name))
    with dbops.connect(dev) as conn:
        rows = {u.uuid: u for u in dbops.list_users(conn)}
    pool = {u.email: u for u in list_target_users(dev)}
    for user in source["users"]:
        person = fake.person(user.uuid)
        named = [i for i in items if i.get("user_uuid") == person.uuid]
        if not named:
            continue  # a seed user with no conversation is not cloned
        assert {(i["user_handle"], i["user_display_name"]) for i in named} == {(person.handle, person.display_name)}
        row = rows[person.uuid]
        assert (row.handle, row.display_name, row.email) == (person.handle, person.display_name, person.email)
        assert pool[person.email].handle == person.handle and pool[person.email].sub == row.cognito_user_id

    margo = fake.person(next(u.uuid for u in source["users"] if u.handle == "margobell"))
    teo = fake.person(next(u.uuid for u in source["users"] if u.handle == "teoquispe"))
    listed = run_invoke("ddb.patterns.list-conversations", "--stack", "dev", "--handle", margo.handle, "--json")
    assert listed.returncode == 0, listed.stderr
    (group,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert group["user_handle"] == teo.handle and group["message"] == fake.text("call me on +44 7700 900123")
    convo = run_invoke(
        "ddb.patterns.get-conversation", "--stack", "dev", "--handle", f"{margo.handle},{teo.handle}", "--json"
    )
    assert convo.returncode == 0, convo.stderr
    texts = [json.loads(line)["message"] for line in convo.stdout.splitlines()]
    assert texts == [fake.text(SECRET_TEXT), fake.text("call me on +44 7700 900123")]
    assert len(fake.text(SECRET_TEXT)) <= 64 < len(SECRET_TEXT) * 2, "the same length class"

    doctor = run_invoke("ddb.doctor", "--stack", "dev", timeout=300)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    again = run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev", "--all", timeout=600)
    assert again.returncode == 0, again.stderr
    assert sorted(json.dumps(i, sort_keys=True) for i in ddbops.scan(client, dev.stack.table_name)) == sorted(
        json.dumps(i, sort_keys=True) for i in items
    ), "a second clone writes the same items again (same fakes, same sealed bytes)"

    # pattern 3 on the clone: the pair's rebuilt entry leads the new message into their cloned group
    sent = run_invoke(
        "ddb.send-message", "--stack", "dev", "--from", margo.handle, "--to", teo.handle, "--text", "on the clone"
    )
    assert sent.returncode == 0, sent.stderr
    assert fake.uuid(source["group"]) in sent.stdout, sent.stdout


def test_keep_text_and_no_anonymise_warn_in_one_line(source: dict[str, Any]) -> None:
    proc = run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev", "--users", "ada", "--keep-text")
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: --keep-text: the messages' text is copied as it is (people are still anonymised)"
    ]
    assert_one_line_error(run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev"), "exactly one of")
    assert_one_line_error(run_invoke("ddb.clone", "--from-stack", "dev", "--to-stack", "dev", "--all"), "into itself")
    assert_one_line_error(
        run_invoke("ddb.clone", "--from-stack", "prod", "--to-stack", "dev", "--users", "nobody"), "'nobody'"
    )


def test_an_interrupted_clone_resumes_where_it_stopped(source: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from ops import clone as cloneops
    from ops.target import stack_state_dir

    monkeypatch.setattr(cloneops, "CHUNK", 5)
    src, dst = resolve_target("prod"), resolve_target("dev")

    def interrupt(stage: str, n: int) -> None:
        if stage == "written":
            raise KeyboardInterrupt  # Ctrl-C after the first chunk

    with pytest.raises(KeyboardInterrupt):
        cloneops.clone(
            src,
            dst,
            cloneops.Selection(everything=True),
            cloneops.Options(restart=True),
            KEY.encode(),
            on_progress=interrupt,
        )
    checkpoint = stack_state_dir("dev") / "clone-from-prod.json"
    assert json.loads(checkpoint.read_text())["written"] == 5
    again = cloneops.clone(src, dst, cloneops.Selection(everything=True), cloneops.Options(), KEY.encode())
    assert again.resumed_at == 5 and again.items_written == again.items_selected - 5
    assert not checkpoint.exists(), "a finished clone leaves no checkpoint"
