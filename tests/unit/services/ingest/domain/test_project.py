"""Project names and the idempotency fingerprint of a create-project request."""

from __future__ import annotations

import pytest

from billing_runtime.errors import InvalidArgument
from services.ingest.domain.project import project_fingerprint, validate_project_name

BAD_NAME_MESSAGE = "must be 1 to 100 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("prod-eu.1", "prod-eu.1"),
        ("My Project_2", "My Project_2"),
        ("  staging  ", "staging"),
        ("\tanalytics\n", "analytics"),
        ("a", "a"),
        ("9lives", "9lives"),
        ("x" * 100, "x" * 100),
        ("  " + "x" * 100 + "  ", "x" * 100),
        ("Zürich", "Zürich"),
    ],
)
def test_valid_names(name: str, expected: str) -> None:
    assert validate_project_name(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "\n\t"])
def test_name_required(name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_project_name(name)
    assert raised.value.field == "name"
    assert raised.value.message == "is required"


@pytest.mark.parametrize(
    "name",
    [
        "x" * 101,
        "prod/eu",
        "prod@eu",
        "prod:eu",
        "prod,eu",
        "a\nb",
        "a\tb",
        "-prod",
        ".prod",
        "<script>",
        "emoji 🚀",
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_project_name(name)
    assert raised.value.field == "name"
    assert raised.value.message == BAD_NAME_MESSAGE


def test_fingerprint_is_stable() -> None:
    assert project_fingerprint("org_1", "prod") == project_fingerprint("org_1", "prod")
    assert len(project_fingerprint("org_1", "prod")) == 64


def test_fingerprint_differs_per_organisation_and_name() -> None:
    fingerprints = {
        project_fingerprint("org_1", "prod"),
        project_fingerprint("org_2", "prod"),
        project_fingerprint("org_1", "staging"),
        project_fingerprint("org_2", "staging"),
    }
    assert len(fingerprints) == 4


def test_fingerprint_separates_organisation_from_name() -> None:
    assert project_fingerprint("org_1", "2prod") != project_fingerprint("org_12", "prod")


@pytest.mark.parametrize("name", ["_prod", "-prod", ".prod", " _x"])
def test_name_must_start_with_a_letter_or_digit(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_project_name(name)
    assert caught.value.field == "name"
