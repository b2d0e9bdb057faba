"""Cognito: who the users are. PostgreSQL's ``users.cognito_user_id`` points here."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# The handle (@name) is Cognito's standard ``preferred_username``; the display name is ``name``.
HANDLE_ATTRIBUTE = "preferred_username"
DISPLAY_NAME_ATTRIBUTE = "name"


@dataclass(frozen=True)
class IdentityArgs:
    pool_name: str
    # Protected stacks keep their users: deletion protection in Cognito and `protect` in Pulumi.
    protected: bool


def _string_attribute(name: str) -> aws.cognito.UserPoolSchemaArgs:
    # Standard attributes report 0..2048 from the API; declaring the same avoids a perpetual diff.
    return aws.cognito.UserPoolSchemaArgs(
        name=name,
        attribute_data_type="String",
        mutable=True,
        required=True,
        string_attribute_constraints=aws.cognito.UserPoolSchemaStringAttributeConstraintsArgs(
            min_length="0", max_length="2048"
        ),
    )


class Identity(pulumi.ComponentResource):
    """The user pool people sign in to with their email, and the web app's client."""

    user_pool: aws.cognito.UserPool
    client: aws.cognito.UserPoolClient

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cruddur:identity:Identity", name, None, opts)

        # The accounts of Cruddur: sign-in by email, handle and display name required at sign-up.
        self.user_pool = aws.cognito.UserPool(
            f"{name}-users",
            name=args.pool_name,
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            username_configuration=aws.cognito.UserPoolUsernameConfigurationArgs(case_sensitive=False),
            schemas=[_string_attribute(HANDLE_ATTRIBUTE), _string_attribute(DISPLAY_NAME_ATTRIBUTE)],
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=7,
            ),
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(name="verified_email", priority=1)
                ]
            ),
            deletion_protection="ACTIVE" if args.protected else "INACTIVE",
            opts=pulumi.ResourceOptions(parent=self, protect=args.protected),
        )

        # The browser app cannot keep a secret, so it signs in with SRP and refreshes tokens.
        self.client = aws.cognito.UserPoolClient(
            f"{name}-web-client",
            name="web",
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.register_outputs({"userPoolId": self.user_pool.id, "clientId": self.client.id})
