"""Seeding the invoice-close benchmark: organisations, one plan, subscriptions, an exchange rate, and a month of
usage on five metrics per organisation.

The plan and the exchange rate go through invoicing's gRPC API. Organisations and subscriptions go, by default,
straight into invoicing's tables (COPY, the rows CreateOrganisation and CreateSubscription write), because
through gRPC 10,000 of each take one to three minutes on this machine (depending on its load); ``--seed grpc``
sends them through the API instead (concurrent calls; creation times then set back in SQL, as the integration
tests do, so that organisations can be subscribed from the start of the billed month). Metering's metrics and
usage are written in SQL straight into its ``metrics``, ``usage_buckets`` and ``usage_days`` tables (the days
rolled up from the buckets by the query metering's migration backfills with): pushing millions of events through
ingest and JetStream would measure ingest again, and the close reads only buckets and days. By default three
buckets per organisation and metric; ``dense`` fills every quarter hour of each organisation's month instead
(2,976 buckets and 31 days per metric for October), the shape of continuous traffic. Seeding is timed on its own
and is not part of the close's figure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from bench.stack import channel as stack_channel
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing_runtime.ids import new_id

PROJECT = "prj_bench_invoices"
EXCHANGE_RATE = "0.0119"  # 1 INR = 0.0119 USD

# Five metrics, each priced by a different charge model (metric code, aggregation, charge).
METRICS: tuple[tuple[str, str], ...] = (
    ("api.calls", "sum"),
    ("llm.tokens", "sum"),
    ("storage.gb_hours", "sum"),
    ("sms.sent", "count"),
    ("payments.amount", "sum"),
)

PLAN_TERMS = {
    "currency": "INR",
    "base_fee": "999",
    "charges": [
        {
            "metric_code": "api.calls",
            "display_name": "API calls",
            "charge": {
                "model": "CHARGE_MODEL_GRADUATED",
                "tiers": [{"up_to": "1000", "unit_price": "0"}, {"up_to": "10000", "unit_price": "0.05"},
                          {"unit_price": "0.02"}],
            },
        },
        {
            "metric_code": "llm.tokens",
            "display_name": "LLM tokens",
            "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.0004", "minimum_amount": "50"},
        },
        {
            "metric_code": "storage.gb_hours",
            "display_name": "Storage",
            "charge": {
                "model": "CHARGE_MODEL_VOLUME",
                "tiers": [{"up_to": "1000", "unit_price": "0.10"}, {"up_to": "10000", "unit_price": "0.08"},
                          {"unit_price": "0.05", "flat_fee": "100"}],
            },
        },
        {
            "metric_code": "sms.sent",
            "display_name": "SMS",
            "charge": {"model": "CHARGE_MODEL_PACKAGE", "package_size": "100", "package_price": "25",
                       "package_rounding": "PACKAGE_ROUNDING_UP", "free_units": "50"},
        },
        {
            "metric_code": "payments.amount",
            "display_name": "Payment processing",
            "charge": {"model": "CHARGE_MODEL_PERCENTAGE", "rate": "2.5", "maximum_amount": "25000"},
        },
    ],
}


@dataclass(frozen=True)
class Customer:
    """Billing details of one kind of organisation in the mix."""

    kind: str
    currency: str
    country: str
    state_code: str
    gstin: str
    timezone: str


# Ten in a cycle: seven in Karnataka (the supplier's state: CGST + SGST), two elsewhere in India (IGST), one
# abroad billed in USD (zero-rated export, prices converted at the stored rate).
MIX: tuple[Customer, ...] = (
    *[Customer("karnataka", "INR", "IN", "29", "29ABCDE1234F1ZW", "Asia/Kolkata")] * 5,
    *[Customer("karnataka", "INR", "IN", "29", "", "Asia/Kolkata")] * 2,
    Customer("other state", "INR", "IN", "27", "", "Asia/Kolkata"),
    Customer("other state", "INR", "IN", "07", "", "Asia/Kolkata"),
    Customer("abroad", "USD", "US", "", "", "America/New_York"),
)


@dataclass
class Seeded:
    period_key: str
    organisation_ids: list[str]
    kinds: dict[str, int]
    plan_version_id: str = ""
    bucket_rows: int = 0
    day_rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def previous_month(today: date) -> tuple[date, str]:
    """The first day of the month before ``today``'s, and its period key."""
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return first, f"{first:%Y-%m}"


async def seed(
    invoicing_address: str, database_url: str, organisations: int, metrics: int, say: Callable[[str], None],
    *, through: str = "sql", concurrency: int = 16, dense: bool = False,
) -> Seeded:
    """Everything the close needs, for ``organisations`` organisations with usage on ``metrics`` metrics (in every
    quarter hour of the month with ``dense``).

    The plan and the exchange rate go through gRPC; organisations and subscriptions too with ``through="grpc"``
    (about 500 and 260 a second on a quiet machine here, a third of that under load), else straight into
    invoicing's tables (COPY)."""
    loop = asyncio.get_running_loop()
    # A day back first: on the 1st (UTC) the previous month has not ended yet west of UTC.
    month, period_key = previous_month((datetime.now(UTC) - timedelta(days=1)).date())
    seeded = Seeded(period_key, [], {})
    async with stack_channel(invoicing_address) as channel:
        stub = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        started = loop.time()
        terms = dict(PLAN_TERMS, charges=PLAN_TERMS["charges"][:metrics])
        plan = await stub.CreatePlan(pb.CreatePlanRequest(
            code=f"bench-{new_id('p')[-8:].lower()}", name="Bench", terms=json_format.ParseDict(terms, pb.PlanTerms())
        ))
        seeded.plan_version_id = plan.plan.latest_version.id
        effective = Timestamp(seconds=int(datetime(month.year, month.month, 1, tzinfo=UTC).timestamp()) - 86_400)
        await stub.CreateExchangeRate(pb.CreateExchangeRateRequest(
            base_currency="INR", quote_currency="USD", rate=EXCHANGE_RATE, source="bench desk",
            effective_time=effective,
        ))
        customers = [MIX[number % len(MIX)] for number in range(organisations)]
        for customer in customers:
            seeded.kinds[customer.kind] = seeded.kinds.get(customer.kind, 0) + 1
        # Organisations must exist before their subscriptions start: a month before the period.
        since = datetime(month.year, month.month, 1, tzinfo=UTC) - timedelta(days=31)
        if through == "grpc":
            await _accounts_through_grpc(stub, database_url, customers, month, since, seeded, concurrency, say)
        else:
            started = loop.time()
            await _accounts_in_sql(database_url, customers, month, since, seeded)
            seeded.seconds["organisations and subscriptions (SQL COPY)"] = loop.time() - started

    started = loop.time()
    if dense:
        zones = [customer.timezone for customer in customers]
        seeded.bucket_rows, seeded.day_rows = await _dense_usage(
            database_url, seeded.organisation_ids, zones, METRICS[:metrics], month, say
        )
        seeded.seconds["metering metrics, every usage bucket of the month and its days (SQL)"] = loop.time() - started
    else:
        seeded.bucket_rows, seeded.day_rows = await _usage(
            database_url, seeded.organisation_ids, METRICS[:metrics], month
        )
        seeded.seconds["metering metrics and usage buckets (SQL COPY) and days"] = loop.time() - started
    return seeded


async def _accounts_through_grpc(stub, database_url: str, customers: list[Customer], month: date, since: datetime,
                                 seeded: Seeded, concurrency: int, say: Callable[[str], None]) -> None:
    """CreateOrganisation and CreateSubscription for each, ``concurrency`` calls at a time; creation times set
    back in SQL in between, as the integration tests do."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    seeded.organisation_ids = await _concurrently(
        [_organisation_request(number, customer) for number, customer in enumerate(customers)],
        lambda request: _create_organisation(stub, request), concurrency, say, "organisations",
    )
    seeded.seconds["organisations (gRPC)"] = loop.time() - started
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE invoicing.organisations SET created_at = $1 WHERE id = ANY($2::text[])",
                           since, seeded.organisation_ids)
    finally:
        await conn.close()
    started = loop.time()
    await _concurrently(
        seeded.organisation_ids,
        lambda organisation_id: stub.CreateSubscription(pb.CreateSubscriptionRequest(
            organisation_id=organisation_id, plan_version_id=seeded.plan_version_id,
            start_date=f"{month:%Y-%m-%d}", idempotency_key=f"bench-{organisation_id}",
        )),
        concurrency, say, "subscriptions",
    )
    seeded.seconds["subscriptions (gRPC)"] = loop.time() - started


async def _accounts_in_sql(database_url: str, customers: list[Customer], month: date, since: datetime,
                           seeded: Seeded) -> None:
    """The rows CreateOrganisation and CreateSubscription would write: an organisation, an active subscription
    on the plan version from the first of the month in the organisation's zone, and its open phase."""
    now = datetime.now(UTC)
    organisation_rows, subscription_rows, phase_rows = [], [], []
    for number, customer in enumerate(customers):
        organisation_id, subscription_id = new_id("org"), new_id("sub")
        organisation_rows.append((
            organisation_id, f"Bench Customer {number:05d}", f"billing+{number}@customer.example", customer.currency,
            customer.country, customer.state_code, customer.gstin, customer.timezone, since,
        ))
        subscription_rows.append((subscription_id, organisation_id, 1, "active", False, now))
        starts_at = datetime(month.year, month.month, 1, tzinfo=ZoneInfo(customer.timezone)).astimezone(UTC)
        phase_rows.append((subscription_id, starts_at, seeded.plan_version_id))
        seeded.organisation_ids.append(organisation_id)
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "organisations", schema_name="invoicing", records=organisation_rows,
                columns=["id", "name", "billing_email", "billing_currency", "country", "state_code", "gstin",
                         "timezone", "created_at"],
            )
            await conn.copy_records_to_table(
                "subscriptions", schema_name="invoicing", records=subscription_rows,
                columns=["id", "organisation_id", "billing_anchor_day", "state", "cancel_at_period_end",
                         "created_at"],
            )
            await conn.copy_records_to_table(
                "subscription_phases", schema_name="invoicing", records=phase_rows,
                columns=["subscription_id", "starts_at", "plan_version_id"],
            )
    finally:
        await conn.close()


def _organisation_request(number: int, customer: Customer) -> pb.CreateOrganisationRequest:
    return pb.CreateOrganisationRequest(
        name=f"Bench Customer {number:05d}", billing_email=f"billing+{number}@customer.example",
        billing_currency=customer.currency, country=customer.country, state_code=customer.state_code,
        gstin=customer.gstin, timezone=customer.timezone, idempotency_key=f"bench-org-{number}",
    )


async def _create_organisation(stub, request: pb.CreateOrganisationRequest) -> str:
    return (await stub.CreateOrganisation(request)).organisation.id


async def _concurrently(items, call, concurrency: int, say: Callable[[str], None], what: str) -> list:
    """``call(item)`` for every item, ``concurrency`` at a time; results in the items' order."""
    results: list = [None] * len(items)
    position = 0
    step = max(1, len(items) // 4)

    async def worker() -> None:
        nonlocal position
        while position < len(items):
            index, position = position, position + 1
            results[index] = await call(items[index])
            if (index + 1) % step == 0:
                say(f"    {index + 1:,} {what}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def _usage(database_url: str, organisation_ids: list[str], metrics: tuple[tuple[str, str], ...],
                 month: date) -> tuple[int, int]:
    """Metric definitions and three 15-minute usage buckets per organisation and metric, in the month, inside
    every organisation's period whatever its zone (days 5, 15 and 25 at 12:00 UTC)."""
    rng = random.Random(4)
    now = datetime.now(UTC)
    metric_rows = [
        (new_id("met"), organisation_id, code, code, "", aggregation, "", "{}", now)
        for organisation_id in organisation_ids for code, aggregation in metrics
    ]
    days = [datetime(month.year, month.month, day, 12, tzinfo=UTC) for day in (5, 15, 25)]
    bucket_rows = []
    for organisation_id in organisation_ids:
        for code, _ in metrics:
            for bucket_start in days:
                if rng.random() < 0.05:
                    continue  # some organisations used a metric on fewer days
                count = rng.randint(1, 800)
                value = _value(code, count, rng)
                average = (value / count).quantize(Decimal("0.000001"))
                bucket_rows.append((
                    organisation_id, code, bucket_start, PROJECT, count, value, average, average, bucket_start,
                    bucket_start + timedelta(minutes=14), f"evt_{rng.getrandbits(64):016x}", average,
                ))
    conn = await asyncpg.connect(database_url)
    try:
        await _copy_metrics(conn, metric_rows)
        await conn.copy_records_to_table(
            "usage_buckets", schema_name="metering", records=bucket_rows,
            columns=["organisation_id", "metric", "bucket_start", "project_id", "event_count", "value_sum",
                     "value_min", "value_max", "first_time", "latest_time", "latest_event_id", "latest_value"],
        )
        day_rows = await _days_from_buckets(conn, organisation_ids)
        await _analyze(conn)
    finally:
        await conn.close()
    return len(bucket_rows), day_rows


async def _copy_metrics(conn: asyncpg.Connection, metric_rows: list[tuple]) -> None:
    await conn.copy_records_to_table(
        "metrics", schema_name="metering", records=metric_rows,
        columns=["id", "organisation_id", "code", "name", "unit", "aggregation", "unique_dimension", "filters",
                 "created_at"],
    )


async def _analyze(conn: asyncpg.Connection) -> None:
    await conn.execute("ANALYZE metering.metrics; ANALYZE metering.usage_buckets; ANALYZE metering.usage_days;"
                       " ANALYZE invoicing.organisations; ANALYZE invoicing.subscriptions;"
                       " ANALYZE invoicing.subscription_phases")


def _days_query() -> str:
    """The roll-up of buckets into UTC days with which metering's migration 0003 backfills ``usage_days``: the day
    rows the consumer would have folded from the same events."""
    path = Path(__file__).parents[1] / "services/metering/migrations/versions/0003_usage_days.py"
    spec = importlib.util.spec_from_file_location("metering_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DAYS_FROM_BUCKETS


async def _days_from_buckets(conn: asyncpg.Connection, organisation_ids: list[str]) -> int:
    """Day rows for the organisations' buckets; how many."""
    status = await conn.execute(
        f"INSERT INTO metering.usage_days SELECT * FROM ({_days_query()}) d WHERE organisation_id = ANY($1::text[])",
        organisation_ids,
    )
    return int(status.split()[-1])


# Every quarter hour of [start, end) for each organisation and metric: 1-13 events a bucket (varying with the
# hour), each worth the metric's unit, so a bucket's sum is count x unit. Generated in PostgreSQL: the 148.8 million
# rows of 10,000 organisations x 5 metrics x 2,976 quarter hours would take far longer through COPY from Python.
_DENSE_BUCKETS = """
    INSERT INTO metering.usage_buckets (organisation_id, metric, bucket_start, project_id, event_count, value_sum,
        value_min, value_max, first_time, latest_time, latest_event_id, latest_value)
    SELECT o.id, m.code, b, $6, c.n, c.n * m.unit, m.unit, m.unit, b, b + INTERVAL '14 minutes',
        'evt_' || to_char(b AT TIME ZONE 'UTC', 'YYYYMMDDHH24MI'), m.unit
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS o(id, s, e)
    CROSS JOIN unnest($4::text[], $5::numeric[]) AS m(code, unit)
    CROSS JOIN LATERAL generate_series(o.s, o.e - INTERVAL '15 minutes', INTERVAL '15 minutes') AS b
    CROSS JOIN LATERAL (SELECT 1 + (extract(epoch FROM b)::bigint / 900) % 13 AS n) AS c
"""
# What one event is worth per metric in the dense month (sms.sent counts events).
_DENSE_UNITS = {"api.calls": "3", "llm.tokens": "180", "storage.gb_hours": "0.25", "sms.sent": "1",
                "payments.amount": "412.5"}


async def _dense_usage(database_url: str, organisation_ids: list[str], zones: list[str],
                       metrics: tuple[tuple[str, str], ...], month: date, say: Callable[[str], None],
                       chunk: int = 250, connections: int = 2) -> tuple[int, int]:
    """Metric definitions, a bucket in every quarter hour of each organisation's month (in its zone) for every
    metric, and the day rows rolled up from them, ``chunk`` organisations per statement on ``connections``
    connections at once; (bucket rows, day rows)."""
    now = datetime.now(UTC)
    next_month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    periods = {
        zone: (datetime(month.year, month.month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC),
               datetime(next_month.year, next_month.month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC))
        for zone in set(zones)
    }
    codes = [code for code, _ in metrics]
    units = [Decimal(_DENSE_UNITS[code]) for code in codes]
    metric_rows = [
        (new_id("met"), organisation_id, code, code, "", aggregation, "", "{}", now)
        for organisation_id in organisation_ids for code, aggregation in metrics
    ]
    chunks = [list(range(start, min(start + chunk, len(organisation_ids))))
              for start in range(0, len(organisation_ids), chunk)]
    totals = [0, 0]
    done = 0

    async def worker() -> None:
        nonlocal done
        conn = await asyncpg.connect(database_url)
        try:
            while chunks:
                numbers = chunks.pop(0)
                ids = [organisation_ids[n] for n in numbers]
                async with conn.transaction():
                    status = await conn.execute(
                        _DENSE_BUCKETS, ids, [periods[zones[n]][0] for n in numbers],
                        [periods[zones[n]][1] for n in numbers], codes, units, PROJECT,
                    )
                    totals[0] += int(status.split()[-1])
                    totals[1] += await _days_from_buckets(conn, ids)
                done += len(ids)
                if done % (10 * chunk) < chunk or not chunks:
                    say(f"    dense usage: {done:,} of {len(organisation_ids):,} organisations, "
                        f"{totals[0]:,} bucket rows")
        finally:
            await conn.close()

    conn = await asyncpg.connect(database_url)
    try:
        await _copy_metrics(conn, metric_rows)
        await asyncio.gather(*(worker() for _ in range(connections)))
        await _analyze(conn)
    finally:
        await conn.close()
    return totals[0], totals[1]


def _value(code: str, count: int, rng: random.Random) -> Decimal:
    """A bucket's sum for ``count`` events of the metric (count metrics: one per event)."""
    if code == "sms.sent":
        return Decimal(count)
    if code == "api.calls":
        return Decimal(count * rng.randint(1, 20))
    if code == "llm.tokens":
        return Decimal(count * rng.randint(50, 400))
    if code == "storage.gb_hours":
        return Decimal(rng.randint(1, 4_000_000)) / 1000
    return Decimal(count * rng.randint(100, 500_000)) / 100  # payments.amount, rupees and paise
