"""``aws:kms/key:Key`` and ``aws:kms/alias:Alias``, for a stack that declares its own key.

The key policy is not compared here: it names the account and its roles, which only the cloud
has; the policy rules check it in the plan. A twin's key is created with the plan's policy (moto
keeps it without enforcing it), so what the program grants can be read back there.
"""

from __future__ import annotations

from typing import Any

from ops.aws import call, items
from ops.errors import NotFoundError
from ops.plan import PlannedResource
from ops.resources.base import Adapter, Context, Field, Live, tags_dict

ALIAS_TYPE = "aws:kms/alias:Alias"


def key_id_of(value: Any) -> Any:
    """A key's id from its id or its ARN (``arn:aws:kms:…:key/<id>``): an alias may name it either way."""
    return value.rsplit("key/", 1)[-1] if isinstance(value, str) and ":key/" in value else value


def _kms_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in tags.items()]


class KeyAdapter(Adapter):
    type = "aws:kms/key:Key"
    label = "KMS key"
    service = "kms"
    order = 0  # tables, queues and aliases name it
    fields = (
        Field("description", "Description"),
        Field("keyUsage", "KeyUsage", in_place=False),
        Field("customerMasterKeySpec", "KeySpec", in_place=False),
        Field("keySpec", "KeySpec", in_place=False),
        Field("multiRegion", "MultiRegion", in_place=False),
        Field("isEnabled", "Enabled"),
        Field("enableKeyRotation", "KeyRotationEnabled"),
        Field("rotationPeriodInDays", "RotationPeriodInDays"),
        Field("tags", "Tags", to_api=tags_dict, normalize=tags_dict),
    )

    def physical_name(self, planned: PlannedResource) -> str:
        return planned.name  # a key has an id, no name

    def _alias(self, planned: PlannedResource, ctx: Context) -> str | None:
        """The name of an alias the plan points at this key: how a key is found without a recorded id."""
        mocked = {planned.id, *(v for k, v in planned.state.items() if k in ("arn", "keyId"))}
        for alias in ctx.plan.of_type(ALIAS_TYPE):
            if alias.inputs.get("targetKeyId") in mocked:
                return str(alias.inputs.get("name"))
        return None

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        key = ctx.known_id(planned) or self._alias(planned, ctx)
        if not key:
            return None  # no id recorded and no alias names it: nothing to find it by
        kms = ctx.client("kms")
        try:
            meta = call(kms.describe_key, f"KMS DescribeKey {key}", KeyId=key)["KeyMetadata"]
        except NotFoundError:
            return None
        if meta.get("KeyState") == "PendingDeletion":
            return None
        key_id = meta["KeyId"]
        rotation = call(kms.get_key_rotation_status, f"KMS GetKeyRotationStatus {key_id}", KeyId=key_id)
        tags = list(items(kms, "list_resource_tags", f"KMS ListResourceTags {key_id}", "Tags", KeyId=key_id))
        view = {
            **meta,
            "KeyRotationEnabled": rotation.get("KeyRotationEnabled"),
            "RotationPeriodInDays": rotation.get("RotationPeriodInDays"),
            "Tags": tags_dict(tags),
        }
        return Live(key_id, {"id": key_id, "keyId": key_id, "arn": meta["Arn"]}, view)

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        kms = ctx.client("kms")
        request: dict[str, Any] = {
            k: want[k] for k in ("Description", "KeyUsage", "KeySpec", "MultiRegion") if k in want
        }
        if want.get("Tags"):
            request["Tags"] = _kms_tags(want["Tags"])
        if isinstance(planned.inputs.get("policy"), str):
            request["Policy"] = planned.inputs["policy"]
        key_id = call(kms.create_key, "KMS CreateKey", **request)["KeyMetadata"]["KeyId"]
        ctx.recorded[planned.name] = {"id": key_id}  # found again by this id until an alias exists
        live = self.locate(planned, ctx)
        assert live is not None
        self.update(planned, want, live, {f.api for f in self.fields if f.api in want} - set(request) - {"Tags"}, ctx)
        return self.locate(planned, ctx) or live

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        kms = ctx.client("kms")
        key_id = live.identity["id"]
        if "Description" in changed:
            call(
                kms.update_key_description,
                f"KMS UpdateKeyDescription {key_id}",
                KeyId=key_id,
                Description=want["Description"],
            )
        if changed & {"KeyRotationEnabled", "RotationPeriodInDays"}:
            if want.get("KeyRotationEnabled", live.view.get("KeyRotationEnabled")):
                period = (
                    {"RotationPeriodInDays": want["RotationPeriodInDays"]} if "RotationPeriodInDays" in want else {}
                )
                call(kms.enable_key_rotation, f"KMS EnableKeyRotation {key_id}", KeyId=key_id, **period)
            else:
                call(kms.disable_key_rotation, f"KMS DisableKeyRotation {key_id}", KeyId=key_id)
        if "Enabled" in changed:
            call(kms.enable_key if want["Enabled"] else kms.disable_key, f"KMS enable/disable {key_id}", KeyId=key_id)
        if "Tags" in changed:
            declared, have = want.get("Tags", {}), live.view.get("Tags", {})
            stale = [k for k in have if k not in declared]
            if stale:
                call(kms.untag_resource, f"KMS UntagResource {key_id}", KeyId=key_id, TagKeys=stale)
            fresh = {k: v for k, v in declared.items() if have.get(k) != v}
            if fresh:
                call(kms.tag_resource, f"KMS TagResource {key_id}", KeyId=key_id, Tags=_kms_tags(fresh))


class AliasAdapter(Adapter):
    type = ALIAS_TYPE
    label = "KMS alias"
    service = "kms"
    order = 1  # after its key
    fields = (
        Field("name", "AliasName", in_place=False),
        Field("targetKeyId", "TargetKeyId", normalize=key_id_of),
    )

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        kms = ctx.client("kms")
        name = self.physical_name(planned)
        for alias in items(kms, "list_aliases", "KMS ListAliases", "Aliases"):
            if alias["AliasName"] == name:
                identity = {"id": name, "arn": alias.get("AliasArn", ""), "targetKeyArn": ""}
                return Live(name, identity, {"AliasName": name, "TargetKeyId": alias.get("TargetKeyId")})
        return None

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        kms = ctx.client("kms")
        call(
            kms.create_alias,
            f"KMS CreateAlias {want['AliasName']}",
            AliasName=want["AliasName"],
            TargetKeyId=want["TargetKeyId"],
        )
        live = self.locate(planned, ctx)
        assert live is not None
        return live

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        kms = ctx.client("kms")
        call(
            kms.update_alias,
            f"KMS UpdateAlias {live.physical}",
            AliasName=live.physical,
            TargetKeyId=want["TargetKeyId"],
        )
