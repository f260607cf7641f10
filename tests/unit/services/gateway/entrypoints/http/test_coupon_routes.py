"""The coupon routes in front of a fake invoicing stub: what each asks invoicing, what it answers, what it audits,
who may call them, and invoicing's refusals passed through naming the body's field."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import FailedPrecondition, InvalidArgument
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

COUPON = pb.Coupon(id="cpn_1", code="LAUNCH20", name="Launch offer", percent_off="20",
                   duration=pb.COUPON_DURATION_REPEATING, duration_periods=3, times_redeemed=1)
REDEMPTION = pb.CouponRedemption(id="cpr_1", organisation_id="org_1", coupon=COUPON, start_period_key="2026-11",
                                 state=pb.COUPON_REDEMPTION_STATE_ACTIVE, periods_remaining=-1)


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def test_create_sends_exact_decimals_answers_the_coupon_and_is_audited_once(gateway):
    gateway.invoicing.answer("CreateCoupon", pb.CreateCouponResponse(coupon=COUPON, created=True),
                             pb.CreateCouponResponse(coupon=COUPON, created=False))
    body = ('{"code": "launch20", "name": "Launch offer", "percent_off": 12.5, "duration": "repeating", '
            '"duration_periods": 3, "expires_at": "2027-03-31T18:30:00Z"}')
    headers = {**ADMIN, "content-type": "application/json", "Idempotency-Key": "k1"}
    first = gateway.http.post("/api/v1/admin/coupons", headers=headers, content=body)
    assert first.status_code == 201, first.text
    assert first.json() | {"created_at": None} == {
        "id": "cpn_1", "code": "LAUNCH20", "name": "Launch offer", "percent_off": "20", "amount_off": None,
        "currency": "", "duration": "repeating", "duration_periods": 3, "plan_codes": [], "max_redemptions": None,
        "times_redeemed": 1, "expires_at": None, "archived_at": None, "created_at": None}
    sent = gateway.invoicing.requests["CreateCoupon"][0]
    assert (sent.percent_off, sent.amount_off, sent.duration, sent.idempotency_key) == (
        "12.5", "", pb.COUPON_DURATION_REPEATING, "k1")
    assert sent.expire_time.ToSeconds() > 0
    replay = gateway.http.post("/api/v1/admin/coupons", headers=headers, content=body)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert gateway.audited() == [("coupon.create", "cpn_1")]


def test_invoicings_refusal_names_the_body_field(gateway):
    gateway.invoicing.answer("CreateCoupon", InvalidArgument("is too late", field="expire_time"))
    response = gateway.http.post("/api/v1/admin/coupons", headers=ADMIN,
                                 json={"code": "X", "name": "X", "percent_off": "5", "duration": "once"})
    assert response.status_code == 400 and response.json()["field"] == "expires_at"
    assert gateway.audited() == []


def test_apply_list_and_remove_speak_for_the_organisation_in_the_path(gateway):
    gateway.invoicing.answer("ApplyCoupon", pb.ApplyCouponResponse(coupon_redemption=REDEMPTION, created=True))
    applied = gateway.http.post("/api/v1/admin/organisations/org_1/coupons", headers=ADMIN,
                                json={"coupon_code": "launch20", "start_period_key": "2026-11"})
    assert applied.status_code == 201, applied.text
    assert (applied.json()["state"], applied.json()["periods_remaining"]) == ("active", None)  # forever
    sent = gateway.invoicing.requests["ApplyCoupon"][0]
    assert (sent.organisation_id, sent.coupon_code, sent.start_period_key) == ("org_1", "launch20", "2026-11")
    gateway.invoicing.answer("ListOrganisationCoupons",
                             pb.ListOrganisationCouponsResponse(coupon_redemptions=[REDEMPTION]))
    listed = gateway.http.get("/api/v1/admin/organisations/org_1/coupons", headers=ADMIN).json()
    assert [r["id"] for r in listed["data"]] == ["cpr_1"]
    removed = pb.CouponRedemption(id="cpr_1", organisation_id="org_1", coupon=COUPON,
                                  state=pb.COUPON_REDEMPTION_STATE_REMOVED)
    gateway.invoicing.answer("RemoveCoupon", pb.RemoveCouponResponse(coupon_redemption=removed))
    response = gateway.http.delete("/api/v1/admin/organisations/org_1/coupons/cpr_1", headers=ADMIN)
    assert response.status_code == 200 and response.json()["state"] == "removed"
    assert gateway.invoicing.requests["RemoveCoupon"][0].coupon_redemption_id == "cpr_1"
    assert gateway.audited() == [("coupon.apply", "cpr_1"), ("coupon.remove", "cpr_1")]


def test_an_expired_coupon_is_422_and_nothing_is_audited(gateway):
    gateway.invoicing.answer("ApplyCoupon", FailedPrecondition("coupon OLD expired", field="coupon_code"))
    response = gateway.http.post("/api/v1/admin/organisations/org_1/coupons", headers=ADMIN,
                                 json={"coupon_code": "OLD"})
    assert response.status_code == 422 and response.json()["field"] == "coupon_code"
    assert gateway.audited() == []


def test_a_viewer_reads_coupons_but_cannot_write_them(gateway):
    viewer = gateway.staff("viewer")
    gateway.invoicing.answer("ListCoupons", pb.ListCouponsResponse(coupons=[COUPON]))
    assert gateway.http.get("/api/v1/admin/coupons", headers=viewer).status_code == 200
    for method, path in (("POST", "/api/v1/admin/coupons"), ("POST", "/api/v1/admin/coupons/cpn_1/archive"),
                         ("POST", "/api/v1/admin/organisations/org_1/coupons"),
                         ("DELETE", "/api/v1/admin/organisations/org_1/coupons/cpr_1")):
        response = gateway.http.request(method, path, headers=viewer, json={})
        assert response.status_code == 403, (method, path, response.text)
    assert "CreateCoupon" not in gateway.invoicing.requests and "ApplyCoupon" not in gateway.invoicing.requests
