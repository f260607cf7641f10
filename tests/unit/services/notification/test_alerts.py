"""Fired alerts over fakes: decoding metering's AlertTriggered, the alert_triggered mail for each kind, the
alert.triggered webhook payload, and once per (event, recipient) / (event, endpoint)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from billing.metering.v1 import events_pb2 as metering_events
from billing.metering.v1 import metering_pb2
from billing_runtime.consumer import PoisonMessage
from billing_runtime.timestamps import to_timestamp
from services.notification.adapters import events
from services.notification.adapters.email_builder import Sender
from services.notification.adapters.templates import Branding, Templates, money_text
from services.notification.domain.alerts import AlertKind, AlertTriggered, FiredAlert, ThresholdBasis, quantity, span
from services.notification.domain.messages import MessageKind, MessageState, Recipients, RetrySchedule
from services.notification.domain.notice import Contact, Notice
from services.notification.domain.webhook_payload import alert_payload
from services.notification.domain.webhooks import check_event_types
from services.notification.entrypoints import consumers
from services.notification.service import endpoints, intake, queries, sending, webhook_sending
from tests.unit.services.notification.fakes import FakeDocuments, FakeMailer, FakeUnit, Store, any_of
from tests.unit.services.notification.webhook_fakes import FakeReceiver, FakeResolver

# Signatures carry a timestamp receivers check against their clock: use the real time.
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_runs(monkeypatch):
    """Receivers check a webhook's timestamp against their own clock (5 minutes' tolerance): NOW is the moment each
    test starts, not when the module was imported (a long suite runs other tests in between)."""
    monkeypatch.setattr(sys.modules[__name__], "NOW", datetime.now(UTC).replace(microsecond=0))
DOMAIN = "billing.example"
PERIOD = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
FIRED = datetime(2026, 12, 14, 9, 30, tzinfo=UTC)
CONTACT = Contact("org_1", "Acme Analytics", "Billing@Acme.example", "Asia/Kolkata")


def quota_alert(**changes: object) -> FiredAlert:
    alert = FiredAlert(
        alert_id="alf_1", rule_id="alr_1", organisation_id="org_1", kind=AlertKind.THRESHOLD,
        rule_name="API calls at 80 % of quota", metric_code="api_calls", basis=ThresholdBasis.QUOTA_PERCENT,
        level="80", threshold="800", value="801", event_id="evt_9", event_project_id="prj_1",
        event_time=FIRED - timedelta(seconds=2), period_start=PERIOD[0], period_end=PERIOD[1], fire_time=FIRED,
        levels=("80", "100", "120"))
    return replace(alert, **changes)


def absolute_alert() -> FiredAlert:
    return quota_alert(basis=ThresholdBasis.ABSOLUTE, rule_name="A million calls", level="1000000",
                       threshold="1000000", value="1000004", levels=("1000000",))


def spike_alert() -> FiredAlert:
    return FiredAlert(
        alert_id="alf_2", rule_id="alr_2", organisation_id="org_1", kind=AlertKind.SPIKE, rule_name="Spikes",
        metric_code="api_calls", project_id="prj_1", level="spike", value="5400", baseline="1200.5",
        period_start=datetime(2026, 12, 14, 9, tzinfo=UTC), period_end=datetime(2026, 12, 14, 10, tzinfo=UTC),
        fire_time=FIRED, window_seconds=3600, baseline_seconds=604800, factor="3", min_volume="1000")


def cost_alert() -> FiredAlert:
    return FiredAlert(
        alert_id="alf_3", rule_id="alr_3", organisation_id="org_1", kind=AlertKind.COST, rule_name="Budget",
        level="80", threshold="8000.00", value="8012.505", currency="INR", period_start=PERIOD[0],
        period_end=PERIOD[1], fire_time=FIRED, levels=("80", "100"), budget="10000", cost_basis="to_date")


def forecast_alert() -> FiredAlert:
    return replace(cost_alert(), alert_id="alf_4", rule_name="Forecast budget", cost_basis="forecast")


def triggered(alert: FiredAlert) -> AlertTriggered:
    return AlertTriggered(f"alert.triggered:{alert.alert_id}", alert)


def notice_of(alert: FiredAlert) -> Notice:
    return Notice(f"alert.triggered:{alert.alert_id}", MessageKind.ALERT_TRIGGERED, "", occurred_at=alert.fire_time,
                  details={**alert.details(), "customer_name": CONTACT.name, "time_zone": CONTACT.time_zone})


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def uow(store):
    return lambda: FakeUnit(store)


@pytest.fixture
def templates() -> Templates:
    return Templates(Branding())


# --- the mail, one kind at a time -----------------------------------------------------------------------------

def test_a_quota_percent_threshold_says_which_rule_the_level_and_what_it_meant(templates):
    rendered = templates.render(notice_of(quota_alert()), None)
    assert rendered.subject == "Alert: api_calls at 80 % of your quota (800 of 1,000)"
    assert "80 % of your api_calls quota: 800 of 1,000. Usage this period is 801." in rendered.text
    assert 'Your alert "API calls at 80 % of quota" fired.' in rendered.text
    # Times in the organisation's zone (IST is UTC+5:30).
    assert "Period: 01 Dec 2026 05:30 IST to 01 Jan 2027 05:30 IST" in rendered.text
    assert "Fired: 14 Dec 2026 15:00 IST" in rendered.text
    assert "Crossed by event evt_9 of project prj_1 at 14 Dec 2026 14:59 IST." in rendered.text
    assert "<strong>80 %</strong> of your <strong>api_calls</strong> quota: <strong>800</strong> of 1,000" in (
        rendered.html)
    assert "Hello Acme Analytics," in rendered.html
    assert "Rule: alr_1 (threshold, level 80 %)" in rendered.text


def test_an_absolute_threshold_states_the_amount_reached(templates):
    rendered = templates.render(notice_of(absolute_alert()), None)
    assert rendered.subject == "Alert: api_calls usage reached 1,000,000"
    assert "Your api_calls usage this period reached 1,000,000: it is 1,000,004." in rendered.text
    assert "quota" not in rendered.text and "Rule: alr_1 (threshold, level 1,000,000)" in rendered.text


def test_a_spike_compares_the_window_with_the_baseline(templates):
    rendered = templates.render(notice_of(spike_alert()), None)
    assert rendered.subject == "Alert: api_calls usage spike (5,400 in 1 hour)"
    assert ("Your api_calls usage spiked: 5,400 in 1 hour, against an average of 1,200.5 per hour over the "
            "previous 7 days (the rule fires above 3 times that average, from 1,000).") in rendered.text
    assert "Project: prj_1" in rendered.text and "Crossed by" not in rendered.text
    assert "Rule: alr_2 (spike)" in rendered.text
    assert "<strong>5,400</strong>" in rendered.html and "<strong>1,200.5</strong>" in rendered.html


def test_a_cost_alert_shows_money_with_its_currency_like_every_other_mail(templates):
    rendered = templates.render(notice_of(cost_alert()), None)
    assert rendered.subject == "Alert: projected cost at 80 % of your budget (INR 8,012.51)"
    assert ("80 % of your budget of INR 10,000.00: the projected invoice for this period is INR 8,012.51, at or "
            "over INR 8,000.00.") in rendered.text
    assert "<strong>INR 10,000.00</strong>" in rendered.html


def test_a_low_credit_alert_shows_the_balance_and_the_threshold_as_money(templates):
    alert = FiredAlert(
        alert_id="alf_5", rule_id="alr_5", organisation_id="org_1", kind=AlertKind.CREDIT_BALANCE,
        rule_name="Low credit", level="50000", threshold="500", value="199.99", currency="INR",
        period_start=PERIOD[0], period_end=PERIOD[1], fire_time=FIRED)
    rendered = templates.render(notice_of(alert), None)
    assert rendered.subject == "Alert: prepaid credit balance low (INR 199.99)"
    assert "Your prepaid credit balance is INR 199.99, below INR 500.00." in rendered.text
    assert "(credit_balance)" in rendered.text  # no level: the threshold says it
    assert "<strong>INR 199.99</strong>" in rendered.html


def test_a_forecast_cost_alert_says_it_is_the_forecast_of_the_period_s_end(templates):
    rendered = templates.render(notice_of(forecast_alert()), None)
    assert rendered.subject == "Alert: forecast cost at 80 % of your budget (INR 8,012.51)"
    assert ("80 % of your budget of INR 10,000.00: at the current rate of usage, the invoice for this period is "
            "forecast at INR 8,012.51 by its end, at or over INR 8,000.00.") in rendered.text
    assert "forecast at <strong>INR 8,012.51</strong> by its end" in rendered.html


def test_what_the_organisation_wrote_is_escaped_in_html_and_kept_off_the_subject_line(templates):
    hostile = quota_alert(rule_name='<script>alert("x")</script>', metric_code="<b>calls</b>")
    notice = notice_of(hostile)
    notice = replace(notice, details={**notice.details, "customer_name": "<img src=x onerror=1>"})
    rendered = templates.render(notice, None)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<img" not in rendered.html and "<b>calls" not in rendered.html
    assert "\n" not in rendered.subject


def test_the_alert_survives_the_round_trip_through_the_stored_message():
    for alert in (quota_alert(), absolute_alert(), spike_alert(), cost_alert(), forecast_alert()):
        assert FiredAlert.from_details(alert.details()) == alert
        assert Notice.from_record(json.loads(json.dumps(notice_of(alert).record()))) == notice_of(alert)


def test_a_quota_is_shown_only_when_it_comes_out_exact():
    assert quota_alert().quota() == Decimal(1000)
    assert quota_alert(level="120", threshold="1200").quota() == Decimal(1000)
    assert quota_alert(level="33", threshold="100").quota() is None
    assert quota_alert(level="0").quota() is None
    assert absolute_alert().quota() is None


def test_figures_for_reading():
    assert quantity("1000000") == "1,000,000" and quantity("1234.50") == "1,234.5" and quantity("2E+3") == "2,000"
    assert quantity("0") == "0" and quantity("not a number") == "not a number"
    assert span(3600) == "1 hour" and span(604800) == "7 days" and span(5400) == "90 minutes" and span(0) == ""
    assert money_text("8012.505", "INR") == "INR 8,012.51" and money_text("5000", "JPY") == "JPY 5,000"
    assert money_text("1.2345", "BHD") == "BHD 1.235"


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**15, max_value=10**15, places=6))
def test_grouping_never_changes_the_number(number):
    assert Decimal(quantity(str(number)).replace(",", "")) == number


# --- the webhook payload -----------------------------------------------------------------------------------------

def test_the_payload_carries_the_fired_level_and_the_rule_and_leaves_out_what_does_not_apply():
    payload = alert_payload("alert.triggered:alf_1", quota_alert(), NOW)
    assert payload["type"] == "alert.triggered" and payload["timestamp"] == FIRED.isoformat()
    data = payload["data"]
    assert (data["event_id"], data["organisation_id"]) == ("alert.triggered:alf_1", "org_1")
    assert data["alert"] == {
        "id": "alf_1", "kind": "threshold", "metric_code": "api_calls", "level": "80", "threshold": "800",
        "value": "801", "event": {"id": "evt_9", "project_id": "prj_1",
                                  "time": (FIRED - timedelta(seconds=2)).isoformat()},
        "period_start": PERIOD[0].isoformat(), "period_end": PERIOD[1].isoformat(), "fire_time": FIRED.isoformat()}
    assert data["rule"] == {"id": "alr_1", "name": "API calls at 80 % of quota", "kind": "threshold",
                            "metric_code": "api_calls", "basis": "quota_percent", "levels": ["80", "100", "120"]}


def test_spike_and_cost_payloads_carry_their_own_figures():
    spike = alert_payload("e", spike_alert(), NOW)["data"]
    assert (spike["alert"]["value"], spike["alert"]["baseline"], spike["alert"]["project_id"]) == (
        "5400", "1200.5", "prj_1")
    assert "event" not in spike["alert"] and "currency" not in spike["alert"]
    assert {k: spike["rule"][k] for k in ("window_seconds", "baseline_seconds", "factor", "min_volume")} == {
        "window_seconds": 3600, "baseline_seconds": 604800, "factor": "3", "min_volume": "1000"}
    cost = alert_payload("e", cost_alert(), NOW)["data"]
    # Money as exact decimal text with its currency, never a float.
    assert (cost["alert"]["threshold"], cost["alert"]["value"], cost["alert"]["currency"]) == (
        "8000.00", "8012.505", "INR")
    assert (cost["rule"]["budget"], cost["rule"]["currency"], cost["rule"]["levels"]) == ("10000", "INR",
                                                                                         ["80", "100"])
    assert "metric_code" not in cost["rule"] and "basis" not in cost["rule"]
    assert cost["rule"]["cost_basis"] == "to_date" and "cost_basis" not in spike["rule"]
    assert alert_payload("e", forecast_alert(), NOW)["data"]["rule"]["cost_basis"] == "forecast"


def test_endpoints_may_subscribe_to_alert_triggered():
    assert check_event_types(["alert.triggered", "invoice.paid"]) == ("alert.triggered", "invoice.paid")


# --- decoding metering's event -------------------------------------------------------------------------------------

def _published(alert: FiredAlert) -> metering_events.AlertTriggered:
    return metering_events.AlertTriggered(
        event_id=f"alert.triggered:{alert.alert_id}",
        alert=metering_pb2.FiredAlert(
            id=alert.alert_id, rule_id=alert.rule_id, organisation_id=alert.organisation_id,
            kind=metering_pb2.ALERT_KIND_THRESHOLD, metric_code=alert.metric_code, level=alert.level,
            threshold=alert.threshold, value=alert.value, event_id=alert.event_id,
            event_project_id=alert.event_project_id, event_time=to_timestamp(alert.event_time),
            period_start=to_timestamp(alert.period_start), period_end=to_timestamp(alert.period_end),
            fire_time=to_timestamp(alert.fire_time), rule_name=alert.rule_name),
        rule=metering_pb2.AlertRule(
            id=alert.rule_id, organisation_id=alert.organisation_id, kind=metering_pb2.ALERT_KIND_THRESHOLD,
            name=alert.rule_name, metric_code=alert.metric_code, basis=metering_pb2.THRESHOLD_BASIS_QUOTA_PERCENT,
            levels=list(alert.levels)))


def test_metering_s_alert_triggered_decodes_into_the_fired_alert():
    decoded = events.decode(events.ALERT_TRIGGERED, _published(quota_alert()).SerializeToString())
    assert decoded.notice is None and decoded.alert == triggered(quota_alert())


def test_a_cost_alert_decodes_with_its_basis_the_to_date_one_before_bases_existed():
    published = _published(replace(forecast_alert(), event_time=FIRED))
    for message in (published.alert, published.rule):
        message.kind = metering_pb2.ALERT_KIND_COST
    published.alert.currency = "INR"
    published.rule.ClearField("basis")
    published.rule.budget = "10000"
    published.rule.cost_basis = metering_pb2.COST_BASIS_FORECAST
    decoded = events.decode(events.ALERT_TRIGGERED, published.SerializeToString()).alert
    assert decoded is not None and decoded.alert.cost_basis == "forecast"
    published.rule.ClearField("cost_basis")  # from a metering that knew no bases: they were all to date
    decoded = events.decode(events.ALERT_TRIGGERED, published.SerializeToString()).alert
    assert decoded is not None and decoded.alert.cost_basis == "to_date"


class FakeOrganisations:
    def __init__(self, contact: Contact | None = CONTACT) -> None:
        self.contact_ = contact
        self.asked: list[str] = []

    async def contact(self, organisation_id: str) -> Contact | None:
        self.asked.append(organisation_id)
        return self.contact_


async def test_the_consumer_records_an_alert_once_however_often_it_is_delivered(uow, store):
    organisations, woken = FakeOrganisations(), []
    handle, handle_batch = consumers._handlers(uow, DOMAIN, lambda: woken.append(1), None, organisations)
    msg = SimpleNamespace(subject=events.ALERT_TRIGGERED, data=_published(quota_alert()).SerializeToString())
    await handle(msg)
    await handle_batch([msg, msg])
    [message] = store.messages.values()
    assert (message.kind, message.recipient, message.invoice_id) == (
        MessageKind.ALERT_TRIGGERED, "billing@acme.example", "")
    assert organisations.asked == ["org_1", "org_1"] and woken == [1]


async def test_an_alert_without_an_organisation_is_poison(uow):
    handle, _ = consumers._handlers(uow, DOMAIN, lambda: None, None, FakeOrganisations())
    published = _published(quota_alert())
    published.alert.organisation_id = ""
    published.rule.organisation_id = ""
    with pytest.raises(PoisonMessage):
        await handle(SimpleNamespace(subject=events.ALERT_TRIGGERED, data=published.SerializeToString()))
    with pytest.raises(PoisonMessage):
        await handle(SimpleNamespace(subject=events.ALERT_TRIGGERED, data=b"\xff not protobuf"))


# --- recording and sending ---------------------------------------------------------------------------------------

@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver({"hooks.acme.example": ["93.184.216.34"]})


async def _endpoint(uow, resolver, types: tuple[str, ...], path: str):
    return await endpoints.create_endpoint(uow, resolver, False, organisation_id="org_1",
                                           url=f"https://hooks.acme.example/{path}", event_types=list(types),
                                           description="")


async def test_an_alert_is_mailed_once_to_an_organisation_never_invoiced_and_posted_to_subscribed_endpoints(
    uow, store, resolver
):
    everything = await _endpoint(uow, resolver, (), "all")
    alerts = await _endpoint(uow, resolver, ("alert.triggered",), "alerts")
    await _endpoint(uow, resolver, ("invoice.issued",), "invoices")
    assert await intake.record_alert(uow, triggered(cost_alert()), CONTACT, NOW, DOMAIN) == 3
    assert await intake.record_alert(uow, triggered(cost_alert()), CONTACT, NOW, DOMAIN) == 0  # redelivered
    assert {d.endpoint_id for d in store.deliveries.values()} == {everything.id, alerts.id}
    assert len({d.payload for d in store.deliveries.values()}) == 1
    assert all(d.event_type == "alert.triggered" for d in store.deliveries.values())

    mailer = FakeMailer()
    delivery = sending.Delivery(mailer, Templates(Branding()), FakeDocuments(),
                                Sender(unsubscribe_address="unsub@billing.example"), RetrySchedule())
    assert not store.invoices  # nothing to address it from but invoicing's answer
    assert await sending.send_due(uow, delivery, NOW) == 1
    [email] = mailer.sent
    assert email["To"] == "billing@acme.example" and email["Subject"].startswith("Alert: projected cost")
    assert "List-Unsubscribe" in email  # not transactional: an organisation may opt out of alerts
    assert not list(email.iter_attachments())
    message = any_of(store.messages)
    assert message.state is MessageState.SENT and message.subject == email["Subject"]
    rendered, attachments = await queries.preview(uow, Templates(Branding()), message.id)
    assert rendered.subject == email["Subject"] and attachments == []


async def test_the_posted_alert_verifies_with_the_receivers_library(uow, store, resolver):
    created = await _endpoint(uow, resolver, ("alert.triggered",), "alerts")
    await intake.record_alert(uow, triggered(spike_alert()), CONTACT, NOW, DOMAIN)
    receiver = FakeReceiver()
    posting = webhook_sending.WebhookSending(receiver, resolver, clock=lambda: NOW)
    assert await webhook_sending.send_due(uow, posting, NOW) == 1
    [(url, headers, body)] = receiver.requests
    assert url.endswith("/alerts")
    event = Webhook(created.secret).verify(body, headers)
    assert event["type"] == "alert.triggered" and event["data"]["alert"]["kind"] == "spike"


async def test_without_a_billing_email_only_the_webhooks_go_out(uow, store, resolver):
    await _endpoint(uow, resolver, (), "all")
    assert await intake.record_alert(uow, triggered(quota_alert()), None, NOW, DOMAIN) == 1
    assert await intake.record_alert(uow, triggered(spike_alert()), replace(CONTACT, billing_email=""), NOW,
                                     DOMAIN) == 1
    assert not store.messages and len(store.deliveries) == 2


async def test_an_organisation_that_opted_out_of_alerts_gets_them_recorded_as_suppressed(uow, store):
    store.recipients["org_1"] = Recipients("org_1", cc=("ops@acme.example",),
                                           opted_out=frozenset({MessageKind.ALERT_TRIGGERED}))
    await intake.record_alert(uow, triggered(quota_alert()), CONTACT, NOW, DOMAIN)
    message = any_of(store.messages)
    assert message.state is MessageState.SUPPRESSED and message.cc == ("ops@acme.example",)
