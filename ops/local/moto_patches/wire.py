"""Query and Scan items to JSON in one step, with the bytes moto's serializer would write.

moto 5.2.5 turns a response into JSON in two generic passes: ``dynamo_to_dict`` makes plain
dicts of every ``DynamoType``, then the serializer walks botocore's shape model value by value,
looking up all ten members of ``AttributeValue`` (S, N, B, …) under several aliases for each
attribute: about 1.5 ms per item returned, most of what a Scan cost. The items of a Query or
Scan answer have a fixed, small form, so here they are written directly from the item's
``DynamoType`` values into what the serializer would have produced. The rest of the answer
(counts, LastEvaluatedKey, ConsumedCapacity) still goes through moto's two passes with an
empty ``Items``, whose place in the document then receives the written items: the same JSON
document, key for key, so the same bytes (and the same CRC32 header).

Only ``DynamoResult``\\ s built while ``DynamoHandler.query`` or ``.scan`` runs are touched.
Anything unexpected leaves the whole answer to moto: a value not of the form moto stores, an
empty attribute name (which moto's serializer mishandles its own way), binary data moto's
base64 round trip would reject, or a response transformer registered for a key path an item
could reach (moto's EC2 and ECS register theirs on a dict all services share).
"""

from __future__ import annotations

import base64
import contextvars
import functools
import json
from typing import Any

from moto import settings
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.utilities import dynamo_to_dict
from moto.dynamodb.responses import DynamoHandler, DynamoResult

# the key a transformer would end with to touch Items: Items itself, or a member of AttributeValue
_REACHABLE = {"Items", "S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}
_IN_READ = contextvars.ContextVar("moto_patches_in_read", default=False)


class _Unsupported(Exception):
    pass


def _b64(value: Any) -> str:
    # dynamo_to_dict decodes a stored base64 text to bytes, the serializer encodes the bytes again
    raw = value if isinstance(value, bytes) else base64.b64decode(value)
    return base64.b64encode(raw).strip().decode("utf-8")


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Unsupported
    return value  # the serializer's str(value) of a str


def attribute_value(value: Any) -> dict[str, Any]:
    """One ``DynamoType`` as moto's JSON serializer writes the AttributeValue shape (after dynamo_to_dict)."""
    if type(value) is not DynamoType:
        raise _Unsupported
    kind, v = value.type, value.value
    if kind == "S" or kind == "N":
        return {kind: _text(v)}
    if kind == "BOOL" or kind == "NULL":
        if type(v) is not bool:
            raise _Unsupported
        return {kind: v}
    if kind == "M":
        if type(v) is not dict:
            raise _Unsupported
        return {kind: attribute_map(v)}
    if kind == "L":
        if type(v) is not list:
            raise _Unsupported
        return {kind: [attribute_value(x) for x in v]}
    if kind == "SS" or kind == "NS":
        if type(v) is not list:
            raise _Unsupported
        return {kind: [_text(x) for x in v]}
    try:
        if kind == "B":
            return {kind: _b64(v)}
        if kind == "BS" and type(v) is list:
            return {kind: [_b64(x) for x in v]}
    except ValueError:  # not base64: moto's own pass fails on it the same way, let it
        raise _Unsupported from None
    raise _Unsupported


def attribute_map(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in attrs.items():
        if type(name) is not str or not name:
            raise _Unsupported
        out[name] = attribute_value(value)
    return out


def _init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: DynamoResult, result: Any) -> None:
        self._written_items = None
        items = result.get("Items") if _IN_READ.get() and type(result) is dict else None
        if type(items) is list and all(type(i) is LimitedSizeDict for i in items):
            try:
                written = [attribute_map(i) for i in items]
            except _Unsupported:
                written = None
            if written is not None:
                original(self, dict(result, Items=[]))  # the rest through moto's pass; Items keeps its place
                self._written_items, self._raw_items = written, items
                return
        original(self, result)

    return __init__


def _execute_result(original: Any) -> Any:
    @functools.wraps(original)
    def execute_result(self: DynamoResult, context: ActionContext) -> Any:
        written = getattr(self, "_written_items", None)
        if written is None:
            return original(self, context)
        transformers = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None) or {}
        if not issubclass(context.serializer_class, BaseJSONSerializer) or any(
            p.rsplit(".", 1)[-1] in _REACHABLE for p in transformers
        ):
            self.result["Items"] = dynamo_to_dict(self._raw_items)  # type: ignore[index]  # moto's way after all
            return original(self, context)
        status, headers, text = original(self, context)  # with Items = []
        document = json.loads(text)
        document["Items"] = written  # same key, same place
        return status, headers, json.dumps(document, indent=4 if settings.PRETTIFY_RESPONSES else None)

    return execute_result


def _in_read(method: Any) -> Any:
    @functools.wraps(method)
    def action(self: DynamoHandler) -> Any:
        token = _IN_READ.set(True)
        try:
            return method(self)
        finally:
            _IN_READ.reset(token)

    return action


def install() -> None:
    from ops.local.moto_patches import replace

    replace(DynamoResult, "__init__", _init(DynamoResult.__init__))
    replace(DynamoResult, "execute_result", _execute_result(ActionResult.execute_result))
    replace(DynamoHandler, "query", _in_read(DynamoHandler.query))
    replace(DynamoHandler, "scan", _in_read(DynamoHandler.scan))
