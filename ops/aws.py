"""Talking to AWS: retries on throttling, every page of a listing, and AWS errors turned into ours.

This is the one place where botocore's exceptions become the ops layer's named errors
(``ops.errors``): every request the library makes goes through ``call``, ``pages`` or the
``aws_errors`` context, so no ``ClientError`` reaches a task. It is shipped in the stream
consumer's Lambda package, so it imports only the standard library and botocore.

botocore retries throttling on its own, but only a few times and with its own clock; a sync of
a large pool pages through ``ListUsers`` (5 requests/s per account by default) and must not die
half-way because Cognito said "slow down". ``call`` adds exponential backoff with full jitter
on top, with an injectable ``sleep`` so tests can prove it without waiting.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ops.errors import CloudError, NotFoundError, OpsError

T = TypeVar("T")

# Error codes AWS uses for "too many requests" (Cognito, most JSON APIs, EC2's query API, DynamoDB).
THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)
NOT_FOUND_SUFFIXES = ("NotFound", "NotFoundException")

ATTEMPTS = 6
BASE_DELAY = 0.2  # seconds before the second attempt, doubled each time
MAX_DELAY = 5.0

# The few listings botocore has no paginator model for: operation -> (request token, response path of the next token).
_EXTRA_TOKENS: dict[str, tuple[str, tuple[str, ...]]] = {
    "DescribeStream": ("ExclusiveStartShardId", ("StreamDescription", "LastEvaluatedShardId")),
    "ListExports": ("NextToken", ("NextToken",)),
}


def error_code(err: BaseException) -> str:
    """An AWS error's code (``ConditionalCheckFailedException`` …), also once translated; else the class name."""
    return str(
        getattr(err, "response", {}).get("Error", {}).get("Code")
        or getattr(err, "aws_code", None)
        or type(err).__name__
    )


def error_message(err: BaseException) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Message") or "") or str(err) or type(err).__name__


def cancellation_codes(err: BaseException) -> list[str]:
    """The per-item reasons of a cancelled ``TransactWriteItems`` (``None`` for items that were fine)."""
    return [str(r.get("Code")) for r in getattr(err, "response", {}).get("CancellationReasons", []) or []]


def is_throttling(err: BaseException) -> bool:
    return isinstance(err, ClientError) and error_code(err) in THROTTLING_CODES


def delay(
    attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)), so many clients spread out."""
    return rand() * min(cap, base * (2**attempt))


def pause(attempt: int, base: float = 0.02) -> None:
    """A short jittered wait before retrying a write that conflicted with another writer's."""
    time.sleep(delay(attempt, base=base))


def translate(err: BaseException, what: str, *, not_found: str | None = None) -> BaseException:
    """One named error for an AWS failure; ``what`` says which request failed.

    ``not_found`` replaces the message of a "does not exist" answer with one that says what to
    run (``table 'x' does not exist: run `invoke ddb.schema-load```).
    """
    if isinstance(err, OpsError):
        return err
    if isinstance(err, ClientError):
        code = error_code(err)
        named: OpsError
        if code.endswith(NOT_FOUND_SUFFIXES):
            named = NotFoundError(not_found or f"{what}: {error_message(err)}")
        elif code in THROTTLING_CODES:
            named = CloudError(f"{what}: still throttled after {ATTEMPTS} attempts ({code}); try again in a minute")
        else:
            named = CloudError(f"{what}: {code}: {error_message(err)}")
        named.aws_code = code  # type: ignore[attr-defined]  # kept for logs that name the cause
        return named
    if isinstance(err, BotoCoreError):
        return CloudError(f"{what}: {err}")
    return err


@contextmanager
def aws_errors(what: str, *, not_found: str | None = None) -> Iterator[None]:
    """Inside this block, an AWS error leaves as a named ops error (see ``translate``)."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise translate(err, what, not_found=not_found) from None


def call(
    fn: Callable[..., T],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    not_found: str | None = None,
    **kwargs: Any,
) -> T:
    """``fn(**kwargs)``, retried on throttling; any AWS error leaves as a named ops error."""
    for attempt in range(attempts):
        try:
            return fn(**kwargs)
        except ClientError as err:
            if is_throttling(err) and attempt + 1 < attempts:
                sleep(delay(attempt, rand=rand))
                continue
            raise translate(err, what, not_found=not_found) from None
        except BotoCoreError as err:
            raise translate(err, what, not_found=not_found) from None
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


@functools.cache
def _paginator_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_paginator_model(service)


def _tokens(client: Any, operation: str) -> tuple[str, tuple[str, ...]]:
    """Where a listing's next-page token goes in the request and comes back in the response.

    botocore's own paginator models say so for nearly every listing; its page iterator is not
    used because it cannot resume after a throttled page, and this loop retries that page.
    """
    api = client.meta.method_to_api_mapping[operation]
    if api in _EXTRA_TOKENS:
        return _EXTRA_TOKENS[api]
    try:
        cfg = _paginator_model(client.meta.service_model.service_name).get_paginator(api)
    except ValueError:
        raise AssertionError(f"{operation} is not a paginated AWS listing") from None
    token_in, token_out = cfg["input_token"], cfg["output_token"]
    if not isinstance(token_in, str) or not isinstance(token_out, str):
        raise AssertionError(f"{operation} pages with several tokens, which nothing here uses")  # pragma: no cover
    return token_in, (token_out,)


def pages(
    client: Any,
    operation: str,
    what: str,
    *,
    not_found: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **request: Any,
) -> Iterator[dict[str, Any]]:
    """Every response page of a listing (``query``, ``scan``, ``list_tables``, ``list_users`` …), in order.

    Each page is one ``call`` (throttling retried, errors named); stop iterating to stop reading.
    """
    token_in, token_out = _tokens(client, operation)
    method = getattr(client, operation)
    while True:
        page = call(method, what, not_found=not_found, sleep=sleep, **request)
        yield page
        token: Any = page
        for part in token_out:
            token = (token or {}).get(part)
        if not token:
            return
        request = request | {token_in: token}


def items(client: Any, operation: str, what: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """The entries of every page of a listing (``key`` names them: ``Items``, ``Users``, ``TableNames`` …)."""
    for page in pages(client, operation, what, **kwargs):
        yield from page.get(key) or []
