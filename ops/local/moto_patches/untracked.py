"""Stop moto from keeping every DynamoDB item and table object it ever made.

Every moto model class (``BaseModel``) appends each new instance to a class-level list, for
the ``/moto-api/`` dashboard to show; nothing else reads it. For DynamoDB that list keeps alive
every ``Item`` ever built, including the copies moto makes of every item it returns and of the
whole table at the start of every transaction (its rollback copy), and every such ``Table``:
the twin's memory, and the garbage collector's work, grew with every read and every write.
Items and tables are made without the bookkeeping here; the dashboard no longer lists them.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)  # what BaseModel.__new__ does, minus the append


def install() -> None:
    from ops.local.moto_patches import replace

    for cls in (Item, Table):  # Table's subclasses (restored tables) inherit it
        replace(cls, "__new__", staticmethod(_untracked_new))
