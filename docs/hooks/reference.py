"""MkDocs hook: the task reference page (reference.md), generated at every build from the tasks themselves.

The page is never committed: each build renders ``invoke --help TASK`` for every task of
``tasks.ns`` in-process, so a flag added, renamed or re-documented shows in the site with no step
to forget. ``python docs/hooks/reference.py`` prints the same page.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[2]
PAGE = "reference.md"
# Wrapped as in an 80-column terminal whatever the builder's terminal is, so every build gives the same page.
COLUMNS = 80


def task_names(collection: Any) -> list[str]:
    """Every task's dotted name, as `invoke --list` knows them, sorted."""
    return sorted(ctx.name for ctx in collection.to_contexts())


def task_help(collection: Any, name: str) -> str:
    """What `invoke --help NAME` prints, produced by invoke's own Program (not a re-implementation of it)."""
    from invoke import Program

    program = Program(namespace=collection, name="invoke", binary="invoke")
    out = io.StringIO()
    with mock.patch("invoke.program.pty_size", return_value=(COLUMNS, 24)), contextlib.redirect_stdout(out):
        try:
            program.run(["invoke", "--help", name], exit=False)
        except SystemExit as done:  # invoke ends --help with exit 0
            if done.code not in (0, None):
                raise
    return out.getvalue().rstrip()


def reference_page(collection: Any) -> str:
    """The Markdown page: an index of the tasks by namespace, then each task's help text."""
    names = task_names(collection)
    lines = [
        "# Task reference",
        "",
        "Every task's `invoke --help` text, generated from the tasks when the site is built.",
        "`invoke --list` lists them; the pages beside this one explain what they are for.",
        "",
    ]
    lines += [f"- [`{name}`](#{_anchor(name)})" for name in names]
    for name in names:
        lines += ["", f"## {name}", "", "```text", f"$ invoke --help {name}", task_help(collection, name), "```"]
    return "\n".join(lines) + "\n"


def _anchor(name: str) -> str:
    # the toc extension's slug of a heading such as "ddb.patterns.get-conversation": dots dropped
    return name.replace(".", "")


def _collection() -> Any:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import tasks

    return tasks.ns


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=reference_page(_collection())))
    return files


if __name__ == "__main__":
    sys.stdout.write(reference_page(_collection()))
