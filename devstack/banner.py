"""The "it is running, here is where everything is" message printed once the stack is up."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

WIDTH = 100


def _shown(path: Path | str) -> str:
    """A path relative to the current directory when it is inside it, so commands stay copy-pasteable."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def buf_binary() -> str:
    """The ``buf`` CLI from the ``buf-bin`` package, as the operator would type it."""
    beside_python = Path(sys.executable).parent / "buf"
    return _shown(beside_python) if beside_python.exists() else "buf"


def render(endpoints: dict[str, Any], *, log_dir: Path, data_dir: Path, endpoints_file: Path, notes: list[str]) -> str:
    """The banner text for the endpoints written to ``endpoints.json``."""
    rows: list[str] = []

    def row(label: str, value: str) -> None:
        rows.append(f"  {label:<18}{value}")

    gateway = endpoints.get("gateway")
    token = endpoints["admin_token"]
    if gateway:
        row("Dashboard", f"{gateway}/app")
        logins = (endpoints.get("demo") or {}).get("logins") or {}
        for kind in ("customer", "operator"):
            if kind in logins:
                row(f"  {kind}", f"{logins[kind]['email']}   password {logins[kind]['password']}")
        row("API", gateway)
        row("  API docs", f"{gateway}/docs")
        row("  OpenAPI", f"{gateway}/openapi.json")
        row("  Health", f"{gateway}/healthz")
    rows.append("  gRPC services (health + reflection on each), and their Prometheus metrics")
    metrics = endpoints.get("metrics", {})
    for name, address in endpoints["services"].items():
        where = f"   metrics {metrics[name]}" if name in metrics else ""
        row(f"  {name}", address + (where if name in endpoints["running"] else "   (not started)"))
    row("PostgreSQL", endpoints["database_url"])
    monitor = endpoints.get("nats_monitor_url")
    row("NATS", endpoints["nats_url"] + (f"   (monitoring {monitor})" if monitor else ""))
    sandbox = endpoints.get("razorpay_sandbox")
    if sandbox:
        row("Razorpay sandbox", f"{sandbox}   (checkout pages: {sandbox}/checkout/<order id>)")
    irp = endpoints.get("irp_sandbox")
    if irp:
        row("IRP sandbox", f"{irp}   (e-invoicing of the demo supplier: {irp}/_sandbox/irns)")
    local_stripe = endpoints.get("local_stripe")
    if local_stripe:
        row("Local Stripe", f"{local_stripe}   (for organisations that chose Stripe: PUT "
                            "/api/v1/admin/organisations/<id>/payment-provider)")
    mailbox = endpoints.get("mailbox")
    if mailbox:
        row("Mailbox", f"{mailbox['web']}   (every email notification sends; SMTP {mailbox['smtp']})")
    row("Admin token", token)
    operator_file = endpoints.get("mesh_operator_token_file")
    if operator_file:
        row("Mesh operator", f"{_shown(operator_file)}   (gRPC calls need x-billing-mesh: operator:<this token>)")
    demo = endpoints.get("demo")
    if demo:
        row("Demo API key", demo["api_key"])
        row("  organisation", demo["organisation_id"])
        row("  project", demo["project_id"])
        invoice = demo.get("invoice")
        if invoice and invoice.get("checkout_url"):
            row("Pay demo invoice", f"{invoice['checkout_url']}   ({invoice['number']}, INR {invoice['total']})")
        elif invoice:
            row("Demo invoice", f"{invoice['number']} ({invoice['status']})")
    row("Logs", f"{_shown(log_dir)}/<service>.log")
    row("Endpoints file", _shown(endpoints_file))
    rows.append("")
    rows.append("  Try it:")
    if gateway:
        auth = shlex.quote(f"Authorization: Bearer {token}")
        rows.append(f"    curl -H {auth} {gateway}/api/v1/admin/organisations")
        if demo:
            key = shlex.quote(f"Authorization: Bearer {demo['api_key']}")
            event = shlex.quote('{"metricName": "llm_tokens", "metricValue": 1200, "metadata": {"model": "gpt-4o"}}')
            rows.append(f"    curl -X POST {gateway}/api/v1/events -H {key} -d {event}")
            query = shlex.quote(f"{gateway}/api/v1/admin/usage?organisation_id={demo['organisation_id']}"
                                "&metric=llm_tokens&window=day&group_by=model")
            rows.append(f"    curl -H {auth} {query}")
            rows.append(f"    {_shown(Path(sys.executable).parent / 'billing')} usage llm_tokens "
                        f"--organisation {demo['organisation_id']} --window day --group-by model")
    invoicing = endpoints["services"].get("invoicing")
    if invoicing and "invoicing" in endpoints["running"] and operator_file:
        # Double quotes, so that the shell reads the token file.
        header = f'"x-billing-mesh: operator:$(cat {_shown(operator_file)})"'
        rows.append(
            f"    {buf_binary()} curl --protocol grpc --http2-prior-knowledge -H {header} "
            f"http://{invoicing}/billing.invoicing.v1.InvoicingService/ListOrganisations -d '{{}}'"
        )
    any_service = next(iter(endpoints["running"]), None)
    if any_service:
        rows.append(
            f"    {buf_binary()} curl --protocol grpc --http2-prior-knowledge "
            f"http://{endpoints['services'][any_service]}/grpc.health.v1.Health/Check -d '{{}}'"
        )
    for note in notes:
        rows.append(f"  ! {note}")
    rows.append("")
    rows.append(
        f"  Ctrl-C stops everything. State (database, NATS store, token, demo key) stays in {_shown(data_dir)}."
    )
    rows.append("  A service that crashes is restarted after 1 s, 2 s, 4 s ... (at most 30 s), and said so here.")
    rule = "=" * WIDTH
    return "\n".join(["", rule, "  Billing platform is running", "-" * WIDTH, *rows, rule, ""])
