"""The mailbox's ASGI application: the pages for a person and the JSON API for tests and tools."""

from __future__ import annotations

from fastapi import FastAPI

from sandboxes.smtp import api, pages
from sandboxes.smtp.state import Mailbox


def build_app(mailbox: Mailbox) -> FastAPI:
    app = FastAPI(title="Local mailbox", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.mailbox = mailbox
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
