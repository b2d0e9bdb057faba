"""A message's body as stored: plain text, or sealed (encrypted) under its group's data key.

A message item, and each group row carrying the group's last message, holds one of two shapes:

  plain   ``message`` (S): the text
  sealed  ``message_sealed`` (B): format version (1 byte) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
          ``message_key`` (B): the group's data key encrypted by the stack's KMS key (a copy of the key item's)
          ``message_uuid`` (S): on a group row, the uuid of the message whose body it carries (a
          message has its own anyway): the associated data names it, so a row can be opened alone

This module knows those names and moves bodies between items without looking inside them: the
stream consumer copies a sealed body from a message to the group rows byte for byte, so it needs
no key (no KMS permission, and not the ``cryptography`` package, which the Lambda runtime lacks).
Sealing and opening are ``ops.crypto``'s, handed to the read patterns as a ``Cipher``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol

from ops.errors import EncryptionError

TEXT = "message"
SEALED = "message_sealed"
KEY = "message_key"
UUID = "message_uuid"
ROW_BODY = (TEXT, SEALED, KEY, UUID)  # what a group row's body consists of (the uuid only beside a sealed body)


class Cipher(Protocol):
    """What the read and write paths need of ``ops.crypto.MessageCipher`` (it is passed in, never imported here)."""

    @property
    def encrypting(self) -> bool:
        """Whether new bodies are sealed (the stack has a messages key)."""

    def open(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` with its sealed body replaced by the plain ``message``; unchanged when it is plain."""

    def seal(self, client: Any, table: str, item: dict[str, Any], *, key: bytes | None = None) -> dict[str, Any]:
        """A message item with its plain ``message`` replaced by a sealed body, under ``key`` or its group's key."""

    def sealed_body(
        self, table: str, group: str, message_uuid: str, text: str, key: bytes, what: str
    ) -> dict[str, Any]:
        """The body attributes of ``text`` sealed for one message of ``group`` (a group row's, when migrating)."""

    def group_key(self, client: Any, table: str, group: str) -> bytes:
        """The group's encrypted data key: read from its key item, made (once) when it has none."""

    def new_group_key(self, table: str, group: str) -> bytes:
        """A fresh data key for a group being created (its key item goes into the creating transaction)."""


def is_sealed(item: Mapping[str, Any]) -> bool:
    return SEALED in item


def is_plain(item: Mapping[str, Any]) -> bool:
    return TEXT in item and SEALED not in item


def binary(value: Any) -> bytes:
    """A ``B`` attribute's bytes: botocore hands bytes, a Lambda event base64 text."""
    raw = value.get("B") if isinstance(value, Mapping) else value
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error:
            pass
    raise ValueError("not a binary attribute")


def body_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes a group row takes from a message (a stored item or a stream image); empty when it has no body.

    Binary values come back as bytes whatever the source, so the copy is byte for byte.
    """
    if SEALED in item:
        body = {name: {"B": binary(item[name])} for name in (SEALED, KEY) if name in item}
        if UUID in item:
            body[UUID] = item[UUID]
        return body
    if TEXT in item:
        return {TEXT: item[TEXT]}
    return {}


def with_body(row: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` carrying ``body`` instead of its own: every attribute of the old body goes, so no plain text stays
    beside a sealed one."""
    return {k: v for k, v in row.items() if k not in ROW_BODY} | dict(body)


def readable(cipher: Cipher | None, table: str, item: dict[str, Any]) -> dict[str, Any]:
    """An item whose body a person may see: opened when sealed; a sealed body without a cipher is a clear error."""
    if not is_sealed(item):
        return item
    if cipher is None:
        raise EncryptionError(f"{describe(item)} is encrypted and this reader has no KMS client to open it")
    return cipher.open(table, item)


def describe(item: Mapping[str, Any]) -> str:
    """How an error names an item: its message and its group (and, for a group row, whose row it is)."""
    pk = str((item.get("pk") or {}).get("S", "?"))
    message = (item.get(UUID) or {}).get("S") or f"at {(item.get('sk') or {}).get('S', '?')}"
    if pk.startswith("MSG#"):
        return f"message {message} of group {pk[len('MSG#') :]}"
    group = (item.get("message_group_uuid") or {}).get("S", "?")
    return f"the group row of {pk.partition('#')[2]} (last message {message}) of group {group}"
