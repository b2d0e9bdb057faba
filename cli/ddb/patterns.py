"""ddb.patterns.*: the read access patterns, one page at a time."""

from __future__ import annotations

from invoke import Collection, Context

from cli.shell import comma_separated, helps, note, one_line_errors, say, target_for, task


@task(name="list-conversations", help=helps("handle", "stack", "cloud", "json", "full", page_size="page_size_groups", cursor="cursor_groups", before="before_groups"))
@one_line_errors
def list_conversations(c: Context, handle: str, stack: str = "dev", cloud: bool = False, page_size: int = 20, cursor: str | None = None, before: str | None = None,
                       json: bool = False, full: bool = False) -> None:
    """Access pattern 1: a user's conversations, newest reply first, one page at a time."""
    from ops import db, patterns
    from ops.render import groups_table, json_lines

    target = target_for(stack, cloud)
    with db.connect(target) as conn:
        user = db.users_by_handle(conn, [handle])[handle]
    page = patterns.list_conversations(target.client("dynamodb"), target.stack.table_name, user.uuid, page_size, cursor, before)
    say("\n".join(json_lines(page.items)) if json else groups_table(page.items, full))
    if page.next_cursor:
        note(f"next page: --cursor {page.next_cursor}")


@task(name="get-conversation", iterable=["handle"], flag_aliases={"handle": ["handles"]},
      help=helps("stack", "cloud", "group", "json", handle="participants", page_size="page_size_messages", cursor="cursor_messages", before="before_messages", full="full_messages"))
@one_line_errors
def get_conversation(c: Context, stack: str = "dev", cloud: bool = False, group: str | None = None, handle: list[str] | None = None, page_size: int = 20,
                     cursor: str | None = None, before: str | None = None, json: bool = False, full: bool = False) -> None:
    """Access pattern 2: a conversation's newest page of messages, shown oldest to newest."""
    from ops import db, patterns
    from ops.render import conversation_lines, json_lines

    target = target_for(stack, cloud)
    if not group:
        with db.connect(target) as conn:
            group = db.group_of_handles(conn, ",".join(comma_separated(handle or [])))
    page = patterns.get_conversation(target.client("dynamodb"), target.stack.table_name, group, page_size, cursor, before)
    say("\n".join(json_lines(page.items)) if json else conversation_lines(page.items, full))
    if page.next_cursor:
        note(f"older messages: --cursor {page.next_cursor}")


ns = Collection("patterns", list_conversations, get_conversation)
