"""Mesh starts services as processes, waits for gRPC health, and kills and restarts single services."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.mesh import DEFAULT_GRPC_PORTS, ORDER, Mesh, ServiceStartError
from devstack.nats import LocalNats
from devstack.ports import free_port, port_is_free
from devstack.postgres import LocalPostgres
from devstack.processes import pid_alive
from devstack.supervision import RestartPolicy, Supervisor

ADMIN_TOKEN = "devstack-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def private_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(database URL, NATS URL) of servers private to this module."""
    base = tmp_path_factory.mktemp("mesh-infra")
    with LocalPostgres(base / "postgres", port=0) as postgres, LocalNats(base / "nats", port=0, monitor_port=0) as nats:
        postgres.ensure_database("billing")
        yield postgres.url("billing"), nats.url


@pytest.fixture(scope="module")
def metering(private_servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    database_url, nats_url = private_servers
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh"),
        database_url,
        nats_url,
        ADMIN_TOKEN,
        services=["metering"],
        prefer_default_ports=False,
    )
    with mesh:
        yield mesh


def test_the_service_starts_healthy_and_logs_to_its_file(metering: Mesh) -> None:
    assert metering.is_running("metering")
    assert metering.health("metering") == "SERVING"
    assert metering.address("metering") == f"127.0.0.1:{metering.ports['metering']}"
    log = metering.log_path("metering").read_text()
    assert '"devstack: starting"' in log and '"health SERVING"' in log


def test_every_service_gets_a_distinct_port_and_the_documented_environment(metering: Mesh) -> None:
    assert set(metering.ports) == set(ORDER)
    assert len(set(metering.ports.values())) == len(ORDER)
    ingest = metering.env_for("ingest")
    assert ingest["INGEST_GRPC_PORT"] == str(metering.ports["ingest"])
    assert ingest["INGEST_INVOICING_ADDRESS"] == metering.address("invoicing")
    assert ingest["INGEST_LOG_FORMAT"] == "json"
    gateway = metering.env_for("gateway")
    assert gateway["GATEWAY_HTTP_PORT"] == str(metering.http_port)
    assert gateway["GATEWAY_ADMIN_TOKEN"] == ADMIN_TOKEN
    assert gateway["GATEWAY_SECRETS_KEY"] == metering.gateway_secrets_key and "GATEWAY_SECRETS_KEY" not in ingest
    for backend in ("ingest", "metering", "invoicing", "payments", "notification"):
        assert gateway[f"GATEWAY_{backend.upper()}_ADDRESS"] == metering.address(backend)
    assert gateway["DATABASE_URL"] == metering.database_url and gateway["NATS_URL"] == metering.nats_url


def test_kill_is_expected_and_restart_brings_the_service_back_on_its_port(metering: Mesh) -> None:
    port, pid = metering.ports["metering"], metering.pid("metering")
    assert metering.kill("metering") == -signal.SIGKILL
    assert not metering.is_running("metering") and not pid_alive(pid)
    assert metering.health("metering") == "UNREACHABLE"
    assert metering.unexpected_exits() == []

    metering.restart("metering")
    assert metering.health("metering") == "SERVING"
    assert metering.ports["metering"] == port and metering.pid("metering") != pid


def test_a_service_dying_on_its_own_is_reported_once(metering: Mesh) -> None:
    os.kill(metering.pid("metering"), signal.SIGKILL)
    deadline = time.monotonic() + 10
    exits: list[tuple[str, int]] = []
    while not exits and time.monotonic() < deadline:
        exits = metering.unexpected_exits()
        time.sleep(0.1)
    assert exits == [("metering", -signal.SIGKILL)]
    assert metering.unexpected_exits() == []
    metering.restart("metering")
    assert metering.health("metering") == "SERVING"


def test_graceful_stop_of_one_service(metering: Mesh) -> None:
    assert metering.stop_service("metering") == 0
    assert metering.unexpected_exits() == []
    metering.restart("metering")
    assert metering.health("metering") == "SERVING"


def test_the_supervisor_restarts_a_service_killed_from_outside_and_not_one_stopped_on_purpose(
    metering: Mesh,
) -> None:
    said: list[str] = []
    supervisor = Supervisor(metering, RestartPolicy(initial_seconds=0.2), say=said.append, warn=said.append)
    pid = metering.pid("metering")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # a crash: not through the mesh
    deadline = time.monotonic() + 45
    while supervisor.restarts("metering") == 0 or supervisor.pending():
        assert time.monotonic() < deadline, said
        supervisor.check()
        time.sleep(0.05)
    assert said[0] == "metering exited with -9 (SIGKILL); restarting in 0.2 s (restart 1)"
    assert said[-1] == "metering healthy again (restart 1)"
    assert metering.health("metering") == "SERVING"
    assert metering.pid("metering") not in (None, pid)
    assert '"devstack: exited unexpectedly"' in metering.log_path("metering").read_text()

    assert metering.stop_service("metering") == 0  # on purpose: left alone
    for _ in range(10):
        supervisor.check()
        time.sleep(0.05)
    assert not metering.is_running("metering") and supervisor.pending() == {}
    assert supervisor.restarts("metering") == 1
    metering.restart("metering")


def test_a_second_mesh_on_the_same_data_directory_leaves_the_first_alone(metering: Mesh) -> None:
    pid = metering.pid("metering")
    second = Mesh(
        metering.data_dir,
        metering.database_url,
        metering.nats_url,
        ADMIN_TOKEN,
        services=["metering"],
        prefer_default_ports=False,
    )
    assert metering.is_running("metering") and metering.pid("metering") == pid
    with pytest.raises(DevstackError, match="still in use by a running devstack"):
        second.start()
    assert metering.health("metering") == "SERVING"


def test_a_service_that_exits_at_start_fails_with_its_log(private_servers: tuple[str, str], tmp_path: Path) -> None:
    database_url, nats_url = private_servers
    mesh = Mesh(tmp_path, database_url, nats_url, ADMIN_TOKEN, services=["no_such_service"], prefer_default_ports=False)
    with pytest.raises(ServiceStartError, match="No module named services.no_such_service"):
        mesh.start()
    assert not mesh.is_running("no_such_service")


def test_a_service_that_never_becomes_healthy_times_out_with_its_log(
    private_servers: tuple[str, str], tmp_path: Path
) -> None:
    _, nats_url = private_servers
    unreachable_database = f"postgresql://postgres@127.0.0.1:{free_port()}/billing"
    mesh = Mesh(
        tmp_path,
        unreachable_database,
        nats_url,
        ADMIN_TOKEN,
        services=["metering"],
        prefer_default_ports=False,
        health_timeout=3,
    )
    with pytest.raises(ServiceStartError, match="did not report SERVING") as failure:
        mesh.start()
    assert "dependencies not reachable yet" in str(failure.value)
    assert not mesh.is_running("metering")  # start() stopped what it started


def test_ports_prefer_the_defaults_and_fall_back_when_taken(private_servers: tuple[str, str], tmp_path: Path) -> None:
    database_url, nats_url = private_servers
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        free_default = port_is_free(DEFAULT_GRPC_PORTS["metering"])
        mesh = Mesh(
            tmp_path, database_url, nats_url, ADMIN_TOKEN, services=[], ports={"notification": busy, "payments": 0}
        )
    assert mesh.ports["notification"] != busy
    assert mesh.ports["payments"] != DEFAULT_GRPC_PORTS["payments"]  # 0 asks for any free port
    if free_default:  # unless something (a developer's `make run`) listens on it right now
        assert mesh.ports["metering"] == DEFAULT_GRPC_PORTS["metering"]


def test_kill_of_a_service_that_was_never_started_is_an_error(metering: Mesh) -> None:
    with pytest.raises(KeyError):
        metering.kill("payments")
