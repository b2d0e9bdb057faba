"""Listing Cognito users: every page, users without a handle, throttling retried; twin users created once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from ops import aws
from ops.cognito import MAX_PAGE, create_users, iter_users
from ops.db import SEED_USERS
from ops.errors import CloudError, ConfigError, NotFoundError
from ops.target import Target
from tests.support.cognito import add_users, raw_client, record_requests


def test_listing_follows_pagination_token_through_every_page(identity_twin: Target, cognito: Any, pool: str) -> None:
    made = add_users(cognito, pool, 155)
    client = raw_client(identity_twin, "cognito-idp")
    sent = record_requests(client)

    users = list(iter_users(client, pool))

    assert {u.handle: u.sub for u in users} == made  # all 155, not the seeds' first 60
    assert len(users) == 155
    assert sent == ["ListUsers"] * 3  # 60 + 60 + 35
    assert all(u.email == f"{u.handle}@cruddur.test" and u.enabled for u in users)


def test_page_size_above_cognitos_limit_is_refused_before_any_request(identity_twin: Target, pool: str) -> None:
    client = raw_client(identity_twin, "cognito-idp")
    sent = record_requests(client)

    with pytest.raises(ConfigError, match="1 to 60"):
        next(iter_users(client, pool, page_size=MAX_PAGE + 1))  # moto would accept 61; AWS does not

    assert sent == []


def test_users_without_preferred_username_are_listed_with_no_handle(cognito: Any, pool: str) -> None:
    add_users(cognito, pool, 2, prefix="named")
    add_users(cognito, pool, 2, prefix="anon", handle=False)

    users = sorted(iter_users(cognito, pool), key=lambda u: u.email or "")

    assert [(u.email, u.handle) for u in users] == [
        ("anon0000@cruddur.test", None),
        ("anon0001@cruddur.test", None),
        ("named0000@cruddur.test", "named0000"),
        ("named0001@cruddur.test", "named0001"),
    ]


def test_unknown_pool_is_a_not_found_error(cognito: Any) -> None:
    with pytest.raises(NotFoundError, match="us-east-1_nope"):
        list(iter_users(cognito, "us-east-1_nope"))


def _api_user(n: int) -> dict[str, Any]:
    return {
        "Username": f"u{n}",
        "Attributes": [{"Name": "sub", "Value": f"sub-{n}"}, {"Name": "preferred_username", "Value": f"h{n}"}],
        "Enabled": True,
        "UserStatus": "CONFIRMED",
    }


def test_throttled_pages_are_retried_with_backoff(identity_twin: Target) -> None:
    client = identity_twin.client("cognito-idp")
    sleeps: list[float] = []
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_client_error("list_users", service_error_code="TooManyRequestsException", http_status_code=400)
        stub.add_response(
            "list_users",
            {"Users": [_api_user(1), _api_user(2)], "PaginationToken": "page-2"},
            {"UserPoolId": "pool", "Limit": 60},
        )
        stub.add_client_error("list_users", service_error_code="TooManyRequestsException", http_status_code=400)
        stub.add_response(
            "list_users", {"Users": [_api_user(3)]}, {"UserPoolId": "pool", "Limit": 60, "PaginationToken": "page-2"}
        )

        users = list(iter_users(client, "pool", sleep=sleeps.append))

        stub.assert_no_pending_responses()
    assert [u.handle for u in users] == ["h1", "h2", "h3"]
    assert len(sleeps) == 3
    assert 0 <= sleeps[0] < aws.BASE_DELAY and 0 <= sleeps[1] < 2 * aws.BASE_DELAY  # full jitter under a doubling cap


def test_throttling_from_the_wire_is_retried_against_the_real_server(
    identity_twin: Target, cognito: Any, pool: str
) -> None:
    made = add_users(cognito, pool, 70)
    client = raw_client(identity_twin, "cognito-idp")
    answered: list[str] = []  # "throttled" or "moto", one per HTTP request

    def throttle_first_try_of_each_page(request: Any, **_: Any) -> AWSResponse | None:
        # answers like Cognito does when over its rate; every other request reaches moto
        if len(answered) % 2 == 0:
            answered.append("throttled")
            body = json.dumps({"__type": "TooManyRequestsException", "message": "Rate exceeded"}).encode()
            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))
        answered.append("moto")
        return None

    client.meta.events.register("before-send.cognito-idp.ListUsers", throttle_first_try_of_each_page)
    sleeps: list[float] = []

    users = list(iter_users(client, pool, sleep=sleeps.append))

    assert {u.handle: u.sub for u in users} == made
    assert answered == ["throttled", "moto"] * 2  # two pages, each after one retry
    assert len(sleeps) == 2


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_still_throttled_after_every_attempt_is_one_clear_error(identity_twin: Target) -> None:
    client = identity_twin.client("cognito-idp")
    sleeps: list[float] = []
    with Stubber(client) as stub:
        for _ in range(aws.ATTEMPTS):
            stub.add_client_error("list_users", service_error_code="TooManyRequestsException", http_status_code=400)
        with pytest.raises(CloudError, match="still throttled"):
            list(iter_users(client, "pool", sleep=sleeps.append))
    assert len(sleeps) == aws.ATTEMPTS - 1


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [aws.delay(n, rand=lambda: 1.0) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_create_users_makes_the_seed_users_once(cognito: Any, pool: str) -> None:
    first = create_users(cognito, pool, SEED_USERS)
    again = create_users(cognito, pool, SEED_USERS)

    users = {u.handle: u for u in iter_users(cognito, pool)}
    assert sorted(users) == sorted(u.handle for u in SEED_USERS)
    assert all(users[s.handle].email == s.email for s in SEED_USERS)
    assert first.created == [u.handle for u in SEED_USERS] and first.existing == []
    assert again.created == [] and again.existing == [u.handle for u in SEED_USERS]
