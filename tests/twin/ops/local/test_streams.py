"""Processing a twin's stream: every shard, per-shard checkpoints that move only past processed records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ops.errors import InputError, NotFoundError
from ops.local.streams import StreamCounts, latest_stream_arn, process_stream
from ops.messages.model import GSI_NAME
from ops.messages.send import send_message
from tests.support.streams import (
    FaultyClient,
    assert_one_row_each_at_newest,
    group_rows_by_owner,
    message_records,
    person,
    stream_records,
)


def test_processing_resumes_after_its_checkpoint_and_reads_each_record_once(
    ddb: Any, streams: Any, table: str, tmp_path: Path
) -> None:
    ada, bram = person("ada"), person("bram")
    checkpoints = tmp_path / "stream-checkpoints.json"
    group = send_message(ddb, table, ada, "hello", receiver=bram).group_uuid
    send_message(ddb, table, bram, "reply", receiver=ada)

    first = process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    # marker, 2 rows, 2 messages; then, read in the same run, the moves' own 2 deletes + 2 puts (ignored)
    assert (first.shards, first.records, first.failed, first.rows_moved) == (1, 9, 0, 2)
    assert_one_row_each_at_newest(ddb, table, group, (ada, bram))
    assert process_stream(streams, ddb, table, GSI_NAME, checkpoints).records == 0

    send_message(ddb, table, ada, "again", receiver=bram)
    assert process_stream(streams, ddb, table, GSI_NAME, checkpoints).rows_moved == 2
    assert_one_row_each_at_newest(ddb, table, group, (ada, bram))
    saved = json.loads(checkpoints.read_text())["tables"][table]
    assert saved["stream_arn"] == latest_stream_arn(ddb, table) and len(saved["shards"]) == 1


def test_a_failed_record_is_not_checkpointed_and_the_next_run_retries_it(
    ddb: Any, streams: Any, table: str, tmp_path: Path
) -> None:
    ada, bram = person("ada"), person("bram")
    checkpoints = tmp_path / "stream-checkpoints.json"
    group = send_message(ddb, table, ada, "hello", receiver=bram).group_uuid
    send_message(ddb, table, bram, "reply", receiver=ada)
    reply = message_records(stream_records(streams, ddb, table), group)[1]

    failed = process_stream(streams, FaultyClient(ddb, group), table, GSI_NAME, checkpoints)

    assert (failed.failed, failed.rows_moved) == (1, 0)
    [saved] = json.loads(checkpoints.read_text())["tables"][table]["shards"].values()
    assert int(saved["seq"]) < int(reply["dynamodb"]["SequenceNumber"]), "the checkpoint stops before the failed record"
    retried = process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    assert (retried.failed, retried.rows_moved) == (0, 2)
    assert_one_row_each_at_newest(ddb, table, group, (ada, bram))


def test_follow_polls_round_after_round(ddb: Any, streams: Any, table: str, tmp_path: Path) -> None:
    rounds: list[StreamCounts] = []
    send_message(ddb, table, person("ada"), "hello", receiver=person("bram"))

    total = process_stream(
        streams,
        ddb,
        table,
        GSI_NAME,
        tmp_path / "c.json",
        follow=True,
        poll_seconds=0,
        max_rounds=3,
        on_round=rounds.append,
    )

    assert [r.records for r in rounds] == [4, 0, 0]
    assert (total.rounds, total.records, total.interrupted) == (3, 4, False)


def test_a_group_created_before_processing_has_its_rows_at_the_first_message(
    ddb: Any, streams: Any, table: str, tmp_path: Path
) -> None:
    ada, bram = person("ada"), person("bram")
    group = send_message(ddb, table, ada, "hello", receiver=bram).group_uuid
    assert process_stream(streams, ddb, table, GSI_NAME, tmp_path / "c.json").rows_moved == 0  # already there
    assert {k: len(v) for k, v in group_rows_by_owner(ddb, table, group).items()} == {ada.uuid: 1, bram.uuid: 1}


def test_unreadable_checkpoints_name_the_file_and_the_way_out(
    ddb: Any, streams: Any, table: str, tmp_path: Path
) -> None:
    bad = tmp_path / "stream-checkpoints.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=f"{bad}.*delete the file"):
        process_stream(streams, ddb, table, GSI_NAME, bad)


def test_a_missing_table_is_named(ddb: Any, streams: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="table 'no-such-table' does not exist"):
        process_stream(streams, ddb, "no-such-table", GSI_NAME, tmp_path / "c.json")
