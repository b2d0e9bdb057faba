"""One request sent to two moto servers, the answers compared."""

from __future__ import annotations

import copy
import functools
from typing import Any

from botocore.exceptions import ClientError

READS = ("query", "scan", "get_item")  # answers compared byte for byte


class Pair:
    """A plain moto server and a patched one, fed the same requests in the same order."""

    def __init__(self, plain: Any, patched: Any) -> None:
        self.plain, self.patched = plain, patched
        self.raw: dict[str, tuple[int, bytes]] = {}
        self.tables: set[str] = set()
        self.requests = 0
        for name, c in (("plain", plain), ("patched", patched)):
            c.meta.events.register("after-call.dynamodb", functools.partial(self._keep, name))

    def _keep(self, name: str, http_response: Any, **_: Any) -> None:
        self.raw[name] = (http_response.status_code, http_response.content)

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any] | ClientError:
        """Both servers' answer, asserted equal (reads: the same bytes); a refusal is returned, not raised."""
        answers: list[Any] = []
        for c in (self.plain, self.patched):
            try:
                answers.append(getattr(c, operation)(**copy.deepcopy(kwargs)))
            except ClientError as err:
                answers.append(err)
        self.requests += 1
        plain, patched = answers
        (plain_status, plain_body), (patched_status, patched_body) = self.raw["plain"], self.raw["patched"]
        what = f"{operation} {kwargs}"
        assert plain_status == patched_status, (
            f"{what}: status {plain_status} (plain) vs {patched_status} (patched): {plain_body[:500]!r} / "
            f"{patched_body[:500]!r}"
        )
        if plain_status >= 500:
            return plain  # moto failed on both (a traceback page, which names the server's paths)
        if operation in READS:
            assert plain_body == patched_body, (
                f"{what}:\nplain   {plain_body[:3000]!r}\npatched {patched_body[:3000]!r}"
            )
        if isinstance(plain, ClientError):
            assert isinstance(patched, ClientError) and plain.response["Error"] == patched.response["Error"], what
            assert plain.response.get("CancellationReasons") == patched.response.get("CancellationReasons"), what
            return plain
        assert {k: v for k, v in plain.items() if k != "ResponseMetadata"} == {
            k: v for k, v in patched.items() if k != "ResponseMetadata"
        }, what
        return plain

    def both(self, operation: str, **kwargs: Any) -> None:
        """A call whose answers differ by nature (timestamps of CreateTable): both must succeed."""
        for c in (self.plain, self.patched):
            getattr(c, operation)(**copy.deepcopy(kwargs))

    def create_table(self, **kwargs: Any) -> None:
        self.both("create_table", **kwargs)
        self.tables.add(kwargs["TableName"])

    def delete_table(self, name: str) -> None:
        self.both("delete_table", TableName=name)
        self.tables.discard(name)

    def pages(self, operation: str, **kwargs: Any) -> list[dict[str, Any] | ClientError]:
        """Every page of a Query or Scan, following LastEvaluatedKey, each page compared."""
        out = []
        while True:
            answer = self.call(operation, **kwargs)
            out.append(answer)
            if isinstance(answer, ClientError) or "LastEvaluatedKey" not in answer:
                return out
            kwargs = dict(kwargs, ExclusiveStartKey=answer["LastEvaluatedKey"])

    def drop_tables(self) -> None:
        for name in list(self.tables):
            self.delete_table(name)
