"""Page sizes and page tokens for keyset pagination."""

from __future__ import annotations

import pytest

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument
from billing_runtime.ids import new_id
from billing_runtime.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_after, page_size


@pytest.mark.parametrize(("requested", "expected"), [(0, 50), (1, 1), (50, 50), (499, 499), (500, 500)])
def test_page_size(requested: int, expected: int) -> None:
    assert page_size(requested) == expected


def test_constants() -> None:
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 500)


@pytest.mark.parametrize("requested", [501, 10_000, -1, -50])
def test_page_size_out_of_range(requested: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        page_size(requested)
    assert raised.value.field == "page_size"
    assert raised.value.message == "must be between 0 and 500 (0 means 50)"


def test_first_page() -> None:
    assert page_after("") is None


@pytest.mark.parametrize("prefix", ["org", "prj", "key", "evt"])
def test_real_ids_pass(prefix: str) -> None:
    token = new_id(prefix)
    assert page_after(token) == token


def test_known_token_passes() -> None:
    assert page_after("org_01ARZ3NDEKTSV4RRFFQ69G5FAV") == "org_01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        " ",
        "org_",
        "org_01ARZ3NDEKTSV4RRFFQ69G5FA",  # 25 characters
        "org_01ARZ3NDEKTSV4RRFFQ69G5FAVX",  # 27 characters
        "org_01arz3ndektsv4rrffq69g5fav",  # lower case
        "ORG_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "o_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "organ1_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "organisation_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "org_01ARZ3NDEKTSV4RRFFQ69G5FAI",  # I is not Crockford
        "org_01ARZ3NDEKTSV4RRFFQ69G5FAL",  # nor L
        "org_01ARZ3NDEKTSV4RRFFQ69G5FAO",  # nor O
        "org_01ARZ3NDEKTSV4RRFFQ69G5FAU",  # nor U
        "org-01ARZ3NDEKTSV4RRFFQ69G5FAV",
        " org_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "org_01ARZ3NDEKTSV4RRFFQ69G5FAV ",
        "' OR 1=1 --",
    ],
)
def test_garbage_token(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        page_after(token)
    assert raised.value.field == "page_token"
    assert raised.value.message == "is not a token returned by a previous page"


def test_token_with_trailing_newline_is_garbage() -> None:
    # `$` in the token pattern matches before a final newline, so this token would be passed to the query.
    with pytest.raises(InvalidArgument) as raised:
        page_after("org_01ARZ3NDEKTSV4RRFFQ69G5FAV\n")
    assert raised.value.field == "page_token"


class _Row:
    def __init__(self, id: str) -> None:  # noqa: A002 - mirrors the domain objects' attribute
        self.id = id


def test_split_page_uses_the_extra_row_only_to_know_another_page_exists() -> None:
    rows = [_Row(f"org_{n}") for n in range(3)]
    assert paging.split_page(rows, 2) == (rows[:2], "org_1")
    assert paging.split_page(rows[:2], 2) == (rows[:2], "")
    assert paging.split_page([], 2) == ([], "")
