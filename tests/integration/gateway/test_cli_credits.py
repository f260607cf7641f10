"""billing credits grant | balance | list | top-up | void, run with typer's CliRunner against the in-process gateway
and the real invoicing service."""

from __future__ import annotations

import json

from tests.integration.gateway.billing_setup import billing, organisation


async def test_grant_list_balance_top_up_and_void(gateway_url, admin_http, invoicing):
    organisation_id = await organisation(admin_http, invoicing)
    grant = ("credits", "grant", "--organisation", organisation_id, "--amount-minor", "50000", "--currency", "INR",
             "--description", "Welcome credit")
    status, out = await billing(gateway_url, *grant, "--json")
    assert status == 0, out
    granted = json.loads(out)[0]
    status, again = await billing(gateway_url, *grant, "--json")
    assert status == 0 and json.loads(again)[0]["id"] == granted["id"]  # the derived key replays
    status, out = await billing(gateway_url, "credits", "balance", "--organisation", organisation_id)
    assert status == 0 and "INR" in out and "500.00" in out, out
    status, out = await billing(gateway_url, "credits", "top-up", "--organisation", organisation_id,
                                "--amount-minor", "100000", "--currency", "INR")
    assert status == 0 and "available once it is paid" in out, out
    status, out = await billing(gateway_url, "credits", "list", "--organisation", organisation_id, "--json")
    assert status == 0
    assert sorted((g["source"], g["status"]) for g in json.loads(out)) == [
        ("granted", "available"), ("purchased", "pending")]
    status, out = await billing(gateway_url, "credits", "void", granted["id"], "--organisation", organisation_id,
                                "--reason", "test")
    assert status == 0 and f"Grant {granted['id']} voided" in out
    status, out = await billing(gateway_url, "credits", "grant", "--organisation", organisation_id,
                                "--amount-minor", "5", "--currency", "USD")
    assert status == 1 and "currency" in out
