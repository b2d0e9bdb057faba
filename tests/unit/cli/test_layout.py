"""The shape of the command line: where each task lives, what it is called, which flags it has and their help.

These tests load the assembled collection in-process (no twin): they fail when a task moves to the
wrong module, loses or renames a flag, gets a flag without shared help, or when tasks.py grows logic.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from typing import Any

import pytest
from invoke import Collection, Task

import tasks
from cli import shell
from tests.support.helpers import REPO

# Every task and its flags (long names, short flags and older spellings) as the README documents
# them. Short flags are chosen by invoke from the parameter order, so reordering a signature shows here.
EXPECTED_FLAGS: dict[str, set[str]] = {
    "quickstart": {"stack", "s", "engine", "e"},
    "bench": {"size", "s", "only", "o", "json", "j", "engine", "e"},
    "infra.preview": {"stack", "s", "diff", "d"},
    "infra.up": {"stack", "s", "yes", "y", "confirm-protected", "c"},
    "infra.outputs": {"stack", "s", "json", "j"},
    "infra.plan": {"stack", "s", "json", "j"},
    "infra.diagram": {"stack", "s", "output", "o", "dependencies", "d"},
    "infra.drift": {"stack", "s", "cloud", "c", "json", "j"},
    "local.up": {"stack", "s", "engine", "e", "empty", "m"},
    "local.down": {"stack", "s"},
    "local.status": {"json", "j"},
    "db.create": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "db.drop": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "db.schema-load": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "db.seed": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "db.setup": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "db.connect": {"stack", "s", "cloud", "c"},
    "db.sessions": {"stack", "s", "cloud", "c", "json", "j"},
    "cognito.list-users": {"stack", "s", "cloud", "c", "json", "j"},
    "cognito.sync-ids": {"stack", "s", "cloud", "c", "confirm-protected", "o", "dry-run", "d"},
    "cognito.create-users": {"stack", "s"},
    "rds.update-sg-rule": {"stack", "s", "cloud", "c", "confirm-protected", "o", "ip", "i"},
    "ddb.schema-load": {"stack", "s", "cloud", "c"},
    "ddb.list-tables": {"stack", "s", "cloud", "c"},
    "ddb.drop": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "ddb.scan": {"stack", "s", "cloud", "c", "json", "j", "limit", "l", "segments", "e"},
    "ddb.seed": {
        "stack",
        "s",
        "cloud",
        "c",
        "confirm-protected",
        "o",
        "conversation",
        "n",
        "my-handle",
        "m",
        "other-handle",
        "t",
        "start",
        "a",
    },
    "ddb.send-message": {
        "text",
        "t",
        "stack",
        "s",
        "from",
        "f",
        "to",
        "o",
        "group",
        "g",
        "no-process",
        "n",
        "cloud",
        "c",
        "confirm-protected",
        "i",
    },
    "ddb.stream-process": {"stack", "s", "follow", "f", "cloud", "c"},
    "ddb.doctor": {"stack", "s", "cloud", "c", "confirm-protected", "o", "fix", "f", "json", "j", "segments", "e"},
    "ddb.migrate": {
        "name",
        "n",
        "stack",
        "s",
        "cloud",
        "c",
        "confirm-protected",
        "o",
        "dry-run",
        "d",
        "restart",
        "r",
        "segments",
        "e",
    },
    "ddb.dead-letters": {"stack", "s", "cloud", "c"},
    "ddb.redrive": {"stack", "s", "cloud", "c", "confirm-protected", "o"},
    "ddb.patterns.list-conversations": {
        "handle",
        "h",
        "stack",
        "s",
        "cloud",
        "c",
        "page-size",
        "p",
        "cursor",
        "u",
        "before",
        "b",
        "json",
        "j",
        "full",
        "f",
    },
    # --handle is repeatable; --handles (comma-separated) is its older spelling, still accepted
    "ddb.patterns.get-conversation": {
        "stack",
        "s",
        "cloud",
        "c",
        "group",
        "g",
        "handle",
        "handles",
        "h",
        "page-size",
        "p",
        "cursor",
        "u",
        "before",
        "b",
        "json",
        "j",
        "full",
        "f",
    },
}


def _tasks(coll: Collection, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, Task]]:
    """(namespace path, task name, task) for every task of the collection, depth first."""
    found = [(path, name, t) for name, t in coll.tasks.items()]
    for name, sub in coll.collections.items():
        found += _tasks(sub, (*path, name))
    return found


ALL = _tasks(tasks.ns)


def _dotted(path: tuple[str, ...], name: str) -> str:
    return ".".join((*path, name))


def test_every_task_lives_in_the_module_its_namespace_names() -> None:
    for path, name, t in ALL:
        # ddb.patterns.get-conversation → cli.ddb.patterns; a top-level task `bench` → cli.bench
        expected = ".".join(("cli", *path)) if path else f"cli.{name}"
        assert t.body.__module__ == expected, f"{_dotted(path, name)} is defined in {t.body.__module__}, not {expected}"


def test_each_namespace_is_declared_once_at_the_bottom_of_its_module() -> None:
    for module, source in _cli_sources():
        tree = ast.parse(source)
        collections = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Collection"
        ]
        if module in ("cli.quickstart", "cli.bench", "cli.shell", "cli"):
            assert not collections, f"{module} declares a namespace"
            continue
        assert len(collections) == 1, f"{module} declares {len(collections)} namespaces"
        last = tree.body[-1]
        assert (
            isinstance(last, ast.Assign) and last.value is collections[0] and [t.id for t in last.targets] == ["ns"]
        ), f"{module} does not end with ns = Collection(...)"  # type: ignore[attr-defined]


def _cli_sources() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "cli").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((module, path.read_text()))
    return out


def test_tasks_py_only_assembles_the_namespaces() -> None:
    tree = ast.parse((REPO / "tasks.py").read_text())
    for node in tree.body:
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        is_ns = isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["ns"]  # type: ignore[attr-defined]
        assert is_docstring or is_ns or isinstance(node, ast.Import | ast.ImportFrom), (
            f"tasks.py line {node.lineno} is neither an import nor `ns = ...`"
        )
    assert not [name for name, value in vars(tasks).items() if isinstance(value, Task)], "tasks.py holds a task"


def test_the_task_names_are_those_the_readme_documents() -> None:
    assert {_dotted(path, name) for path, name, _ in ALL} == set(EXPECTED_FLAGS)


def test_invoke_list_lists_the_same_task_names() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    listed = {
        line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ") and not line.startswith("   ")
    }
    assert listed == set(EXPECTED_FLAGS)


@pytest.mark.parametrize("name", sorted(EXPECTED_FLAGS))
def test_every_flag_is_kept_and_has_help_from_the_shared_set(name: str) -> None:
    context = {ctx.name: ctx for ctx in tasks.ns.to_contexts()}[name]
    shared = set(shell.HELP.values())
    names: set[str] = set()
    for arg in context.args.values():
        names.update(arg.names)
        assert arg.help, f"{name} --{arg.names[0]} has no help"
        assert arg.help in shared, f"{name} --{arg.names[0]}: its help is not an entry of cli.shell.HELP"
    assert names == EXPECTED_FLAGS[name]


def test_help_survives_building_the_parser_twice() -> None:
    """invoke pops help entries while it builds a task's flags; our Task keeps them, so a second parser still has them."""
    first = {ctx.name: {a.name: a.help for a in ctx.args.values()} for ctx in tasks.ns.to_contexts()}
    second = {ctx.name: {a.name: a.help for a in ctx.args.values()} for ctx in tasks.ns.to_contexts()}
    assert first == second and first["ddb.scan"]["segments"] == shell.HELP["segments"]


def test_every_task_is_typed_and_inside_the_error_boundary() -> None:
    for path, name, t in ALL:
        assert getattr(t.body, "one_line_errors", False), (
            f"{_dotted(path, name)} is not wrapped by cli.shell.one_line_errors"
        )
        signature = inspect.signature(inspect.unwrap(t.body))
        untyped = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
        assert not untyped and signature.return_annotation is not inspect.Signature.empty, (
            f"{_dotted(path, name)}: untyped {untyped or 'return'}"
        )


def test_task_bodies_stay_short() -> None:
    """Resolve, build a client, call one ops function, render: at most 10 statements besides the docstring and imports."""
    for path, name, t in ALL:
        fn = ast.parse(inspect.getsource(inspect.unwrap(t.body)).lstrip()).body[0]
        body = [
            s
            for s in fn.body
            if not isinstance(s, ast.Import | ast.ImportFrom)
            and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ]  # type: ignore[attr-defined]
        # Statements, not source lines: the formatter may spread one call over several lines.
        statements = [n for s in body for n in ast.walk(s) if isinstance(n, ast.stmt)]
        assert 1 <= len(statements) <= 10, f"{_dotted(path, name)} has {len(statements)} statements of body"


def test_page_size_range_matches_the_library() -> None:
    from ops.messages.paging import MAX_PAGE_SIZE

    assert shell.NUMBERS["page_size"].high == MAX_PAGE_SIZE


def test_listing_the_tasks_imports_no_library(tmp_path: Any) -> None:
    """`invoke --list` loads every task module and none of ops, boto3, psycopg or the Pulumi SDK (that is what keeps it fast)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invoke", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert {"cli.ddb.patterns", "cli.infra", "cli.shell"} <= imported
    heavy = sorted(
        m for m in imported if m.split(".")[0] in ("ops", "boto3", "botocore", "psycopg", "pulumi", "pulumi_aws")
    )
    assert not heavy, heavy
