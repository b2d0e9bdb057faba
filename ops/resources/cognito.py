"""``aws:cognito/userPool:UserPool`` and ``aws:cognito/userPoolClient:UserPoolClient``."""

from __future__ import annotations

from typing import Any

from ops.aws import call, items
from ops.errors import NotFoundError
from ops.plan import PlannedResource
from ops.resources.base import Adapter, Context, Field, Live, as_sorted, nest, nested, tags_dict

# Cognito's standard attributes; any other schema entry is a custom one, which the API prefixes.
STANDARD_ATTRIBUTES = frozenset(
    "address birthdate email email_verified family_name gender given_name locale middle_name name nickname "
    "phone_number phone_number_verified picture preferred_username profile sub updated_at website zoneinfo".split()
)


def _schema(value: list[dict[str, Any]]) -> dict[str, Any]:
    """The declared attributes by their API name, each in DescribeUserPool's form (numbers as strings)."""
    out: dict[str, Any] = {}
    for attr in value:
        name = attr["name"] if attr["name"] in STANDARD_ATTRIBUTES else f"custom:{attr['name']}"
        shape: dict[str, Any] = {"AttributeDataType": attr.get("attributeDataType")}
        for key, api in (
            ("mutable", "Mutable"),
            ("required", "Required"),
            ("developerOnlyAttribute", "DeveloperOnlyAttribute"),
        ):
            if attr.get(key) is not None:
                shape[api] = attr[key]
        for block, api in (
            ("stringAttributeConstraints", "StringAttributeConstraints"),
            ("numberAttributeConstraints", "NumberAttributeConstraints"),
        ):
            limits = attr.get(block) or {}
            pairs = {
                k: str(limits[i])
                for i, k in (
                    ("minLength", "MinLength"),
                    ("maxLength", "MaxLength"),
                    ("minValue", "MinValue"),
                    ("maxValue", "MaxValue"),
                )
                if limits.get(i) is not None
            }
            if pairs:
                shape[api] = pairs
        out[name] = shape
    return out


def _recovery(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({"Name": m.get("name", m.get("Name")), "Priority": m.get("priority", m.get("Priority"))} for m in value),
        key=lambda m: m["Priority"] or 0,
    )


def _live_recovery(value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    return None if value is None else _recovery(value)


class UserPoolAdapter(Adapter):
    type = "aws:cognito/userPool:UserPool"
    label = "Cognito user pool"
    service = "cognito-idp"
    fields = (
        Field("name", "PoolName", in_place=False),
        Field("usernameAttributes", "UsernameAttributes", normalize=as_sorted, in_place=False),
        Field("aliasAttributes", "AliasAttributes", normalize=as_sorted, in_place=False),
        Field("usernameConfiguration.caseSensitive", "UsernameConfiguration.CaseSensitive", in_place=False),
        Field("schemas", "Schema", to_api=_schema, subset=True, in_place=False),
        Field("autoVerifiedAttributes", "AutoVerifiedAttributes", normalize=as_sorted),
        *nested(
            [
                ("minimumLength", "MinimumLength"),
                ("requireLowercase", "RequireLowercase"),
                ("requireUppercase", "RequireUppercase"),
                ("requireNumbers", "RequireNumbers"),
                ("requireSymbols", "RequireSymbols"),
                ("temporaryPasswordValidityDays", "TemporaryPasswordValidityDays"),
                ("passwordHistorySize", "PasswordHistorySize"),
            ],
            "passwordPolicy",
            "Policies.PasswordPolicy",
        ),
        Field(
            "accountRecoverySetting.recoveryMechanisms",
            "AccountRecoverySetting.RecoveryMechanisms",
            to_api=_recovery,
            normalize=_live_recovery,
        ),
        Field("adminCreateUserConfig.allowAdminCreateUserOnly", "AdminCreateUserConfig.AllowAdminCreateUserOnly"),
        Field("mfaConfiguration", "MfaConfiguration"),
        Field("deletionProtection", "DeletionProtection"),
        Field("userPoolTier", "UserPoolTier"),
        Field("tags", "UserPoolTags", to_api=tags_dict, normalize=tags_dict),
    )
    # A pool of another name is another pool (UpdateUserPool cannot rename; Pulumi replaces it).
    replace_on = ("name",)
    # What UpdateUserPool takes; AWS resets what a request leaves out, so every declared one is sent.
    UPDATABLE = (
        "AutoVerifiedAttributes",
        "Policies",
        "AccountRecoverySetting",
        "AdminCreateUserConfig",
        "MfaConfiguration",
        "DeletionProtection",
        "UserPoolTier",
        "UserPoolTags",
    )

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        pool_id = ctx.known_id(planned)
        if pool_id:
            found = self._read(pool_id, ctx)
            if found is not None:
                return found
        return self.find_by_name(self.physical_name(planned), ctx)

    def find_by_name(self, name: str, ctx: Context) -> Live | None:
        cognito = ctx.client("cognito-idp")
        for pool in items(cognito, "list_user_pools", "Cognito ListUserPools", "UserPools", MaxResults=60):
            if pool["Name"] == name:
                return self._read(pool["Id"], ctx)
        return None

    def _read(self, pool_id: str, ctx: Context) -> Live | None:
        cognito = ctx.client("cognito-idp")
        try:
            pool = call(cognito.describe_user_pool, f"Cognito DescribeUserPool {pool_id}", UserPoolId=pool_id)[
                "UserPool"
            ]
        except NotFoundError:
            return None
        view = dict(pool)
        view["PoolName"] = pool["Name"]
        view["Schema"] = {
            a["Name"]: {k: v for k, v in a.items() if k != "Name" and v not in (None, {})}
            for a in pool.get("SchemaAttributes") or []
        }
        view["UserPoolTags"] = pool.get("UserPoolTags") or {}
        region = ctx.target.region
        identity = {
            "id": pool["Id"],
            "arn": pool.get("Arn", ""),
            "endpoint": f"cognito-idp.{region}.amazonaws.com/{pool['Id']}",
            "name": pool["Name"],
        }
        return Live(f"{pool['Name']} ({pool['Id']})", identity, view)

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        cognito = ctx.client("cognito-idp")
        request = nest(want)
        schema = request.pop("Schema", {})
        if schema:
            request["Schema"] = [{"Name": n.removeprefix("custom:"), **attr} for n, attr in schema.items()]
        pool = call(cognito.create_user_pool, f"Cognito CreateUserPool {want['PoolName']}", **request)["UserPool"]
        live = self._read(pool["Id"], ctx)
        assert live is not None
        return live

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        cognito = ctx.client("cognito-idp")
        request = {k: v for k, v in nest(want).items() if k in self.UPDATABLE}
        call(
            cognito.update_user_pool,
            f"Cognito UpdateUserPool {live.identity['id']}",
            UserPoolId=live.identity["id"],
            **request,
        )


class UserPoolClientAdapter(Adapter):
    type = "aws:cognito/userPoolClient:UserPoolClient"
    label = "Cognito app client"
    service = "cognito-idp"
    order = 2  # after its pool, whose live id it names
    fields = (
        Field("name", "ClientName"),
        Field("userPoolId", "UserPoolId", in_place=False),
        Field("generateSecret", "GenerateSecret", in_place=False),
        Field("explicitAuthFlows", "ExplicitAuthFlows", normalize=as_sorted),
        Field("preventUserExistenceErrors", "PreventUserExistenceErrors"),
        Field("enableTokenRevocation", "EnableTokenRevocation"),
        Field("enablePropagateAdditionalUserContextData", "EnablePropagateAdditionalUserContextData"),
        Field("allowedOauthFlowsUserPoolClient", "AllowedOAuthFlowsUserPoolClient"),
        Field("allowedOauthFlows", "AllowedOAuthFlows", normalize=as_sorted),
        Field("allowedOauthScopes", "AllowedOAuthScopes", normalize=as_sorted),
        Field("callbackUrls", "CallbackURLs", normalize=as_sorted),
        Field("logoutUrls", "LogoutURLs", normalize=as_sorted),
        Field("supportedIdentityProviders", "SupportedIdentityProviders", normalize=as_sorted),
        Field("readAttributes", "ReadAttributes", normalize=as_sorted),
        Field("writeAttributes", "WriteAttributes", normalize=as_sorted),
        Field("refreshTokenValidity", "RefreshTokenValidity"),
        Field("accessTokenValidity", "AccessTokenValidity"),
        Field("idTokenValidity", "IdTokenValidity"),
        Field("authSessionValidity", "AuthSessionValidity"),
    )
    CREATION_ONLY = ("UserPoolId", "GenerateSecret")

    def physical_name(self, planned: PlannedResource) -> str:
        return str(planned.inputs.get("name") or planned.name)

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        pool_id = str(ctx.resolve(planned.inputs.get("userPoolId") or ""))
        if not pool_id or pool_id.startswith("<"):
            return None  # its pool is missing, so is it
        client_id = ctx.known_id(planned)
        if client_id:
            found = self._read(pool_id, client_id, ctx)
            if found is not None:
                return found
        cognito = ctx.client("cognito-idp")
        name = self.physical_name(planned)
        for client in items(
            cognito,
            "list_user_pool_clients",
            f"Cognito ListUserPoolClients {pool_id}",
            "UserPoolClients",
            UserPoolId=pool_id,
            MaxResults=60,
        ):
            if client["ClientName"] == name:
                return self._read(pool_id, client["ClientId"], ctx)
        return None

    def _read(self, pool_id: str, client_id: str, ctx: Context) -> Live | None:
        cognito = ctx.client("cognito-idp")
        try:
            client = call(
                cognito.describe_user_pool_client,
                f"Cognito DescribeUserPoolClient {client_id}",
                UserPoolId=pool_id,
                ClientId=client_id,
            )["UserPoolClient"]
        except NotFoundError:
            return None
        view = {k: v for k, v in client.items() if k != "ClientSecret"}  # never kept, never shown
        view["GenerateSecret"] = bool(client.get("ClientSecret"))
        return Live(f"{client['ClientName']} ({client_id})", {"id": client_id, "name": client["ClientName"]}, view)

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        cognito = ctx.client("cognito-idp")
        client = call(
            cognito.create_user_pool_client, f"Cognito CreateUserPoolClient {want.get('ClientName')}", **nest(want)
        )["UserPoolClient"]
        live = self._read(client["UserPoolId"], client["ClientId"], ctx)
        assert live is not None
        return live

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        # UpdateUserPoolClient resets what it is not sent: send every declared setting, not only the changed ones
        cognito = ctx.client("cognito-idp")
        request = {k: v for k, v in nest(want).items() if k not in self.CREATION_ONLY}
        call(
            cognito.update_user_pool_client,
            f"Cognito UpdateUserPoolClient {live.identity['id']}",
            UserPoolId=live.view["UserPoolId"],
            ClientId=live.identity["id"],
            **request,
        )
