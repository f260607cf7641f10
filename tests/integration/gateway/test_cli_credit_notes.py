"""billing credit-notes create | list | show | pdf, run with typer's CliRunner against the in-process gateway and
the real invoicing service."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.gateway.billing_setup import billing, issued_invoice


async def test_create_list_show_and_download_a_credit_note(gateway_url, admin_http, invoicing, tmp_path: Path):
    organisation_id, invoice = await issued_invoice(admin_http, invoicing)
    create = ("credit-notes", "create", invoice["id"], "--line", "1=9990", "--reason", "Down for a day",
              "--reason-code", "service_issue")
    status, out = await billing(gateway_url, *create, "--json")
    assert status == 0, out
    note = json.loads(out)[0]
    assert (note["total"], note["outcome"], note["invoice_number"]) == ("117.88", "credit", invoice["number"])
    status, again = await billing(gateway_url, *create, "--json")
    assert status == 0 and json.loads(again)[0]["id"] == note["id"]  # the derived key replays

    status, out = await billing(gateway_url, "credit-notes", "create", invoice["id"], "--line", "1=10000000",
                                "--reason", "too much")
    assert status == 1 and "lines[0].amount_minor" in out
    status, out = await billing(gateway_url, "credit-notes", "create", invoice["id"], "--reason", "neither")
    assert status == 1 and "--whole or at least one --line" in out

    status, table = await billing(gateway_url, "credit-notes", "list", "--invoice", invoice["id"])
    assert status == 0 and note["number"] in table and "117.88" in table
    status, out = await billing(gateway_url, "credit-notes", "list", "--organisation", organisation_id, "--json")
    assert [n["id"] for n in json.loads(out)] == [note["id"]]
    status, shown = await billing(gateway_url, "credit-notes", "show", note["id"])
    assert status == 0 and "GST reversed" in shown and "CGST" in shown.upper() and "Down for a day" in shown

    target = tmp_path / "cn.pdf"
    status, out = await billing(gateway_url, "credit-notes", "pdf", note["id"], "--out", str(target))
    assert status == 0, out
    assert target.read_bytes().startswith(b"%PDF")
