"""The bare webhook limit: a FastAPI endpoint that reads the raw body, verifies its Razorpay signature and answers
200; nothing else (no JSON parse, no JetStream, no middleware, logging or tracing).

Served like the gateway serves its API: uvicorn inside one process's event loop, on a socket bound the same way
(TCP with Nagle off), with the same uvicorn settings. The benchmark runs it in its own process:
``python -m bench.bare_webhook PORT`` with the webhook secret in ``BARE_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from billing_runtime.signatures import matches

SECRET_ENV = "BARE_WEBHOOK_SECRET"


def _bind(port: int) -> socket.socket:
    """As the gateway binds (services/gateway/__main__.py, not imported so nothing of the gateway loads here):
    IPPROTO_TCP said out loud, so asyncio turns Nagle off."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


def create_app(secret: str) -> FastAPI:
    app = FastAPI()
    secrets = [secret]

    @app.post("/api/v1/webhooks/razorpay")
    async def razorpay_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not matches(body, request.headers.get("x-razorpay-signature", ""), secrets):
            return JSONResponse({"error": "unauthenticated"}, status_code=401)
        return JSONResponse({"received": True})

    return app


async def serve(port: int, secret: str) -> None:
    sock = _bind(port)
    # The gateway's uvicorn settings (services/gateway/__main__.py).
    config = uvicorn.Config(create_app(secret), log_config=None, access_log=False, lifespan="off",
                            server_header=False)
    print(f"bare webhook server listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), os.environ[SECRET_ENV]))
