"""The twin server's patches of moto's UpdateUserPool, UpdateTable and key rotation: they answer as AWS does.

GIVEN a pool that signs users in by email (or a table without encryption), WHEN it is updated the
way local.up updates it, THEN what AWS keeps is kept (the sign-in attribute) and what AWS changes is
changed (the encryption). Each test also shows unpatched moto gets it wrong, so a moto release that
fixes it (or changes the code patched) shows up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops.local.moto_patches import gaps as moto_gaps

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto as released, for the duration of one test (the patches are installed process-wide)."""
    from moto.cognitoidp.models import CognitoIdpBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.kms.responses import KmsResponse

    for owner, name in (
        (CognitoIdpBackend, "update_user_pool"),
        (DynamoHandler, "update_table"),
        (KmsResponse, "enable_key_rotation"),
        (KmsResponse, "get_key_rotation_status"),
    ):
        method = getattr(owner, name)
        monkeypatch.setattr(owner, name, getattr(method, "__wrapped__", method))


def _email_pool(cognito: Any) -> str:
    pool = cognito.create_user_pool(
        PoolName="p", UsernameAttributes=["email"], UsernameConfiguration={"CaseSensitive": False}
    )["UserPool"]["Id"]
    cognito.admin_create_user(
        UserPoolId=pool,
        Username="ada@example.com",
        UserAttributes=[{"Name": "email", "Value": "ada@example.com"}],
        MessageAction="SUPPRESS",
    )
    return str(pool)


def test_update_user_pool_keeps_what_only_creation_sets(aws: None) -> None:
    moto_gaps.install()
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = _email_pool(cognito)
    cognito.update_user_pool(UserPoolId=pool, Policies={"PasswordPolicy": {"MinimumLength": 14}})
    described = cognito.describe_user_pool(UserPoolId=pool)["UserPool"]
    assert described["Policies"]["PasswordPolicy"]["MinimumLength"] == 14, "the update itself still applies"
    assert described["UsernameAttributes"] == ["email"] and described["UsernameConfiguration"] == {
        "CaseSensitive": False
    }
    assert cognito.admin_get_user(UserPoolId=pool, Username="ada@example.com")["Username"], "users still found by email"


def test_unpatched_moto_forgets_the_sign_in_attribute(aws: None, unpatched: None) -> None:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = _email_pool(cognito)
    cognito.update_user_pool(UserPoolId=pool, Policies={"PasswordPolicy": {"MinimumLength": 14}})
    assert "UsernameAttributes" not in cognito.describe_user_pool(UserPoolId=pool)["UserPool"]


def _plain_table(ddb: Any) -> None:
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_update_table_switches_encryption_on_and_off(aws: None) -> None:
    moto_gaps.install()
    ddb, kms = boto3.client("dynamodb", region_name=REGION), boto3.client("kms", region_name=REGION)
    _plain_table(ddb)
    on = ddb.update_table(TableName="t", SSESpecification={"Enabled": True})["TableDescription"]["SSEDescription"]
    assert (
        on["Status"] == "ENABLED"
        and on["KMSMasterKeyArn"] == kms.describe_key(KeyId="alias/aws/dynamodb")["KeyMetadata"]["Arn"]
    )
    key = kms.create_key(Description="mine")["KeyMetadata"]["Arn"]
    ddb.update_table(TableName="t", SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key})
    assert ddb.describe_table(TableName="t")["Table"]["SSEDescription"]["KMSMasterKeyArn"] == key
    ddb.update_table(TableName="t", SSESpecification={"Enabled": False})
    assert "SSEDescription" not in ddb.describe_table(TableName="t")["Table"]


def test_unpatched_moto_ignores_an_encryption_update(aws: None, unpatched: None) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    _plain_table(ddb)
    ddb.update_table(TableName="t", SSESpecification={"Enabled": True})
    assert "SSEDescription" not in ddb.describe_table(TableName="t")["Table"]


def test_a_keys_rotation_period_is_kept_and_reported(aws: None) -> None:
    # GIVEN two keys, WHEN rotation is enabled with a period and without one
    moto_gaps.install()
    kms = boto3.client("kms", region_name=REGION)
    declared, default = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    kms.enable_key_rotation(KeyId=declared, RotationPeriodInDays=180)
    kms.enable_key_rotation(KeyId=default)
    # THEN the status reports each period as AWS does (365 days when none was given), none when rotation is off
    assert kms.get_key_rotation_status(KeyId=declared)["RotationPeriodInDays"] == 180
    assert kms.get_key_rotation_status(KeyId=default)["RotationPeriodInDays"] == 365
    kms.disable_key_rotation(KeyId=declared)
    assert "RotationPeriodInDays" not in kms.get_key_rotation_status(KeyId=declared)


def test_unpatched_moto_forgets_the_rotation_period(aws: None, unpatched: None) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=180)
    assert "RotationPeriodInDays" not in kms.get_key_rotation_status(KeyId=key)
