"""Identity-number checks (GB 11643 resident numbers) and masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealgate.verify.holders import (
    HolderKind,
    InvalidHolderId,
    mask_id,
    normalise_holder_id,
    require_birth_date,
    resident_id_check,
)

WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]  # GB 11643: W_i = 2^(i-1) mod 11, right to left


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_published_examples_are_valid(number: str) -> None:
    assert resident_id_check(number[:17]) == number[17]
    assert normalise_holder_id(HolderKind.PERSON, number.lower()) == number


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_is_the_standards_definition(first17: str) -> None:
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    assert resident_id_check(first17) == "10X98765432"[total % 11]


@pytest.mark.parametrize("birth", ["19901301", "19900230", "29990101", "17991231", "19900000"])
def test_a_birth_date_that_is_no_past_day_is_refused(birth: str) -> None:
    first17 = f"430902{birth}001"
    number = first17 + resident_id_check(first17)  # the check character is right
    assert normalise_holder_id(HolderKind.PERSON, number) == number  # lookups still work
    with pytest.raises(InvalidHolderId, match="birth date"):
        require_birth_date(number)
    require_birth_date("11010519491231002X")
    require_birth_date("440524188001010014")


def test_a_wrong_check_character_or_length_is_refused() -> None:
    with pytest.raises(InvalidHolderId):
        normalise_holder_id(HolderKind.PERSON, "110105194912310021")
    with pytest.raises(ValueError):
        resident_id_check("1234")
    assert mask_id("11010519491231002X") == "1101**********002X"
