"""Named snapshots of a whole twin: the AWS side of either engine, PostgreSQL, outputs, stream checkpoints.

A twin keeps everything it is in its stack's state directory (``<state>/<stack>/``): moto's
pickled backends and journal, another engine's data directory, PostgreSQL's pgdata and its
password file, ``outputs.json``, ``resources.json`` (the ids of the cloud side) and the stream
worker's checkpoints. A snapshot is a copy of that directory taken **at rest**: a running twin
is stopped first (``local.down``: moto pickles its backends, PostgreSQL shuts down cleanly, the
stream worker checkpoints), the directory is copied, and the twin is started again as it was.
Nothing is engine-specific: whatever an engine keeps under the state directory is copied whole,
so ids, Cognito subs, keys and stream positions come back exactly. What a save costs: one
``local.down`` + ``local.up`` of the stack (seconds) plus a copy of the directory.

A twin that died hard (kill -9) is copied as the crash left it; its next start replays the
journal and PostgreSQL recovers, exactly as it would have without the snapshot.

Layout: ``<state root>/.snapshots/<stack>/<name>/{manifest.json, state/}``. The manifest names
the format, the tools (moto, Python, PostgreSQL's major version), the stack, the engine and the
SHA-256 of every file. A restore verifies the snapshot, builds the new state directory beside
the old one and swaps the two by rename, so the twin never holds parts of two snapshots. An
export is one ``.tar.gz`` (the manifest first); an import checks format, stack and every
checksum in a temporary directory before the snapshot appears under its name.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, NotFoundError, RefusedError
from ops.files import fsync_dir, write_atomic
from ops.target import read_twin, stack_state_dir, state_root

FORMAT = 1
SNAPSHOTS_DIR = ".snapshots"  # a dot name: never taken for a stack's state directory
MANIFEST = "manifest.json"
STATE = "state"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# what a running twin writes about itself, not its data: left out of a snapshot, and kept from
# the current directory on a restore (twin.json names live pids; plan.json is a cache of the program)
RUNTIME_FILES = {"twin.json", "plan.json", "aws-restore.json"}
RUNTIME_SUFFIXES = (".log", ".lock", ".tmp")
RUNTIME_DIRS = {"pgdata/sock"}  # PostgreSQL's socket directory: made again at start


@dataclass(frozen=True)
class SnapshotInfo:
    stack: str
    name: str
    created_at: str
    engine: str
    files: int
    bytes: int


@dataclass(frozen=True)
class SaveResult:
    info: SnapshotInfo
    restarted: bool  # the twin was running: it was stopped for the copy and started again


# ---------------------------------------------------------------- where things are


def snapshots_root(stack: str) -> Path:
    return state_root() / SNAPSHOTS_DIR / stack


def snapshot_dir(stack: str, name: str) -> Path:
    if not NAME.match(name):
        raise ConfigError(
            f"snapshot name {name!r} is not allowed: use letters, digits, '.', '_' or '-' "
            "(at most 64, first a letter or digit)"
        )
    return snapshots_root(stack) / name


@contextmanager
def stack_lock(stack: str) -> Iterator[None]:
    """One lifecycle change of a stack's twin at a time (save, restore, and local.up/down when they take it too).

    The hook for the per-stack lock of ``local.up``/``local.down``: when that lock exists, this
    is where it is taken instead.
    """
    path = state_root() / SNAPSHOTS_DIR / f".{stack}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if we die
        try:
            with _lifecycle_lock(stack):
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _lifecycle_lock(stack: str) -> Iterator[None]:
    """local.up/local.down's own per-stack lock, where this checkout has it (``ops.local.stack_lock``).

    It is re-entrant within a thread, so the down and up a save or restore makes inside it go
    through. It lives in the state directory a restore swaps: the rename keeps it held on the old
    directory, and this module's own lock (outside the state directory) covers the swap itself.
    """
    try:
        from ops.local import stack_lock as lifecycle  # type: ignore[attr-defined]
    except ImportError:
        yield
        return
    with lifecycle.held(stack_state_dir(stack), stack):
        yield


# ---------------------------------------------------------------- the state directory as files


def _skipped(rel: str, path: Path) -> bool:
    top = "/" not in rel
    if top and (rel in RUNTIME_FILES or rel.endswith(RUNTIME_SUFFIXES)):
        return True
    if rel in RUNTIME_DIRS or rel.startswith(SNAPSHOTS_DIR):
        return True
    return not (path.is_dir() or path.is_file()) or path.is_symlink()  # sockets, fifos, links: not data


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Every directory and file under ``root`` that is the twin's data, parents before children, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            rel = (base / d).relative_to(root).as_posix()
            if not _skipped(rel, base / d):
                keep.append(d)
                yield rel, base / d
        dirnames[:] = keep
        for f in sorted(filenames):
            rel = (base / f).relative_to(root).as_posix()
            if not _skipped(rel, base / f):
                yield rel, base / f


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_state(source: Path, dest: Path) -> dict[str, Any]:
    """Copy the twin's data from ``source`` to ``dest`` (modes and owners kept); returns the files' checksums."""
    dest.mkdir(parents=True)
    shutil.copystat(source, dest)
    files: dict[str, str] = {}
    dirs: list[str] = []
    for rel, path in _walk(source):
        target = dest / rel
        if path.is_dir():
            target.mkdir()
            shutil.copystat(path, target)
            dirs.append(rel)
        else:
            shutil.copy2(path, target)
            files[rel] = _sha256(target)
        st = path.stat()
        if os.geteuid() == 0:
            os.chown(target, st.st_uid, st.st_gid)  # pgdata belongs to PostgreSQL's own user
    return {"files": files, "dirs": dirs}


def _tools(state: Path) -> dict[str, str]:
    import moto

    pg = state / "pgdata" / "PG_VERSION"
    return {
        "moto": moto.__version__,
        "python": platform.python_version(),
        "postgres": pg.read_text().strip() if pg.exists() else "",
    }


def _engine(state: Path, twin: dict[str, Any]) -> str:
    from ops.local.twin import last_engine

    served = twin.get("dynamodb") or {}
    return served.get("engine") or last_engine(state) or "moto"


def _read_manifest(path: Path, what: str) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{what} has no readable manifest ({err.__class__.__name__}): it is not a twin snapshot"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ConfigError(
            f"{what} is snapshot format {found!r}, this version reads format {FORMAT}: save it again with this version"
        )
    return manifest


def _verify(state: Path, manifest: dict[str, Any], what: str) -> None:
    """Every file the manifest names is there with its checksum, and nothing else is."""
    present = {rel for rel, path in _walk(state) if path.is_file()}
    listed = set(manifest["files"])
    if present != listed:
        odd = sorted(present ^ listed)[0]
        raise ConfigError(f"{what} is damaged: {odd} is {'missing' if odd in listed else 'not in its manifest'}")
    for rel, digest in manifest["files"].items():
        if _sha256(state / rel) != digest:
            raise ConfigError(f"{what} is damaged: {rel} does not match its checksum")


def _info(manifest: dict[str, Any], name: str) -> SnapshotInfo:
    return SnapshotInfo(
        manifest["stack"],
        name,
        manifest["created_at"],
        manifest["engine"],
        len(manifest["files"]),
        int(manifest.get("bytes", 0)),
    )


# ---------------------------------------------------------------- stop and start around a copy


@contextmanager
def _at_rest(stack: str) -> Iterator[bool]:
    """The twin stopped for the duration (when it runs), then started again as it was."""
    from ops.local import twin as twinops
    from ops.stacks import load_stack

    record = read_twin(stack) or {}
    if (record.get("postgres") or {}).get("engine") == "external":
        raise RefusedError(
            f"the twin of stack {stack!r} uses DATABASE_URL's PostgreSQL, which a snapshot cannot hold: "
            "unset DATABASE_URL and run local.up"
        )
    if (record.get("dynamodb") or {}).get("container") or twinops.last_engine(stack_state_dir(stack)) == "docker":
        raise RefusedError(
            f"the twin of stack {stack!r} keeps its DynamoDB data in a Docker volume, outside its state directory, "
            "so a snapshot cannot hold it: use --engine moto (or the second engine as a process of the twin)"
        )
    was_running = any(c.running for c in twinops.status(stack).components)
    settings = load_stack(stack) if was_running else None  # before the stop: a broken stack file stops nothing
    twinops.down(stack)
    try:
        yield was_running
    finally:  # started again even when the copy failed: a failed save leaves the twin as it found it
        if settings is not None:
            twinops.up(settings, engine="auto", stream_worker="stream_worker" in record)


def _recover(stack: str) -> None:
    """A restore that died between its two renames left the old directory aside: put it back."""
    state = stack_state_dir(stack)
    for aside in sorted(state_root().glob(f".{stack}.replaced-*")):
        if not state.exists():
            os.replace(aside, state)
        else:
            shutil.rmtree(aside, ignore_errors=True)
    for partial in state_root().glob(f".{stack}.restoring-*"):
        shutil.rmtree(partial, ignore_errors=True)


# ---------------------------------------------------------------- the commands


def save(stack: str, name: str) -> SaveResult:
    dest = snapshot_dir(stack, name)
    if dest.exists():
        raise RefusedError(
            f"snapshot {name!r} of stack {stack!r} exists: delete it first "
            f"(invoke local.snapshot.delete {name} --stack {stack}) or pick another name"
        )
    state = stack_state_dir(stack)
    if not state.is_dir():
        raise NotFoundError(f"stack {stack!r} has no twin state to save: run `invoke local.up --stack {stack}` first")
    with stack_lock(stack):
        _recover(stack)
        record = read_twin(stack) or {}
        partial = dest.with_name(f".{name}.saving-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            with _at_rest(stack) as running:
                listing = _copy_state(state, partial / STATE)
                size = sum((partial / STATE / rel).stat().st_size for rel in listing["files"])
                manifest = {
                    "format": FORMAT,
                    "stack": stack,
                    "name": name,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "engine": _engine(state, record),
                    "tools": _tools(state),
                    "bytes": size,
                    **listing,
                }
                write_atomic(partial / MANIFEST, json.dumps(manifest, indent=1), mode=0o600, fsync=True)
                os.chmod(partial, 0o700)  # the PostgreSQL password file is inside
                os.replace(partial, dest)
                fsync_dir(dest.parent)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return SaveResult(_info(manifest, name), restarted=running)


def _load(stack: str, name: str) -> tuple[Path, dict[str, Any]]:
    src = snapshot_dir(stack, name)
    if not (src / MANIFEST).exists():
        known = ", ".join(i.name for i in list_snapshots(stack)) or "none"
        raise NotFoundError(f"stack {stack!r} has no snapshot {name!r} (snapshots: {known})")
    manifest = _read_manifest(src / MANIFEST, f"snapshot {name!r}")
    if manifest.get("stack") != stack:
        raise RefusedError(f"snapshot {name!r} is of stack {manifest.get('stack')!r}, not {stack!r}")
    return src, manifest


def restore(stack: str, name: str) -> SaveResult:
    """Put the snapshot back as the stack's whole state; a running twin is restarted on it."""
    src, manifest = _load(stack, name)
    import moto

    if manifest["tools"].get("moto") != moto.__version__:
        raise RefusedError(
            f"snapshot {name!r} was saved with moto {manifest['tools'].get('moto')}, "
            f"this checkout runs {moto.__version__}: "
            "its AWS state would not load (pip install -r requirements.txt at the version that saved it)"
        )
    _verify(src / STATE, manifest, f"snapshot {name!r}")
    state = stack_state_dir(stack)
    with stack_lock(stack):
        _recover(stack)
        incoming = state_root() / f".{stack}.restoring-{os.getpid()}"
        shutil.rmtree(incoming, ignore_errors=True)
        try:
            _copy_state(src / STATE, incoming)
            _verify(incoming, manifest, f"snapshot {name!r} (copied)")
            with _at_rest(stack) as running:
                if state.is_dir():  # what describes this machine's runs, not the data: kept
                    for entry in state.iterdir():
                        if entry.is_file() and (entry.name == "plan.json" or entry.name.endswith(".log")):
                            shutil.copy2(entry, incoming / entry.name)
                _own_pgdata(incoming)
                _swap(state, incoming)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
    return SaveResult(_info(manifest, name), restarted=running)


def _swap(state: Path, incoming: Path) -> None:
    """The new state directory in place of the old one, by two renames (``_recover`` finishes a half-done swap)."""
    aside = state_root() / f".{state.name}.replaced-{os.getpid()}"
    if state.exists():
        os.replace(state, aside)
    os.replace(incoming, state)
    fsync_dir(state.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _own_pgdata(state: Path) -> None:
    """As root, pgdata belongs to PostgreSQL's system user (an archive may come from a machine with other ids)."""
    pgdata = state / "pgdata"
    if os.geteuid() != 0 or not pgdata.is_dir():
        return
    from ops.local import postgres

    user = postgres._run_as()
    import pwd

    entry = pwd.getpwnam(user or postgres.SYSTEM_USER)
    for dirpath, _dirs, files in os.walk(pgdata):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), entry.pw_uid, entry.pw_gid)


def list_snapshots(stack: str) -> list[SnapshotInfo]:
    root = snapshots_root(stack)
    found = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if d.is_dir() and not d.name.startswith(".") and (d / MANIFEST).exists():
            try:
                found.append(_info(_read_manifest(d / MANIFEST, d.name), d.name))
            except (ConfigError, KeyError):
                continue  # another format's snapshot: not ours to show
    return sorted(found, key=lambda i: i.created_at)


def delete(stack: str, name: str) -> None:
    src = snapshot_dir(stack, name)
    if not src.is_dir():
        raise NotFoundError(f"stack {stack!r} has no snapshot {name!r}")
    aside = src.with_name(f".{name}.deleting-{os.getpid()}")
    os.replace(src, aside)  # gone from the list at once, even if the removal is interrupted
    shutil.rmtree(aside)


def export(stack: str, name: str, file: Path) -> SnapshotInfo:
    """One portable ``.tar.gz``: the manifest first, then the state; written whole or not at all (0600)."""
    src, manifest = _load(stack, name)
    _verify(src / STATE, manifest, f"snapshot {name!r}")
    file = file.resolve()
    if file.is_dir():
        raise ConfigError(f"{file} is a directory: give the archive's file name (e.g. {name}.tar.gz)")
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    os.close(fd)
    os.chmod(tmp, 0o600)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:  # 9 takes twice as long for 2% less
            tar.add(src / MANIFEST, arcname=MANIFEST)
            tar.add(src / STATE, arcname=STATE, recursive=False)
            for rel in manifest["dirs"] + list(manifest["files"]):
                tar.add(src / STATE / rel, arcname=f"{STATE}/{rel}", recursive=False)
        os.replace(tmp, file)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _info(manifest, name)


def import_archive(stack: str, file: Path, name: str | None = None) -> SnapshotInfo:
    """An exported archive as a snapshot of ``stack``; checked whole in a temporary directory first."""
    if not file.is_file():
        raise NotFoundError(f"{file}: no such archive")
    root = snapshots_root(stack)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".importing-", dir=root))
    what = f"archive {file.name}"
    try:
        try:
            with tarfile.open(file, "r:gz") as tar:
                first = tar.next()
                if first is None or first.name != MANIFEST:
                    raise ConfigError(f"{what} does not start with a manifest: it is not a twin snapshot export")
                tar.extract(first, work, filter="tar")
                manifest = _read_manifest(work / MANIFEST, what)
                if manifest.get("stack") != stack:
                    raise RefusedError(
                        f"{what} holds a snapshot of stack {manifest.get('stack')!r}, not {stack!r}: "
                        f"import it with --stack {manifest.get('stack')}"
                    )
                for member in tar:  # from the start again: the manifest comes by once more
                    if member.name == MANIFEST:
                        continue
                    if not (member.isdir() or member.isfile()) or not (
                        member.name == STATE or member.name.startswith(STATE + "/")
                    ):
                        raise ConfigError(f"{what} holds {member.name!r}, which a twin snapshot never has")
                    # "tar", not "data": PostgreSQL insists on its directories' 0700, which "data" drops
                    tar.extract(member, work, filter="tar")
        except (tarfile.TarError, EOFError, OSError, ValueError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(
                f"{what} cannot be read ({err.__class__.__name__}): it is damaged or not a .tar.gz"
            ) from None
        _verify(work / STATE, manifest, what)
        final = snapshot_dir(stack, name or manifest["name"])
        if final.exists():
            raise RefusedError(
                f"stack {stack!r} already has a snapshot {final.name!r}: delete it or import with --name OTHER"
            )
        manifest["name"] = final.name
        write_atomic(work / MANIFEST, json.dumps(manifest, indent=1), mode=0o600)
        os.chmod(work, 0o700)
        os.replace(work, final)
        return _info(manifest, final.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
