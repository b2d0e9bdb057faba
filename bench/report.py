"""Rendering a benchmark report: the printed table with its notes, or one JSON line per row."""

from __future__ import annotations

from collections.abc import Iterable

from bench.model import Report, Row


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _engines(rows: list[Row]) -> bool:
    """Whether the rows span more than one engine or latency: only then do they show in the name."""
    return len({(r.engine, r.latency_ms) for r in rows}) > 1


def _name(r: Row, with_engine: bool) -> str:
    where = r.engine + (f", +{r.latency_ms} ms" if r.latency_ms else "")
    return f"{r.workload} [{where}]: {r.case}" if with_engine else f"{r.workload}: {r.case}"


def display_rows(rows: list[Row]) -> list[dict[str, str]]:
    """Rows as the strings of the printed table (ratio: how many times faster ours is)."""
    with_engine = _engines(rows)
    out = []
    for r in rows:
        peak = (
            "-"
            if r.peak_mb is None
            else f"{r.peak_mb:.1f}" + ("" if r.baseline_peak_mb is None else f" / {r.baseline_peak_mb:.1f}")
        )
        out.append(
            {
                "workload": _name(r, with_engine),
                "size": f"{r.size:,} {r.unit}",
                "ours": _secs(r.ours_s),
                "baseline": r.baseline,
                "base time": _secs(r.baseline_s) if r.baseline_s is not None or r.baseline == "-" else "cannot",
                "ratio": "-" if r.ratio is None else f"{r.ratio:.1f}×",
                "items/s": "-" if r.items_per_s is None or r.unit == "runs" else f"{r.items_per_s:,.0f}",
                "peak MB ours/base": peak,
                "target": "-" if not r.target else f"{r.target}: " + ("met" if r.met else "MISSED"),
            }
        )
    return out


def report_lines(report: Report) -> list[str]:
    """The printed report: machine, the table, each row's note, the setup times, any failure."""
    from ops.render import table

    m = report.machine
    with_engine = _engines(report.rows)
    engines = m.get("engines") or ["moto"]
    servers = ", ".join(
        f"moto {m.get('moto')} server" if e == "moto" else f"MiniStack {m.get('ministack')} (own virtualenv)"
        for e in engines
    )
    lines = [
        f"bench --size {report.size}: {m.get('cores')} cores, {m.get('memory_gb', '?')} GB, Python {m.get('python')}, "
        f"{servers}, PostgreSQL {m.get('postgres', '?')} (embedded); peak MB = peak RSS growth of the process doing "
        "the work",
        "",
    ]
    lines.append(table(display_rows(report.rows), empty="(no results)"))
    lines.append("")
    lines += [f"- {_name(r, with_engine)}: {r.note}" for r in report.rows if r.note]
    lines += [f"- setup (not timed): {s}" for s in report.setup]
    lines += [f"FAILED {name}: {err}" for name, err in report.errors.items()]
    return lines


def json_lines(report: Report) -> Iterable[str]:
    """One JSON object per row, every field of ``bench.model.Row``."""
    from ops.render import json_lines as dataclass_lines

    return dataclass_lines(report.rows)


def page_table(json_text: str) -> str:
    """The rows of ``invoke bench --json`` as the table docs/benchmarks.md shows (a fenced text block)."""
    import json

    from ops.render import table

    rows = [Row(**json.loads(line)) for line in json_text.splitlines() if line.strip()]
    return "```text\n" + table(display_rows(rows), empty="(no results)") + "\n```"


if __name__ == "__main__":
    # `invoke bench --json > rows.jsonl; python -m bench.report rows.jsonl`: a table to paste into the page
    import sys
    from pathlib import Path

    print(page_table(Path(sys.argv[1]).read_text() if len(sys.argv) > 1 else sys.stdin.read()))
