"""AWS calls retried on throttling, and AWS errors translated into the ops layer's named errors.

botocore retries throttling on its own, but only a few times and with its own clock; a sync of
a large pool pages through ``ListUsers`` (5 requests/s per account by default) and must not die
half-way because Cognito said "slow down". ``call`` adds exponential backoff with full jitter
on top, with an injectable ``sleep`` so tests can prove it without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ops.errors import CloudError, NotFoundError

T = TypeVar("T")

# Error codes AWS uses for "too many requests" (Cognito, most JSON APIs, EC2's query API).
THROTTLING_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"})
NOT_FOUND_SUFFIXES = ("NotFound", "NotFoundException")

ATTEMPTS = 6
BASE_DELAY = 0.2  # seconds before the second attempt, doubled each time
MAX_DELAY = 5.0


def error_code(err: BaseException) -> str:
    """An AWS error's code (``ConditionalCheckFailedException`` …); another exception's class name."""
    return str(getattr(err, "response", {}).get("Error", {}).get("Code") or type(err).__name__)


def is_throttling(err: BaseException) -> bool:
    return isinstance(err, ClientError) and error_code(err) in THROTTLING_CODES


def delay(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)), so many clients spread out."""
    return rand() * min(cap, base * (2**attempt))


def translate(err: Exception, what: str) -> Exception:
    """One named error for an AWS failure; ``what`` says which request failed."""
    if isinstance(err, ClientError):
        code = error_code(err)
        message = err.response.get("Error", {}).get("Message") or code
        if code.endswith(NOT_FOUND_SUFFIXES):
            return NotFoundError(f"{what}: {message}")
        if code in THROTTLING_CODES:
            return CloudError(f"{what}: still throttled after {ATTEMPTS} attempts ({code}); try again in a minute")
        return CloudError(f"{what}: {code}: {message}")
    if isinstance(err, BotoCoreError):
        return CloudError(f"{what}: {err}")
    return err


def call(
    fn: Callable[..., T],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
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
            raise translate(err, what) from None
        except BotoCoreError as err:
            raise translate(err, what) from None
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
