"""Envelope encryption of message bodies: one KMS data key per group, AES-256-GCM per body.

Creating a group asks KMS for a data key (``GenerateDataKey``, AES_256, encryption context
``{"table": <table>, "group": <group uuid>}``) and stores only the encrypted key: on the group's
key item (``ops.messages.model.GroupKey``) and, as ``message_key``, beside every sealed body.
KMS binds the wrapped key to that context, so a key copied to another group or table does not
open, and the key policy lets the application's roles use data keys of this table only.

A body is sealed with ``cryptography``'s AESGCM (no cipher code of our own) under a fresh random
96-bit nonce, and stored as one binary attribute, ``message_sealed``::

    version (1 byte, 1) | nonce (12 bytes) | ciphertext + 16-byte tag

Format 1's associated data is ``b"cruddur-message/1\\0" + group + b"\\0" + message uuid``: a body
moved to another message (or another group) fails its tag, and so does any changed byte. A
later format or key scheme gets another version byte, so old and new bodies can be told apart.

Reading goes through a bounded cache of plaintext data keys (``DataKeys``), keyed by table,
group and the encrypted key: a page of 100 messages of one group costs at most one KMS
``Decrypt``, and pages after it none. A body that cannot be opened is an ``EncryptionError``
naming the group and the message: never garbage text.

Not part of the stream consumer's Lambda (the runtime has no ``cryptography``, and the consumer
copies ciphertext without opening it): nothing in ``ops.messages`` imports this module; the
callers hand a ``MessageCipher`` to the read and write functions.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import call, error_code
from ops.errors import EncryptionError, OpsError
from ops.key_spec import DATA_KEY_SPEC, encryption_context, key_spec
from ops.messages import bodies
from ops.messages.model import MSG_PREFIX, GroupKey, now_iso

FORMAT_V1 = 1
NONCE_BYTES = 12  # 96 bits: GCM's native nonce size, drawn at random for every body
TAG_BYTES = 16
AAD_LABEL_V1 = b"cruddur-message/1"
CACHE_SIZE = 256  # plaintext data keys kept (32 bytes each): groups read in one run of a task

# KMS answers that mean "this key cannot be used here", as opposed to a cloud outage
_KEY_UNUSABLE = {
    "NotFoundException",
    "DisabledException",
    "KMSInvalidStateException",
    "AccessDeniedException",
    "KeyUnavailableException",
}


@functools.cache
def aead() -> tuple[Any, type[Exception]]:
    """``cryptography``'s AESGCM and InvalidTag, imported on first use: a plain-text stack's tasks never load them
    (~140 ms)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM, InvalidTag


def associated_data(group: str, message_uuid: str) -> bytes:
    """What a format-1 body is bound to besides its key: its group and its message."""
    return b"\0".join((AAD_LABEL_V1, group.encode(), message_uuid.encode()))


def seal_text(key: bytes, text: str, group: str, message_uuid: str, *, nonce: bytes | None = None) -> bytes:
    """A format-1 body: version byte, a fresh nonce, then AES-256-GCM of the text (UTF-8) with its tag."""
    aesgcm, _ = aead()
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    return (
        bytes([FORMAT_V1])
        + nonce
        + aesgcm(key).encrypt(nonce, text.encode("utf-8"), associated_data(group, message_uuid))
    )


class BodyError(Exception):
    """Why a body did not open, without naming it (the caller knows the item)."""


def open_text(key: bytes, sealed: bytes, group: str, message_uuid: str) -> str:
    """The text of a sealed body; ``BodyError`` when its version, length, tag or associated data is wrong."""
    if not sealed:
        raise BodyError("its body is empty")
    if sealed[0] != FORMAT_V1:
        raise BodyError(f"its body is in format version {sealed[0]}, which this version cannot read")
    if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES:
        raise BodyError(f"its body is truncated ({len(sealed)} bytes)")
    aesgcm, invalid_tag = aead()
    nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        plain = aesgcm(key).decrypt(nonce, ciphertext, associated_data(group, message_uuid))
    except invalid_tag:
        raise BodyError(
            "its body does not authenticate: it was altered, or moved from another message or group"
        ) from None
    return plain.decode("utf-8")


class DataKeys:
    """A bounded, thread-safe cache of plaintext data keys, filled from KMS on a miss (least recently used goes
    first)."""

    def __init__(self, kms: Callable[[], Any], key_id: str | None, size: int = CACHE_SIZE) -> None:
        self._kms, self.key_id, self.size = kms, key_id, size
        self._keys: OrderedDict[tuple[str, str, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, table: str, group: str, blob: bytes, plain: bytes) -> None:
        with self._lock:
            self._keys[(table, group, blob)] = plain
            self._keys.move_to_end((table, group, blob))
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def plain(self, table: str, group: str, blob: bytes, what: str) -> bytes:
        """The data key of ``blob`` for ``group`` of ``table``: cached, else one KMS Decrypt (``what`` names the item
        for errors)."""
        with self._lock:
            found = self._keys.get((table, group, blob))
            if found is not None:
                self._keys.move_to_end((table, group, blob))
                return found
        request: dict[str, Any] = {"CiphertextBlob": blob, "EncryptionContext": encryption_context(table, group)}
        if self.key_id:
            request["KeyId"] = (
                self.key_id
            )  # only the stack's key may open it: a key of someone else's choosing is refused
        try:
            plain: bytes = call(self._kms().decrypt, f"KMS Decrypt of the data key of group {group}", **request)[
                "Plaintext"
            ]
        except OpsError as err:
            code = error_code(err)
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise EncryptionError(
                    f"{what} cannot be read: its data key does not open for this table and group ({code}): "
                    "the key or the item was altered, or it was copied from another group or table"
                ) from None
            if code in _KEY_UNUSABLE:
                raise EncryptionError(
                    f"{what} cannot be read: the KMS key {self.key_id or '(named in the data key)'} is missing, "
                    f"disabled or not usable by these credentials ({code})"
                ) from None
            raise
        self.remember(table, group, blob, plain)
        return plain


class MessageCipher:
    """Seals and opens message bodies of one stack; hands the read and write paths their ``bodies.Cipher``.

    ``key_id`` (the stack's key alias) is the key new data keys come from; without it nothing is
    sealed, but sealed bodies still open (a table that had encryption on keeps reading). ``kms``
    is a client, or a function that makes one on first use.
    """

    def __init__(self, kms: Any, key_id: str | None, *, cache_size: int = CACHE_SIZE) -> None:
        self._kms_source = kms
        self._kms_client: Any = None
        self._lock = threading.Lock()
        self.key_id = key_id
        self.keys = DataKeys(self.kms, key_id, cache_size)
        self._group_keys: OrderedDict[tuple[str, str], bytes] = OrderedDict()  # (table, group) -> encrypted key
        self.kms_key_arn: str | None = None  # what KMS says the alias names, once it has made a data key

    @property
    def encrypting(self) -> bool:
        return self.key_id is not None

    def kms(self) -> Any:
        with self._lock:
            if self._kms_client is None:
                self._kms_client = (
                    self._kms_source() if callable(self._kms_source) else self._kms_source
                )  # a boto3 client is not callable
            return self._kms_client

    # ------------------------------------------------------------------ data keys

    def new_group_key(self, table: str, group: str) -> bytes:
        """A fresh data key for ``group`` (GenerateDataKey); its plaintext goes to the cache, never to the table."""
        if self.key_id is None:
            raise EncryptionError(
                f"group {group}: this stack stores messages as plain text (encryptMessages is off), so it has no key "
                "to make a data key with"
            )
        try:
            resp = call(
                self.kms().generate_data_key,
                f"KMS GenerateDataKey for group {group}",
                KeyId=self.key_id,
                KeySpec=DATA_KEY_SPEC,
                EncryptionContext=encryption_context(table, group),
            )
        except OpsError as err:
            if error_code(err) in _KEY_UNUSABLE:
                raise EncryptionError(
                    f"group {group}: the KMS key {self.key_id} is missing, disabled or not usable by these credentials "
                    f"({error_code(err)}): start the twin with `invoke local.up`, or check the key in the cloud"
                ) from None
            raise
        blob: bytes = resp["CiphertextBlob"]
        self.keys.remember(
            table, group, blob, resp["Plaintext"]
        )  # not yet the group's key: that is whichever key item is stored first
        self.kms_key_arn = str(resp.get("KeyId") or self.key_id)
        return blob

    def key_item(self, group: str, blob: bytes) -> GroupKey:
        """The key item of a group whose data key this cipher just made."""
        return GroupKey(group, blob, now_iso(), self.kms_key_arn or str(self.key_id))

    def _remember_group(self, table: str, group: str, blob: bytes) -> None:
        with self._lock:
            self._group_keys[(table, group)] = blob
            self._group_keys.move_to_end((table, group))
            while len(self._group_keys) > self.keys.size:
                self._group_keys.popitem(last=False)

    def stored_group_key(self, client: Any, table: str, group: str) -> bytes | None:
        """The encrypted data key on the group's key item, or ``None`` when the group has none (strongly consistent)."""
        with self._lock:
            known = self._group_keys.get((table, group))
        if known is not None:
            return known
        item = call(
            client.get_item,
            f"GetItem key of group {group} on {table}",
            TableName=table,
            Key=GroupKey.key_of(group),
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        blob = bodies.binary(item[bodies.KEY])
        self._remember_group(table, group, blob)
        return blob

    def group_key(self, client: Any, table: str, group: str) -> bytes:
        """The group's encrypted data key; a group without one (older, plain-text, or another writer's) gets its key
        item now."""
        blob = self.stored_group_key(client, table, group)
        if blob is not None:
            return blob
        blob = self.new_group_key(table, group)
        try:
            client.put_item(
                TableName=table,
                Item=self.key_item(group, blob).to_item(),
                ConditionExpression="attribute_not_exists(pk)",
            )
            self._remember_group(table, group, blob)
            return blob
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise
        stored = self.stored_group_key(
            client, table, group
        )  # another writer made the key item first: theirs is the group's key
        assert stored is not None
        return stored

    # ------------------------------------------------------------------ bodies

    def sealed_body(
        self, table: str, group: str, message_uuid: str, text: str, key: bytes, what: str
    ) -> dict[str, Any]:
        """The body attributes of ``text`` sealed for ``message_uuid`` of ``group`` under ``key`` (an encrypted data
        key)."""
        sealed = seal_text(self.keys.plain(table, group, key, what), text, group, message_uuid)
        return {bodies.SEALED: {"B": sealed}, bodies.KEY: {"B": key}, bodies.UUID: {"S": message_uuid}}

    def seal(self, client: Any, table: str, item: dict[str, Any], *, key: bytes | None = None) -> dict[str, Any]:
        """A message item with its text sealed under ``key`` (an encrypted data key) or its group's key."""
        if bodies.TEXT not in item:
            return item
        pk = item["pk"]["S"]
        if not pk.startswith(MSG_PREFIX) or bodies.UUID not in item:
            raise EncryptionError(
                f"{bodies.describe(item)} cannot be sealed: only a message (with its uuid) is sealed; group rows copy "
                "its body"
            )
        group = pk[len(MSG_PREFIX) :]
        blob = key if key is not None else self.group_key(client, table, group)
        return bodies.with_body(
            item,
            self.sealed_body(table, group, item[bodies.UUID]["S"], item[bodies.TEXT]["S"], blob, bodies.describe(item)),
        )

    def open(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` with its sealed body replaced by the plain text; a plain item is returned as it is."""
        if not bodies.is_sealed(item):
            return item
        what = bodies.describe(item)
        pk = str(item.get("pk", {}).get("S", ""))
        group = pk[len(MSG_PREFIX) :] if pk.startswith(MSG_PREFIX) else (item.get("message_group_uuid") or {}).get("S")
        uuid = (item.get(bodies.UUID) or {}).get("S")
        if not group or not uuid or bodies.KEY not in item:
            missing = "its group" if not group else ("its message uuid" if not uuid else "its data key (message_key)")
            raise EncryptionError(f"{what} cannot be read: the item lacks {missing}")
        try:
            sealed, blob = bodies.binary(item[bodies.SEALED]), bodies.binary(item[bodies.KEY])
        except ValueError:
            raise EncryptionError(f"{what} cannot be read: its sealed body or data key is not binary") from None
        key = self.keys.plain(table, group, blob, what)
        try:
            text = open_text(key, sealed, group, uuid)
        except BodyError as err:
            raise EncryptionError(f"{what} cannot be read: {err}") from None
        except UnicodeDecodeError:  # pragma: no cover - the tag passed, so only our own bug could get here
            raise EncryptionError(f"{what} cannot be read: its text is not UTF-8") from None
        return {k: v for k, v in item.items() if k not in (bodies.SEALED, bodies.KEY)} | {bodies.TEXT: {"S": text}}


def cipher_for(target: Any) -> MessageCipher:
    """The cipher of a task's target: its stack's key alias when the stack encrypts; the KMS client made on first
    need."""
    spec = key_spec(target.stack)
    return MessageCipher(lambda: target.client("kms"), spec.alias if spec else None)
