"""Restarts of crashed services: the backoff policy, and the supervisor against a fake mesh and clock."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.mesh import ServiceStartError
from devstack.supervision import RestartPolicy, Supervisor, describe_exit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeMesh:
    """Exits to report, and restarts that succeed unless told to fail."""

    def __init__(self) -> None:
        self.exits: list[tuple[str, int]] = []
        self.restarted: list[str] = []
        self.killed: list[str] = []
        self.notes: list[tuple[str, str, dict[str, object]]] = []
        self.failures: list[Exception] = []

    def crash(self, name: str, code: int = -signal.SIGKILL) -> None:
        self.exits.append((name, code))

    def unexpected_exits(self) -> list[tuple[str, int]]:
        exits, self.exits = self.exits, []
        return exits

    def restart(self, name: str) -> None:
        self.restarted.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        self.killed.append(name)
        return -sig

    def log_tail(self, name: str, lines: int = 40) -> str:
        return f"{name}: last words"

    def note(self, name: str, event: str, **fields: object) -> None:
        self.notes.append((name, event, fields))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def supervisor(mesh: FakeMesh, clock: FakeClock, said: list[str]) -> Supervisor:
    return Supervisor(mesh, RestartPolicy(), clock=clock, say=said.append, warn=lambda m: said.append("!! " + m))


def test_the_delay_doubles_from_one_second_up_to_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.delay(10_000) == 30  # days of crashing: still the cap, no overflow


@given(
    initial=st.floats(0.01, 10), factor=st.floats(1, 4), cap=st.floats(0.01, 600), crashes=st.integers(1, 2000)
)
def test_the_delay_never_shrinks_and_never_exceeds_the_cap(
    initial: float, factor: float, cap: float, crashes: int
) -> None:
    policy = RestartPolicy(initial_seconds=initial, factor=factor, max_seconds=cap)
    assert 0 < policy.delay(crashes) <= cap
    assert policy.delay(crashes) <= policy.delay(crashes + 1)


def test_exit_codes_name_their_signal() -> None:
    assert describe_exit(-9) == "-9 (SIGKILL)"
    assert describe_exit(1) == "1"


def test_a_crashed_service_is_restarted_after_the_delay_and_said_so(
    supervisor: Supervisor, mesh: FakeMesh, clock: FakeClock, said: list[str]
) -> None:
    mesh.crash("metering")
    supervisor.check()
    assert said[0] == "!! metering exited with -9 (SIGKILL); restarting in 1 s (restart 1)"
    assert "metering: last words" in said[1]
    assert mesh.restarted == []  # not before the delay
    assert mesh.notes[0][:2] == ("metering", "devstack: exited unexpectedly")
    assert mesh.notes[0][2]["restart_in_seconds"] == 1

    clock.advance(0.5)
    supervisor.check()
    assert mesh.restarted == []
    clock.advance(0.5)
    supervisor.check()
    assert mesh.restarted == ["metering"]
    assert said[-1] == "metering healthy again (restart 1)"
    assert supervisor.restarts("metering") == 1 and supervisor.pending() == {}

    supervisor.check()  # nothing new: nothing happens
    assert mesh.restarted == ["metering"]


def test_crashes_in_a_row_back_off_and_a_long_healthy_spell_resets_the_delay(
    supervisor: Supervisor, mesh: FakeMesh, clock: FakeClock, said: list[str]
) -> None:
    delays = []
    for _ in range(7):
        mesh.crash("metering")
        supervisor.check()
        due = supervisor.pending()["metering"]
        delays.append(due - clock.now)
        clock.now = due
        supervisor.check()
        clock.advance(5)  # up for a few seconds, then crashes again
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert supervisor.restarts("metering") == 7

    clock.advance(60)  # healthy for a minute: the next crash is treated as the first
    mesh.crash("metering")
    supervisor.check()
    assert supervisor.pending()["metering"] - clock.now == 1
    assert said[-2].endswith("restarting in 1 s (restart 8)")


def test_services_back_off_independently(supervisor: Supervisor, mesh: FakeMesh, clock: FakeClock) -> None:
    mesh.crash("metering")
    supervisor.check()
    clock.advance(1)
    supervisor.check()
    mesh.crash("metering")
    mesh.crash("ingest", 1)
    supervisor.check()
    assert supervisor.pending() == {"metering": clock.now + 2, "ingest": clock.now + 1}
    clock.advance(1)
    supervisor.check()
    assert mesh.restarted == ["metering", "ingest"]
    clock.advance(1)
    supervisor.check()
    assert mesh.restarted == ["metering", "ingest", "metering"]


def test_a_restart_that_fails_is_killed_and_tried_again_later(
    supervisor: Supervisor, mesh: FakeMesh, clock: FakeClock, said: list[str]
) -> None:
    mesh.failures.append(ServiceStartError("metering did not report SERVING within 60s. Last lines: boom"))
    mesh.crash("metering")
    supervisor.check()
    clock.advance(1)
    supervisor.check()
    assert mesh.restarted == ["metering"] and mesh.killed == ["metering"]
    assert any("did not report SERVING" in line for line in said)
    assert said[-1] == "!! metering did not come back; restarting in 2 s (restart 2)"
    assert supervisor.pending() == {"metering": clock.now + 2}
    clock.advance(2)
    supervisor.check()
    assert mesh.restarted == ["metering", "metering"]
    assert said[-1] == "metering healthy again (restart 2)"


def test_nothing_is_restarted_that_was_not_reported_as_an_unexpected_exit(
    supervisor: Supervisor, mesh: FakeMesh, clock: FakeClock
) -> None:
    # Services stopped on purpose (Ctrl-C, stop_service, kill) are not in unexpected_exits: nothing to do.
    for _ in range(3):
        supervisor.check()
        clock.advance(100)
    assert mesh.restarted == [] and mesh.notes == []
