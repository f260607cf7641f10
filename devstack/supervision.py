"""Restart a crashed service, as Kubernetes restarts a crashed container (its CrashLoopBackOff).

The run loop calls :meth:`Supervisor.check` about twice a second. A service that exited without being stopped
through the mesh (a crash, ``kill -9``, an OOM kill) is restarted after a delay that doubles with each crash in
a row (1 s, 2 s, 4 s ... at most 30 s) and starts over at 1 s once the service has stayed up for a minute. The
restart waits until the service reports SERVING again, and the console says each step. A service stopped on
purpose (Ctrl-C, :meth:`~devstack.mesh.Mesh.stop_service`, :meth:`~devstack.mesh.Mesh.kill`) is left alone.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from devstack import console
from devstack.console import Reporter
from devstack.errors import DevstackError


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before restarting a service that crashed ``crashes`` times in a row."""

    initial_seconds: float = 1.0
    factor: float = 2.0
    max_seconds: float = 30.0
    # Up this long since its last restart: the next crash counts as the first again.
    reset_after_seconds: float = 60.0

    def delay(self, crashes: int) -> float:
        """The pause before restart number ``crashes`` (1 for the first crash in a row)."""
        exponent = min(max(0, crashes - 1), 64)  # a service crashing for days must not overflow the float
        return min(self.initial_seconds * self.factor**exponent, self.max_seconds)


class Supervised(Protocol):
    """What the supervisor needs of a :class:`~devstack.mesh.Mesh`."""

    def unexpected_exits(self) -> list[tuple[str, int]]: ...

    def restart(self, name: str) -> None: ...

    def kill(self, name: str, sig: int = ...) -> int | None: ...

    def log_tail(self, name: str, lines: int = ...) -> str: ...

    def note(self, name: str, event: str, **fields: object) -> None: ...


@dataclass
class _Service:
    crashes: int = 0  # in a row: reset once the service stayed up for reset_after_seconds
    restarts: int = 0  # since the run started
    up_since: float | None = None
    due: float | None = None  # when the pending restart is due


def describe_exit(code: int) -> str:
    """``-9 (SIGKILL)`` for a signal, the plain code otherwise."""
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


class Supervisor:
    """Restarts the mesh's crashed services with exponential backoff; see the module docstring."""

    def __init__(
        self,
        mesh: Supervised,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        say: Reporter = console.say,
        warn: Reporter = console.warn,
    ) -> None:
        self._mesh = mesh
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._say = say
        self._warn = warn
        self._services: dict[str, _Service] = {}

    def restarts(self, name: str) -> int:
        """How often this supervisor restarted the service."""
        service = self._services.get(name)
        return service.restarts if service else 0

    def pending(self) -> dict[str, float]:
        """Services waiting for their restart, and when it is due (clock time)."""
        return {name: s.due for name, s in self._services.items() if s.due is not None}

    def check(self) -> None:
        """Schedule restarts of services that exited unexpectedly; restart those whose delay has passed."""
        now = self._clock()
        for name, code in self._mesh.unexpected_exits():
            tail = self._mesh.log_tail(name, 30)
            self._schedule(name, f"exited with {describe_exit(code)}", now, code=code)
            if tail.strip():
                self._warn(f"last lines of {name}'s log:\n{tail}")
        for name, due in sorted(self.pending().items(), key=lambda item: item[1]):
            if due <= self._clock():
                self._restart(name)

    def _schedule(self, name: str, why: str, now: float, **fields: object) -> None:
        service = self._services.setdefault(name, _Service())
        if service.up_since is not None and now - service.up_since >= self.policy.reset_after_seconds:
            service.crashes = 0  # it had been fine for a while: back to the shortest delay
        service.crashes += 1
        service.up_since = None
        delay = self.policy.delay(service.crashes)
        service.due = now + delay
        restart = service.restarts + 1
        self._warn(f"{name} {why}; restarting in {delay:g} s (restart {restart})")
        self._mesh.note(name, "devstack: exited unexpectedly", reason=why, restart_in_seconds=delay,
                        restart=restart, **fields)

    def _restart(self, name: str) -> None:
        service = self._services[name]
        service.due = None
        service.restarts += 1
        try:
            self._mesh.restart(name)
        except (DevstackError, OSError) as error:
            # Did not come up (exited again, or never reported SERVING): make sure it is gone, try again later.
            try:
                self._mesh.kill(name)
            except KeyError:
                pass  # it never started (the command itself failed)
            self._warn(str(error) or type(error).__name__)
            self._schedule(name, "did not come back", self._clock())
            return
        service.up_since = self._clock()
        self._say(f"{name} healthy again (restart {service.restarts})")
