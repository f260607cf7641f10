"""The catalog's use cases: plans and their versions. Editing a plan appends a version; nothing is rewritten."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing_runtime import paging
from billing_runtime.errors import AlreadyExists, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.invoicing.domain.entitlements import same_entitlements
from services.invoicing.domain.plan import Plan, PlanVersion
from services.invoicing.domain.plan_rules import terms_to_dict, validate_plan_code, validate_plan_name, validate_terms
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.ports import Catalog, InvoicingTransaction


async def create_plan(
    uow: InvoicingTransaction, *, code: str, name: str, terms: Mapping[str, Any], idempotency_key: str = ""
) -> tuple[Plan, bool]:
    """Store a plan with its first version. (plan, created); a repeat with the same key returns the first."""
    code = validate_plan_code(code)
    name = validate_plan_name(name)
    validated = validate_terms(terms)
    request = {"code": code, "name": name, "terms": terms_to_dict(validated)}
    async with uow:
        repository = uow.catalog
        await repository.lock_code(code)
        taken_by = await repository.plan_id_for_code(code)
        if taken_by is not None and not await repository.made_with_key(taken_by, idempotency_key):
            raise AlreadyExists(f"a plan with code {code!r} exists; edit it by creating a new version", field="code")
        plan_id, created = await repository.add_plan(
            new_id("plan"), code, name, idempotency_key=idempotency_key, fingerprint=fingerprint(request)
        )
        if created:
            await repository.add_version(new_id("plv"), plan_id, name, validated)
        plan = await repository.get_plan(plan_id)
    assert plan is not None
    return plan, created


async def create_plan_version(
    uow: InvoicingTransaction, *, plan_id: str, terms: Mapping[str, Any], name: str = "", idempotency_key: str = ""
) -> tuple[PlanVersion, bool]:
    """Edit a plan: its new terms become the next version. Subscriptions stay on the version they have."""
    if not plan_id:
        raise InvalidArgument("is required", field="plan_id")
    validated = validate_terms(terms)
    name = validate_plan_name(name) if name else ""
    request = {"plan_id": plan_id, "name": name, "terms": terms_to_dict(validated)}
    async with uow:
        repository = uow.catalog
        plan_row = await repository.lock_plan(plan_id)
        if plan_row is None:
            raise NotFound(f"no plan with id {plan_id!r}")
        latest = await repository.latest_version(plan_id)
        repeat = (
            latest is not None
            and latest.terms == validated
            and same_entitlements(latest.terms.entitlements, validated.entitlements)
            and name in ("", latest.plan_name)
        )
        if repeat and not await repository.version_made_with_key(idempotency_key):
            assert latest is not None
            raise AlreadyExists(
                f"version {latest.version} of plan {plan_row.code!r} ({latest.id}) already has these terms; a new "
                "version must change something",
                field="terms",
            )
        version, created = await repository.add_version(
            new_id("plv"),
            plan_id,
            name or plan_row.name,
            validated,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(request),
        )
    return version, created


async def get_plan(uow: InvoicingTransaction, *, plan_id: str = "", code: str = "") -> Plan:
    if bool(plan_id) == bool(code):
        raise InvalidArgument("give plan_id or code (one of them)", field="plan_id")
    async with uow:
        repository = uow.catalog
        if code:
            plan_id = await repository.plan_id_for_code(code) or ""
        plan = await repository.get_plan(plan_id) if plan_id else None
    if plan is None:
        raise NotFound(f"no plan with code {code!r}" if code else f"no plan with id {plan_id!r}")
    return plan


async def list_plans(uow: InvoicingTransaction, page_size: int, page_token: str) -> tuple[list[Plan], str]:
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        found = await uow.catalog.list_plans(limit=size + 1, after=after)
    return paging.split_page(found, size)


async def get_plan_version(uow: InvoicingTransaction, plan_version_id: str) -> PlanVersion:
    if not plan_version_id:
        raise InvalidArgument("is required", field="plan_version_id")
    async with uow:
        version = await uow.catalog.get_version(plan_version_id)
    if version is None:
        raise NotFound(f"no plan version with id {plan_version_id!r}")
    return version


async def list_plan_versions(uow: InvoicingTransaction, plan_id: str) -> list[PlanVersion]:
    if not plan_id:
        raise InvalidArgument("is required", field="plan_id")
    async with uow:
        versions = await uow.catalog.versions_of(plan_id)
    if not versions:
        raise NotFound(f"no plan with id {plan_id!r}")
    return versions


async def resolve_version(repository: Catalog, plan_version_id: str, plan_code: str) -> PlanVersion:
    """The version named by id, or the latest version of the plan named by code (exactly one must be given)."""
    if bool(plan_version_id) == bool(plan_code):
        raise InvalidArgument("give plan_version_id or plan_code (one of them)", field="plan_version_id")
    if plan_version_id:
        version = await repository.get_version(plan_version_id)
        if version is None:
            raise NotFound(f"no plan version with id {plan_version_id!r}")
        return version
    plan_id = await repository.plan_id_for_code(plan_code)
    version = await repository.latest_version(plan_id) if plan_id else None
    if version is None:
        raise NotFound(f"no plan with code {plan_code!r}")
    return version
