"""TransactWriteItems that costs its items, not its tables.

moto 5.2.5 begins every transaction with a deep copy of each table it touches (every item, and
the table's whole stream shard, which only grows) so it can put the copy back if an item fails.
On a twin with tens of thousands of items and stream records one two-item transaction took
seconds; the stream consumer runs one per group row it moves, and a first message is one.

Here a transaction checks every item first (one operation per item, the operation kind, each
condition against the current item) and writes nothing unless all pass, which is what DynamoDB
does and, with one item per operation, the same outcome as moto's check-as-you-go. Only when a
write itself fails part-way (an update expression that does not apply, an item that fails
moto's validation) are the items already written put back, from copies of just those items,
and their stream records taken off the shard. Requests are serialised (``isolation``), so no
other request sees the items in between.
"""

from __future__ import annotations

import copy
from typing import Any

from ops.local.moto_patches import replace


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    if _same_item_twice(self, transact_items):
        # two operations on one item that moto's own check lets through (1.5 and 1.50 as number keys): only
        # moto's check-as-you-go gives its answer there, and such a transaction is rare enough to copy tables for
        return _ORIGINAL[0](self, transact_items)  # type: ignore[no-any-return]
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (op type, op, key)
    # 1. every check, nothing written: the same checks, in the same order, as moto's loop
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            key = _key_of(self, op_type, op)
            marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            planned.append((op_type, op, key))
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise  # nothing was written yet: nothing to put back
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - moto reports any other failure per item, and so do we
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # 2. the writes, with an undo of just the items written so far
    undo: list[tuple[Any, dict[str, Any], dict[str, Any] | None]] = []  # (table, key, attributes before or None)
    shards = {name: len(t.stream_shard.items) for name, t in self.tables.items() if t.stream_shard is not None}
    position = 0
    try:
        for position, (op_type, op, key) in enumerate(planned):  # noqa: B007 - read by the except below
            if op_type == "ConditionCheck":
                continue
            before = self.get_item(op["TableName"], key)
            undo.append(
                (
                    self.get_table(op["TableName"]),
                    key,
                    copy.deepcopy(before.to_json()["Attributes"]) if before else None,
                )
            )
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(
                    op["TableName"],
                    op["Item"],
                    condition_expression=op.get("ConditionExpression"),
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    op["TableName"],
                    key,
                    condition_expression=op.get("ConditionExpression"),
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            else:
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=op.get("ConditionExpression"),
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception as e:  # noqa: BLE001 - put back what was written, then report the item as moto does
        from moto.dynamodb.exceptions import MockValidationException as Invalid

        for table, key, attributes in reversed(undo):
            hash_value, range_value = _typed_key(table, key)
            if attributes is None:
                table.delete_item(hash_value, range_value)
            else:
                table.put_item(attributes, overwrite=True)
        for name, length in shards.items():
            shard = self.tables[name].stream_shard if name in self.tables else None
            if shard is not None:
                del shard.items[length:]  # the undone writes leave no stream record, as moto's table copy left none
        if isinstance(e, Invalid):
            # a request DynamoDB refuses as a whole (two SET clauses, an item over 400 KB): a ValidationException,
            # as DynamoDB and moto's own transaction answer, never a cancellation of one item
            raise e from None
        failed = [(None, None, None)] * len(transact_items)
        failed[position] = (type(e).__name__, str(getattr(e, "message", e)), None)
        raise TransactionCanceledException(failed) from None


def _same_item_twice(backend: Any, transact_items: list[dict[str, Any]]) -> bool:
    keys = set()
    for item in transact_items:
        try:
            op_type, op = next(iter(item.items()))
            table = backend.get_table(op["TableName"])
            typed = (op["TableName"], *_typed_key(table, _key_of(backend, op_type, op)))
        except Exception:  # noqa: BLE001 - a malformed operation is reported by the checks themselves
            continue
        if typed in keys:
            return True
        keys.add(typed)
    return False


_ORIGINAL: list[Any] = []


def _typed_key(table: Any, key: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
    return hash_value, range_value


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if not _ORIGINAL:
        _ORIGINAL.append(DynamoDBBackend.transact_write_items)
    replace(DynamoDBBackend, "transact_write_items", transact_write_items)
