"""The files a Lambda ships: its handler's package plus every project module that package imports.

Derived from the source, not kept by hand: the imports of each file are read (``ast``, every
``import`` and ``from … import`` anywhere in the module), those that name a module of this
repository are followed, and the packages on the way contribute their ``__init__.py``. Third
party and standard-library imports are left to the runtime (boto3/botocore come with it), and a
test runs the handler from the package alone to prove nothing is missing.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, root: Path) -> set[str]:
    """Every module name ``path`` imports that could be ours (relative imports resolved)."""
    package = _module_name(path, root) if path.name == "__init__.py" else _module_name(path, root).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from ops import aws` names a module
    return names


def package_files(handler: str, root: Path = ROOT) -> tuple[str, ...]:
    """Repository-relative paths of what a Lambda whose handler is ``handler`` (``pkg.module.function``) needs."""
    module = handler.rpartition(".")[0]
    start = _module_file(module, root)
    if start is None:
        raise LookupError(f"the handler's module {module} is not in {root}")
    return module_closure(sorted(start.parent.glob("*.py")), root)  # the handler's whole package ships


def module_closure(start: list[Path], root: Path = ROOT) -> tuple[str, ...]:
    """``start`` and every module of the repository they import, directly or not (repository-relative paths)."""
    todo = list(start)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        parts = _module_name(path, root).split(".")
        for i in range(1, len(parts)):  # the packages on the way: ops/__init__.py for ops.aws
            init = _module_file(".".join(parts[:i]), root)
            if init is not None:
                todo.append(init)
        for name in _imported(path, root):
            found = _module_file(name, root)
            if found is not None:
                todo.append(found)
    return tuple(sorted(str(p.relative_to(root)) for p in seen))
