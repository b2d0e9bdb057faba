"""local.snapshot.*: named snapshots of a stack's whole twin, saved, restored, listed, shared as one archive."""

from __future__ import annotations

from invoke import Collection, Context

from cli.shell import helps, one_line_errors, say, task


@task(name="save", help=helps("stack", snapshot="snapshot_name"))
@one_line_errors
def save(c: Context, snapshot: str, stack: str = "dev") -> None:
    """Save the stack's whole twin under a name (a running twin is stopped for the copy and started again)."""
    from ops.local import snapshot as snaps
    from ops.render import snapshot_line
    from ops.stacks import load_stack

    say(snapshot_line("saved", snaps.save(load_stack(stack).name, snapshot)))


@task(name="restore", help=helps("stack", snapshot="snapshot_name"))
@one_line_errors
def restore(c: Context, snapshot: str, stack: str = "dev") -> None:
    """Put a snapshot back as the stack's whole twin: everything since it was saved is gone."""
    from ops.local import snapshot as snaps
    from ops.render import snapshot_line
    from ops.stacks import load_stack

    say(snapshot_line("restored", snaps.restore(load_stack(stack).name, snapshot)))


@task(name="list", help=helps("stack", "json"))
@one_line_errors
def list_(c: Context, stack: str = "dev", json: bool = False) -> None:
    """List the stack's snapshots, oldest first."""
    from ops.local import snapshot as snaps
    from ops.render import snapshot_table
    from ops.stacks import load_stack

    say(snapshot_table(snaps.list_snapshots(load_stack(stack).name), json))


@task(name="delete", help=helps("stack", snapshot="snapshot_name"))
@one_line_errors
def delete(c: Context, snapshot: str, stack: str = "dev") -> None:
    """Delete a snapshot of the stack."""
    from ops.local import snapshot as snaps
    from ops.stacks import load_stack

    snaps.delete(load_stack(stack).name, snapshot)
    say(f"deleted snapshot {snapshot} of stack {stack}")


@task(name="export", help=helps("stack", snapshot="snapshot_name", file="snapshot_file"))
@one_line_errors
def export(c: Context, snapshot: str, file: str, stack: str = "dev") -> None:
    """Write a snapshot to one portable .tar.gz (its manifest names versions, stack, engine and checksums)."""
    from pathlib import Path

    from ops.local import snapshot as snaps
    from ops.render import snapshot_line
    from ops.stacks import load_stack

    say(snapshot_line(f"exported to {file}:", snaps.export(load_stack(stack).name, snapshot, Path(file))))


@task(name="import", help=helps("stack", file="snapshot_archive", snapshot="snapshot_rename"))
@one_line_errors
def import_(c: Context, file: str, stack: str = "dev", snapshot: str | None = None) -> None:
    """Check an exported archive whole (format, stack, checksums) and add it to the stack's snapshots."""
    from pathlib import Path

    from ops.local import snapshot as snaps
    from ops.render import snapshot_line
    from ops.stacks import load_stack

    say(snapshot_line("imported", snaps.import_archive(load_stack(stack).name, Path(file), snapshot)))


ns = Collection("snapshot", save, restore, list_, delete, export, import_)
