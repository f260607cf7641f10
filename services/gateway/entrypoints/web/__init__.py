"""The dashboard, served by the gateway at /app: server-rendered pages (Jinja2) with a little JavaScript (htmx for
the live parts, Chart.js for the usage chart; both vendored under static/vendor, see docs/dashboard.md). Every
page is in the gateway's one permission table through its REST twin (``http/permissions.py``, ``PAGE_TWINS``) and
calls the REST API's own route functions, so it asks and answers what the API does."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.gateway.entrypoints.web import (
    account,
    auto_debit,
    customer,
    operator,
    operator_accounts,
    operator_dead_letters,
    operator_einvoices,
    operator_payments,
    operator_users,
    paying,
    sign_in,
)
from services.gateway.entrypoints.web.rendering import PREFIX, STATIC_DIR


def install(app: FastAPI) -> None:
    """Add the pages and their static files (public: scripts, styles, licences) to the gateway's app."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.include_router(sign_in.router)
    app.include_router(customer.router)
    app.include_router(paying.router)
    app.include_router(account.router)
    app.include_router(auto_debit.router)
    app.include_router(operator.router)
    for pages in (operator_accounts, operator_payments, operator_einvoices, operator_dead_letters, operator_users):
        app.include_router(pages.router)
