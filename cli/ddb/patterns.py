"""ddb.patterns.*: the read access patterns, one page at a time."""

from __future__ import annotations

from invoke import Collection, Context

from cli.shell import comma_separated, helps, note, one_line_errors, say, target_for, task


@task(
    name="list-conversations",
    help=helps(
        "handle",
        "stack",
        "cloud",
        "json",
        "full",
        page_size="page_size_groups",
        cursor="cursor_groups",
        before="before_groups",
    ),
)
@one_line_errors
def list_conversations(
    c: Context,
    handle: str,
    stack: str = "dev",
    cloud: bool = False,
    page_size: int = 20,
    cursor: str | None = None,
    before: str | None = None,
    json: bool = False,
    full: bool = False,
) -> None:
    """Access pattern 1: a user's conversations, newest reply first, one page at a time."""
    from ops.conversations import conversations_of
    from ops.render import conversations_text

    page = conversations_of(target_for(stack, cloud), handle, page_size, cursor, before)
    say(conversations_text(page, full, as_json=json), exact=json)
    if page.next_cursor:
        note(f"next page: --cursor {page.next_cursor}")


@task(
    name="get-conversation",
    iterable=["handle"],
    flag_aliases={"handle": ["handles"]},
    help=helps(
        "stack",
        "cloud",
        "group",
        "json",
        handle="participants",
        page_size="page_size_messages",
        cursor="cursor_messages",
        before="before_messages",
        full="full_messages",
    ),
)
@one_line_errors
def get_conversation(
    c: Context,
    stack: str = "dev",
    cloud: bool = False,
    group: str | None = None,
    handle: list[str] | None = None,
    page_size: int = 20,
    cursor: str | None = None,
    before: str | None = None,
    json: bool = False,
    full: bool = False,
) -> None:
    """Access pattern 2: a conversation's newest page of messages, shown oldest to newest."""
    from ops.conversations import conversation
    from ops.render import conversation_text

    page = conversation(target_for(stack, cloud), group, comma_separated(handle or []), page_size, cursor, before)
    say(conversation_text(page, full, as_json=json), exact=json)
    if page.next_cursor:
        note(f"older messages: --cursor {page.next_cursor}")


ns = Collection("patterns", list_conversations, get_conversation)
