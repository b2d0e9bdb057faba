"""The few named errors that cross the ops boundary.

Every task turns an ``OpsError`` into one line on stderr and a non-zero exit; AWS and
database exceptions are translated into these where they happen, so no traceback reaches
the terminal for a situation a user can fix.
"""

from __future__ import annotations


class OpsError(Exception):
    """A problem the user can fix; ``str(err)`` is the one line shown to them."""

    exit_code = 1


class ConfigError(OpsError):
    """A stack name, a config value or a command-line value is wrong."""


class RefusedError(OpsError):
    """A request was refused before anything was sent (protection, bad address...)."""


class TwinDownError(OpsError):
    """The local twin of a stack is not answering."""


class NotFoundError(OpsError):
    """A table, a user, a group or a file that the task needs does not exist."""


class ConflictError(OpsError):
    """The target exists but differs from what the task would create."""


class InputError(OpsError):
    """An input file is malformed; the message names the file and the line."""


class CloudError(OpsError):
    """AWS or PostgreSQL said no, for a reason the message carries."""


class ToolMissingError(OpsError):
    """An external program (pulumi, psql, dot) is not installed."""


class EncryptionError(OpsError):
    """A sealed message body cannot be opened (missing or wrong key, tampered body or associated data) or sealed;
    names the group and the message."""
