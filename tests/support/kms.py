"""Counting a client's KMS requests, and a messages key of a test's own on a twin."""

from __future__ import annotations

import uuid
from typing import Any


class KmsCalls:
    """Counts a KMS client's requests by operation, through botocore's before-call event (retries excluded)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: dict[str, int] = {}
        client.meta.events.register("before-call.kms.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def clear(self) -> None:
        self.calls.clear()


def new_key(kms: Any) -> str:
    """A symmetric key with an alias of its own, as local.up makes the stack's; returns the alias."""
    alias = f"alias/test-{uuid.uuid4().hex[:10]}-messages"
    key = kms.create_key(Description="a test's messages key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    return alias
