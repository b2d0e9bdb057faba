"""ops.messages.bodies: moving a body between items without opening it (what the stream consumer does)."""

from __future__ import annotations

import base64

from ops.messages import bodies

SEALED = b"\x01" + bytes(range(40))
KEY = b"wrapped-data-key"
ROW = {
    "pk": {"S": "GRP#u-1"},
    "sk": {"S": "2026-01-01T00:00:00.000000+00:00"},
    "message_group_uuid": {"S": "g"},
    "message": {"S": "old plain text"},
    "user_uuid": {"S": "u-2"},
}


def test_a_sealed_body_from_a_lambda_event_is_copied_byte_for_byte() -> None:
    # Lambda's JSON event carries binary as base64 text; botocore hands bytes: both give the same body
    image = {
        "pk": {"S": "MSG#g"},
        "message_uuid": {"S": "m-1"},
        "message_sealed": {"B": base64.b64encode(SEALED).decode()},
        "message_key": {"B": base64.b64encode(KEY).decode()},
    }
    stored = {
        "pk": {"S": "MSG#g"},
        "message_uuid": {"S": "m-1"},
        "message_sealed": {"B": SEALED},
        "message_key": {"B": KEY},
    }
    assert (
        bodies.body_of(image)
        == bodies.body_of(stored)
        == {"message_sealed": {"B": SEALED}, "message_key": {"B": KEY}, "message_uuid": {"S": "m-1"}}
    )


def test_a_row_taking_a_sealed_body_keeps_no_plain_text_and_back() -> None:
    sealed_row = bodies.with_body(
        ROW, {"message_sealed": {"B": SEALED}, "message_key": {"B": KEY}, "message_uuid": {"S": "m-1"}}
    )
    assert (
        "message" not in sealed_row
        and sealed_row["user_uuid"] == {"S": "u-2"}
        and sealed_row["message_uuid"] == {"S": "m-1"}
    )
    plain_row = bodies.with_body(
        sealed_row, bodies.body_of({"message": {"S": "from the original backend"}, "message_uuid": {"S": "m-2"}})
    )
    assert plain_row["message"] == {"S": "from the original backend"}
    assert not {"message_sealed", "message_key", "message_uuid"} & set(plain_row), (
        "a plain body carries nothing of the sealed one"
    )


def test_an_item_without_a_body_has_an_empty_one() -> None:
    assert bodies.body_of({"pk": {"S": "MSG#g"}}) == {}
