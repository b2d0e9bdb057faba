"""The program reads its configuration through pulumi.Config; the tasks read the files; both agree.

Each test gives the mocks the stack's configuration the way the engine hands it to a program
(every key as text, ``--secret`` keys listed as secret) and runs the program's own reader.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ops.errors import ConfigError
from ops.plan import SECRET_MASK, describe, evaluate, plan_stack
from ops.stacks import PROJECT_ROOT, SECRET_PLACEHOLDER, StackSettings, list_stacks, load_stack, stack_config


def _in_program(stack: str, config: dict[str, str], secret_keys: tuple[str, ...], body: Any) -> Any:
    """Run ``body`` as (part of) a Pulumi program under mocks with this configuration; return what it returned."""
    result: list[Any] = []
    evaluate(lambda: result.append(body()), stack=stack, project="cruddur", config=config, secret_keys=secret_keys)
    return result[0]


@pytest.mark.parametrize("stack", list_stacks())
def test_program_and_tasks_see_the_same_value_for_every_key(stack: str) -> None:
    import pulumi

    from infra.config import read_settings

    config = stack_config(stack)

    def read() -> tuple[StackSettings, dict[str, str | None]]:
        seen = {
            key: pulumi.Config(key.split(":", 1)[0]).get(key.split(":", 1)[1])
            for key in config.values
            if key not in config.secret_keys
        }
        return read_settings(), seen

    program_settings, seen = _in_program(stack, config.values, config.secret_keys, read)
    assert program_settings == load_stack(stack)  # every typed field, and the text of every declared key
    assert seen == {k: v for k, v in config.values.items() if k not in config.secret_keys}


def test_the_comparison_notices_a_value_only_the_program_sees() -> None:
    # The equality above would hold trivially if the program ignored its configuration.
    from infra.config import read_settings

    config = stack_config("dev")
    changed = config.values | {"cruddur:streamBatchSize": "50"}
    assert _in_program("dev", changed, (), read_settings).stream_batch_size == 50 != load_stack("dev").stream_batch_size


def test_a_value_set_as_secret_reaches_the_program_as_a_secret() -> None:
    import pulumi
    import pulumi_aws as aws

    from infra.config import secret

    values: list[str] = []
    config = stack_config("dev").values | {"cruddur:apiToken": "s3cr3t-token-value"}

    def program() -> None:
        token = secret("apiToken")
        assert token is not None
        token.apply(values.append)
        pulumi.export("token", token)  # the plan shows an output that is secret as SECRET_MASK
        aws.ssm.Parameter("token", name="/cruddur/dev/token", type="SecureString", value=token)

    plan = evaluate(program, stack="dev", project="cruddur", config=config, secret_keys=("cruddur:apiToken",))
    assert values == ["s3cr3t-token-value"], "the program sees the decrypted value"
    assert plan.outputs["token"] == SECRET_MASK, "it arrives marked secret (Output.is_secret)"
    assert plan.one("aws:ssm/parameter:Parameter").inputs["value"] == SECRET_MASK
    printed = plan.to_json() + "\n".join(describe(plan))  # what `invoke infra.plan [--json]` prints
    assert "s3cr3t-token-value" not in printed


def test_a_setting_the_tasks_read_may_not_be_a_secret() -> None:
    from infra.config import read_settings

    config = stack_config("dev")
    with pytest.raises(ConfigError, match=r"cruddur:tableName of stack 'dev' is set as a secret: set it in plain"):
        _in_program("dev", config.values, ("cruddur:tableName",), read_settings)


def test_a_secure_value_in_a_stack_file_is_marked_and_never_read_by_a_task(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copyfile(PROJECT_ROOT / name, tmp_path / name)
    ciphertext = "v1:Zm9vYmFyYmF6cXV4MTIz:c2VjcmV0LWNpcGhlcnRleHQ="
    dev = (PROJECT_ROOT / "Pulumi.dev.yaml").read_text() + f"  cruddur:apiToken:\n    secure: {ciphertext}\n"
    (tmp_path / "Pulumi.dev.yaml").write_text(dev)

    config = stack_config("dev", tmp_path)
    assert config.secret_keys == ("cruddur:apiToken",) and config.values["cruddur:apiToken"] == SECRET_PLACEHOLDER
    settings = load_stack("dev", tmp_path)
    assert settings == load_stack("dev") and "cruddur:apiToken" not in settings.raw  # the tasks' view is unchanged
    plan = plan_stack("dev", root=tmp_path)  # the program still runs: the key arrives secret, undecrypted
    assert ciphertext not in plan.to_json() + "\n".join(describe(plan))

    # a setting both read, made secret in the file: the tasks refuse it too, in one line, as the program does
    (tmp_path / "Pulumi.dev.yaml").write_text(dev + f"  cruddur:tableName:\n    secure: {ciphertext}\n")
    with pytest.raises(ConfigError, match=r"cruddur:tableName of stack 'dev' is set as a secret") as err:
        load_stack("dev", tmp_path)
    assert ciphertext not in str(err.value)
