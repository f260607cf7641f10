"""LocalPostgres and LocalNats run the real servers, keep their data across restarts, and clean up after a
parent that was killed. Runs as root in CI, which exercises the unprivileged-user path of PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import nats
import pytest

from devstack.errors import DevstackError
from devstack.nats import LocalNats
from devstack.postgres import LocalPostgres
from devstack.privileges import POSTGRES_SYSTEM_USER, running_as_root
from devstack.processes import pid_alive

REPO_ROOT = Path(__file__).resolve().parents[3]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


async def test_postgres_answers_queries_and_keeps_data_across_a_restart(tmp_path: Path) -> None:
    postgres = LocalPostgres(tmp_path / "postgres", port=0)
    await asyncio.to_thread(postgres.start)
    try:
        assert postgres.running and postgres.port > 0
        assert postgres.url("devstack_check") == f"postgresql://postgres@127.0.0.1:{postgres.port}/devstack_check"
        assert postgres.ensure_database("devstack_check") is True
        assert postgres.ensure_database("devstack_check") is False
        if running_as_root():
            # PostgreSQL refuses root; the server must run as the unprivileged system user.
            assert _uid_of(postgres.pid) != 0
            assert (tmp_path / "postgres").owner() == POSTGRES_SYSTEM_USER
        connection = await asyncpg.connect(postgres.url("devstack_check"))
        try:
            await connection.execute("CREATE TABLE ledger (id int PRIMARY KEY, amount numeric NOT NULL)")
            await connection.execute("INSERT INTO ledger VALUES (1, 12.50), (2, 7.25)")
            assert await connection.fetchval("SELECT sum(amount) FROM ledger") == pytest.approx(19.75)
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(postgres.stop)
    assert not postgres.running

    # Same data directory, new server process: the database and its rows are still there.
    restarted = LocalPostgres(tmp_path / "postgres", port=0)
    await asyncio.to_thread(restarted.start)
    try:
        connection = await asyncpg.connect(restarted.url("devstack_check"))
        try:
            rows = await connection.fetch("SELECT id, amount FROM ledger ORDER BY id")
        finally:
            await connection.close()
        assert [(row["id"], str(row["amount"])) for row in rows] == [(1, "12.50"), (2, "7.25")]
        assert restarted.ensure_database("devstack_check") is False
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_nats_jetstream_round_trip_and_the_store_survives_a_restart(tmp_path: Path) -> None:
    server = LocalNats(tmp_path / "nats", port=0, monitor_port=0)
    await asyncio.to_thread(server.start)
    try:
        client = await nats.connect(server.url)
        try:
            js = client.jetstream()
            await js.add_stream(name="DEVSTACK_CHECK", subjects=["devstack.check.>"])
            ack = await js.publish("devstack.check.created", b"hello", headers={"Nats-Msg-Id": "evt-1"})
            duplicate = await js.publish("devstack.check.created", b"hello", headers={"Nats-Msg-Id": "evt-1"})
            assert ack.seq == 1 and duplicate.duplicate
            subscription = await js.pull_subscribe("devstack.check.>", durable="checker")
            messages = await subscription.fetch(1, timeout=5)
            assert [message.data for message in messages] == [b"hello"]
            await messages[0].ack()
        finally:
            await client.close()
    finally:
        await asyncio.to_thread(server.stop)
    assert not server.running

    restarted = LocalNats(tmp_path / "nats", port=0, monitor_port=None)
    await asyncio.to_thread(restarted.start)
    try:
        client = await nats.connect(restarted.url)
        try:
            info = await client.jetstream().stream_info("DEVSTACK_CHECK")
            assert info.state.messages == 1
        finally:
            await client.close()
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_restart_keeps_the_port_and_the_data_so_clients_reconnect_where_they_were(tmp_path: Path) -> None:
    # Started on "any free port": a plain stop and start would take another one, and the services, which know
    # the old address, would never find the server again (bench/chaos.py restarts both under load).
    postgres = LocalPostgres(tmp_path / "postgres", port=0)
    server = LocalNats(tmp_path / "nats", port=0, monitor_port=0)
    await asyncio.to_thread(postgres.start)
    await asyncio.to_thread(server.start)
    try:
        postgres.ensure_database("restart_check")
        postgres.execute("CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (7)", "restart_check")
        client = await nats.connect(server.url)
        try:
            await client.jetstream().add_stream(name="RESTART_CHECK", subjects=["restart.check"])
            await client.jetstream().publish("restart.check", b"kept")
        finally:
            await client.close()
        ports, old_pids = (postgres.port, server.port, server.monitor_port), (postgres.pid, server.pid)

        await asyncio.to_thread(postgres.restart)
        await asyncio.to_thread(server.restart)

        assert (postgres.port, server.port, server.monitor_port) == ports
        assert (postgres.pid, server.pid) != old_pids and postgres.running and server.running
        assert postgres.execute("SELECT id FROM kept", "restart_check").strip() == "7"
        client = await nats.connect(server.url)
        try:
            assert (await client.jetstream().stream_info("RESTART_CHECK")).state.messages == 1
        finally:
            await client.close()
    finally:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(postgres.stop)


def _start_in_a_doomed_parent(kind: str, data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """Start a server from a child Python process and return (that process, the server's pid)."""
    program = (
        "import sys, time\n"
        "from pathlib import Path\n"
        f"from devstack.{kind} import Local{kind.capitalize()} as Server\n"
        "server = Server(Path(sys.argv[1]), port=0).start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", program, str(data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert parent.stdout is not None
    line = ""
    for line in parent.stdout:  # the server's progress lines come first
        if line.strip().isdigit():
            break
    assert line.strip().isdigit(), f"the child did not report a server pid (exit code {parent.poll()})"
    return parent, int(line)


@pytest.mark.parametrize("kind", ["postgres", "nats"])
def test_a_server_left_behind_by_a_killed_run_is_stopped_but_one_in_use_is_not(kind: str, tmp_path: Path) -> None:
    data_dir = tmp_path / kind
    parent, leftover = _start_in_a_doomed_parent(kind, data_dir)
    server = LocalPostgres(data_dir, port=0) if kind == "postgres" else LocalNats(data_dir, port=0, monitor_port=0)
    try:
        # Its devstack still runs: the data directory is in use, and nothing may be killed.
        with pytest.raises(DevstackError, match="still in use by a running devstack"):
            server.start()
        assert pid_alive(leftover)

        parent.kill()  # SIGKILL: no chance to stop its server, which has its own session and keeps running
        parent.wait(10)
        assert pid_alive(leftover)
        server.start()
        assert not pid_alive(leftover)
        assert server.running and server.pid != leftover
    finally:
        server.stop()
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if pid_alive(leftover):  # only if the code under test failed; do not leave it behind
            os.kill(leftover, signal.SIGKILL)
