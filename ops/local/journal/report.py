"""Paths of the journal and the restore report: light, read by twin.py without importing moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.local.journal.record import segments

REPORT_NAME = "aws-restore.json"
JOURNAL_DIR_NAME = "aws-journal"
REPORT_FORMAT = 1


# ---------------------------------------------------------------- paths and the restore report
# (light: twin.py imports this module to read the report without importing moto)


def journal_dir(snapshot: Path) -> Path:
    return snapshot.with_name(JOURNAL_DIR_NAME)


def report_path(snapshot: Path) -> Path:
    return snapshot.with_name(REPORT_NAME)


def saved_on_stop(snapshot: Path) -> bool:
    """After the server stopped: whether its last snapshot covers every write (a clean stop leaves no journal).

    The final compaction deletes the segments only once the snapshot is on disk; segments left
    with records in them mean it could not be written (a full or read-only disk) or never ran.
    """
    return not any(seg.stat().st_size for seg in segments(journal_dir(snapshot)) if seg.exists())


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == REPORT_FORMAT else None


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


def restore_summary(report: dict[str, Any] | None) -> str:
    """One line for ``local.up``: what the AWS server found and rebuilt when it started."""
    if report is None:
        return "restore: the AWS server wrote no restore report (see its log)"
    snap = report.get("snapshot")
    replayed = int(report.get("replayed", 0))
    failed = report.get("failed") or []
    diverged = report.get("diverged") or []
    torn = report.get("torn") or []
    notes = list(report.get("notes") or [])
    if not snap and not replayed and not failed and not torn and not notes:
        return "nothing to restore"
    base = f"snapshot of {_when(snap['taken_at'])}" if snap else "no snapshot"
    parts = [f"restored: {base} + {replayed} journaled writes; {len(failed)} could not be replayed"]
    if diverged:
        parts.append(f"{len(diverged)} replayed with a different answer")
    if torn:
        parts.append(
            f"a torn last record ({sum(int(t['bytes']) for t in torn)} bytes, cut by a crash mid-write) was ignored"
        )
    parts.extend(notes)
    return "; ".join(parts)


def restored_anything(report: dict[str, Any] | None) -> bool:
    return bool(report and (report.get("snapshot") or report.get("replayed")))
