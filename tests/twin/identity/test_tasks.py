"""The cognito.* and rds.* tasks (and db.setup's final sync), run the way a user runs them: `invoke …`."""

from __future__ import annotations

import json
from typing import Any

from ops import db as dbops
from ops.cognito import list_target_users
from ops.outputs import RDS_RULE_ID, output
from ops.target import Target
from tests.support.helpers import assert_one_line_error, run_invoke


def test_db_setup_seeds_cognito_and_ends_with_the_id_sync(identity_twin: Target) -> None:
    setup = run_invoke("db.setup")
    assert setup.returncode == 0, setup.stderr
    assert "== cognito users: created 4 Cognito user(s) (ada, bram, chidi, dana)" in setup.stdout
    assert "updated" in setup.stdout and "4  ada, bram, chidi, dana" in setup.stdout

    subs = {u.handle: u.sub for u in list_target_users(identity_twin)}
    with dbops.connect(identity_twin) as conn:
        assert {u.handle: u.cognito_user_id for u in dbops.list_users(conn)} == subs

    again = run_invoke("cognito.sync-ids")
    assert again.returncode == 0 and "nothing to change" in again.stdout
    assert "target: stack dev" in again.stderr  # it may write, so it says where

    dry = run_invoke("cognito.sync-ids", "--dry-run")
    assert dry.returncode == 0 and "dry run, nothing written" in dry.stdout and "target:" not in dry.stderr

    seed = run_invoke("db.seed")
    assert seed.returncode == 0 and "created 0 Cognito user(s); 4 already there" in seed.stdout

    listed = run_invoke("cognito.list-users", "--json")
    assert listed.returncode == 0
    assert sorted(json.loads(line)["handle"] for line in listed.stdout.splitlines()) == ["ada", "bram", "chidi", "dana"]


def test_update_sg_rule_prints_old_to_new_and_refuses_a_network(identity_twin: Target) -> None:
    ec2: Any = identity_twin.client("ec2")
    rule_id = output(identity_twin, RDS_RULE_ID)

    def cidr() -> str:
        return str(
            ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"][0]["CidrIpv4"]
        )

    moved = run_invoke("rds.update-sg-rule", "--ip", "203.0.113.7")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.startswith(f"{identity_twin.stack.rds_initial_ip}/32 → 203.0.113.7/32")
    assert cidr() == "203.0.113.7/32"

    refused = run_invoke("rds.update-sg-rule", "--ip", "0.0.0.0/0")
    assert_one_line_error(refused, "0.0.0.0/0", "every address")
    assert "target:" not in refused.stderr  # refused before even resolving where to send it
    assert cidr() == "203.0.113.7/32"

    from_env = run_invoke("rds.update-sg-rule", env={"GITPOD_IP": "198.51.100.4"})
    assert (
        from_env.returncode == 0
        and "203.0.113.7/32 → 198.51.100.4/32" in from_env.stdout
        and "$GITPOD_IP" in from_env.stdout
    )
    assert cidr() == "198.51.100.4/32"


def test_writing_ids_into_a_protected_cloud_stack_needs_confirmation(identity_twin: Target) -> None:
    proc = run_invoke("cognito.sync-ids", "--stack", "prod", "--cloud")
    assert_one_line_error(proc, "protected", "--confirm-protected")
