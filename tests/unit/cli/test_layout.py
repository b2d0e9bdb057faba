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
# them. Short flags come from cli.shell.SHORT_FLAGS only: one letter, one meaning, in every task.
EXPECTED_FLAGS: dict[str, set[str]] = {
    "bench": {"engine", "json", "only", "size", "e", "j"},
    "cognito.create-users": {"stack", "s"},
    "cognito.list-users": {"cloud", "json", "stack", "c", "j", "s"},
    "cognito.sync-ids": {"cloud", "confirm-protected", "dry-run", "stack", "c", "d", "s"},
    "db.connect": {"cloud", "stack", "c", "s"},
    "db.create": {"cloud", "confirm-protected", "stack", "c", "s"},
    "db.drop": {"cloud", "confirm-protected", "stack", "c", "s"},
    "db.schema-load": {"cloud", "confirm-protected", "stack", "c", "s"},
    "db.seed": {"cloud", "confirm-protected", "stack", "c", "s"},
    "db.sessions": {"cloud", "json", "stack", "c", "j", "s"},
    "db.setup": {"cloud", "confirm-protected", "keep", "stack", "c", "s"},
    "ddb.add-member": {"cloud", "confirm-protected", "group", "handle", "stack", "c", "g", "h", "s"},
    "ddb.clone": {
        "all",
        "cloud",
        "confirm-protected",
        "from-stack",
        "keep-text",
        "no-anonymise",
        "restart",
        "since",
        "to-stack",
        "users",
        "c",
        "r",
    },
    "ddb.create-group": {"cloud", "confirm-protected", "from", "members", "name", "stack", "text", "c", "s", "t"},
    "ddb.dead-letters": {"cloud", "stack", "c", "s"},
    "ddb.doctor": {
        "budget",
        "cloud",
        "confirm-protected",
        "engine",
        "fix",
        "from-export",
        "json",
        "max-rcu",
        "max-wcu",
        "plan",
        "segments",
        "stack",
        "c",
        "e",
        "j",
        "s",
    },
    "ddb.drop": {"cloud", "confirm-protected", "stack", "c", "s"},
    "ddb.export": {"cloud", "confirm-protected", "since", "stack", "c", "s"},
    "ddb.import": {"cloud", "confirm-protected", "from-export", "stack", "table", "c", "s"},
    "ddb.list-tables": {"cloud", "stack", "c", "s"},
    "ddb.migrate": {
        "budget",
        "cloud",
        "confirm-protected",
        "dry-run",
        "max-rcu",
        "max-wcu",
        "name",
        "plan",
        "restart",
        "segments",
        "stack",
        "c",
        "d",
        "r",
        "s",
    },
    "ddb.patterns.get-conversation": {
        "before",
        "cloud",
        "cursor",
        "full",
        "group",
        "handle",
        "handles",
        "json",
        "page-size",
        "stack",
        "b",
        "c",
        "g",
        "h",
        "j",
        "p",
        "s",
        "u",
    },
    "ddb.patterns.list-conversations": {
        "before",
        "cloud",
        "cursor",
        "full",
        "handle",
        "json",
        "page-size",
        "stack",
        "b",
        "c",
        "h",
        "j",
        "p",
        "s",
        "u",
    },
    "ddb.redrive": {"cloud", "confirm-protected", "stack", "c", "s"},
    "ddb.remove-member": {"cloud", "confirm-protected", "group", "handle", "stack", "c", "g", "h", "s"},
    "ddb.scan": {
        "budget",
        "cloud",
        "from-export",
        "json",
        "limit",
        "max-rcu",
        "max-wcu",
        "plan",
        "segments",
        "stack",
        "c",
        "j",
        "l",
        "s",
    },
    "ddb.schema-load": {"cloud", "stack", "c", "s"},
    "ddb.seed": {
        "budget",
        "cloud",
        "confirm-protected",
        "conversation",
        "max-rcu",
        "max-wcu",
        "my-handle",
        "other-handle",
        "plan",
        "stack",
        "start",
        "c",
        "s",
    },
    "ddb.send-message": {
        "cloud",
        "confirm-protected",
        "from",
        "group",
        "no-process",
        "stack",
        "text",
        "to",
        "c",
        "g",
        "s",
        "t",
    },
    "ddb.stream-process": {"cloud", "follow", "stack", "c", "s"},
    "infra.diagram": {"dependencies", "output", "stack", "o", "s"},
    "infra.drift": {"cloud", "json", "stack", "c", "j", "s"},
    "infra.outputs": {"cloud", "json", "stack", "c", "j", "s"},
    "infra.plan": {"json", "stack", "j", "s"},
    "infra.plan-diff": {"base", "head", "json", "markdown", "j"},
    "infra.preview": {"diff", "stack", "s"},
    "infra.up": {"confirm-protected", "stack", "yes", "s", "y"},
    "local.down": {"stack", "s"},
    "local.env": {"format", "stack", "s"},
    "local.snapshot.delete": {"snapshot", "stack", "s"},
    "local.snapshot.export": {"file", "snapshot", "stack", "s"},
    "local.snapshot.import": {"file", "snapshot", "stack", "s"},
    "local.snapshot.list": {"json", "stack", "j", "s"},
    "local.snapshot.restore": {"snapshot", "stack", "s"},
    "local.snapshot.save": {"snapshot", "stack", "s"},
    "local.status": {"json", "stack", "j", "s"},
    "local.up": {"empty", "engine", "stack", "e", "s"},
    "quickstart": {"engine", "reset", "stack", "e", "s"},
    "rds.update-sg-rule": {"cloud", "confirm-protected", "ip", "stack", "c", "i", "s"},
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


def test_a_short_flag_means_one_thing_in_every_task() -> None:
    """`-n` was --conversation in ddb.seed and --no-process in send-message: now a letter names one long flag, or
    none."""
    meanings: dict[str, set[str]] = {}
    for context in tasks.ns.to_contexts():
        for arg in context.args.values():
            longs = [n for n in arg.names if len(n) > 1]
            for short in (n for n in arg.names if len(n) == 1):
                meanings.setdefault(short, set()).add(longs[0])
    assert {s: m for s, m in meanings.items() if len(m) > 1} == {}
    assert meanings == {letter: {flag} for flag, letter in shell.SHORT_FLAGS.items() if letter in meanings}
    assert len(set(shell.SHORT_FLAGS.values())) == len(shell.SHORT_FLAGS), "two flags share a letter in SHORT_FLAGS"


def test_help_survives_building_the_parser_twice() -> None:
    """invoke pops help entries while it builds a task's flags; our Task keeps them, so a second parser still has
    them."""
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
    """Resolve, build a client, call one ops function, render: at most 10 statements besides the docstring and
    imports."""
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
    """`invoke --list` loads every task module and none of ops, boto3, psycopg or the Pulumi SDK (that is what keeps
    it fast)."""
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
