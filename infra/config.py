"""The program's configuration, read through ``pulumi.Config`` as the engine hands it over.

The engine merges Pulumi.yaml's defaults with the stack's values and decrypts what was set with
``pulumi config set --secret``; reading the YAML files (as the invoke tasks do) would skip those.
Which keys exist is Pulumi.yaml's business (its ``config:`` section); their values come from
the engine only. ``ops.stacks.settings_from`` turns them into the same ``StackSettings`` the
tasks get from ``ops.stacks.load_stack``, and a test holds the two equal for every stack.
"""

from __future__ import annotations

import pulumi
from pulumi.runtime import is_config_secret

from ops.stacks import StackSettings, declared_keys, project_file, settings_from


def _split(full_key: str) -> tuple[str, str]:
    namespace, _, key = full_key.partition(":")
    return namespace, key


def read_settings() -> StackSettings:
    """Every key Pulumi.yaml declares, read through ``pulumi.Config``, parsed like the tasks parse them."""
    values: dict[str, str] = {}
    secret: set[str] = set()
    for full_key in declared_keys(project_file()):
        if is_config_secret(full_key):
            secret.add(full_key)  # settings_from refuses it if it needs it: the tasks could not read it
            continue
        namespace, key = _split(full_key)
        value = pulumi.Config(namespace).get(key)
        if value is not None:
            values[full_key] = value
    return settings_from(pulumi.get_stack(), pulumi.get_project(), values, secret_keys=frozenset(secret))


def secret(key: str) -> pulumi.Output[str] | None:
    """A value set with ``pulumi config set --secret KEY …`` (project namespace), as a secret Output.

    Never a plain ``str``: Pulumi keeps it encrypted in the state and masks it in every diff and
    log. None when the stack has no such key. The invoke tasks never see it (ops.stacks skips it).
    """
    namespace, key_name = _split(key) if ":" in key else (pulumi.get_project(), key)
    return pulumi.Config(namespace).get_secret(key_name)
