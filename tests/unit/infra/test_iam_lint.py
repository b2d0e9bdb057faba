"""Every IAM document of every stack's plan passes parliament with no finding above LOW."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import parliament
import pytest
from parliament import analyze_policy_string, enhance_finding, override_config

from infra.stream_consumer import LAMBDA_STREAM_POLLER_ACTIONS, NOT_GRANTED, consumer_policy
from ops.plan import StackPlan
from ops.stacks import list_stacks
from tests.support.plans import planned

# The community auditors' findings and severities, loaded as parliament's CLI does with --include-community-auditors.
override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")

SEVERITY = {"MUTE": 0, "INFO": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}

# Accepted findings, each with its reason. parliament reads every document as an identity policy;
# a role's trust policy is a resource policy on the role, which names no Resource by design.
IGNORED = {("assumeRolePolicy", "MALFORMED", "Statement contains neither Resource nor NotResource")}
# A KMS key policy must let the account's root administer the key (PutKeyPolicy among them), or
# nobody could ever change or delete it; parliament flags that grant on any identity policy.
IGNORED_FOR = {("messages-key", "policy", "PERMISSIONS_MANAGEMENT_ACTIONS")}


def _documents(plan: StackPlan) -> Iterator[tuple[str, str, str]]:
    """(resource, key, JSON) of every IAM document the plan declares, whatever the resource type."""
    for r in plan.resources:
        for key in ("policy", "assumeRolePolicy"):
            value = r.inputs.get(key)
            if isinstance(value, str) and value.lstrip().startswith("{"):
                yield r.name, key, value
        for inline in r.inputs.get("inlinePolicies") or []:
            yield r.name, f"inline policy {inline.get('name')}", inline["policy"]


# A DynamoDB stream's ARN ends in its label, a timestamp with colons (…/stream/2026-01-01T00:00:00.000);
# parliament's strict ARN check refuses any colon after the resource type, so it would report every
# real stream ARN as RESOURCE_MISMATCH. The label's colons become dots for the lint, nothing else.
STREAM_LABEL = re.compile(r"(:table/[^/\"]+/stream/)([^\"]+)")


def _findings(key: str, document: str, resource: str = "") -> list[tuple[str, str, Any]]:
    linted = STREAM_LABEL.sub(lambda m: m.group(1) + m.group(2).replace(":", "."), document)
    policy = analyze_policy_string(linted, include_community_auditors=True)
    # enhance_finding gives each finding its severity from parliament's config.yaml, as its CLI does
    found = [(f.issue, f.severity, f.detail) for f in map(enhance_finding, policy.findings)]
    return [
        f
        for f in found
        if SEVERITY.get(f[1], 5) > SEVERITY["LOW"]
        and (key, f[0], str(f[2])) not in IGNORED
        and (resource, key, f[0]) not in IGNORED_FOR
    ]


@pytest.mark.parametrize("stack", list_stacks())
def test_every_iam_document_passes_parliament(stack: str) -> None:
    documents = list(_documents(planned(stack)))
    assert {(name, key) for name, key, _ in documents} >= {
        ("stream-consumer-policy", "policy"),
        ("stream-consumer-role", "assumeRolePolicy"),
    }
    for name, key, document in documents:
        assert _findings(key, document, name) == [], f"{name} {key}"


def test_the_lint_catches_what_the_old_policy_granted() -> None:
    # The grant this suite removed: ListStreams on the stream's ARN, which it does not apply to.
    policy = json.loads(
        consumer_policy(
            "arn:aws:dynamodb:us-east-1:123456789012:table/t",
            "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
            "i",
            "arn:aws:logs:us-east-1:123456789012:log-group:g",
            "arn:aws:sqs:us-east-1:123456789012:q",
        )
    )
    policy["Statement"][0]["Action"].append("dynamodb:ListStreams")
    [(issue, severity, detail)] = _findings("policy", json.dumps(policy))
    assert (issue, severity) == ("RESOURCE_MISMATCH", "MEDIUM") and {
        "action": "dynamodb:ListStreams",
        "required_format": "*",
    } in detail


def test_only_the_stream_label_is_relaxed() -> None:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetRecords", "Resource": arn}],
    }
    assert _findings("policy", json.dumps(policy)) == []
    policy["Statement"][0]["Resource"] = "arn:aws:dynamodb:us-east-1:123456789012:table/t"  # a table is no stream
    assert [f[0] for f in _findings("policy", json.dumps(policy))] == ["RESOURCE_MISMATCH"]


def test_the_lint_catches_a_wildcard_grant() -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
    assert _findings("policy", json.dumps(policy)) != []


def test_what_is_left_out_cannot_be_granted_on_a_resource() -> None:
    # parliament's copy of AWS's service authorization reference: ListStreams has no resource type.
    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    privileges = {
        f"{s['prefix']}:{p['privilege']}": [r["resource_type"] for r in p["resource_types"]]
        for s in definition
        for p in s["privileges"]
    }
    for action in NOT_GRANTED:
        assert privileges[action] == [""], f"{action} takes a resource: grant it on one"
    for action in set(LAMBDA_STREAM_POLLER_ACTIONS) - set(NOT_GRANTED):
        assert "stream*" in privileges[action]
