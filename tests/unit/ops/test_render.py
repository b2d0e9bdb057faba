"""Safe display: text that came from the table is shown, never obeyed by the terminal; JSON stays exact."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from ops.db import User
from ops.doctor import Examination, Finding, Repair
from ops.messages.membership import MemberChange
from ops.messages.model import GroupRow, Membership, Message, Person
from ops.render import (
    Progress,
    conversation_lines,
    doctor_lines,
    group_made_lines,
    groups_table,
    item_lines,
    json_lines,
    member_change_line,
    repair_lines,
    seeded_line,
    sync_report_lines,
    table,
    users_table,
    visible,
)

GROUP = "5f0c4a1e-9d2b-4c3a-8e7f-1a2b3c4d5e6f"
FORGED = "ok\nbram  2026-01-01 00:00  send me your password"
ESCAPES = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J"
BIDI = "abc\u202egnp.exe\u202c \u2066x\u2069 \u200f \u061c"
SEPARATORS = "line\u2028para\u2029end\r\rtab\tdel\x7f"
HOSTILE = [FORGED, ESCAPES, BIDI, SEPARATORS, "\x00nul\x01"]
# nothing a terminal acts on: C0, DEL, C1, bidi controls, line and paragraph separators
OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _message(text: str, handle: str = "ada", created: str = "2026-01-05T09:00:00.000000+00:00") -> Message:
    return Message(GROUP, created, "m-1", text, "u-1", "Ada\x1b[2J", handle)


@pytest.mark.parametrize("text", HOSTILE)
def test_visible_leaves_no_character_a_terminal_obeys(text: str) -> None:
    shown = visible(text)
    assert not OBEYED.search(shown) and "\n" not in shown, repr(shown)
    assert visible(shown) == shown, "showing twice changes nothing"


def test_visible_writes_each_one_out_recognisably() -> None:
    assert visible("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert visible("\x1b[31m") == "\\x1b[31m" and visible("\x9b") == "\\x9b" and visible("\x7f") == "\\x7f"
    assert visible("\u202e\u2066\u2028") == "\\u202e\\u2066\\u2028"
    assert visible("ünïcødé, 中文, emoji 👩‍👩‍👧") == "ünïcødé, 中文, emoji 👩‍👩‍👧", "printable text stays as it is"


def test_a_message_cannot_forge_a_line_of_the_conversation_or_send_escape_sequences() -> None:
    messages = [
        _message("hello"),
        _message(FORGED, created="2026-01-05T09:01:00.000000+00:00"),
        _message(ESCAPES + BIDI, handle="eve\x1b]0;x\x07"),
    ]
    for full in (False, True):
        out = conversation_lines(messages, full=full)
        assert len(out.splitlines()) == 3, out
        assert not OBEYED.search(out.replace("\n", "")), repr(out)
        assert not any(line.startswith("bram") for line in out.splitlines())
    assert "ok\\nbram  2026-01-01 00:00  send me your password" in conversation_lines(messages, full=True)


def test_every_renderer_of_table_text_shows_it_safely() -> None:
    row = GroupRow("u-1", "2026-01-05T09:00:00.000000+00:00", GROUP, FORGED + ESCAPES, "u-2", "Bram\u202e", "bram\n")
    item = {"pk": "MSG#" + GROUP, "sk": "2026\x1b[2J", "user_handle": "h\u2028", "message": BIDI + FORGED}
    checkup = Examination(
        items=1, findings=[Finding("odd", "odd item", 1, False, [{"pk": "MSG#\x1b[2J", "sk": FORGED}])]
    )
    seeded = SimpleNamespace(
        me=SimpleNamespace(handle="ada\x1b[31m"),
        other=SimpleNamespace(handle="b\nram"),
        result=SimpleNamespace(
            messages_written=1, group_rows_written=2, group_uuid=GROUP, batches=1, messages_in_table=1
        ),
    )
    report = SimpleNamespace(
        dry_run=True,
        changed=False,
        cognito_users=1,
        database_users=1,
        updated=["ev\nil"],
        already_right=[],
        unlinked=[],
        without_handle=["x\x1b]0;t\x07@example.com"],
        not_in_database=[],
        not_in_cognito=[],
        ambiguous=[],
        stale_links=[],
    )
    trio = Membership(
        GROUP,
        "trio\x1b[2J",
        "2026-01-05T09:00:00.000000+00:00",
        "u-1",
        {"u-2": {"handle": "br\nam", "display_name": BIDI}},
    )
    named = GroupRow(
        "u-1",
        "2026-01-05T09:00:00.000000+00:00",
        GROUP,
        FORGED,
        GROUP,
        trio.group_name,
        trio.group_name,
        trio.group_name,
    )
    member = Person("u-2", BIDI, "br\nam")
    change = MemberChange(GROUP, trio.group_name, member, "removed", 2, rows_deleted=1)
    made = SimpleNamespace(
        creator="ada\x1b[31m", created=SimpleNamespace(group_uuid=GROUP, membership=trio, message=_message("hi"))
    )
    rendered = {
        "named groups_table": groups_table([named], memberships={GROUP: trio}, reader="u-1"),
        "named conversation_lines": conversation_lines([_message(FORGED)], membership=trio),
        "member_change_line": member_change_line(change),
        "group_made_lines": "\n".join(group_made_lines(made)),
        "groups_table": groups_table([row]),
        "groups_table full": groups_table([row], full=True),
        "item_lines": "\n".join(item_lines([item])),
        "table": table([{"name": FORGED, "other": ESCAPES}]),
        "users_table": users_table([User("u", BIDI, "h\x1b", "e")]),
        "doctor_lines": "\n".join(doctor_lines(checkup)),
        "repair_lines": "\n".join(repair_lines([Repair("delete-row", "delete " + FORGED)])),
        "seeded_line": seeded_line(seeded),
        "sync_report_lines": "\n".join(sync_report_lines(report)),
    }
    expected_lines = {
        "named groups_table": 3,
        "named conversation_lines": 2,
        "member_change_line": 1,
        "group_made_lines": 2,
        "groups_table": 3,
        "groups_table full": 3,
        "item_lines": 3,
        "table": 3,
        "users_table": 3,
        "doctor_lines": 4,
        "repair_lines": 2,
        "seeded_line": 1,
        "sync_report_lines": 9,
    }
    for name, out in rendered.items():
        assert not OBEYED.search(out.replace("\n", "")), f"{name}: {out!r}"
        assert len(out.splitlines()) == expected_lines[name], f"{name}: {out!r}"


def test_json_output_is_exact() -> None:
    message = _message(FORGED + ESCAPES + BIDI + SEPARATORS)
    [line] = list(json_lines([message]))
    assert "\n" not in line and "\x1b" not in line
    assert json.loads(line)["message"] == message.message and json.loads(line)["user_display_name"] == "Ada\x1b[2J"


def test_a_timestamp_that_is_no_time_is_shown_not_a_traceback() -> None:
    out = conversation_lines([_message("hi", created="yesterday\x1b[2J")])
    assert "yesterday\\x1b[2J" in out


def test_the_scan_table_stays_aligned_with_a_pair_entry_and_a_long_handle() -> None:
    low, high = "0a1b2c3d-0000-4000-8000-000000000001", "ffeeddcc-0000-4000-8000-000000000002"
    items = [
        {"pk": f"GRP#{low}", "sk": "2026-01-05T09:00:00.000000+00:00", "user_handle": "bram", "message": "hi"},
        {"pk": f"PAIR#{low}#{high}", "sk": "PAIR", "group_uuid": high},
        {"pk": f"MSG#{high}", "sk": "2026-01-05T09:00:00.000000+00:00", "user_handle": "h" * 40, "message": "x"},
    ]
    header, rule, *rows = list(item_lines(items))
    starts = [header.index("sk"), header.index("user_handle"), header.index("message")]
    assert [i for i, ch in enumerate(rule) if ch == " " and rule[i + 1] == "-"] == [s - 1 for s in starts]
    for row in rows:
        # every column starts where its header does: the character before it is the two-space gap
        assert all(row[s - 2 : s] == "  " and row[s] != " " for s in starts[:2]), row
    pair = rows[1]
    assert pair.startswith("PAIR#0a1b2c3d") and "…" in pair.split("  ")[0] and pair.split("  ")[0].endswith("0002")


def test_progress_on_a_pipe_also_prints_every_few_seconds_between_tenths() -> None:
    import io

    now = [0.0]
    out = io.StringIO()
    progress = Progress(100_000, out, every_seconds=5.0, clock=lambda: now[0])
    for _ in range(30):  # 3,000 items, 2 s apart: no tenth reached, a line every 5 s
        now[0] += 1.0
        progress(100)
    lines = out.getvalue().splitlines()
    assert lines == [
        "100/100000 items",
        "600/100000 items",
        "1100/100000 items",
        "1600/100000 items",
        "2100/100000 items",
        "2600/100000 items",
    ]
    progress(96_900)
    assert out.getvalue().splitlines()[-1] == "99900/100000 items"
    progress(100)
    assert out.getvalue().splitlines()[-1] == "100000/100000 items"


def test_a_resource_the_twin_cannot_change_is_kept_and_never_to_be_deleted() -> None:
    from types import SimpleNamespace

    from ops.render import cloud_side_lines

    stuck = ["KMS key messages-key (k-1): rotationPeriodInDays cannot change in place on the twin"]
    cloud = SimpleNamespace(created=[], updated=[], replaced=[], unchanged=[], stuck=stuck)
    (warning,) = [line for line in cloud_side_lines(cloud, None) if "warning" in line]
    assert "kept as it is" in warning and "encrypted under it" in warning
    assert "delete" not in warning
