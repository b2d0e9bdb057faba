"""The twin survives a crash of its AWS server: kill -9, then local.up,
and every acknowledged write is back, ids included.

GIVEN writes the twin acknowledged, WHEN its AWS server is killed with SIGKILL (no handler
runs, nothing is saved on the way out) and the twin is started again, THEN every item, user
and id is there exactly as before, and the restore report says what was replayed.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ops import cognito as cognitoops
from ops import db as dbops
from ops import ddb as ddbops
from ops import outputs as out
from ops import rds as rdsops
from ops import seed as seedops
from ops.local import journal
from ops.local import twin as twinops
from ops.local.streams import checkpoint_file, process_stream
from ops.messages.model import GSI_NAME, Person
from ops.messages.read import group_rows
from ops.messages.send import send_message
from ops.stacks import PROJECT_ROOT
from ops.table_spec import table_spec
from tests.support.durable import DurableTwin, all_items, table_state
from tests.support.helpers import s_item


def _identity_state(target: Any) -> dict[str, Any]:
    outputs = twinops._read_outputs(target.stack.name)
    cognito, ec2 = target.client("cognito-idp"), target.client("ec2")
    pool = cognito.describe_user_pool(UserPoolId=outputs[out.USER_POOL_ID])["UserPool"]
    client = cognito.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=outputs[out.USER_POOL_CLIENT_ID])[
        "UserPoolClient"
    ]
    users = cognito.list_users(UserPoolId=pool["Id"])["Users"]
    sg_id = outputs[out.RDS_SECURITY_GROUP_ID]
    groups = ec2.describe_security_groups(GroupIds=[sg_id])["SecurityGroups"]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg_id]}])["SecurityGroupRules"]
    return {
        "outputs": outputs,
        "pool": (pool["Id"], pool["Arn"], pool["CreationDate"]),
        "client": (client["ClientId"], client["ClientName"]),
        "users": sorted(
            (
                u["Username"],
                u["UserCreateDate"],
                u["UserStatus"],
                sorted((a["Name"], a["Value"]) for a in u["Attributes"]),
            )
            for u in users
        ),
        "groups": [(g["GroupId"], g["VpcId"], g["GroupName"]) for g in groups],
        "rules": sorted((r["SecurityGroupRuleId"], r.get("CidrIpv4"), r["IsEgress"], r.get("FromPort")) for r in rules),
    }


def _assert_clean_restore(result: twinops.UpResult, report: dict[str, Any]) -> None:
    assert not result.already_running
    assert result.restore_note.startswith("restored: ") and "; 0 could not be replayed" in result.restore_note, (
        f"{result.restore_note}: {report}"
    )
    # each replayed answer matched the recorded one byte for byte: replay reproduced every id it handed out
    assert report["failed"] == [] and report["diverged"] == [], report


def test_kill_9_right_after_seed_sends_users_and_rule_move_loses_nothing(durable: DurableTwin) -> None:
    # GIVEN a seeded conversation, three sends (one creates a group), Cognito users synced into PostgreSQL and a moved
    # RDS rule
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    table = durable.stack.table_name
    ddbops.schema_load(ddb, table_spec(durable.stack))
    with dbops.connect(target) as conn:
        ada, bram = seedops.people(conn, "ada", "bram")
        chidi = dbops.users_by_handle(conn, ["chidi"])["chidi"].person()
    conversation = seedops.parse_conversation(PROJECT_ROOT / "fixtures" / "conversations" / "trail-running.txt")
    seedops.seed(ddb, table, seedops.build(conversation, ada, bram))
    checkpoints = checkpoint_file(durable.stack.name)
    process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    send_message(ddb, table, ada, "one", receiver=bram)
    send_message(ddb, table, bram, "two", receiver=ada)
    new_group = send_message(ddb, table, ada, "three", receiver=chidi).group_uuid
    assert process_stream(streams, ddb, table, GSI_NAME, checkpoints).rows_moved >= 2
    assert cognitoops.create_target_users(target).created
    assert cognitoops.sync_target(target).updated
    rdsops.update_target_rule(target, "203.0.113.7")
    before = table_state(ddb, streams, table) | _identity_state(target)
    assert len(before["items"]) >= len(conversation.lines) + 2 + 3  # messages, their group rows, the sends

    # WHEN the AWS server is killed right away, and the twin started again
    durable.kill9()
    result = durable.up()

    # THEN everything is back, identical: items, stream records and their sequence numbers, pool, subs, group and rule
    # ids
    _assert_clean_restore(result, durable.report())
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    after = table_state(ddb, streams, table) | _identity_state(target)
    for key in before:
        assert after[key] == before[key], f"{key} differs after the restore"
    assert ("203.0.113.7/32", False) in {(r[1], r[2]) for r in after["rules"]}
    subs = {dict(u[3]).get("preferred_username"): dict(u[3])["sub"] for u in after["users"]}
    with dbops.connect(target) as conn:
        linked = {u.handle: u.cognito_user_id for u in dbops.list_users(conn)}
    assert linked == subs, "PostgreSQL's cognito_user_ids name users that exist"

    # AND the next send moves its group rows when the stream is processed
    sent = send_message(ddb, table, chidi, "after the crash", receiver=ada)
    assert sent.group_uuid == new_group and not sent.created
    counts = process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    assert counts.warnings == [] and counts.rows_moved == 2
    assert {r.last_reply_at for r in group_rows(ddb, table, new_group)} == {sent.message.created_at}


def test_replay_reproduces_the_ids_of_every_persisted_service(durable: DurableTwin) -> None:
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    cognito, ec2, sqs, kms = (target.client(s) for s in ("cognito-idp", "ec2", "sqs", "kms"))

    # GIVEN writes to each service that hand out ids moto draws at random or from the clock
    table = durable.fresh_table(ddb)
    ddb.put_item(TableName=table, Item=s_item({"pk": "a", "sk": "1", "message": "x"}))
    ddb.update_item(
        TableName=table,
        Key=s_item({"pk": "a", "sk": "1"}),
        UpdateExpression="SET message = :m",
        ExpressionAttributeValues={":m": {"S": "y"}},
    )
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": s_item({"pk": "b", "sk": str(i)})}} for i in range(3)]
    )
    ddb.delete_item(TableName=table, Key=s_item({"pk": "b", "sk": "0"}))

    pool = cognito.create_user_pool(PoolName="durable-pool")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName="c",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool, Username="dana", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool, Username="dana", Password="Correct-Horse-9", Permanent=True)
    auth = cognito.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "dana", "PASSWORD": "Correct-Horse-9"},
    )
    refresh = auth["AuthenticationResult"]["RefreshToken"]
    cognito.create_group(UserPoolId=pool, GroupName="readers")
    cognito.admin_add_user_to_group(UserPoolId=pool, Username="dana", GroupName="readers")

    sg = ec2.create_security_group(GroupName="durable-sg", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "198.51.100.1/32"}]}
        ],
    )

    queue = sqs.create_queue(QueueName="durable-q")["QueueUrl"]
    sent_ids = [sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")["MessageId"] for i in range(3)]
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1, VisibilityTimeout=600)[
        "Messages"
    ]

    key = kms.create_key(Description="durable")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/durable", TargetKeyId=key)
    signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
    grant = kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::123456789012:role/r", Operations=["Decrypt"])[
        "GrantId"
    ]
    ciphertext = kms.encrypt(KeyId="alias/durable", Plaintext=b"kept secret")["CiphertextBlob"]
    signature = kms.sign(KeyId=signing, Message=b"signed", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]

    def state() -> dict[str, Any]:
        return {
            "table": table_state(ddb, streams, table),
            "users": [(u["Username"], u["Attributes"]) for u in cognito.list_users(UserPoolId=pool)["Users"]],
            "groups": [
                g["GroupName"] for g in cognito.admin_list_groups_for_user(UserPoolId=pool, Username="dana")["Groups"]
            ],
            "rules": sorted(
                r["SecurityGroupRuleId"]
                for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])[
                    "SecurityGroupRules"
                ]
            ),
            "vpc": ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["VpcId"],
            "queue": sqs.get_queue_attributes(
                QueueUrl=queue,
                AttributeNames=[
                    "QueueArn",
                    "CreatedTimestamp",
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"],
            "keys": sorted(k["KeyId"] for k in kms.list_keys()["Keys"]),
            "grants": [g["GrantId"] for g in kms.list_grants(KeyId=key)["Grants"]],
            "public": kms.get_public_key(KeyId=signing)["PublicKey"],
        }

    before = state()

    # WHEN the server is killed and started again
    durable.kill9()
    result = durable.up()

    # THEN every replayed answer was the recorded one, and the state is the same
    _assert_clean_restore(result, durable.report())
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    cognito, ec2, sqs, kms = (target.client(s) for s in ("cognito-idp", "ec2", "sqs", "kms"))
    after = state()
    for name in before:
        assert after[name] == before[name], f"{name} differs after the restore"
    assert grant in after["grants"]
    # ids handed out before the crash still work: key material, RSA key, receipt handle, refresh token
    assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"kept secret"
    assert kms.verify(
        KeyId=signing, Message=b"signed", Signature=signature, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
    )["SignatureValid"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=received[0]["ReceiptHandle"])
    rest = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["MessageId"] for m in rest) == sorted(set(sent_ids) - {received[0]["MessageId"]})
    again = cognito.admin_initiate_auth(
        UserPoolId=pool, ClientId=client, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh}
    )
    assert again["AuthenticationResult"]["AccessToken"]


def test_a_torn_last_record_is_ignored_with_a_note_and_a_clean_stop_empties_the_journal(durable: DurableTwin) -> None:
    target = durable.target()
    ddb = target.client("dynamodb")
    table = durable.fresh_table(ddb)
    ddbops.batch_write(
        ddb, table, (s_item({"pk": f"MSG#{i}", "sk": "2026-01-01T00:00:00.000000+00:00"}) for i in range(40))
    )
    durable.kill9()
    # GIVEN a crash in the middle of appending a record: its first half is in the file
    segment = journal.segments(durable.journal)[-1]
    body = json.dumps({"TableName": table, "Item": s_item({"pk": "MSG#ghost", "sk": "x"})}).encode()
    record = journal.encode_record({"seq": 10**9, "t": 0, "seed": 0, "env": {}, "status": 200, "digest": ""}, body)
    with open(segment, "ab") as f:
        f.write(record[: len(record) // 2])

    # WHEN the twin starts again
    result = durable.up()

    # THEN the torn record is reported and ignored, everything before it is there
    assert "a torn last record" in result.restore_note and "0 could not be replayed" in result.restore_note, (
        result.restore_note
    )
    [torn] = durable.report()["torn"]
    assert torn["bytes"] == len(record) // 2 and torn["segment"] == segment.name
    ddb = durable.target().client("dynamodb")
    assert [i["pk"]["S"] for i in all_items(ddb, table)] == sorted(f"MSG#{i}" for i in range(40))

    # AND a clean stop leaves a snapshot that covers everything and an empty journal
    durable.wait_compacted()
    durable.down()
    assert journal.segments(durable.journal) == []
    again = durable.up()
    assert (
        again.restore_note.startswith("restored: snapshot of ")
        and "+ 0 journaled writes; 0 could not be replayed" in again.restore_note
    ), again.restore_note
    assert len(all_items(durable.target().client("dynamodb"), table)) == 40


def test_compaction_under_concurrent_writes_keeps_every_write(durable: DurableTwin, monkeypatch: Any) -> None:
    # GIVEN a server that compacts whenever its journal passes 64 KiB
    monkeypatch.setenv(journal.ENV_MAX_BYTES, str(64 * 1024))
    durable.kill9()
    durable.up()
    target = durable.target()
    ddb = target.client("dynamodb", max_pool_connections=8)
    table = durable.fresh_table(ddb)
    log = durable.state / "aws.log"
    compactions_before = log.read_text().count("compacted:")

    # WHEN writers keep writing while it compacts again and again
    def writer(n: int) -> None:
        for i in range(150):
            ddb.put_item(TableName=table, Item=s_item({"pk": f"W#{n}", "sk": f"{i:04d}", "message": "x" * 200}))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    ddbops.batch_write(
        ddb, table, (s_item({"pk": f"B#{i % 7}", "sk": f"{i:05d}", "message": "y" * 200}) for i in range(1000))
    )
    for t in threads:
        t.join()
    expected = sorted(
        {(f"W#{n}", f"{i:04d}") for n in range(3) for i in range(150)}
        | {(f"B#{i % 7}", f"{i:05d}") for i in range(1000)}
    )
    assert log.read_text().count("compacted:") - compactions_before >= 3

    # THEN after a crash the snapshot plus what is left of the journal hold every write
    durable.kill9()
    monkeypatch.delenv(journal.ENV_MAX_BYTES)
    result = durable.up()
    _assert_clean_restore(result, durable.report())
    assert durable.report()["snapshot"]["journal_seq"] > 0
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in all_items(durable.target().client("dynamodb"), table)] == expected


def test_a_state_older_than_the_stream_checkpoint_never_skips_new_records(durable: DurableTwin, tmp_path: Path) -> None:
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    table = durable.fresh_table(ddb)
    checkpoints = tmp_path / "checkpoints.json"
    ada = Person("a0000000-0000-4000-8000-00000000000a", "Ada", "ada-old")
    bram = Person("b0000000-0000-4000-8000-00000000000b", "Bram", "bram-old")
    group = send_message(ddb, table, ada, "first", receiver=bram).group_uuid
    process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    # GIVEN a snapshot taken now (the start after a crash compacts), kept aside
    durable.kill9()
    durable.up()
    durable.wait_compacted()
    old = tmp_path / "old-state.pickle"
    shutil.copy(durable.snapshot, old)
    # AND a checkpoint taken later, past what that snapshot holds
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    send_message(ddb, table, bram, "second", receiver=ada)
    send_message(ddb, table, ada, "third", receiver=bram)
    process_stream(streams, ddb, table, GSI_NAME, checkpoints)

    # WHEN the twin comes back with the older state (a snapshot restored by hand, no journal)
    durable.kill9()
    shutil.rmtree(durable.journal)
    shutil.copy(old, durable.snapshot)
    durable.up()
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    # and a new message takes the sequence numbers the checkpoint already covers
    sent = send_message(ddb, table, bram, "after going back", receiver=ada)
    counts = process_stream(streams, ddb, table, GSI_NAME, checkpoints)

    # THEN the consumer says so, reads the shard again, and the group rows reach the new message
    assert len(counts.warnings) == 1 and "reading the shard again from TRIM_HORIZON" in counts.warnings[0], (
        counts.warnings
    )
    assert counts.rows_moved == 2
    assert {r.last_reply_at for r in group_rows(ddb, table, group)} == {sent.message.created_at}


def _checkpointed_table(durable: DurableTwin, tmp_path: Path) -> tuple[Any, Any, str, Path, dict[str, Any]]:
    target = durable.target()
    ddb, streams = target.client("dynamodb"), target.client("dynamodbstreams")
    table = durable.fresh_table(ddb)
    checkpoints = tmp_path / "checkpoints.json"
    ada, bram = Person(str(uuid.uuid4()), "Ada", "ada-x"), Person(str(uuid.uuid4()), "Bram", "bram-x")
    send_message(ddb, table, ada, "hello", receiver=bram)
    send_message(ddb, table, bram, "reply", receiver=ada)
    first = process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    assert first.records > 0 and first.warnings == []
    return ddb, streams, table, checkpoints, json.loads(checkpoints.read_text())


def test_a_checkpoint_past_the_shards_end_is_detected_and_the_shard_read_again(
    durable: DurableTwin, tmp_path: Path
) -> None:
    ddb, streams, table, checkpoints, data = _checkpointed_table(durable, tmp_path)
    [shard] = data["tables"][table]["shards"].values()
    total = process_stream(streams, ddb, table, GSI_NAME, tmp_path / "from-start.json").records
    shard["seq"] = str(int(shard["seq"]) + 1000)
    checkpoints.write_text(json.dumps(data))

    counts = process_stream(streams, ddb, table, GSI_NAME, checkpoints)

    assert len(counts.warnings) == 1 and "past the shard's last record" in counts.warnings[0], counts.warnings
    assert counts.records == total, "the whole shard is read again"
    assert process_stream(streams, ddb, table, GSI_NAME, checkpoints).warnings == [], "the new checkpoint is good"


def test_a_checkpoint_naming_another_record_is_detected(durable: DurableTwin, tmp_path: Path) -> None:
    ddb, streams, table, checkpoints, data = _checkpointed_table(durable, tmp_path)
    [shard_id] = data["tables"][table]["shards"]
    data["tables"][table]["shards"][shard_id]["event_id"] = "0" * 32  # same sequence number, another history
    checkpoints.write_text(json.dumps(data))

    counts = process_stream(streams, ddb, table, GSI_NAME, checkpoints)

    assert len(counts.warnings) == 1 and "names another record" in counts.warnings[0], counts.warnings
    assert counts.records > 0


def test_a_checkpoint_written_before_event_ids_still_resumes(durable: DurableTwin, tmp_path: Path) -> None:
    ddb, streams, table, checkpoints, data = _checkpointed_table(durable, tmp_path)
    [shard_id] = data["tables"][table]["shards"]
    data["tables"][table]["shards"][shard_id] = data["tables"][table]["shards"][shard_id]["seq"]  # the old file format
    checkpoints.write_text(json.dumps(data))

    counts = process_stream(streams, ddb, table, GSI_NAME, checkpoints)

    assert (counts.records, counts.warnings) == (0, [])


def test_reads_are_not_journaled(durable: DurableTwin) -> None:
    target = durable.target()
    ddb, streams, cognito, ec2 = (target.client(s) for s in ("dynamodb", "dynamodbstreams", "cognito-idp", "ec2"))
    table = durable.fresh_table(ddb)
    ddb.put_item(TableName=table, Item=s_item({"pk": "a", "sk": "1"}))

    def entries() -> int:
        return sum(1 for seg in journal.segments(durable.journal) for _ in journal.SegmentReader(seg))

    before = entries()
    ddb.describe_table(TableName=table)
    ddb.scan(TableName=table)
    ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}})
    ddb.get_item(TableName=table, Key=s_item({"pk": "a", "sk": "1"}))
    table_state(ddb, streams, table)  # DescribeStream, GetShardIterator, GetRecords
    cognito.list_user_pools(MaxResults=10)
    ec2.describe_security_groups()
    assert entries() == before
    ddb.delete_item(TableName=table, Key=s_item({"pk": "a", "sk": "1"}))
    assert entries() == before + 1


def test_after_a_kill_9_the_twins_stream_worker_resumes_and_the_next_message_moves_its_rows(
    durable: DurableTwin,
) -> None:
    # GIVEN the twin as local.up starts it, stream worker included, and a conversation it has fanned out
    durable.down()
    durable.up(stream_worker=True)
    target = durable.target()
    ddb = target.client("dynamodb")
    table = durable.stack.table_name
    ddbops.schema_load(ddb, table_spec(durable.stack))
    ada, bram = Person(str(uuid.uuid4()), "Ada", "ada-w"), Person(str(uuid.uuid4()), "Bram", "bram-w")
    group = send_message(ddb, table, ada, "before", receiver=bram).group_uuid
    send_message(ddb, table, bram, "reply before the crash", group_uuid=group)
    _until(lambda: {r.message for r in group_rows(ddb, table, group)} == {"reply before the crash"})

    # WHEN the AWS server dies and local.up starts the twin again
    durable.kill9()
    result = durable.up(stream_worker=True)

    # THEN the worker is back on its checkpoints and moves the next message's rows; nothing was lost
    _assert_clean_restore(result, durable.report())
    assert any(c.name == "stream consumer" and c.running for c in result.status.components)
    ddb = durable.target().client("dynamodb")
    sent = send_message(ddb, table, ada, "after the crash", group_uuid=group)
    _until(lambda: {r.last_reply_at for r in group_rows(ddb, table, group)} == {sent.message.created_at})
    log = (durable.state / "stream-worker.log").read_text()
    assert "reading the shard again" not in log, "the restored stream is the one the checkpoint was taken on"
    durable.down()
    durable.up()


def _until(check: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds}s"
        time.sleep(0.1)


def test_local_up_reports_links_to_users_the_restored_pool_lacks_and_nothing_when_they_agree(
    durable: DurableTwin, tmp_path: Path
) -> None:
    from ops.render import links_line, up_lines

    target = durable.target()
    cognitoops.create_target_users(target)
    cognitoops.sync_target(target)
    # GIVEN a snapshot of the pool taken now (the start after a crash compacts), kept aside
    durable.kill9()
    durable.up()
    durable.wait_compacted()
    old = tmp_path / "old-state.pickle"
    shutil.copy(durable.snapshot, old)
    # AND later a user who signed up and was linked in PostgreSQL
    target = durable.target()
    with dbops.connect(target) as conn:
        dbops.seed_users(conn, (dbops.seed_user("Erin Vale", "erin", "erin@cruddur.test"),))
    assert cognitoops.create_target_users(target).created == ["erin"]
    assert cognitoops.sync_target(target).updated == ["erin"]

    # WHEN the twin comes back with the older pool (a snapshot put back by hand, no journal), PostgreSQL as it was
    durable.kill9()
    shutil.rmtree(durable.journal)
    shutil.copy(old, durable.snapshot)
    result = durable.up()

    # THEN local.up says which links name no user of the restored pool, and how to repair them
    assert result.links is not None and result.links.stale_links == ["erin"] and result.links.dry_run
    line = links_line(result.links, "dev")
    assert line in up_lines("dev", result)
    assert "1 link(s) to no Cognito user (erin)" in line and "cognito.create-users --stack dev" in line, line
    with dbops.connect(durable.target()) as conn:
        assert dbops.users_by_handle(conn, ["erin"])["erin"].cognito_user_id, "the dry run wrote nothing"

    # AND once repaired, a restore finds nothing to say
    assert cognitoops.create_target_users(durable.target()).created == ["erin"]
    cognitoops.sync_target(durable.target())
    durable.kill9()
    again = durable.up()
    assert again.links is not None and not again.links.drift and links_line(again.links, "dev") == ""
    assert not any(line.startswith("cognito links:") for line in up_lines("dev", again))
    with dbops.connect(durable.target()) as conn:
        conn.execute("DELETE FROM users WHERE handle = 'erin'")


def test_local_up_says_nothing_about_links_when_the_database_does_not_exist(durable: DurableTwin) -> None:
    target = durable.target()
    dbops.drop_database(target)
    try:
        durable.kill9()
        result = durable.up()
        assert result.restore_note.startswith("restored: ") and result.links is None
        assert not any(line.startswith("cognito links:") for line in up_lines_of(result))
    finally:
        durable.setup_database()


def up_lines_of(result: twinops.UpResult) -> list[str]:
    from ops.render import up_lines

    return up_lines("dev", result)
