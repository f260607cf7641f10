"""The mesh table and credential checks (billing_runtime.mesh), and every service's table being complete."""

from __future__ import annotations

import importlib

import grpc
import pytest
from grpc_health.v1 import health_pb2

from billing_runtime import mesh
from billing_runtime.settings import ServiceSettings

TOKENS = {"ingest": "ingest-secret", "gateway": "gateway-secret", "operator": "operator-secret"}
TABLE = {
    **mesh.methods("billing.x.v1.X", {"Internal": {"ingest"}, "Admin": mesh.EDGE, "Events": mesh.API_KEY}),
    "/billing.x.v1.X/Open": mesh.PUBLIC,
}


def guard() -> mesh.Guard:
    return mesh.Guard(TABLE, mesh.parse_verifiers(mesh.format_verifiers(TOKENS)))


def test_an_allowed_caller_with_its_token_passes() -> None:
    assert guard().check("/billing.x.v1.X/Internal", "ingest:ingest-secret") is None
    assert guard().check("/billing.x.v1.X/Admin", "operator:operator-secret") is None


def test_no_credential_is_unauthenticated_and_says_what_to_present() -> None:
    refusal = guard().check("/billing.x.v1.X/Admin", None)
    assert refusal is not None and refusal.code == grpc.StatusCode.UNAUTHENTICATED
    assert refusal.details == "this method is for the billing mesh; present x-billing-mesh"


@pytest.mark.parametrize("header", ["gateway:wrong", "gateway:ingest-secret", "nobody:x", "gateway", "gateway:", ""])
def test_a_wrong_or_unknown_token_is_unauthenticated_without_echoing_it(header: str) -> None:
    refusal = guard().check("/billing.x.v1.X/Admin", header)
    assert refusal is not None and refusal.code == grpc.StatusCode.UNAUTHENTICATED
    assert "secret" not in refusal.details and "wrong" not in refusal.details


def test_a_known_caller_not_allowed_is_permission_denied() -> None:
    refusal = guard().check("/billing.x.v1.X/Internal", "gateway:gateway-secret")
    assert refusal is not None and refusal.code == grpc.StatusCode.PERMISSION_DENIED and refusal.caller == "gateway"


def test_public_and_api_key_methods_need_no_credential() -> None:
    for method in ("/billing.x.v1.X/Open", "/billing.x.v1.X/Events", "/grpc.health.v1.Health/Check",
                   "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"):
        assert guard().check(method, None) is None, method


def test_a_method_missing_from_the_table_is_refused_even_to_a_valid_caller() -> None:
    refusal = guard().check("/billing.x.v1.X/Forgotten", "operator:operator-secret")
    assert refusal is not None and refusal.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_verified_token_is_cached_and_a_wrong_one_is_not() -> None:
    checked = guard()
    checked.check("/billing.x.v1.X/Admin", "gateway:gateway-secret")
    checked.check("/billing.x.v1.X/Admin", "gateway:wrong")
    assert checked._verified == {"gateway:gateway-secret": "gateway"}


def test_verifiers_parse_and_reject_malformed_lists() -> None:
    text = mesh.format_verifiers({"a": "x", "b": "y"})
    assert mesh.parse_verifiers(f" {text},\n") == {"a": mesh.verifier("x"), "b": mesh.verifier("y")}
    for bad in ("a", "a=123", "=" + "0" * 64, "a=" + "g" * 64):
        with pytest.raises(ValueError, match="MESH_VERIFIERS"):
            mesh.parse_verifiers(bad)


def test_settings_read_the_shared_verifiers_and_refuse_a_malformed_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_VERIFIERS", mesh.format_verifiers({"gateway": "t"}))
    assert mesh.parse_verifiers(ServiceSettings(database_url="postgresql://x/y").mesh_verifiers) == {
        "gateway": mesh.verifier("t")}
    monkeypatch.setenv("MESH_VERIFIERS", "gateway=nothex")
    with pytest.raises(ValueError, match="MESH_VERIFIERS"):
        ServiceSettings(database_url="postgresql://x/y")


def test_the_identity_never_shows_its_token() -> None:
    assert "operator-secret" not in repr(mesh.Identity("operator", "operator-secret"))


def test_outgoing_metadata_carries_the_credential_and_the_actor() -> None:
    identity = mesh.Identity("gateway", "t")
    mesh.set_actor("admin-token", role="admin", organisation="org_1")
    try:
        assert dict(mesh.outgoing_metadata(identity)) == {
            "x-billing-mesh": "gateway:t", "x-billing-actor": "admin-token", "x-billing-actor-role": "admin",
            "x-billing-actor-organisation": "org_1"}
        assert mesh.current_actor() == mesh.Actor("admin-token", "admin", "org_1")
    finally:
        mesh.set_actor("")
    assert mesh.current_actor() is None
    assert mesh.outgoing_metadata(mesh.Identity("gateway", "")) == ()


SERVICES = {
    "ingest": ("billing.ingest.v1.ingest_pb2", "IngestService"),
    "metering": ("billing.metering.v1.metering_pb2", "MeteringService"),
    "invoicing": ("billing.invoicing.v1.invoicing_pb2", "InvoicingService"),
    "payments": ("billing.payments.v1.payments_pb2", "PaymentsService"),
    "notification": ("billing.notification.v1.notification_pb2", "NotificationService"),
    "gateway": ("billing.gateway.v1.access_pb2", "AccessService"),
}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_method_of_every_service_has_a_table_entry(name: str) -> None:
    definition = importlib.import_module(f"services.{name}.__main__").DEFINITION
    module, service = SERVICES[name]
    descriptor = importlib.import_module(module).DESCRIPTOR.services_by_name[service]
    assert mesh.missing_methods(definition.access, [descriptor]) == []
    declared = {f"/{descriptor.full_name}/{m.name}" for m in descriptor.methods}
    assert set(definition.access) == declared, "entries for methods the service does not have"
    for method, access in definition.access.items():
        if not isinstance(access, mesh.Open):
            assert mesh.EDGE <= access, f"{method}: the gateway and an operator reach every mesh method"
            assert access <= set(mesh.SERVICES) | {mesh.OPERATOR}, f"{method}: unknown caller"


def test_only_event_ingestion_is_open_to_api_key_holders_only_the_gateway_to_staff_and_nothing_is_public() -> None:
    opened = {method: access for name in SERVICES
              for method, access in importlib.import_module(f"services.{name}.__main__").DEFINITION.access.items()
              if isinstance(access, mesh.Open)}
    staff = {method for method, access in opened.items() if access is mesh.STAFF}
    assert staff and all(method.startswith("/billing.gateway.v1.AccessService/") for method in staff)
    assert {method: access for method, access in opened.items() if method not in staff} == {
        "/billing.ingest.v1.IngestService/IngestEvents": mesh.API_KEY,
        "/billing.ingest.v1.IngestService/StreamEvents": mesh.API_KEY}


def test_health_is_public_without_an_entry() -> None:
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]
    assert all(mesh.Guard({}, {}).check(f"/{health.full_name}/{m.name}", None) is None for m in health.methods)
