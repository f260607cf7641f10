"""billing price-overrides set | list | clear, run with typer's CliRunner against the in-process gateway and the
real invoicing service."""

from __future__ import annotations

import json

from tests.integration.gateway.billing_setup import SEPTEMBER, billing, organisation, plan


async def test_set_list_and_clear_a_price_override(gateway_url, admin_http, invoicing):
    organisation_id = await organisation(admin_http, invoicing, since=SEPTEMBER)
    code = (await plan(admin_http))["code"]
    set_ = ("price-overrides", "set", "--organisation", organisation_id, "--plan", code, "--base-fee", "500",
            "--charge", 'api_calls={"model": "per_unit", "unit_price": "0.02"}', "--effective-date", "2026-10-01")
    status, out = await billing(gateway_url, *set_, "--json")
    assert status == 0, out
    first = json.loads(out)[0]
    assert (first["version"], first["base_fee"], first["charges"][0]["charge"]["unit_price"]) == (1, "500", "0.02")
    status, again = await billing(gateway_url, *set_, "--json")
    assert status == 0 and json.loads(again)[0]["id"] == first["id"]  # the derived key replays

    status, out = await billing(gateway_url, "price-overrides", "set", "--organisation", organisation_id, "--plan",
                                code, "--charge", 'gpu_hours={"model": "flat", "flat_amount": "1"}')
    assert status == 1 and "charges[0].metric_code" in out, out
    status, out = await billing(gateway_url, "price-overrides", "set", "--organisation", organisation_id, "--plan",
                                code, "--charge", "api_calls")
    assert status == 1 and "METRIC=JSON" in out

    status, out = await billing(gateway_url, "price-overrides", "clear", "--organisation", organisation_id, "--plan",
                                code, "--effective-date", "2026-11-01")
    assert status == 0 and "cleared from" in out and "(v2)" in out, out
    status, table = await billing(gateway_url, "price-overrides", "list", "--organisation", organisation_id)
    assert status == 0 and "2 price override version(s)" in table and "0.02 per unit" in table, table
    assert "cleared" in table
