"""POST /api/v1/pricing/quote through the in-process gateway to the real invoicing service: worked examples of
the models with exact JSON numbers, rounding per currency, who may ask, and bad charges named by field."""

from __future__ import annotations

import httpx
import pytest

JSON = {"content-type": "application/json"}
QUOTE = "/api/v1/pricing/quote"


async def quote(http: httpx.AsyncClient, body: str | dict) -> dict:
    if isinstance(body, str):
        response = await http.post(QUOTE, content=body, headers=JSON)
    else:
        response = await http.post(QUOTE, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_graduated_with_json_numbers_and_a_breakdown_per_tier(admin_http):
    # 1,500 units: the first 1,000 at 0.10 = 100.00, the next 500 at 0.05 = 25.00; 125.00 in all.
    body = ('{"currency": "INR", "quantity": 1500, "charge": {"model": "graduated", "tiers": ['
            '{"up_to": 1000, "unit_price": 0.10, "flat_fee": 0}, {"up_to": 10000, "unit_price": 0.05}, '
            '{"up_to": null, "unit_price": 0.02}]}}')
    result = await quote(admin_http, body)
    assert (result["currency"], result["quantity"], result["billable_quantity"]) == ("INR", "1500", "1500")
    assert result["amount"].rstrip("0").rstrip(".") == "125"
    assert [(row["quantity"], row["unit_price"], row["from_units"], row["up_to"]) for row in result["breakdown"]] == [
        ("1000", "0.10", "0", "1000"), ("500", "0.05", "1000", "10000")]
    assert [row["amount"].rstrip("0").rstrip(".") for row in result["breakdown"]] == ["100", "25"]
    assert (result["usage_minor"], result["usage"], result["total_minor"], result["total"]) == (
        12500, "125.00", 12500, "125.00")
    assert (result["minimum_spend_minor"], result["maximum_cap_minor"]) == (0, 0)


async def test_percentage_prices_each_event_amount_read_exactly(admin_http):
    # 2.5 % of 100.50 = 2.5125 and of 2500.10 = 62.5025, plus 3 per event: 71.015 unrounded, 71.02 on the line.
    body = ('{"currency": "INR", "charge": {"model": "percentage", "rate": 2.5, "fixed_fee_per_event": 3}, '
            '"event_amounts": [100.50, "2500.10"]}')
    result = await quote(admin_http, body)
    assert result["amount"].rstrip("0") == "71.015"
    assert (result["usage_minor"], result["total"]) == (7102, "71.02")


@pytest.mark.parametrize(
    ("charge", "quantity", "usage", "minimum_spend", "maximum_cap", "total"),
    [
        # 1,000 x 0.05 = 50.00, brought up to the 200.00 minimum by a 150.00 line.
        ({"model": "per_unit", "unit_price": "0.05", "minimum_amount": "200"}, "1000", 5000, 15000, 0, "200.00"),
        # 1,000 x 1 = 1,000.00, capped at 500.00 by a -500.00 line.
        ({"model": "per_unit", "unit_price": "1", "maximum_amount": "500"}, "1000", 100000, 0, -50000, "500.00"),
        # 10,000 free units first: 2,500 x 0.05 = 125.00.
        ({"model": "per_unit", "unit_price": "0.05", "free_units": "10000"}, "12500", 12500, 0, 0, "125.00"),
        # 2,500,001 tokens is three started packages of a million: 3 x 150.
        ({"model": "package", "package_size": "1000000", "package_price": "150"}, "2500001", 45000, 0, 0,
         "450.00"),
    ],
)
async def test_minimum_maximum_free_units_and_packages(admin_http, charge, quantity, usage, minimum_spend,
                                                       maximum_cap, total):
    result = await quote(admin_http, {"currency": "INR", "charge": charge, "quantity": quantity})
    assert (result["usage_minor"], result["minimum_spend_minor"], result["maximum_cap_minor"], result["total"]) == (
        usage, minimum_spend, maximum_cap, total)


@pytest.mark.parametrize(("currency", "minor", "text"), [
    ("JPY", 2, "2"),  # 3 x 0.5 = 1.5 yen, half-up to 2
    ("KWD", 2, "0.002"),  # 3 x 0.0005 = 0.0015 dinar, half-up to 2 fils
    ("USD", 0, "0.00"),  # 3 x 0.001 = 0.003, rounds down to 0 cents
])
async def test_rounding_follows_the_currency_minor_units(admin_http, currency, minor, text):
    price = {"JPY": "0.5", "KWD": "0.0005", "USD": "0.001"}[currency]
    result = await quote(admin_http, {"currency": currency, "quantity": "3",
                                      "charge": {"model": "per_unit", "unit_price": price}})
    assert (result["total_minor"], result["total"]) == (minor, text)


async def test_a_project_key_may_quote_a_missing_revoked_or_wrong_key_may_not(gateway_url, admin_http, key_holder):
    body = {"currency": "INR", "quantity": "10", "charge": {"model": "per_unit", "unit_price": "2"}}
    assert (await quote(key_holder.http, body))["total"] == "20.00"
    async with httpx.AsyncClient(base_url=gateway_url) as anonymous:
        assert (await anonymous.post(QUOTE, json=body)).status_code == 401
        wrong = await anonymous.post(QUOTE, json=body, headers={"Authorization": "Bearer bk_not_a_key"})
        assert wrong.status_code == 401
        by_header = await anonymous.post(QUOTE, json=body, headers={"X-Api-Key": key_holder.api_key})
        assert by_header.status_code == 200
    keys = (await admin_http.get("/api/v1/admin/api-keys", params={"project_id": key_holder.project_id})).json()
    await admin_http.post(f"/api/v1/admin/api-keys/{keys['data'][0]['id']}/revoke")
    assert (await key_holder.http.post(QUOTE, json=body)).status_code == 403


def _graduated(*tiers: dict) -> dict:
    return {"model": "graduated", "tiers": list(tiers)}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"charge": _graduated({"up_to": "100", "unit_price": "1"}, {"up_to": "50", "unit_price": "1"})},
         "charge.tiers[1].up_to"),
        ({"charge": {"model": "per_unit", "unit_price": "-1"}}, "charge.unit_price"),
        ({"currency": "XYZ"}, "currency"),
        ({"quantity": "lots"}, "quantity"),
        ({"event_amounts": ["1", "abc"], "charge": {"model": "percentage", "rate": "1"}}, "event_amounts[1]"),
        ({"charge": {"model": "per_unit", "unit_price": "1", "rate": "2"}}, "charge.rate"),
        ({"charge": {"model": "per_unit", "unit_price": False}}, "charge.unit_price"),  # the gateway's own check
    ],
)
async def test_bad_quotes_are_400_naming_the_field(admin_http, change, field):
    body = {"currency": "INR", "quantity": "10", "charge": {"model": "per_unit", "unit_price": "2"}, **change}
    response = await admin_http.post(QUOTE, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field, response.json()
