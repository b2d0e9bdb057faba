"""local.up --engine dynamodb-local on a machine without DynamoDB Local or without Java: one line, nothing started."""

from __future__ import annotations

from pathlib import Path

from ops.local import dynamodb_local
from tests.support.helpers import assert_one_line_error, run_invoke


def test_local_up_without_the_jar_or_without_java_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    env = {"CRUDDUR_STATE_DIR": str(tmp_path / "state"), "DYNAMODB_LOCAL_DIR": str(tmp_path / "empty")}
    assert_one_line_error(
        run_invoke("local.up", "--engine", "dynamodb-local", env=env),
        "has no DynamoDBLocal.jar",
        "run bin/install-dynamodb-local",
    )

    jar_only = tmp_path / "jar-only"
    jar_only.mkdir()
    (jar_only / dynamodb_local.JAR).write_bytes(b"")
    no_java = tmp_path / "bin"  # a PATH with nothing on it (the task runs under this interpreter's absolute path)
    no_java.mkdir()
    env |= {"DYNAMODB_LOCAL_DIR": str(jar_only), "PATH": str(no_java)}
    assert_one_line_error(
        run_invoke("local.up", "--engine", "dynamodb-local", env=env), "needs Java", "run bin/install-dynamodb-local"
    )
    assert not list((tmp_path / "state").glob("*/twin.json")), "nothing was started"
