"""billing payments | refunds: how invoices are being collected, payment links, offline payments, refunds, the
provider's webhook log, and the review list of payments that did not fit their invoice.

Amounts are given and shown as decimal text in the currency's units (``--amount 1000.00``); the gateway turns
them into minor units exactly, and refuses more decimals than the currency has.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, console, gateway_of, list_all, show

payments = typer.Typer(help="Payments: invoices' collection through Razorpay or Stripe, payment links, offline "
                            "payments, the webhook log, the review list.", no_args_is_help=True)
refunds = typer.Typer(help="Refunds of captured payments.", no_args_is_help=True)
# Without a subcommand it lists (its callback); `review resolve ID` closes one.
review = typer.Typer(help="Payments and refunds that did not fit their invoice (invoicing's review list): "
                          "the open ones, or all with --all; `resolve ID --note ...` closes one.",
                     invoke_without_command=True)
payments.add_typer(review, name="review")

PAYMENT_COLUMNS = ["id", "invoice_id", "organisation_id", "provider", "method", "status", "currency", "amount",
                   "refunded", "reference", "captured_at"]
REFUND_COLUMNS = ["id", "payment_id", "invoice_id", "status", "currency", "amount", "reason", "provider_refund_id",
                  "created_at", "processed_at"]
WEBHOOK_COLUMNS = ["event_id", "provider", "event_type", "outcome", "received_at", "processed_at"]
REVIEW_COLUMNS = ["id", "kind", "invoice_id", "organisation_id", "currency", "amount", "detail", "state",
                  "created_at"]
RESOLVED_REVIEW_COLUMNS = [*REVIEW_COLUMNS, "resolution", "resolved_by"]
METHODS = ("bank_transfer", "cheque", "cash")
# The gateway gives payments 30 s to make a link at the provider; a little more here, so its answer arrives.
LINK_TIMEOUT_SECONDS = 40.0


def _amount(row: dict[str, Any], name: str = "amount") -> str:
    """The decimal text, or the minor units when the gateway does not know the currency's exponent."""
    text = row.get(name)
    return text if text is not None else f"{row[f'{name}_minor']} (minor units)"


def payment_row(payment: dict[str, Any]) -> dict[str, Any]:
    return {**payment, "amount": _amount(payment), "refunded": _amount(payment, "amount_refunded"),
            "reference": payment["reference"] or payment["provider_payment_id"]}


def refund_row(refund: dict[str, Any]) -> dict[str, Any]:
    return {**refund, "amount": _amount(refund)}


def _replayed(response: Any) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


@payments.command("list")
def payments_list(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation's")] = "",
    invoice: Annotated[str, typer.Option("--invoice", "--invoice-id", help="Only this invoice's")] = "",
    as_json: JsonOption = False,
) -> None:
    """List payments, newest first: online and offline, failed attempts included."""
    params = {name: value for name, value in (("organisation_id", organisation), ("invoice_id", invoice)) if value}
    rows = list_all(gateway_of(ctx), "/api/v1/admin/payments", params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([payment_row(p) for p in rows], PAYMENT_COLUMNS, False, f"{len(rows)} payment(s)")


def _show_refunds(rows: list[dict[str, Any]], title: str) -> None:
    if rows:
        show([refund_row(r) for r in rows], REFUND_COLUMNS, False, title)


@payments.command("show")
def payments_show(ctx: typer.Context, payment_id: str, as_json: JsonOption = False) -> None:
    """Show one payment with its refunds (and the provider's error if it failed)."""
    payment = gateway_of(ctx).request("GET", f"/api/v1/admin/payments/{payment_id}")
    if as_json:
        typer.echo(json.dumps(payment, indent=2))
        return
    show([payment_row(payment)], PAYMENT_COLUMNS, False, f"Payment {payment['id']}")
    if payment["error_code"] or payment["error_description"]:
        console.print(f"Provider error: {payment['error_code']} {payment['error_description']} "
                      f"{payment['error_reason']}".rstrip(), highlight=False)
    if payment["note"]:
        console.print(f"Note: {payment['note']}", highlight=False)
    _show_refunds(payment["refunds"], f"Refunds of {payment['id']}")


def describe_order(order: dict[str, Any] | None) -> str:
    """One line about the invoice's provider order: its status, why, and what the provider said."""
    if order is None:
        # Payments makes the order in the background after invoice.issued, and only when Razorpay keys are set.
        return "Order: none yet (made shortly after issue when online payments are configured)"
    line = f"Order {order['provider_order_id'] or '(not at the provider)'}: {order['status']}"
    if order["status_reason"]:
        line += f", {order['status_reason']}"
    error = order.get("error")
    if error:
        said = " ".join(part for part in (str(error["http_status"] or ""), error["code"], error["description"]) if part)
        line += f"; the provider said: {said}" + (f" (field {error['field']})" if error["field"] else "")
    if order["create_attempts"] > 1:
        line += f" after {order['create_attempts']} attempts"
    return line


def collection_line(invoice_id: str, found: dict[str, Any]) -> str:
    """One line of an invoice's amounts. What is still due is payments' figure, never worked out here: the total
    less captures would leave credit notes out. (A gateway from before credit notes were reported has neither.)"""
    line = (f"Invoice {invoice_id}: total {_amount(found, 'total')} {found['currency']}, captured "
            f"{_amount(found, 'amount_captured')}, refunded {_amount(found, 'amount_refunded')}")
    if found.get("amount_credited_minor"):
        line += f", credited {_amount(found, 'amount_credited')}"
    if "amount_due_minor" in found:
        line += f", still due {_amount(found, 'amount_due')}"
    return line + (f" (due date {found['due_date']})" if found["due_date"] else "")


@payments.command("invoice")
def payments_invoice(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """How one invoice is being collected: its order, payments, refunds, what was received and credited, and what is
    still due (as payments collects it: credit notes counted)."""
    found = gateway_of(ctx).request("GET", f"/api/v1/admin/invoices/{invoice_id}/payments")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    console.print(collection_line(invoice_id, found), highlight=False)
    console.print(describe_order(found["order"]), highlight=False)
    show([payment_row(p) for p in found["payments"]], PAYMENT_COLUMNS, False,
         f"{len(found['payments'])} payment(s) of {invoice_id}")
    _show_refunds(found["refunds"], f"Refunds of {invoice_id}")
    for link in found["payment_links"]:
        console.print(f"Payment link {link['short_url']} ({link['status']})", highlight=False)


@payments.command("checkout")
def payments_checkout(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """What the provider's checkout needs to pay an invoice (Razorpay Checkout's options and a hosted page that pays
    it, or Stripe.js's publishable key, PaymentIntent and client secret)."""
    checkout = gateway_of(ctx).request("GET", f"/api/v1/admin/invoices/{invoice_id}/checkout")
    if as_json:
        typer.echo(json.dumps(checkout, indent=2))
        return
    prefill = checkout["prefill"]
    rows = [{"option": "key", "value": checkout["key_id"]}, {"option": "order_id", "value": checkout["order_id"]},
            *([{"option": "client_secret", "value": checkout["client_secret"]}] if checkout.get("client_secret")
              else []),
            {"option": "amount", "value": f"{checkout['amount_minor']} ({_amount(checkout)} {checkout['currency']})"},
            {"option": "currency", "value": checkout["currency"]}, {"option": "name", "value": checkout["name"]},
            {"option": "description", "value": checkout["description"]},
            {"option": "prefill", "value": ", ".join(f"{k}={v}" for k, v in prefill.items() if v)}]
    show(rows, ["option", "value"], False, f"Checkout for invoice {checkout['invoice_number'] or invoice_id}")
    if checkout["checkout_url"]:
        console.print(f"Pay it at {checkout['checkout_url']}", highlight=False)


@payments.command("provider")
def payments_provider(
    ctx: typer.Context,
    organisation_id: str,
    set_: Annotated[str, typer.Option("--set", help="Collect its invoices issued from now on through razorpay or "
                                                    "stripe")] = "",
    clear: Annotated[bool, typer.Option("--clear", help="Forget its choice: the default provider applies again")]
    = False,
    as_json: JsonOption = False,
) -> None:
    """Which provider an organisation's invoices are collected through; --set or --clear to change it."""
    if set_ and clear:
        raise CliError("--set and --clear together: choose one")
    if set_ and set_ not in ("razorpay", "stripe"):
        raise CliError(f"--set must be razorpay or stripe; not {set_!r}")
    path = f"/api/v1/admin/organisations/{organisation_id}/payment-provider"
    gateway = gateway_of(ctx)
    if set_:
        found = gateway.request("PUT", path, json={"provider": set_})
    elif clear:
        found = gateway.request("DELETE", path)
    else:
        found = gateway.request("GET", path)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    whose = "its own choice" if found["own"] else "the default"
    line = f"Organisation {organisation_id} collects through {found['provider']} ({whose})"
    if found.get("available"):
        line += f"; configured here: {', '.join(found['available'])}"
    console.print(line, highlight=False)


@payments.command("link")
def payments_link(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """A payment link for what an invoice has due, to send the customer: the invoice's open link if it has one,
    else a new one made at Razorpay."""
    response = gateway_of(ctx).send("POST", f"/api/v1/admin/invoices/{invoice_id}/payment-link",
                                    timeout=LINK_TIMEOUT_SECONDS)
    link = response.json()
    if as_json:
        typer.echo(json.dumps(link, indent=2))
        return
    made = "Payment link made" if response.status_code == 201 else "The invoice's open payment link (made before)"
    expires = f", expires {link['expires_at']}" if link["expires_at"] else ""
    console.print(f"{made} for {_amount(link)} {link['currency']}: {link['short_url']}{expires}", highlight=False)


@payments.command("record")
def payments_record(
    ctx: typer.Context,
    invoice_id: str,
    amount: Annotated[str, typer.Option(help="Received, in the currency's units: 1000.00 (INR), 1500 (JPY)")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code of what was received")],
    method: Annotated[str, typer.Option(help="bank_transfer, cheque or cash")],
    reference: Annotated[str, typer.Option(help="The bank's UTR, the cheque number...: unique per invoice")],
    note: Annotated[str, typer.Option(help="Anything the next reader should know")] = "",
    received_at: Annotated[datetime | None, typer.Option(help="When it was received (UTC if no zone); default "
                                                              "now")] = None,
    as_json: JsonOption = False,
) -> None:
    """Record money received outside Razorpay against an invoice. Recording the same reference again changes
    nothing and shows the payment recorded first, so it is safe to rerun."""
    if method not in METHODS:
        raise CliError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    body: dict[str, Any] = {"amount": amount, "currency": currency, "method": method, "reference": reference,
                            "note": note}
    if received_at is not None:
        body["received_at"] = received_at.isoformat() + ("" if received_at.tzinfo else "Z")
    response = gateway_of(ctx).send("POST", f"/api/v1/admin/invoices/{invoice_id}/offline-payments", json=body)
    payment = response.json()
    if as_json:
        typer.echo(json.dumps(payment, indent=2))
        return
    title = (f"Already recorded: reference {reference} is payment {payment['id']}; nothing new was recorded"
             if _replayed(response) else f"Payment {payment['id']} recorded")
    show([payment_row(payment)], PAYMENT_COLUMNS, False, title)
    console.print(f"See the invoice's collection with `billing payments invoice {invoice_id}`.", highlight=False)


@payments.command("webhooks")
def payments_webhooks(
    ctx: typer.Context,
    event_type: Annotated[str, typer.Option(help="Only this type, e.g. payment.captured")] = "",
    limit: Annotated[int, typer.Option(help="How many of the latest", min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest provider webhooks as payments processed them (one per provider event id), newest first."""
    params: dict[str, Any] = {"page_size": limit, **({"event_type": event_type} if event_type else {})}
    rows = gateway_of(ctx).request("GET", "/api/v1/admin/webhook-events", params=params)["data"]
    show(rows, WEBHOOK_COLUMNS, as_json, f"{len(rows)} latest webhook event(s)")


@refunds.command("create")
def refunds_create(
    ctx: typer.Context,
    payment_id: str,
    reason: Annotated[str, typer.Option(help="Why the money goes back; kept on the refund")],
    amount: Annotated[str, typer.Option(help="In the payment's currency units, e.g. 250.00; default everything "
                                             "not yet refunded")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key; default a new one, printed so a retry "
                                                      "can pass it")] = "",
    as_json: JsonOption = False,
) -> None:
    """Refund all or part of a captured payment. Rerun with the printed --idempotency-key after a failure or a
    timeout: the refund is then made at most once."""
    key = idempotency_key or f"cli-refund-{uuid.uuid4().hex}"
    body: dict[str, Any] = {"reason": reason, **({"amount": amount} if amount else {})}
    try:
        response = gateway_of(ctx).send("POST", f"/api/v1/admin/payments/{payment_id}/refunds", json=body,
                                        headers={"Idempotency-Key": key})
    except CliError as error:
        # Whether the refund was made is unknown after a timeout: the key is how a retry finds out.
        raise CliError(f"{error} (retry with --idempotency-key {key}: a refund it made is not made twice)") from None
    refund = response.json()
    if as_json:
        typer.echo(json.dumps(refund, indent=2))
        return
    title = (f"Already requested with this key: refund {refund['id']}" if _replayed(response)
             else f"Refund {refund['id']} requested")
    show([refund_row(refund)], REFUND_COLUMNS, False, title)
    console.print(f"Idempotency key: {key} (pass --idempotency-key {key} to retry safely)", highlight=False)


@refunds.command("list")
def refunds_list(
    ctx: typer.Context,
    payment: Annotated[str, typer.Option("--payment", "--payment-id", help="Only this payment's")] = "",
    invoice: Annotated[str, typer.Option("--invoice", "--invoice-id", help="Only this invoice's")] = "",
    as_json: JsonOption = False,
) -> None:
    """List refunds, newest first, with their status at the provider."""
    params = {name: value for name, value in (("payment_id", payment), ("invoice_id", invoice)) if value}
    rows = list_all(gateway_of(ctx), "/api/v1/admin/refunds", params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([refund_row(r) for r in rows], REFUND_COLUMNS, False, f"{len(rows)} refund(s)")


def review_row(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "amount": _amount(item)}


@review.callback()
def review_list(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Resolved ones too")] = False,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation's")] = "",
    as_json: JsonOption = False,
) -> None:
    """Payments and refunds that settlement could not apply on its own (a void or unknown invoice, another
    currency, an unreadable event) or applied with an excess (over-payment, over-refund), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    params = {"state": "all" if every else "open", **({"organisation_id": organisation} if organisation else {})}
    rows = list_all(gateway_of(ctx), "/api/v1/admin/review-items", params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([review_row(i) for i in rows], RESOLVED_REVIEW_COLUMNS if every else REVIEW_COLUMNS, False,
         f"{len(rows)} {'review item(s)' if every else 'open review item(s)'}")
    if rows and not every:
        console.print("Close one, once dealt with, with `billing payments review resolve ID --note ...`.",
                      highlight=False)


@review.command("resolve")
def review_resolve(
    ctx: typer.Context,
    review_item_id: str,
    note: Annotated[str, typer.Option(help="What was done about it, e.g. 'refunded the excess as rfd_123'")],
    as_json: JsonOption = False,
) -> None:
    """Close a review item, saying what was done. Resolving it again keeps the first resolution."""
    item = gateway_of(ctx).request("POST", f"/api/v1/admin/review-items/{review_item_id}/resolve",
                                   json={"resolution": note})
    if as_json:
        typer.echo(json.dumps(item, indent=2))
        return
    show([review_row(item)], RESOLVED_REVIEW_COLUMNS, False, f"Review item {item['id']} resolved")
