"""cognito.*: the stack's user pool, and the link from each PostgreSQL user to their Cognito user."""

from __future__ import annotations

from invoke import Collection, Context

from cli.shell import helps, one_line_errors, say, target_for, task


@task(name="list-users", help=helps("stack", "cloud", "json"))
@one_line_errors
def list_users(c: Context, stack: str = "dev", cloud: bool = False, json: bool = False) -> None:
    """List every user of the stack's Cognito pool (all pages): handle, sub, email, status."""
    from ops.cognito import list_target_users
    from ops.render import cognito_users_table, json_lines

    users = list_target_users(target_for(stack, cloud))
    say("\n".join(json_lines(users)) if json else cognito_users_table(users), exact=json)


@task(name="sync-ids", help=helps("stack", "cloud", "confirm_protected", "dry_run"))
@one_line_errors
def sync_ids(
    c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False, dry_run: bool = False
) -> None:
    """Set users.cognito_user_id to the sub of the Cognito user with the same handle, in one transaction."""
    from ops.cognito import sync_target
    from ops.render import sync_report_lines

    target = target_for(stack, cloud, writes=not dry_run, confirm_protected=confirm_protected, service="postgres")
    say("\n".join(sync_report_lines(sync_target(target, dry_run=dry_run))))


@task(name="create-users", help=helps("stack"))
@one_line_errors
def create_users(c: Context, stack: str = "dev") -> None:
    """Create in the twin's pool a Cognito user per row of the users table (existing ones are kept)."""
    from ops.cognito import create_target_users
    from ops.render import create_result_line

    say(create_result_line(create_target_users(target_for(stack, writes=True, service="cognito-idp"))))


ns = Collection("cognito", list_users, sync_ids, create_users)
