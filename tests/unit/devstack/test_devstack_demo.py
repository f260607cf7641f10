"""Demo data: a GSTIN with a correct check character, created once through the admin API, found again later."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from devstack.demo import (
    DEMO_GSTIN,
    DEMO_ORGANISATION,
    DemoData,
    DemoDataError,
    ensure_demo_data,
    gstin_check_character,
)


@pytest.mark.parametrize(
    "gstin",
    # Published, real-world GSTINs (e.g. from GST portal examples) whose check characters are known.
    ["27AAPFU0939F1ZV", "29AAGCR4375J1ZU"],
)
def test_check_character_of_known_gstins(gstin: str) -> None:
    assert gstin_check_character(gstin[:14]) == gstin[14]


def test_demo_gstin_is_valid_for_karnataka() -> None:
    assert DEMO_GSTIN == "29ABCDE1234F1ZW"
    assert DEMO_ORGANISATION["gstin"] == DEMO_GSTIN and DEMO_ORGANISATION["state_code"] == DEMO_GSTIN[:2]


def test_check_character_needs_fourteen_characters() -> None:
    with pytest.raises(ValueError):
        gstin_check_character("29ABCDE1234F1")


def test_demo_data_round_trips_through_its_file(tmp_path: Path) -> None:
    demo = DemoData("org_1", "prj_1", "key_1", "bk_secret", "bk_sec")
    path = tmp_path / "demo.json"
    demo.save(path)
    assert DemoData.load(path) == demo
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    assert DemoData.load(path) is None


class FakeGateway:
    """Just enough of the admin API to drive ensure_demo_data without a network."""

    def __init__(self, reject_gstin: bool = False) -> None:
        self.reject_gstin = reject_gstin
        self.organisations: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("authorization") != "Bearer admin-token":
            return httpx.Response(401, json={"error": "unauthenticated", "detail": "bad token"})
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/admin/organisations":
            body = json.loads(request.content)
            if self.reject_gstin and "gstin" in body:
                return httpx.Response(400, json={"error": "invalid_argument", "detail": "bad", "field": "gstin"})
            organisation_id = f"org_{len(self.organisations) + 1}"
            self.organisations[organisation_id] = body
            return httpx.Response(201, json={"id": organisation_id, **body})
        if request.method == "GET" and path.startswith("/api/v1/admin/organisations/"):
            organisation_id = path.rsplit("/", 1)[1]
            if organisation_id in self.organisations:
                return httpx.Response(200, json={"id": organisation_id})
            return httpx.Response(404, json={"error": "not_found", "detail": "no such organisation"})
        if request.method == "POST" and path == "/api/v1/admin/projects":
            return httpx.Response(201, json={"id": "prj_1", **json.loads(request.content)})
        if request.method == "POST" and path == "/api/v1/admin/api-keys":
            return httpx.Response(201, json={"id": "key_1", "prefix": "bk_abc", "secret": "bk_abc_secret"})
        return httpx.Response(404, json={"error": "not_found", "detail": path})


def _ensure(gateway: FakeGateway, state_file: Path) -> DemoData:
    return ensure_demo_data(
        "http://gateway.test", "admin-token", state_file, lambda _: None, transport=httpx.MockTransport(gateway.handle)
    )


def test_demo_data_is_created_once_and_found_again(tmp_path: Path) -> None:
    gateway = FakeGateway()
    state_file = tmp_path / "demo.json"
    demo = _ensure(gateway, state_file)
    assert demo == DemoData("org_1", "prj_1", "key_1", "bk_abc_secret", "bk_abc")
    assert gateway.organisations["org_1"]["gstin"] == DEMO_GSTIN
    assert _ensure(gateway, state_file) == demo
    assert len(gateway.organisations) == 1


def test_demo_data_is_created_again_when_its_organisation_is_gone(tmp_path: Path) -> None:
    gateway = FakeGateway()
    state_file = tmp_path / "demo.json"
    _ensure(gateway, state_file)
    gateway.organisations.clear()
    assert _ensure(gateway, state_file).organisation_id == "org_1"
    assert ("GET", "/api/v1/admin/organisations/org_1") in gateway.requests


def test_a_rejected_gstin_falls_back_to_an_organisation_without_one(tmp_path: Path) -> None:
    gateway = FakeGateway(reject_gstin=True)
    demo = _ensure(gateway, tmp_path / "demo.json")
    assert "gstin" not in gateway.organisations[demo.organisation_id]


def test_other_refusals_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match="HTTP 401"):
        ensure_demo_data(
            "http://gateway.test",
            "wrong-token",
            tmp_path / "demo.json",
            lambda _: None,
            transport=httpx.MockTransport(FakeGateway().handle),
        )
    assert not (tmp_path / "demo.json").exists()
