"""``invoke bench``: our tools against the seeds' ways, measured on a private twin."""

from __future__ import annotations

from invoke import Context, Exit

from cli.shell import helps, note, one_line_errors, say, task


@task(
    name="bench",
    iterable=["only"],
    help=helps("size", "only", json="bench_json", engine="bench_engine"),
    checks={"engine": None},
)  # moto, ministack or both: bench.harness.parse_engines says so in one line
@one_line_errors
def bench(
    c: Context, size: str = "smoke", only: list[str] | None = None, json: bool = False, engine: str = "both"
) -> None:
    """Measure our tools against the seeds' ways on a private twin per DynamoDB engine
    (own state dir and ports, stopped at the end)."""
    from bench import harness
    from bench import report as rendering

    names, engines = harness.parse_only(",".join(only or [])), harness.parse_engines(engine)
    report = harness.run(size, names, progress=note, engines=engines)
    say("\n".join(rendering.json_lines(report)) if json else "\n".join(rendering.report_lines(report)))
    if report.errors:
        raise Exit("error: " + "; ".join(f"{name}: {err}" for name, err in report.errors.items()), code=1)
