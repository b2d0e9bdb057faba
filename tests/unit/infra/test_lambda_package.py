"""The stream consumer's deployment package holds everything its handler imports, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from infra.stream_consumer import HANDLER, LAMBDA_FILES
from ops.stacks import PROJECT_ROOT

HANDLER_FILE = "ops/messages/consumer.py"

# Run inside the unpacked package: only the packaged files and the Lambda runtime's own
# libraries (boto3/botocore) may be imported; the repo's other dependencies are blocked.
IMPORT_CHECK = textwrap.dedent(
    """
    import importlib, importlib.abc, sys
    BLOCKED = ("yaml", "psycopg", "pulumi", "pulumi_aws", "invoke", "moto", "diagrams", "cryptography")
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"the Lambda package imports {name}, which the runtime does not have")
            return None
    sys.meta_path.insert(0, Blocker())
    sys.path.insert(0, sys.argv[1])
    module_name, _, function = sys.argv[2].rpartition(".")
    module = importlib.import_module(module_name)
    assert module.__file__.startswith(sys.argv[1]), f"{module_name} came from {module.__file__}, not the package"
    assert callable(getattr(module, function)), f"{sys.argv[2]} is not callable"
    print("ok")
    """
)


def test_every_packaged_file_exists_in_the_repository() -> None:
    missing = [path for path in LAMBDA_FILES if not (PROJECT_ROOT / path).is_file()]
    assert missing == [], f"the Lambda archive lists files that do not exist: {missing}"


def test_the_handler_is_one_of_the_packaged_files() -> None:
    module = HANDLER.rpartition(".")[0]
    assert module.replace(".", "/") + ".py" in LAMBDA_FILES


def test_handler_imports_from_the_package_alone(tmp_path: Path) -> None:
    for path in LAMBDA_FILES:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_ROOT / path, tmp_path / path)
    env = {
        "TABLE_NAME": "cruddur-messages",
        "GSI_NAME": "message-group-sk-index",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "",
    }
    # -I: no PYTHONPATH, no user site, no current directory; the repository is not importable.
    proc = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_CHECK, str(tmp_path), HANDLER],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_nothing_in_the_package_talks_to_kms_or_opens_a_body() -> None:
    # the consumer copies sealed bodies: a KMS client or the cipher module in its package would mean it holds keys
    import ast

    for path in LAMBDA_FILES:
        tree = ast.parse((PROJECT_ROOT / path).read_text(), path)
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imports |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "kms" not in strings, f"{path} names the KMS service"
        assert not {i for i in imports if i.startswith(("cryptography", "ops.crypto"))}, f"{path} imports {imports}"
    assert "ops/crypto.py" not in LAMBDA_FILES
