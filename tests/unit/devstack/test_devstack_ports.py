"""A held port: reserved against other sockets, yet our own servers (SO_REUSEADDR, as gRPC, uvicorn and
http.server set it) still bind and serve on it."""

from __future__ import annotations

import asyncio
import socket

import grpc

from devstack.ports import LOCALHOST, free_port, hold_port


def _plain_bind(port: int) -> bool:
    """What an outgoing connection's ephemeral port needs: a port no other socket has bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


def test_a_held_port_is_reserved_until_released() -> None:
    port = free_port()
    held = hold_port(port)
    assert held is not None
    assert not _plain_bind(port)
    held.close()
    assert _plain_bind(port)


def test_a_grpc_server_binds_and_serves_on_a_held_port() -> None:
    port = free_port()
    held = hold_port(port)
    assert held is not None

    async def serve() -> int:
        server = grpc.aio.server()
        bound = server.add_insecure_port(f"{LOCALHOST}:{port}")
        await server.start()
        try:
            _, writer = await asyncio.open_connection(LOCALHOST, port)
            writer.close()
        finally:
            await server.stop(None)
        return bound

    try:
        assert asyncio.run(serve()) == port
    finally:
        held.close()


def test_a_port_someone_listens_on_cannot_be_held() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOCALHOST, 0))
        listener.listen()
        assert hold_port(listener.getsockname()[1]) is None
