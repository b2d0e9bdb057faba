"""Random tables, items, writes and reads, from a seeded ``random.Random``, for the moto_patches comparisons.

The values are drawn from small domains on purpose: few partitions, short range keys over a
two-letter alphabet (so begins_with, BETWEEN and equal keys meet often), a handful of GSI hash
values, numbers that are equal under different spellings (1.5 and 1.50), some items too big for
two to share a 1 MB page, and every attribute type DynamoDB has.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops.stacks import load_stack
from ops.table_spec import create_table_kwargs, table_spec
from tests.twin.ops.local.moto_patches.pair import Pair

KEY_OPS = ("=", "<", "<=", ">", ">=", "BETWEEN", "begins_with")


@dataclass
class Layout:
    """A table as the random requests see it."""

    kwargs: dict[str, Any]
    range_kind: str  # S, N or B: the table's range key
    gsis: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (hash attr, range attr)
    keys: list[dict[str, Any]] = field(default_factory=list)  # items written so far (some deleted since)

    @property
    def name(self) -> str:
        return str(self.kwargs["TableName"])


def messages_table() -> dict[str, Any]:
    """The project's own table (ops.table_spec) under a fresh name."""
    return create_table_kwargs(dataclasses.replace(table_spec(load_stack("dev")), name=f"msg-{uuid.uuid4().hex[:8]}"))


def numbers_table() -> dict[str, Any]:
    """Number range keys, a KEYS_ONLY GSI, and a GSI on a non-key range attribute that items give mixed types."""
    return {
        "TableName": f"num-{uuid.uuid4().hex[:8]}",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t}
            for n, t in (("pk", "S"), ("sk", "N"), ("message_group_uuid", "S"), ("r", "S"))
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by-group",
                "KeySchema": [
                    {"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by-r",
                "KeySchema": [
                    {"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                    {"AttributeName": "r", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n"]},
            },
        ],
    }


def binary_table() -> dict[str, Any]:
    """Binary range keys: no patch applies, moto answers itself."""
    return {
        "TableName": f"bin-{uuid.uuid4().hex[:8]}",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "B"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def layout_of(kwargs: dict[str, Any]) -> Layout:
    kinds = {a["AttributeName"]: a["AttributeType"] for a in kwargs["AttributeDefinitions"]}
    ranges = [k["AttributeName"] for k in kwargs["KeySchema"] if k["KeyType"] == "RANGE"]
    gsis = {
        g["IndexName"]: tuple(k["AttributeName"] for k in g["KeySchema"])
        for g in kwargs.get("GlobalSecondaryIndexes", [])
    }
    return Layout(kwargs, kinds[ranges[0]] if ranges else "", gsis)  # type: ignore[arg-type]


class Scenario:
    """Random requests on one table of a Pair, every answer compared by the Pair."""

    def __init__(self, rnd: random.Random, pair: Pair, layout: Layout, big: float = 0.03) -> None:
        self.rnd, self.pair, self.t, self.big = rnd, pair, layout, big
        pair.create_table(**layout.kwargs)

    # ------------------------------------------------------------------ values
    def text(self, alphabet: str = "ab", most: int = 4) -> str:
        r = self.rnd
        s = "".join(r.choice(alphabet) for _ in range(r.randint(1, most)))
        return s + r.choice(["é", "z", "😀"]) if r.random() < 0.08 else s

    def range_value(self) -> dict[str, Any]:
        r = self.rnd
        if self.t.range_kind == "N":
            return {"N": r.choice([str(r.randint(-6, 6)), "1.5", "1.50", "1e1", "10", "-0.25"])}
        if self.t.range_kind == "B":
            return {"B": bytes(r.choice(b"ab") for _ in range(r.randint(1, 3)))}
        return {"S": self.text()}

    def hash_value(self) -> dict[str, Any]:
        return {"S": self.rnd.choice(["MSG#a", "MSG#b", "GRP#c", "BIG", "PAIR#d"])}

    def key(self) -> dict[str, Any]:
        return {"pk": self.hash_value(), "sk": self.range_value()}

    def known_key(self) -> dict[str, Any]:
        return dict(self.rnd.choice(self.t.keys)) if self.t.keys and self.rnd.random() < 0.8 else self.key()

    def attrs(self, key: dict[str, Any]) -> dict[str, Any]:
        r = self.rnd
        item = dict(key)
        p = r.random()
        if p < 0.6:
            item["message_group_uuid"] = {"S": r.choice(["g1", "g2", "g3"])}
        elif p < 0.65:
            item["message_group_uuid"] = {"N": "1"}  # not the declared type: in no GSI partition a query can name
        if r.random() < 0.5:
            item["r"] = (
                {"S": self.text()} if r.random() < 0.95 else {"N": "3"}
            )  # a mixed-type GSI range: moto fails, patched must too
        size = (
            r.randint(100_000, 140_000)
            if (key["pk"]["S"] == "BIG" and r.random() < 0.5) or r.random() < self.big
            else r.randint(0, 200)
        )
        item["body"] = {"S": "x" * size}
        extras: dict[str, Callable[[], Any]] = {
            "n": lambda: {"N": r.choice(["0", "7", "-3.5", "12345678901234567890"])},
            "flag": lambda: {"BOOL": r.random() < 0.5},
            "nothing": lambda: {"NULL": True},
            "tags": lambda: {"SS": sorted({self.text() for _ in range(3)})},
            "nums": lambda: {"NS": sorted({str(r.randint(0, 9)) for _ in range(3)})},
            "bin": lambda: {"B": bytes(r.randint(0, 255) for _ in range(5))},
            "bins": lambda: {"BS": [b"\x00\x01", b"\xff"]},
            "list": lambda: {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"BOOL": False}}}]},
            "map": lambda: {"M": {"k": {"S": self.text()}, "deep": {"L": [{"NULL": True}]}}},
            "quote": lambda: {"S": 'he said "hi" \\ \u2028 ünï'},
        }
        for name, make in extras.items():
            if r.random() < 0.25:
                item[name] = make()
        return item

    # ------------------------------------------------------------------ writes
    def write(self) -> None:
        r, t = self.rnd, self.t
        roll = r.random()
        if roll < 0.45:
            key = self.key()
            kwargs: dict[str, Any] = {"TableName": t.name, "Item": self.attrs(key)}
            if r.random() < 0.2:
                kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
            self.pair.call("put_item", **kwargs)
            t.keys.append(key)
        elif roll < 0.65:
            self.update(self.known_key())
        elif roll < 0.75:
            self.pair.call("delete_item", TableName=t.name, Key=self.known_key())
        elif roll < 0.9:
            self.batch()
        else:
            self.transaction()

    def update(self, key: dict[str, Any]) -> None:
        r = self.rnd
        expression, names, values = r.choice(
            [
                ("SET message_group_uuid = :g", {}, {":g": {"S": r.choice(["g1", "g2", "g3", "g4"])}}),
                ("REMOVE message_group_uuid", {}, {}),
                ("SET #b = :b", {"#b": "body"}, {":b": {"S": "y" * r.randint(0, 300)}}),
                (
                    "SET #m.#k = :v",
                    {"#m": "map", "#k": "k"},
                    {":v": {"S": self.text()}},
                ),  # fails on both when there is no map
                ("ADD n :one", {}, {":one": {"N": "1"}}),
                ("SET r = :r", {}, {":r": {"S": self.text()}}),
            ]
        )
        kwargs: dict[str, Any] = {"TableName": self.t.name, "Key": key, "UpdateExpression": expression}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = values
        self.pair.call("update_item", **kwargs)

    def batch(self) -> None:
        requests, seen = [], set()
        for _ in range(self.rnd.randint(1, 25)):
            key = self.known_key() if self.rnd.random() < 0.3 else self.key()
            marker = repr(sorted(key.items()))
            if marker in seen:
                continue
            seen.add(marker)
            if self.rnd.random() < 0.3:
                requests.append({"DeleteRequest": {"Key": key}})
            else:
                requests.append({"PutRequest": {"Item": self.attrs(key)}})
                self.t.keys.append(key)
        self.pair.call("batch_write_item", RequestItems={self.t.name: requests})

    def transaction(self) -> None:
        r, name = self.rnd, self.t.name
        ops, seen = [], set()
        for _ in range(r.randint(1, 4)):
            key = self.known_key()
            marker = repr(sorted(key.items()))
            if marker in seen:
                continue
            seen.add(marker)
            kind = r.choice(["Put", "Update", "Delete", "ConditionCheck"])
            condition = r.choice(["attribute_exists(pk)", "attribute_not_exists(pk)"])
            if kind == "Put":
                ops.append({"Put": {"TableName": name, "Item": self.attrs(key), "ConditionExpression": condition}})
            elif kind == "Update":
                ops.append(
                    {
                        "Update": {
                            "TableName": name,
                            "Key": key,
                            "UpdateExpression": "SET message_group_uuid = :g",
                            "ExpressionAttributeValues": {":g": {"S": r.choice(["g1", "g5"])}},
                        }
                    }
                )
            elif kind == "Delete":
                ops.append({"Delete": {"TableName": name, "Key": key, "ConditionExpression": condition}})
            else:
                ops.append({"ConditionCheck": {"TableName": name, "Key": key, "ConditionExpression": condition}})
        self.pair.call(
            "transact_write_items", TransactItems=ops
        )  # a failed condition cancels all: moto rolls the table back

    def recreate(self) -> None:
        """Delete the table and create it again under the same name: nothing of the old one may show."""
        self.pair.delete_table(self.t.name)
        self.pair.create_table(**self.t.kwargs)
        self.t.keys.clear()

    # ------------------------------------------------------------------ reads
    def start_key(self, index: str | None) -> dict[str, Any]:
        """A start key: usually an item's (as a LastEvaluatedKey would be), sometimes made up, or from another
        partition."""
        r = self.rnd
        key = self.known_key()
        if index is not None:
            h, rng = self.t.gsis[index]
            for attr in (h, rng):
                if attr not in key:
                    key[attr] = (
                        {"S": r.choice(["g1", "g2", "g0", "g9"])}
                        if attr == "message_group_uuid"
                        else self.range_value()
                        if attr == "sk"
                        else {"S": self.text()}
                    )
        if r.random() < 0.05:
            key.pop("sk", None)  # incomplete: moto fails, or not, the patched server must do the same
        return key

    def query(self) -> None:
        r, t = self.rnd, self.t
        index = r.choice([None, *t.gsis]) if t.gsis and r.random() < 0.45 else None
        if index is None:
            hash_attr, range_attr = "pk", "sk"
            hash_value = self.hash_value() if r.random() < 0.9 else {"S": "none"}
        else:
            hash_attr, range_attr = t.gsis[index]
            hash_value = {"S": r.choice(["g1", "g2", "g3", "g4", "g5"])}
        condition = "#h = :h"
        names = {"#h": hash_attr}
        values: dict[str, Any] = {":h": hash_value}
        op = r.choice([None, *KEY_OPS])
        if op is not None and not (op == "begins_with" and range_attr == "sk" and t.range_kind == "N"):
            names["#r"] = range_attr
            value = (lambda: {"S": self.text()}) if range_attr == "r" else self.range_value
            if op == "BETWEEN":
                condition += " AND #r BETWEEN :a AND :b"
                values[":a"], values[":b"] = value(), value()
            elif op == "begins_with":
                condition += " AND begins_with(#r, :a)"
                values[":a"] = value()
            else:
                condition += f" AND #r {op} :a"
                values[":a"] = value()
        kwargs: dict[str, Any] = {
            "TableName": t.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if index is not None:
            kwargs["IndexName"] = index
        self.read_options(kwargs, index)
        if r.random() < 0.5:
            kwargs["ScanIndexForward"] = r.random() < 0.5
        self.pair.pages("query", **kwargs)

    def scan(self) -> None:
        r = self.rnd
        kwargs: dict[str, Any] = {"TableName": self.t.name}
        self.read_options(kwargs, None)
        if kwargs.get("Limit", 100) < 20:
            kwargs["Limit"] += 20  # a whole table in pages of one item is many requests and nothing new
        if r.random() < 0.3:
            total = r.randint(1, 4)
            kwargs.update(Segment=r.randrange(total), TotalSegments=total)
        self.pair.pages("scan", **kwargs)

    def read_options(self, kwargs: dict[str, Any], index: str | None) -> None:
        """Limit, Select COUNT, projection, filter, consistent read, consumed capacity, a start key: each now and
        then."""
        r = self.rnd
        names = kwargs.setdefault("ExpressionAttributeNames", {})
        values = kwargs.setdefault("ExpressionAttributeValues", {})
        if r.random() < 0.7:
            kwargs["Limit"] = r.choice([1, 2, 3, 5, 8, 13, 21, 100])
        if r.random() < 0.1:
            kwargs["Select"] = "COUNT"
        elif r.random() < 0.15:
            kwargs["ProjectionExpression"] = r.choice(["pk, sk", "pk, #p, message_group_uuid", "#p, map.k, list[2]"])
            if "#p" in kwargs["ProjectionExpression"]:
                names["#p"] = "body"
        if r.random() < 0.2:
            kwargs["FilterExpression"] = r.choice(
                ["attribute_exists(n)", "n > :zero", "begins_with(pk, :m)", "attribute_not_exists(message_group_uuid)"]
            )
            if ":zero" in kwargs["FilterExpression"]:
                values[":zero"] = {"N": "0"}
            if ":m" in kwargs["FilterExpression"]:
                values[":m"] = {"S": "M"}
        if r.random() < 0.1:
            kwargs["ConsistentRead"] = True  # refused on a GSI, by both
        if r.random() < 0.1:
            kwargs["ReturnConsumedCapacity"] = r.choice(["TOTAL", "INDEXES", "NONE"])
        if r.random() < 0.1:
            kwargs["ExclusiveStartKey"] = self.start_key(index)
        if not names:
            del kwargs["ExpressionAttributeNames"]
        if not values:
            del kwargs["ExpressionAttributeValues"]

    def get(self) -> None:
        self.pair.call("get_item", TableName=self.t.name, Key=self.known_key())

    def run(self, steps: int) -> None:
        """``steps`` random requests, writes and reads interleaved, with a table re-creation now and then."""
        r = self.rnd
        for _ in range(steps):
            roll = r.random()
            if roll < 0.45:
                self.write()
            elif roll < 0.85:
                self.query()
            elif roll < 0.95:
                self.scan()
            elif roll < 0.995:
                self.get()
            else:
                self.recreate()
