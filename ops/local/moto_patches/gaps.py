"""Three places where moto's API differs from AWS's in what the twin's reconcile relies on.

``local.up`` changes the twin's resources in place when the program changes them, with the
same update calls AWS takes. moto gets three of those wrong:

- ``UpdateUserPool``: AWS keeps what can only be set at creation (``UsernameAttributes``,
  ``AliasAttributes``, ``UsernameConfiguration``; the request has no field for them). moto
  replaces the whole settings dict with the request, so after an update the pool forgets that
  users sign in by email and ``AdminGetUser`` by email stops finding them.
- ``UpdateTable`` with ``SSESpecification``: AWS switches the table's encryption; moto drops the
  field, so the twin's table could never follow the program's encryption setting.
- ``EnableKeyRotation`` with ``RotationPeriodInDays``: AWS keeps the period (365 days when none is
  given) and ``GetKeyRotationStatus`` returns it; moto drops it, so every restarted twin differed
  from the program's ``rotationPeriodInDays`` (a false drift, with a warning about the key that
  encrypts the twin's messages).

``install()`` is idempotent and must run in the process that serves moto (``ops.local.motoserver``,
or a test's in-process ``mock_aws``). Each patch is tested against the AWS behaviour it restores.
"""

from __future__ import annotations

import functools
from typing import Any

# UpdateUserPool has no parameter for these, so AWS leaves them as they were created.
CREATION_ONLY_POOL_SETTINGS = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")


def _keeps_creation_settings(update_user_pool: Any) -> Any:
    if getattr(update_user_pool, "_cruddur_patched", False):
        return update_user_pool

    @functools.wraps(update_user_pool)
    def patched(self: Any, user_pool_id: str, extended_config: dict[str, Any]) -> None:
        before = dict(self.describe_user_pool(user_pool_id).extended_config)
        update_user_pool(self, user_pool_id, extended_config)
        after = self.describe_user_pool(user_pool_id).extended_config
        for key in CREATION_ONLY_POOL_SETTINGS:
            if key in before:
                after[key] = before[key]
            else:
                after.pop(key, None)

    patched._cruddur_patched = True  # type: ignore[attr-defined]
    return patched


def _applies_encryption(update_table: Any) -> Any:
    if getattr(update_table, "_cruddur_patched", False):
        return update_table

    @functools.wraps(update_table)
    def patched(self: Any) -> Any:
        spec = self.body.get("SSESpecification")
        if spec is not None:
            table = self.dynamodb_backend.get_table(self.body["TableName"])  # a missing table fails as the update would
            spec = dict(spec)
            if spec.get("Enabled") and "KMSMasterKeyId" not in spec:
                # no key named: AWS uses the account's AWS managed key (alias/aws/dynamodb), as CreateTable does
                spec["KMSMasterKeyId"] = table._get_default_encryption_key(table.account_id, table.region_name)
            table.sse_specification = spec
        return update_table(self)  # answers with the table's description, encryption included

    patched._cruddur_patched = True  # type: ignore[attr-defined]
    return patched


DEFAULT_ROTATION_DAYS = 365  # what AWS sets when EnableKeyRotation names no period


def _keeps_rotation_period(enable_key_rotation: Any) -> Any:
    if getattr(enable_key_rotation, "_cruddur_patched", False):
        return enable_key_rotation

    @functools.wraps(enable_key_rotation)
    def patched(self: Any) -> Any:
        answer = enable_key_rotation(self)  # validates the key as AWS does, then turns rotation on
        period = self._get_param("RotationPeriodInDays")
        key = self.kms_backend.keys[self.kms_backend.get_key_id(self._get_param("KeyId"))]
        key.rotation_period_in_days = int(period) if period else DEFAULT_ROTATION_DAYS
        return answer

    patched._cruddur_patched = True  # type: ignore[attr-defined]
    return patched


def _reports_rotation_period(get_key_rotation_status: Any) -> Any:
    if getattr(get_key_rotation_status, "_cruddur_patched", False):
        return get_key_rotation_status

    @functools.wraps(get_key_rotation_status)
    def patched(self: Any) -> Any:
        import json

        answer = json.loads(get_key_rotation_status(self))
        if answer.get("KeyRotationEnabled"):
            key = self.kms_backend.keys[self.kms_backend.get_key_id(self._get_param("KeyId"))]
            # a key whose rotation was enabled before this patch (a restored twin) has AWS's default period
            answer["RotationPeriodInDays"] = getattr(key, "rotation_period_in_days", DEFAULT_ROTATION_DAYS)
        return json.dumps(answer)

    patched._cruddur_patched = True  # type: ignore[attr-defined]
    return patched


def install() -> None:
    from moto.cognitoidp.models import CognitoIdpBackend
    from moto.dynamodb.responses import DynamoHandler

    CognitoIdpBackend.update_user_pool = _keeps_creation_settings(CognitoIdpBackend.update_user_pool)  # type: ignore[method-assign]
    DynamoHandler.update_table = _applies_encryption(DynamoHandler.update_table)  # type: ignore[method-assign]
    from moto.kms.responses import KmsResponse

    KmsResponse.enable_key_rotation = _keeps_rotation_period(KmsResponse.enable_key_rotation)  # type: ignore[method-assign]
    KmsResponse.get_key_rotation_status = _reports_rotation_period(KmsResponse.get_key_rotation_status)  # type: ignore[method-assign]
