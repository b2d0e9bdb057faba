"""The doctor's structural checks written once as SQL over a table export: DuckDB on this machine, Athena in the cloud.

For a table one machine should not scan, the doctor reads DynamoDB's export instead
(``ops.export``), and for one it should not even read item by item, SQL does the work: the
checks below run on a view ``items`` (pk, sk, message_group_uuid, message_uuid, user_uuid, moment),
which each engine defines over the export's files its own way: DuckDB reads the gzipped DynamoDB
JSON it downloaded (checksums verified first), Athena the Glue table the Pulumi program declares
over the stack's export bucket (``infra/exports.py``). ``moment`` (of the key's part before a ``#``:
a group row's key may carry its group after its time) is the moment a key names (null
when the key is no time with a zone), so keys written with other offsets compare as moments,
as the scanning doctor compares them. The checks are plain SQL that both engines run as written.

Covered: extra, lagging, orphan and missing group rows, missing pair entries and pairs with more
than one group: the findings that need the whole table at once. What needs an item's own reading
(keys' form, unknown shapes, sealed bodies: KMS) stays with the scanning doctor, which reads the
same export with ``--from-export``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.export_spec import AthenaNames, athena_names  # noqa: F401 - athena_names: the tasks' name for it

# What the checks read: messages, group rows and pair entries as the model knows them (ops.messages.model).
BASE = """
WITH msgs AS (
    SELECT substr(pk, 5) AS grp, sk, moment FROM items
    WHERE pk LIKE 'MSG#%' AND sk <> 'KEY' AND message_uuid IS NOT NULL
),
grp_rows AS (
    SELECT substr(pk, 5) AS owner, message_group_uuid AS grp, user_uuid, moment FROM items
    WHERE pk LIKE 'GRP#%' AND message_group_uuid IS NOT NULL AND user_uuid IS NOT NULL
),
newest AS (
    SELECT grp, max(moment) AS newest_at, max_by(sk, moment) AS newest_sk FROM msgs WHERE moment IS NOT NULL GROUP BY grp
),
pairs AS (
    SELECT DISTINCT
        CASE WHEN owner < user_uuid THEN owner || '#' || user_uuid ELSE user_uuid || '#' || owner END AS pair, grp
    FROM grp_rows WHERE owner <> user_uuid
),
entries AS (
    SELECT DISTINCT substr(pk, 6) AS pair FROM items WHERE pk LIKE 'PAIR#%' AND sk = 'PAIR'
)
"""  # noqa: E501

# kind -> (title, the query's select); each row is one instance, in the scanning doctor's order.
CHECKS: dict[str, tuple[str, str]] = {
    "duplicate-groups": (
        "pairs with more than one group (merge by hand)",
        "SELECT pair, count(*) AS groups FROM pairs GROUP BY pair HAVING count(*) > 1 ORDER BY pair",
    ),
    "extra-rows": (
        "participants with more than one row for a group",
        'SELECT grp AS "group", owner, count(*) AS "rows" FROM grp_rows GROUP BY grp, owner '
        "HAVING count(*) > 1 ORDER BY grp, owner",
    ),
    "lagging-rows": (
        "group rows behind their group's newest message",
        'SELECT l.grp AS "group", l.owner, n.newest_sk AS newest FROM '
        "(SELECT grp, owner, max(moment) AS latest_at FROM grp_rows GROUP BY grp, owner) l "
        "JOIN newest n ON n.grp = l.grp WHERE l.latest_at IS NULL OR l.latest_at < n.newest_at ORDER BY l.grp, l.owner",
    ),
    "orphan-rows": (
        "group rows whose group has no messages",
        'SELECT r.grp AS "group", count(*) AS "rows" FROM grp_rows r '
        "WHERE NOT EXISTS (SELECT 1 FROM msgs m WHERE m.grp = r.grp) GROUP BY r.grp ORDER BY r.grp",
    ),
    "missing-rows": (
        "participants named by a group without a row of their own",
        'SELECT DISTINCT r.grp AS "group", r.user_uuid AS participant FROM grp_rows r '
        "WHERE NOT EXISTS (SELECT 1 FROM grp_rows o WHERE o.grp = r.grp AND o.owner = r.user_uuid) "
        "ORDER BY 1, 2",
    ),
    "missing-pair-entries": (
        "pairs without a pair entry (run ddb.migrate, or --fix)",
        "SELECT DISTINCT p.pair FROM pairs p WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.pair = p.pair) ORDER "
        "BY 1",
    ),
}
SUMMARY = (
    "SELECT (SELECT count(*) FROM items) AS items, (SELECT count(*) FROM msgs) AS messages, "
    "(SELECT count(*) FROM grp_rows) AS group_rows, (SELECT count(*) FROM entries) AS pair_entries, "
    "(SELECT count(*) FROM (SELECT grp FROM msgs UNION SELECT grp FROM grp_rows) g) AS groups"
)
FIXABLE = {"extra-rows", "lagging-rows", "missing-pair-entries"}


def queries() -> dict[str, str]:
    """Every check as one complete statement over ``items`` (and the summary), as both engines run them."""
    return {kind: BASE + select for kind, (_, select) in CHECKS.items()} | {"summary": BASE + SUMMARY}


# DuckDB: the export's data files (gzipped DynamoDB JSON lines) as the view the checks read.
DUCKDB_VIEW = """
CREATE OR REPLACE VIEW items AS
SELECT
    Item->'pk'->>'S' AS pk,
    Item->'sk'->>'S' AS sk,
    Item->'message_group_uuid'->>'S' AS message_group_uuid,
    Item->'message_uuid'->>'S' AS message_uuid,
    Item->'user_uuid'->>'S' AS user_uuid,
    CASE WHEN regexp_matches(split_part(Item->'sk'->>'S', '#', 1),
                             '^\\d{4}-\\d\\d-\\d\\dT.*([+-]\\d\\d:\\d\\d|Z)$')
         THEN TRY_CAST(split_part(Item->'sk'->>'S', '#', 1) AS TIMESTAMPTZ) END AS moment
FROM read_json({files}, format = 'newline_delimited', compression = 'gzip', columns = {{'Item': 'JSON'}})
"""

# Athena (Trino): the Glue table over the export bucket (infra/exports.py), one export's files by their path.
ATHENA_VIEW = """
items AS (
    SELECT
        item.pk.s AS pk, item.sk.s AS sk, item.message_group_uuid.s AS message_group_uuid,
        item.message_uuid.s AS message_uuid, item.user_uuid.s AS user_uuid,
        CASE WHEN regexp_like(split_part(item.sk.s, '#', 1),
                              '^\\d{{4}}-\\d\\d-\\d\\dT.*([+-]\\d\\d:\\d\\d|Z)$')
             THEN try(from_iso8601_timestamp(split_part(item.sk.s, '#', 1))) END AS moment
    FROM "{database}"."{table}"
    WHERE item IS NOT NULL AND "$path" LIKE '%/AWSDynamoDB/{export_id}/data/%'
)"""


def athena_queries(database: str, table: str, export_id: str) -> dict[str, str]:
    """The same checks for Athena: the view becomes the statement's first CTE, over one export's files."""
    view = ATHENA_VIEW.format(database=database, table=table, export_id=export_id)
    return {kind: sql.replace("WITH msgs AS", f"WITH {view},\nmsgs AS", 1) for kind, sql in queries().items()}


@dataclass
class SqlFindings:
    summary: dict[str, int]
    instances: dict[str, list[dict[str, Any]]]


def run_duckdb(files: list[Path]) -> SqlFindings:
    """Every check over the export's data files, in an in-memory DuckDB."""
    import duckdb

    from ops.errors import InputError

    con = duckdb.connect(":memory:")
    try:
        listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        con.execute(DUCKDB_VIEW.replace("{files}", listed).replace("{{", "{").replace("}}", "}"))
        found: dict[str, list[dict[str, Any]]] = {}
        summary: dict[str, int] = {}
        for kind, sql in queries().items():
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            if kind == "summary":
                summary = {k: int(v) for k, v in rows[0].items()}
            else:
                found[kind] = rows
        return SqlFindings(summary, found)
    except duckdb.Error as err:  # a file DuckDB cannot read as the export's format: one line, not a traceback
        raise InputError(f"DuckDB could not run the doctor's SQL over the export: {str(err).splitlines()[0]}") from None
    finally:
        con.close()


def examination(found: SqlFindings) -> Any:
    """The findings as the scanning doctor's ``Examination`` (same kinds, titles and sample size), for one report."""
    from ops.doctor import SAMPLE, Examination, Finding

    s = found.summary
    out = Examination(s["items"], s["messages"], s["group_rows"], s["pair_entries"], s["groups"], 0)
    for kind, (title, _) in CHECKS.items():
        rows = found.instances.get(kind) or []
        if rows:
            out.findings.append(Finding(kind, title, len(rows), kind in FIXABLE, rows[:SAMPLE]))
            out.instances[kind] = rows
    return out


def examine_export(s3: Any, export: Any) -> Any:
    """``ddb.doctor --engine duckdb``: the export's data files downloaded (verified), then every check in DuckDB."""
    from ops.export import download

    with tempfile.TemporaryDirectory(prefix="cruddur-export-") as tmp:
        files = download(s3, export, Path(tmp))
        return examination(run_duckdb(files)) if files else examination(SqlFindings(_empty(), {}))


def _empty() -> dict[str, int]:
    return {"items": 0, "messages": 0, "group_rows": 0, "pair_entries": 0, "groups": 0}


# ------------------------------------------------------------------------------------ Athena
def run_athena(
    athena: Any, names: AthenaNames, export_id: str, *, sleep: Any = None, wait_seconds: float = 900
) -> SqlFindings:
    """Every check in the stack's Athena workgroup over one export's files (the Glue table is the program's)."""
    import time

    from ops.aws import call
    from ops.errors import CloudError

    pause = sleep or time.sleep
    found: dict[str, list[dict[str, Any]]] = {}
    summary: dict[str, int] = {}
    for kind, sql in athena_queries(names.database, names.table, export_id).items():
        qid = call(
            athena.start_query_execution,
            f"Athena {kind}",
            QueryString=sql,
            WorkGroup=names.workgroup,
            QueryExecutionContext={"Database": names.database},
        )["QueryExecutionId"]
        deadline = time.monotonic() + wait_seconds
        while True:
            status = call(athena.get_query_execution, "Athena status", QueryExecutionId=qid)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED"):
                raise CloudError(
                    f"Athena query {kind} {status['State'].lower()}: {status.get('StateChangeReason', '')}"
                )
            if time.monotonic() > deadline:
                raise CloudError(f"Athena query {kind} still running after {wait_seconds:.0f}s (id {qid})")
            pause(0.5)
        rows = _result_rows(athena, qid)
        if kind == "summary":
            summary = {k: int(v or 0) for k, v in (rows[0] if rows else {}).items()}
        else:
            found[kind] = rows
    return SqlFindings(summary or _empty(), found)


def _result_rows(athena: Any, qid: str) -> list[dict[str, Any]]:
    """Athena's result pages as dicts (its first row is the header); numbers come back as text."""
    from ops.aws import pages

    header: list[str] | None = None
    out: list[dict[str, Any]] = []
    for page in pages(athena, "get_query_results", "Athena results", QueryExecutionId=qid):
        for row in page.get("ResultSet", {}).get("Rows", []):
            values = [c.get("VarCharValue") for c in row.get("Data", [])]
            if header is None:
                header = [str(v) for v in values]
                continue
            out.append(
                {
                    k: (int(v) if k in ("rows", "groups") and v is not None else v)
                    for k, v in zip(header, values, strict=True)
                }
            )
    return out


def check_target(target: Any, which: str = "latest", engine: str = "duckdb", fix: bool = False) -> Any:
    """``ddb.doctor --engine duckdb|athena [--from-export ID|latest]``: the SQL checks over an export; a Checkup."""
    from ops.doctor import Checkup
    from ops.errors import ConfigError
    from ops.export import clients, find_export

    if fix:
        raise ConfigError("--fix repairs the live table from a scan of it: run it with --engine scan (the default)")
    ddb, s3 = clients(target)
    export = find_export(ddb, target.stack.table_name, which)
    if engine == "duckdb":
        return Checkup(examine_export(s3, export))
    if engine == "athena":
        if not target.cloud:
            raise ConfigError(
                "--engine athena runs in the stack's cloud account: add --cloud (on a twin use --engine duckdb)"
            )
        names = athena_names(target.stack.table_name)
        return Checkup(examination(run_athena(target.client("athena"), names, export.id)))
    raise ConfigError(f"--engine must be scan, duckdb or athena, not {engine!r}")
