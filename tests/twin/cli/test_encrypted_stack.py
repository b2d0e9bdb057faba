"""The tasks on a stack that encrypts messages (prod's twin), as a user runs them: the main job, scan, doctor and
migration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import seed
from tests.support.helpers import REPO

TEXTS = [text for _, text in seed.parse_conversation(seed.DEFAULT_CONVERSATION).lines]


class Shell:
    """Tasks run in subprocesses against a twin of prod of this module's own (state directory, ports)."""

    def __init__(self) -> None:
        self.state = tempfile.mkdtemp(prefix="cruddur-prod-e2e-")
        # the README test's offset: its twin is dev's, on other ports than prod's
        self.env = {
            **os.environ,
            "CRUDDUR_STATE_DIR": self.state,
            "CRUDDUR_LOCAL_PORT_OFFSET": os.environ["CRUDDUR_TEST_README_PORT_OFFSET"],
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    def python(self, code: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()


@pytest.fixture(scope="module")
def prod() -> Iterator[Shell]:
    shell = Shell()
    first = shell.run("quickstart", "--stack", "prod")
    try:
        assert first.returncode == 0, first.stderr
        shell.quickstart = first.stdout  # type: ignore[attr-defined]
        yield shell
    finally:
        down = shell.run("local.down", "--stack", "prod")
        assert down.returncode == 0, down.stderr
    assert not list(Path(shell.state).glob("*/twin.json"))
    shutil.rmtree(shell.state, ignore_errors=True)


@pytest.mark.slow
def test_the_main_job_shows_the_conversation_in_order_while_a_scan_shows_no_text(prod: Shell) -> None:
    shown = prod.quickstart.split("== ada <-> bram, newest page", 1)[1].strip().splitlines()  # type: ignore[attr-defined]
    assert len(shown) == len(TEXTS) and all(text[:40] in line for line, text in zip(shown, TEXTS, strict=True))

    scan = prod.run("ddb.scan", "--stack", "prod", "--json")
    assert scan.returncode == 0, scan.stderr
    items = [json.loads(line) for line in scan.stdout.splitlines()]
    assert len(items) == len(TEXTS) + 4  # the messages, two group rows, the pair entry, the group's key item
    assert not [t for t in TEXTS if t[:20] in scan.stdout], "a scan of an encrypted stack shows no message text"
    assert all(
        "message" not in i and i["message_sealed"] and i["message_key"]
        for i in items
        if i["pk"][:4] in ("MSG#", "GRP#") and i["sk"] != "KEY"
    )

    got = prod.run("ddb.patterns.get-conversation", "--stack", "prod", "--handle", "ada", "--handle", "bram", "--full")
    assert got.returncode == 0 and got.stdout.splitlines()[-1].endswith(TEXTS[-1])
    outputs = json.loads(
        prod.python(
            "import json; from ops.outputs import outputs_for; from ops.target import resolve_target; "
            "print(json.dumps(outputs_for(resolve_target('prod'))))"
        )
    )
    assert outputs["messagesKeyAlias"] == "alias/cruddur-prod-messages" and outputs["messagesKeyArn"].startswith(
        "arn:aws:kms:"
    )


@pytest.mark.slow
def test_a_plain_message_is_reported_and_sealed_by_the_migration_once(prod: Shell) -> None:
    # GIVEN a reply written by the original backend (plain text) into the seeded group; the twin's consumer moves the
    # rows to it
    prod.python(
        "import time\n"
        "from ops.target import resolve_target\n"
        "from ops.conversations import group_of_handles\n"
        "from ops.messages.read import group_rows\n"
        "from ops.db import connect, users_by_handle\n"
        "from tests.support.original_backend import OriginalBackend\n"
        "t = resolve_target('prod'); c = t.client('dynamodb')\n"
        "g = group_of_handles(t, ['ada', 'bram'])\n"
        "with connect(t) as conn: ada = users_by_handle(conn, ['ada'])['ada'].person()\n"
        "at = OriginalBackend(c, t.stack.table_name, offset_hours=0).create_message(g, ada, 'plain from the old app')\n"
        "deadline = time.monotonic() + 10\n"
        "while {r.last_reply_at for r in group_rows(c, t.stack.table_name, g)} != {at} and time.monotonic() < "
        "deadline: time.sleep(0.1)\n"
    )
    doctor = prod.run("ddb.doctor", "--stack", "prod", "--json")
    assert doctor.returncode == 1
    found = {f["kind"]: f["count"] for f in json.loads(doctor.stdout)["first"]["findings"]}
    assert found == {"plain-text-bodies": 3}, "the message and the two rows the consumer moved to it"

    # WHEN the migration runs: a dry run, the run, and again
    dry = prod.run("ddb.migrate", "--stack", "prod", "--name", "encrypt-messages", "--dry-run")
    first = prod.run("ddb.migrate", "--stack", "prod", "--name", "encrypt-messages")
    again = prod.run("ddb.migrate", "--stack", "prod", "--name", "encrypt-messages")

    # THEN it seals those three once, and the conversation still reads
    assert dry.returncode == 0 and "would encrypt a group row: 2, would encrypt a message: 1" in dry.stdout
    assert first.returncode == 0 and "encrypted a group row: 2, encrypted a message: 1" in first.stdout, (
        first.stdout + first.stderr
    )
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "plain from the old app" not in prod.run("ddb.scan", "--stack", "prod", "--json").stdout
    assert prod.run("ddb.doctor", "--stack", "prod").returncode == 0
    listed = prod.run("ddb.patterns.list-conversations", "--stack", "prod", "--handle", "bram", "--full")
    assert "plain from the old app" in listed.stdout


@pytest.mark.slow
def test_a_tampered_body_is_one_line_naming_the_group_and_the_message(prod: Shell) -> None:
    uuid, group = prod.python(
        "from ops.target import resolve_target\n"
        "from ops.conversations import group_of_handles\n"
        "t = resolve_target('prod'); c = t.client('dynamodb'); g = group_of_handles(t, ['ada', 'bram'])\n"
        "item = c.query(TableName=t.stack.table_name, KeyConditionExpression='pk = :p AND sk < :k', "
        "ExpressionAttributeValues={':p': {'S': 'MSG#' + g}, ':k': {'S': ':'}}, ScanIndexForward=False, "
        "Limit=1)['Items'][0]\n"
        "sealed = bytearray(item['message_sealed']['B']); sealed[-1] ^= 1\n"
        "c.put_item(TableName=t.stack.table_name, Item=item | {'message_sealed': {'B': bytes(sealed)}})\n"
        "print(item['message_uuid']['S'], g)\n"
    ).split()
    got = prod.run("ddb.patterns.get-conversation", "--stack", "prod", "--handle", "ada,bram")
    assert got.returncode == 1 and got.stdout == "" and "Traceback" not in got.stderr
    assert (
        got.stderr.strip()
        == f"error: message {uuid} of group {group} cannot be read: its body does not authenticate: it was altered, "
        "or moved from another message or group"
    )


@pytest.mark.slow
def test_send_message_seals_and_the_twins_consumer_moves_the_rows_without_opening_them(prod: Shell) -> None:
    sent = prod.run("ddb.send-message", "--stack", "prod", "--from", "chidi", "--to", "dana", "a sealed hello to dana")
    assert (
        sent.returncode == 0 and "created by this first message" in sent.stdout and "group rows moved" in sent.stdout
    ), sent.stdout + sent.stderr
    reply = prod.run("ddb.send-message", "--stack", "prod", "--from", "dana", "--to", "chidi", "and a sealed answer")
    assert reply.returncode == 0, reply.stderr
    listed = prod.run("ddb.patterns.list-conversations", "--stack", "prod", "--handle", "chidi", "--full")
    assert listed.returncode == 0 and "and a sealed answer" in listed.stdout
    scan = prod.run("ddb.scan", "--stack", "prod", "--json").stdout
    assert "sealed hello" not in scan and "sealed answer" not in scan
