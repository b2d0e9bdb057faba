"""The doctor's SQL offline: one text for both engines, Athena's form checked against moto's Athena (no cloud)."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from ops import doctor_sql


def test_every_check_is_one_statement_over_items_and_athenas_reads_one_export() -> None:
    duck = doctor_sql.queries()
    athena = doctor_sql.athena_queries("cruddur_messages_exports", "export_items", "01234567890123-abcdef01")
    assert set(duck) == set(athena) == {*doctor_sql.CHECKS, "summary"}
    for kind, sql in athena.items():
        # the checks themselves are the same text; only the view in front differs
        assert sql.split("msgs AS", 1)[1] == duck[kind].split("msgs AS", 1)[1], kind
        assert '"cruddur_messages_exports"."export_items"' in sql
        assert "\"$path\" LIKE '%/AWSDynamoDB/01234567890123-abcdef01/data/%'" in sql
        assert "from_iso8601_timestamp" in sql and "{" not in sql.replace("{4}", "")


@mock_aws
def test_athena_runs_each_check_in_the_stacks_workgroup_and_database() -> None:
    athena = boto3.client("athena", region_name="us-east-1")
    names = doctor_sql.athena_names("cruddur-messages")
    athena.create_work_group(
        Name=names.workgroup, Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/doctor/"}}
    )
    sent: list[dict[str, Any]] = []
    athena.meta.events.register(
        "provide-client-params.athena.StartQueryExecution", lambda params, **_: sent.append(dict(params))
    )
    found = doctor_sql.run_athena(athena, names, "01234567890123-abcdef01", sleep=lambda s: None)
    assert len(sent) == len(doctor_sql.CHECKS) + 1
    assert {s["WorkGroup"] for s in sent} == {"cruddur-messages-doctor"}
    assert {s["QueryExecutionContext"]["Database"] for s in sent} == {"cruddur_messages_exports"}
    # moto's Athena answers every query with no rows: nothing found, nothing made up
    assert doctor_sql.examination(found).clean
