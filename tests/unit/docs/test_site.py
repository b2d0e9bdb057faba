"""The docs site: it builds with every link and anchor resolved, and its reference page holds every task's help."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import tasks
from tests.support.helpers import REPO


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", REPO / "docs" / "hooks" / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_the_site_builds_strict_with_every_link_and_anchor_resolved(tmp_path: Path) -> None:
    proc = _build(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html")}
    for page in ("twin", "data-tasks", "infrastructure", "identity-and-rds", "messaging", "encryption"):
        assert f"{page}/index.html" in built, f"docs/{page}.md is not in the site"
    for page in ("benchmarks", "troubleshooting", "reference"):
        assert f"{page}/index.html" in built, f"{page} is not in the site"
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "ddb.patterns.get-conversation" in reference and "--confirm-protected" in reference


def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    """The check above could pass by checking nothing: a copy of the docs with one dead anchor must fail."""
    import shutil

    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "troubleshooting.md").open("a") as page:
        page.write("\nSee [nowhere](twin.md#no-such-section).\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode != 0
    assert "no-such-section" in proc.stderr


def test_the_reference_page_holds_every_tasks_help_as_invoke_prints_it() -> None:
    hook = _hook()
    page = hook.reference_page(tasks.ns)
    names = hook.task_names(tasks.ns)
    assert len(names) >= 30 and "ddb.seed" in names
    for name in names:
        assert f"\n## {name}\n" in page, f"{name} has no section"
        # the same text a user gets from the command line, flags and their help included
        proc_text = hook.task_help(tasks.ns, name)
        assert proc_text.startswith(f"Usage: invoke [--core-opts] {name}"), proc_text[:200]
        assert proc_text in page
    assert "conversation file of 'Person 1: …'" in page


def test_the_reference_text_is_what_the_invoke_command_prints() -> None:
    hook = _hook()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "--help", "ddb.scan"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(hook.COLUMNS)},
    )
    assert proc.returncode == 0, proc.stderr
    # `python -m invoke` names itself inv[oke] in its usage line; the page says invoke
    assert hook.task_help(tasks.ns, "ddb.scan") == proc.stdout.rstrip().replace("inv[oke]", "invoke", 1)


def test_the_readme_stays_short_and_links_every_page_of_the_site() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "the README is the first screen; reference text goes to docs/"
    pages = ["index", "twin", "data-tasks", "messaging", "encryption", "identity-and-rds", "infrastructure"]
    for page in [*pages, "benchmarks", "troubleshooting"]:
        assert f"](docs/{page}.md)" in readme, f"the README does not link docs/{page}.md"
        assert (REPO / "docs" / f"{page}.md").is_file()
