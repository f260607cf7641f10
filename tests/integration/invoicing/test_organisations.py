"""InvoicingService over real gRPC, PostgreSQL and JetStream."""

from __future__ import annotations

import asyncio
import secrets

import grpc
import pytest
import sqlalchemy as sa

from billing.invoicing.v1 import events_pb2, invoicing_pb2
from billing_runtime.messaging import stream_name
from services.invoicing.adapters.tables import organisations
from tests.integration.helpers import error_field, expect_rpc_error, organisation_request


async def count_organisations(invoicing) -> int:
    async with invoicing.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(organisations))).scalar_one()


async def test_create_then_get_returns_the_normalised_organisation(invoicing_stub):
    created = await invoicing_stub.CreateOrganisation(
        organisation_request(name="  Tata Bytes  ", billing_currency="inr", gstin="29abcde1234f1zw")
    )
    assert created.created
    org = created.organisation
    assert org.id.startswith("org_")
    assert (org.name, org.billing_currency, org.gstin) == ("Tata Bytes", "INR", "29ABCDE1234F1ZW")
    fetched = await invoicing_stub.GetOrganisation(invoicing_pb2.GetOrganisationRequest(organisation_id=org.id))
    assert fetched.organisation == org


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"gstin": "29ABCDE1234F1Z5"}, "gstin"),  # wrong check character
        ({"gstin": "27AAPFU0939F1ZV"}, "gstin"),  # valid GSTIN, but of Maharashtra
        ({"billing_currency": "XYZ"}, "billing_currency"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"billing_email": "not-an-email"}, "billing_email"),
        ({"country": "QQ"}, "country"),
        ({"state_code": "77"}, "state_code"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
async def test_invalid_details_name_the_field_and_store_nothing(invoicing, invoicing_stub, overrides, field):
    before = await count_organisations(invoicing)
    error = await expect_rpc_error(
        invoicing_stub.CreateOrganisation(organisation_request(**overrides)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error_field(error) == field
    assert await count_organisations(invoicing) == before


async def test_get_unknown_organisation_is_not_found(invoicing_stub):
    await expect_rpc_error(
        invoicing_stub.GetOrganisation(invoicing_pb2.GetOrganisationRequest(organisation_id="org_missing")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_idempotency_key_returns_the_first_organisation(invoicing, invoicing_stub):
    key = secrets.token_hex(8)
    request = organisation_request(idempotency_key=key)
    first = await invoicing_stub.CreateOrganisation(request)
    again = await invoicing_stub.CreateOrganisation(request)
    assert first.created and not again.created
    assert again.organisation == first.organisation
    other = organisation_request(idempotency_key=key, name="Something Else")
    error = await expect_rpc_error(invoicing_stub.CreateOrganisation(other), grpc.StatusCode.ABORTED)
    assert error_field(error) == "idempotency_key"


async def test_concurrent_retries_with_one_key_create_one_organisation(invoicing, invoicing_stub):
    request = organisation_request(idempotency_key=secrets.token_hex(8))
    before = await count_organisations(invoicing)
    replies = await asyncio.gather(*(invoicing_stub.CreateOrganisation(request) for _ in range(8)))
    assert len({reply.organisation.id for reply in replies}) == 1
    assert sum(reply.created for reply in replies) == 1
    assert await count_organisations(invoicing) == before + 1


async def test_list_pages_through_every_organisation_once(invoicing_stub):
    for _ in range(3):
        await invoicing_stub.CreateOrganisation(organisation_request())
    seen, token = [], ""
    while True:
        page = await invoicing_stub.ListOrganisations(
            invoicing_pb2.ListOrganisationsRequest(page_size=2, page_token=token)
        )
        assert len(page.organisations) <= 2
        seen.extend(org.id for org in page.organisations)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 3
    assert seen == sorted(seen)  # oldest first


async def test_bad_page_token_is_invalid_argument(invoicing_stub):
    error = await expect_rpc_error(
        invoicing_stub.ListOrganisations(invoicing_pb2.ListOrganisationsRequest(page_token="../../etc")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "page_token"


async def test_creation_is_published_once_through_the_outbox(invoicing, invoicing_stub, nats_url):
    import nats
    from nats.js import api

    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        # From the stream's end before the creation: other tests share the stream, with any number of organisations.
        start = (await js.stream_info(stream_name("invoicing"))).state.last_seq + 1
        created = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation
        subscription = await js.subscribe(
            "billing.invoicing.v1.organisation.created", stream=stream_name("invoicing"), ordered_consumer=True,
            config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start),
        )
        found = None
        while True:
            try:
                message = await subscription.next_msg(timeout=2)
            except TimeoutError:
                break
            event = events_pb2.OrganisationCreated.FromString(message.data)
            if event.organisation.id == created.id:
                assert found is None, "the event was published twice"
                found = (event, message.headers)
        assert found is not None, "organisation.created never reached JetStream"
        event, headers = found
        assert headers["Nats-Msg-Id"] == event.event_id
        assert event.organisation == created
    finally:
        await client.close()
