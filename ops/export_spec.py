"""The export path's names, declared once: read by the Pulumi program (infra/exports.py) and the tasks (ops/export.py,
ops/doctor_sql.py). It imports nothing of ours, so the program's plan does not depend on the tasks' code."""

from __future__ import annotations

from dataclasses import dataclass

EXPORT_PREFIX = "exports"  # every export of a stack under <bucket>/exports/AWSDynamoDB/<export id>/
RESULTS_PREFIX = "athena-results"  # where the doctor's Athena queries leave their results


def bucket_name(table: str, account: str) -> str:
    """The stack's export bucket: one per table and account (bucket names are global, lower case, no '_' or '.')."""
    safe = "".join(c if c.isalnum() or c == "-" else "-" for c in table.lower())
    return f"{safe[: 63 - len(account) - 9]}-exports-{account}"


@dataclass(frozen=True)
class AthenaNames:
    """What the program declares per stack for the doctor's SQL: the Glue database and table, the workgroup."""

    database: str
    table: str
    workgroup: str


def athena_names(table_name: str) -> AthenaNames:
    base = table_name.replace("-", "_").replace(".", "_").lower()
    return AthenaNames(f"{base}_exports", f"{base}_items", f"{table_name}-doctor")  # unique per stack
