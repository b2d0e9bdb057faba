"""Pickling moto's objects and pinning what a request draws, so a replay reproduces ids exactly."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import pickle
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# ---------------------------------------------------------------- pickling moto's objects
# The snapshot and the journal's tapes share it. A few objects moto holds do not pickle.


def _moto_jwk() -> Any:
    # Cognito pools hold an RSA key that moto loads from a bundled file: store a call that reloads it
    from joserfc import jwk
    from moto.utilities.utils import load_resource

    return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def _load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


def _private_key_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


_REDUCERS: dict[type, Callable[[Any], Any] | None] = {}


def _reducer_for(kind: type) -> Callable[[Any], Any] | None:
    # decided once per type: reducer_override runs for every object of a multi-megabyte state
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from joserfc import jwk

    if issubclass(kind, jwk.RSAKey):
        return lambda obj: (_moto_jwk, ())
    if issubclass(kind, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):  # KMS keys (OpenSSL objects)
        return lambda obj: (_load_private_key, (_private_key_der(obj),))
    if issubclass(kind, threading.Condition):  # SQS queues wait on one; waiters do not outlive a process
        return lambda obj: (threading.Condition, ())
    if kind is type(threading.RLock()):
        return lambda obj: (threading.RLock, ())
    if kind is type(threading.Lock()):
        return lambda obj: (threading.Lock, ())
    return None


class StatePickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        try:
            reducer = _REDUCERS[kind]
        except KeyError:
            reducer = _REDUCERS[kind] = _reducer_for(kind)
        return NotImplemented if reducer is None else reducer(obj)


def state_dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    StatePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


# ---------------------------------------------------------------- determinism: what a request draws


@dataclass
class _Draws:
    """What moto may draw while serving one journaled request (or building a backend)."""

    now: float
    rng: random.Random
    tape: list[str] | deque[str] | None = None  # live: values recorded; replay: values handed back
    replaying: bool = False
    tape_short: bool = False  # replay needed a value the tape did not hold


_local = threading.local()


def _draws() -> _Draws | None:
    return getattr(_local, "draws", None)


@contextmanager
def _pinned(draws: _Draws) -> Iterator[None]:
    previous = _draws()
    _local.draws = draws
    try:
        yield
    finally:
        _local.draws = previous


_real_utcnow: Callable[[], datetime] | None = None


def _utcnow() -> datetime:
    d = _draws()
    if d is None:
        return _real_utcnow()  # type: ignore[misc]
    return datetime.fromtimestamp(d.now, UTC).replace(tzinfo=None)  # moto's utcnow is naive UTC


class _TimeProxy:
    """The ``time`` module as the persisted services see it: ``time()`` is the request's instant."""

    def time(self) -> float:
        d = _draws()
        return time.time() if d is None else d.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _OsProxy:
    """The ``os`` module as the persisted services see it: ``urandom`` draws from the request's seed."""

    def urandom(self, n: int) -> bytes:
        d = _draws()
        return os.urandom(n) if d is None else d.rng.randbytes(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _uuid4() -> Any:
    import uuid

    d = _draws()
    return uuid.uuid4() if d is None else uuid.UUID(int=d.rng.getrandbits(128), version=4)


def _taped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Record what ``fn`` returns in a journaled request; hand the recording back during replay."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        d = _draws()
        if d is None or d.tape is None:
            return fn(*args, **kwargs)
        if d.replaying:
            if d.tape:
                return pickle.loads(base64.b64decode(d.tape.popleft()))  # type: ignore[union-attr]
            d.tape_short = True
            return fn(*args, **kwargs)
        value = fn(*args, **kwargs)
        d.tape.append(base64.b64encode(state_dumps(value)).decode())  # type: ignore[union-attr]
        return value

    wrapper._cruddur_taped = True  # type: ignore[attr-defined]
    return wrapper


def _stable_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


# moto's package name of each persisted service (backend names as in moto.backends.get_backend)
MOTO_PACKAGES = {
    "dynamodb": "dynamodb",
    "dynamodbstreams": "dynamodbstreams",
    "cognito-idp": "cognitoidp",
    "ec2": "ec2",
    "sqs": "sqs",
    "kms": "kms",
}
_install_lock = threading.Lock()
_installed = False


def _import_service(package: str) -> None:
    import importlib

    # models, handlers and routes pull in every other module of the service (moto 5.2.5)
    for part in ("models", "responses", "urls"):
        importlib.import_module(f"{package}.{part}")


def install_determinism(services: tuple[str, ...]) -> None:
    """Pin moto's randomness and clock to the journaled request (idempotent, once per process)."""
    global _installed, _real_utcnow
    with _install_lock:
        if _installed:
            return
        import uuid

        import moto.core.utils as core_utils
        from moto.core.base_backend import AccountSpecificBackend, BackendDict
        from moto.moto_api._internal import mock_random
        from moto.moto_api._internal.moto_random import MotoRandom

        packages = [f"moto.{MOTO_PACKAGES[s]}" for s in services if s in MOTO_PACKAGES]
        for pkg in packages:
            _import_service(pkg)  # every module now, so the sweep below sees every binding

        class RoutedRandom(MotoRandom):
            # Random's other methods (choice, randint, uuid4, randbytes...) all come down to these two
            def random(self) -> float:
                d = _draws()
                return d.rng.random() if d is not None else super().random()

            def getrandbits(self, k: int) -> int:
                d = _draws()
                return d.rng.getrandbits(k) if d is not None else super().getrandbits(k)

        mock_random.__class__ = RoutedRandom

        _real_utcnow = core_utils.utcnow
        everywhere = {id(_real_utcnow): (_real_utcnow, _utcnow)}
        # only inside the persisted services: moto.core takes uuid4 for a backend's identity when
        # a module is first imported, which may happen in the middle of any request
        in_services = {id(uuid.uuid4): (uuid.uuid4, _uuid4), id(time): (time, _TimeProxy()), id(os): (os, _OsProxy())}
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "moto" or name.startswith("moto.")):
                continue
            in_service = any(name == p or name.startswith(p + ".") for p in packages)
            for attr, value in list(vars(module).items()):
                hit = everywhere.get(id(value)) or (in_services.get(id(value)) if in_service else None)
                if hit is not None and hit[0] is value:
                    setattr(module, attr, hit[1])

        original_getitem = AccountSpecificBackend.__getitem__

        def getitem(self: Any, region_name: str) -> Any:
            key = "aws" if region_name == "global" else region_name
            if dict.__contains__(self, key):
                return dict.__getitem__(self, key)
            outer = _draws()
            seeded = _Draws(
                outer.now if outer else time.time(),
                random.Random(_stable_seed(self.service_name, self.account_id, key)),
                None,
                bool(outer and outer.replaying),
            )
            with _pinned(seeded):
                return original_getitem(self, region_name)

        AccountSpecificBackend.__getitem__ = getitem  # type: ignore[method-assign]

        original_create = BackendDict._create_account_specific_backend

        def create_account(self: Any, account_id: str) -> None:
            if dict.__contains__(self, account_id):
                return original_create(self, account_id)
            outer = _draws()
            seeded = _Draws(
                outer.now if outer else time.time(),
                random.Random(_stable_seed(self.service_name, account_id)),
                None,
                bool(outer and outer.replaying),
            )
            with _pinned(seeded):
                return original_create(self, account_id)

        BackendDict._create_account_specific_backend = create_account  # type: ignore[method-assign]

        if "kms" in services:
            import moto.kms.models as kms_models

            kms_models.generate_private_key = _taped(kms_models.generate_private_key)  # type: ignore[attr-defined]
        _installed = True
