"""ops.lambda_package: the Lambda's files are its handler's package plus what that imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.lambda_package import package_files


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_consumer_ships_its_package_and_the_two_modules_it_imports() -> None:
    files = package_files("ops.messages.consumer.handler")
    messages = sorted(
        str(p.relative_to(Path(__file__).resolve().parents[3]))
        for p in (Path(__file__).resolve().parents[3] / "ops" / "messages").glob("*.py")
    )
    assert set(messages) <= set(files)
    assert set(files) - set(messages) == {"ops/__init__.py", "ops/aws.py", "ops/errors.py"}


def test_a_new_import_is_followed_without_editing_a_list(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/util/__init__.py": "",
            "pkg/util/helper.py": "import json\nfrom . import deep\n",
            "pkg/util/deep.py": "",
            "pkg/lonely.py": "",
            "pkg/app/__init__.py": "",
            "pkg/app/handler.py": "import boto3\n\ndef handler(e, c):\n    from pkg.util import helper\n",
        },
    )
    assert package_files("pkg.app.handler.handler", root) == (
        "pkg/__init__.py",
        "pkg/app/__init__.py",
        "pkg/app/handler.py",
        "pkg/util/__init__.py",
        "pkg/util/deep.py",
        "pkg/util/helper.py",
    )


def test_a_handler_outside_the_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="not in"):
        package_files("nowhere.module.handler", tmp_path)
