"""GSTIN format, state code and check character (Luhn mod 36)."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.invoicing.domain.gst import STATE_CODES, gstin_check_character, gstin_problem

ALPHABET = string.digits + string.ascii_uppercase
FORMAT_PROBLEM = "must be 15 characters: 2-digit state code, 10-character PAN, entity number, 'Z', check character"

# Characters each of the first 14 positions may hold while keeping the GSTIN format (position 13 is always 'Z').
_POSITION_CHARS = (
    [string.digits] * 2
    + [string.ascii_uppercase] * 5
    + [string.digits] * 4
    + [string.ascii_uppercase]
    + ["123456789" + string.ascii_uppercase]
    + ["Z"]
)


def _with_check(first_fourteen: str) -> str:
    return first_fourteen + gstin_check_character(first_fourteen)


gstins = st.builds(
    lambda state, letters, digits, last, entity: _with_check(f"{state}{letters}{digits}{last}{entity}Z"),
    st.sampled_from(sorted(STATE_CODES)),
    st.text(string.ascii_uppercase, min_size=5, max_size=5),
    st.text(string.digits, min_size=4, max_size=4),
    st.sampled_from(string.ascii_uppercase),
    st.sampled_from("123456789" + string.ascii_uppercase),
)


class TestStateCodes:
    def test_known_states(self) -> None:
        assert STATE_CODES["27"] == "Maharashtra"
        assert STATE_CODES["29"] == "Karnataka"
        assert STATE_CODES["07"] == "Delhi"
        assert STATE_CODES["36"] == "Telangana"
        assert STATE_CODES["38"] == "Ladakh"
        assert STATE_CODES["97"] == "Other Territory"
        assert STATE_CODES["99"] == "Centre Jurisdiction"

    def test_codes_are_two_digits(self) -> None:
        assert all(len(code) == 2 and code.isdigit() for code in STATE_CODES)
        assert "00" not in STATE_CODES
        assert "39" not in STATE_CODES
        assert len(STATE_CODES) == 40


class TestCheckCharacter:
    @pytest.mark.parametrize(
        ("first_fourteen", "expected"),
        [("27AAPFU0939F1Z", "V"), ("29ABCDE1234F1Z", "W")],
    )
    def test_known_gstins(self, first_fourteen: str, expected: str) -> None:
        assert gstin_check_character(first_fourteen) == expected

    def test_all_zero_input_gives_zero(self) -> None:
        assert gstin_check_character("0" * 14) == "0"

    def test_single_one_at_odd_and_even_positions(self) -> None:
        # Factor 1 at even (0-based) positions, 2 at odd ones: 36 - 1 = 35 -> 'Z', 36 - 2 = 34 -> 'Y'.
        assert gstin_check_character("1" + "0" * 13) == "Z"
        assert gstin_check_character("01" + "0" * 12) == "Y"

    def test_every_single_substitution_changes_the_check_character(self) -> None:
        # Exhaustive over the alphabet, not only format-preserving characters.
        for base in ("27AAPFU0939F1Z", "29ABCDE1234F1Z"):
            original = gstin_check_character(base)
            for position in range(14):
                for char in ALPHABET:
                    if char == base[position]:
                        continue
                    mutated = base[:position] + char + base[position + 1 :]
                    assert gstin_check_character(mutated) != original, (base, position, char)


class TestGstinProblem:
    @pytest.mark.parametrize(("gstin", "state_code"), [("27AAPFU0939F1ZV", "27"), ("29ABCDE1234F1ZW", "29")])
    def test_known_valid(self, gstin: str, state_code: str) -> None:
        assert gstin_problem(gstin, state_code) is None

    @pytest.mark.parametrize(
        "gstin",
        [
            "",
            "27AAPFU0939F1Z",  # 14 characters
            "27AAPFU0939F1ZVX",  # 16 characters
            "27aapfu0939f1zv",  # lower case
            "27AAPFU0939F0ZV",  # entity number 0
            "27AAPFU0939F1YV",  # 14th character not Z
            "27AAPF00939F1ZV",  # digit in the PAN's letters
            "27AAPFU0A39F1ZV",  # letter in the PAN's digits
            "27AAPFU093991ZV",  # PAN's last character a digit
            "2AAAPFU0939F1ZV",  # state not two digits
            "27AAPFU0939F1Z-",  # check character not alphanumeric
            " 27AAPFU0939F1ZV",
            "27AAPFU 939F1ZV",
        ],
    )
    def test_wrong_format(self, gstin: str) -> None:
        assert gstin_problem(gstin, "27") == FORMAT_PROBLEM

    def test_trailing_newline_is_not_a_valid_gstin(self) -> None:
        # 16 characters: the format says 15, yet `$` in the pattern matches before a final newline.
        assert gstin_problem("27AAPFU0939F1ZV\n", "27") == FORMAT_PROBLEM

    @pytest.mark.parametrize("state", ["00", "39", "40", "50", "96", "98"])
    def test_unknown_state_prefix(self, state: str) -> None:
        gstin = _with_check(f"{state}AAPFU0939F1Z")
        assert gstin_problem(gstin, state) == f"starts with '{state}', which is not a GST state code"

    def test_state_mismatch(self) -> None:
        assert gstin_problem("27AAPFU0939F1ZV", "29") == "is registered in state 27 but state_code is '29'"
        assert gstin_problem("29ABCDE1234F1ZW", "") == "is registered in state 29 but state_code is ''"

    def test_wrong_check_character(self) -> None:
        assert gstin_problem("27AAPFU0939F1ZW", "27") == (
            "check character is 'W' but should be 'V'; the GSTIN has a typo"
        )

    @settings(max_examples=200)
    @given(gstins)
    def test_generated_gstin_is_valid(self, gstin: str) -> None:
        assert len(gstin) == 15
        assert gstin_problem(gstin, gstin[:2]) is None

    @settings(max_examples=200)
    @given(gstins, st.sampled_from(ALPHABET))
    def test_any_other_check_character_is_rejected(self, gstin: str, char: str) -> None:
        assume(char != gstin[14])
        assert gstin_problem(gstin[:14] + char, gstin[:2]) == (
            f"check character is {char!r} but should be {gstin[14]!r}; the GSTIN has a typo"
        )

    @settings(max_examples=200)
    @given(gstins, st.data())
    def test_single_format_preserving_substitution_is_detected(self, gstin: str, data: st.DataObject) -> None:
        position = data.draw(st.integers(min_value=0, max_value=12), label="position")
        candidates = [c for c in _POSITION_CHARS[position] if c != gstin[position]]
        mutated_head = [gstin[:position] + c + gstin[position + 1 : 14] for c in candidates]
        # A changed state digit must still name a GST state, so the check character is what catches it.
        mutated_head = [head for head in mutated_head if head[:2] in STATE_CODES]
        assume(mutated_head)
        head = data.draw(st.sampled_from(mutated_head), label="mutated")
        mutated = head + gstin[14]
        expected = gstin_check_character(head)
        assert expected != gstin[14]
        assert gstin_problem(mutated, mutated[:2]) == (
            f"check character is {gstin[14]!r} but should be {expected!r}; the GSTIN has a typo"
        )
