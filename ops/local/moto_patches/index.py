"""Each moto table's items in key order, per partition of the table and of each GSI, kept in step with every write.

moto stores a table as ``{hash key: {range key: Item}}`` and has no order anywhere: every Query
sorts the whole table to find one partition in it, every Scan page sorts it again. Here a
``SortedIndex`` holds, for each partition (of the table, or of a GSI), the entries sorted the
way moto sorts them: (index range key, table hash key, table range key), compared by the values
moto compares (``DynamoType.cast_value``: the string, or the Decimal of a number).

The indexes live beside moto's objects, in a ``WeakKeyDictionary`` keyed by the ``Table``:
moto pickles tables into the twin's snapshot and deep-copies them to roll transactions back,
and neither should carry our structures. A table object that replaces another (a rolled-back
transaction, a restored backup, a snapshot load, a re-created table) simply has no index yet;
one is built from its items on its first read.

Writes reach a table's items through three methods only: ``Table.put_item`` and
``Table.delete_item`` (which batches, transactions, PartiQL and imports also call) and
``DynamoDBBackend.update_item`` (which changes an item in place). Each is wrapped to re-file
the key it wrote. All of it runs under the isolation lock (one DynamoDB request at a time).

Anything this module cannot index exactly (hash-only tables, binary keys, a GSI with more or
fewer than one hash and one range key, a partition whose range values mix types) gets no
index, and the reads module leaves those requests to moto.
"""

from __future__ import annotations

import functools
import logging
import weakref
from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

log = logging.getLogger("twin.moto_patches")

SORTABLE = ("S", "N")  # key types whose order we reproduce; moto compares B as text, and keys are rarely B
Key = tuple[DynamoType, DynamoType]  # a table item's (hash, range) key
Sort = tuple[Any, Any, Any]  # (index range, table hash, table range), as moto compares them


def raw(value: DynamoType | None, kind: str) -> Any:
    """The value moto compares ``value`` by, or None when it is not of type ``kind``."""
    if value is None or value.type != kind:
        return None
    if kind == "S":
        return value.value if isinstance(value.value, str) else None
    try:
        return Decimal(value.value)  # DynamoType.cast_value of a number
    except (TypeError, ArithmeticError):
        return None


@dataclass(frozen=True)
class Shape:
    """What an index is sorted by: its key attributes, the table's, and their declared types."""

    hash_attr: str
    hash_kind: str
    range_attr: str
    range_kind: str
    table_hash: str
    table_hash_kind: str
    table_range: str
    table_range_kind: str


def shape_of(table: Table, index_name: str | None) -> Shape | None:
    """The shape of the table (``index_name`` None) or of one of its GSIs, or None if it is not indexable here."""
    if table.range_key_attr is None or table.hash_key_type not in SORTABLE or table.range_key_type not in SORTABLE:
        return None
    base = (table.hash_key_attr, table.hash_key_type, table.range_key_attr, table.range_key_type)
    if index_name is None:
        return Shape(*base, *base)
    gsi = next((i for i in table.global_indexes if i.name == index_name), None)
    if gsi is None:
        return None  # an LSI, or no such index: moto answers (and raises) itself
    hashes = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) != 1 or len(gsi.schema) != 2:
        return None
    kinds = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
    hash_kind, range_kind = kinds.get(hashes[0]), kinds.get(ranges[0])
    if hash_kind not in SORTABLE or range_kind not in SORTABLE:
        return None
    return Shape(hashes[0], hash_kind, ranges[0], range_kind, *base)  # type: ignore[arg-type]


@dataclass
class Partition:
    """One hash value's entries, ascending; ``keys[i]`` is the table key of ``order[i]``."""

    hash_value: DynamoType
    order: list[Sort] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    # members whose range value is not of the declared type: moto would compare it with the
    # others (or fail to), so a query of this partition is left to moto
    odd: int = 0


class SortedIndex:
    """The table, or one GSI, as sorted partitions; ``filed`` says where each table key sits."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.partitions: dict[DynamoType, Partition] = {}
        self.filed: dict[Key, tuple[DynamoType, Sort | None]] = {}

    def entry(self, key: Key, item: Item) -> tuple[DynamoType, Sort | None] | None:
        """Where ``item`` belongs, None if it is not in this index (moto's GSI holds items that have both its keys)."""
        s = self.shape
        h, r = item.attrs.get(s.hash_attr), item.attrs.get(s.range_attr)
        if h is None or r is None or h.type != s.hash_kind or raw(h, s.hash_kind) is None:
            return None  # a query's hash value has the declared type, so it can never match this item
        part = self.partitions.get(h)
        h = part.hash_value if part is not None else DynamoType(h)  # one key object per partition, never the item's own
        range_raw = raw(r, s.range_kind)
        if range_raw is None:
            return h, None
        return h, (range_raw, raw(key[0], s.table_hash_kind), raw(key[1], s.table_range_kind))

    def file(self, key: Key, item: Item | None) -> None:
        """Put ``key`` where ``item`` (its current state, None if deleted) belongs."""
        old = self.filed.pop(key, None)
        if old is not None:
            self._remove(key, *old)
        new = self.entry(key, item) if item is not None else None
        if new is not None:
            self._add(key, *new)
            self.filed[key] = new

    def _add(self, key: Key, hash_value: DynamoType, sort: Sort | None) -> None:
        part = self.partitions.get(hash_value)
        if part is None:
            part = self.partitions[hash_value] = Partition(hash_value)
        if sort is None:
            part.odd += 1
            return
        i = bisect_left(part.order, sort)
        part.order.insert(i, sort)
        part.keys.insert(i, key)

    def _remove(self, key: Key, hash_value: DynamoType, sort: Sort | None) -> None:
        part = self.partitions[hash_value]
        if sort is None:
            part.odd -= 1
        else:
            i = bisect_left(part.order, sort)
            if part.keys[i] != key:
                raise LookupError(f"{key} is not where the index filed it")
            del part.order[i]
            del part.keys[i]
        if not part.order and not part.odd:
            del self.partitions[hash_value]

    @classmethod
    def build(cls, shape: Shape, table: Table) -> SortedIndex:
        index = cls(shape)
        found: dict[DynamoType, list[tuple[Sort, Key]]] = {}
        for h, part in table.items.items():
            for r, item in part.items():
                where = index.entry((h, r), item)
                if where is None:
                    continue
                index.filed[(h, r)] = where
                part = index.partitions.get(where[0])
                if part is None:
                    part = index.partitions[where[0]] = Partition(where[0])
                if where[1] is None:
                    part.odd += 1
                else:
                    found.setdefault(where[0], []).append((where[1], (h, r)))
        for hash_value, entries in found.items():
            entries.sort(key=lambda e: e[0])
            part = index.partitions[hash_value]
            part.order = [e[0] for e in entries]
            part.keys = [e[1] for e in entries]
        return index


class TableIndex:
    """Everything kept for one Table object: its sorted indexes and its items in Scan order."""

    def __init__(self, table: Table) -> None:
        self.items = table.items  # the dict the indexes describe: a table whose items dict is swapped is rebuilt
        self.generation = 0  # counts writes, so the Scan order knows when it is out of date
        self.indexes: dict[str | None, SortedIndex] = {}
        self.scan: tuple[int, list[tuple[Any, Any]], list[Key], list[Item]] | None = None

    def index(self, table: Table, index_name: str | None) -> SortedIndex | None:
        shape = shape_of(table, index_name)
        if shape is None:
            return None
        found = self.indexes.get(index_name)
        if found is None or found.shape != shape:  # built on first use, and again after UpdateTable changed the GSI
            found = self.indexes[index_name] = SortedIndex.build(shape, table)
        return found

    def scan_order(self, table: Table) -> tuple[list[tuple[Any, Any]], list[Key], list[Item]] | None:
        """Every item in the order moto's Scan reads them (hash, then range): kept until the next write."""
        if shape_of(table, None) is None:
            return None
        if self.scan is None or self.scan[0] != self.generation:
            h_kind, r_kind = table.hash_key_type, table.range_key_type
            entries = sorted(
                (
                    ((raw(h, h_kind), raw(r, r_kind)), (h, r), item)
                    for h, part in table.items.items()
                    for r, item in part.items()
                ),
                key=lambda e: e[0],
            )
            self.scan = (self.generation, [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries])
        return self.scan[1], self.scan[2], self.scan[3]


_INDEXES: weakref.WeakKeyDictionary[Table, TableIndex] = weakref.WeakKeyDictionary()


def for_table(table: Table) -> TableIndex | None:
    """The table's index, made on first use; None for a table no read can use one for."""
    if shape_of(table, None) is None:
        return None
    found = _INDEXES.get(table)
    if found is None or found.items is not table.items:
        found = _INDEXES[table] = TableIndex(table)
    return found


def forget(table: Table, why: str) -> None:
    """Drop a table's index after finding it out of step with the table: the next read rebuilds it."""
    log.warning("moto_patches: index of table %s dropped (%s); rebuilt on its next read", table.name, why)
    _INDEXES.pop(table, None)


def lookup(table: Table, key: Key) -> Item | None:
    part = table.items.get(key[0])  # .get: moto's items is a defaultdict, indexing would add a partition
    return part.get(key[1]) if isinstance(part, dict) else None


def touched(table: Table, key: Key | None) -> None:
    """Re-file one written key in every index of the table (after the write, whether it succeeded or not)."""
    found = _INDEXES.get(table)
    if found is None or key is None:
        return
    try:
        if found.items is not table.items:
            raise LookupError("its items were replaced")
        found.generation += 1
        item = lookup(table, key)
        for index in found.indexes.values():
            index.file(key, item)
    except Exception as err:  # never fail moto's write because of our index: drop it instead
        forget(table, f"filing {key} failed: {err!r}")


def _key(table: Table, hash_value: Any, range_value: Any) -> Key | None:
    if table.range_key_attr is None or hash_value is None or range_value is None:
        return None
    try:
        return DynamoType(hash_value), DynamoType(range_value)
    except Exception:
        return None  # malformed input: moto rejects it and nothing was written


def _after_put(put_item: Any) -> Any:
    @functools.wraps(put_item)
    def put(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:  # any mapping: PartiQL passes its own case-insensitive dict
            key = _key(self, item_attrs.get(self.hash_key_attr), item_attrs.get(self.range_key_attr or ""))
        except AttributeError:
            key = None
        try:
            return put_item(self, item_attrs, *args, **kwargs)
        finally:
            touched(self, key)

    return put


def _after_delete(delete_item: Any) -> Any:
    @functools.wraps(delete_item)
    def delete(self: Table, hash_key: Any, range_key: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return delete_item(self, hash_key, range_key, *args, **kwargs)
        finally:
            touched(self, _key(self, hash_key, range_key))

    return delete


def _after_update(update_item: Any) -> Any:
    @functools.wraps(update_item)
    def update(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            table = self.tables.get(table_name) or next(
                (t for t in self.tables.values() if t.table_arn == table_name), None
            )
            if table is not None and isinstance(key, dict):
                touched(table, _key(table, key.get(table.hash_key_attr), key.get(table.range_key_attr or "")))

    return update


def install() -> None:
    from ops.local.moto_patches import replace

    replace(Table, "put_item", _after_put(Table.put_item))
    replace(Table, "delete_item", _after_delete(Table.delete_item))
    replace(DynamoDBBackend, "update_item", _after_update(DynamoDBBackend.update_item))
