"""Unified verification codes: form, input folding, error detection, keyed tag."""

from __future__ import annotations

import random
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.verify.code import (
    CodeAuthority,
    CodeError,
    ForgedCode,
    MalformedCode,
    VerificationCode,
    parse_code,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ISO_37 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"  # ISO/IEC 7064 MOD 37-2 values 0..36
KEY = bytes(range(32))
REGION = "430900"


def mod37_2(payload: str) -> str:
    """Reference ISO/IEC 7064 MOD 37-2 check character, written apart from the module."""
    p = 0
    for symbol in payload:
        p = (p + ISO_37.index(symbol)) * 2 % 37
    return ISO_37[(38 - p) % 37]


def with_check(region: str, body: str) -> str:
    return region + body + mod37_2(region + body)


@pytest.fixture(scope="module")
def authority() -> CodeAuthority:
    return CodeAuthority(KEY, REGION)


@pytest.fixture(scope="module")
def issued(authority: CodeAuthority) -> list[VerificationCode]:
    return [authority.issue() for _ in range(200)]


def test_reference_check_matches_published_example() -> None:
    # The ISO 7064 MOD 37-2 example also used by python-stdnum.
    assert mod37_2("G123489654321") == "Y"


def test_mod37_2_catches_every_substitution_and_adjacent_swap() -> None:
    """Brute force over the 24 positions: no substitution or adjacent swap keeps the sum."""
    weights = [pow(2, 23 - position, 37) for position in range(24)]
    values = [ISO_37.index(symbol) for symbol in CROCKFORD]
    for position, weight in enumerate(weights):
        for a in values:
            for b in values:
                if a == b:
                    continue
                assert (a - b) * weight % 37 != 0
                if position < 23:
                    before = a * weight + b * weights[position + 1]
                    after = b * weight + a * weights[position + 1]
                    assert (before - after) % 37 != 0


def test_canonical_form(issued: list[VerificationCode]) -> None:
    for code in issued:
        text = str(code)
        assert len(text) == 27
        assert [i for i, c in enumerate(text) if c == "-"] == [6, 13, 20]
        assert text.replace("-", "") == code.compact
        assert len(code.compact) == 24
        assert code.region == REGION
        assert len(code.body) == 17
        assert set(code.body + code.check) <= set(CROCKFORD)
        assert code.check == mod37_2(code.region + code.body)


def test_issued_code_round_trips(authority: CodeAuthority, issued: list[VerificationCode]) -> None:
    for code in issued:
        assert authority.check(str(code)) == code
        assert parse_code(str(code)) == code
        assert authority.check(code.compact) == code


# ASCII printable → its full-width form (U+FF01..U+FF5E), and space → U+3000.
_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)} | {0x20: 0x3000}


def test_input_is_folded(authority: CodeAuthority, issued: list[VerificationCode]) -> None:
    for code in issued[:50]:
        text = str(code)
        variants = [
            text.lower(),
            text.replace("0", "O"),
            text.replace("0", "o"),
            text.replace("1", "I"),
            text.replace("1", "i"),
            text.replace("1", "L"),
            text.replace("1", "l").lower(),
            code.compact,
            " " + " ".join(code.compact) + "  ",
            text.replace("-", " - "),
            "-".join(code.compact[i : i + 4] for i in range(0, 24, 4)),
            # as a Chinese input method or a word processor types it
            text.translate(_FULL_WIDTH),
            text.lower().translate(_FULL_WIDTH),
            text.replace("-", "\u2013"),
            text.replace("-", "\u2014").replace(text[:6], text[:6].translate(_FULL_WIDTH)),
            text.replace("-", "\u3000"),
        ]
        for variant in variants:
            assert authority.check(variant) == code, variant


def test_every_substitution_is_malformed(issued: list[VerificationCode]) -> None:
    for code in issued:
        compact = code.compact
        for position, original in enumerate(compact):
            for symbol in CROCKFORD:
                if symbol == original:
                    continue
                altered = compact[:position] + symbol + compact[position + 1 :]
                with pytest.raises(MalformedCode):
                    parse_code(altered)


def test_every_adjacent_swap_is_malformed(issued: list[VerificationCode]) -> None:
    swaps = 0
    for code in issued:
        compact = code.compact
        for position in range(23):
            a, b = compact[position], compact[position + 1]
            if a == b:
                continue
            swapped = compact[:position] + b + a + compact[position + 2 :]
            with pytest.raises(MalformedCode):
                parse_code(swapped)
            swaps += 1
    assert swaps > 200 * 20


def _random_well_formed(count: int, seed: int) -> list[str]:
    """``count`` random regions and bodies with the correct check character.

    Those whose check value is '*', I, L, O or U (never issued) are left out, so all pass
    parse_code.

    Column-wise so that a million take about a second: each of the 23 payload columns is
    drawn, weighted by a translate table, and added into 16-bit lanes of one big integer
    (23 × 36 < 2**16, so lanes never carry into each other).
    """
    wanted, count = count, count + count // 5 + 100  # 32 of 37 check values are kept
    rng = random.Random(seed)
    to_digit = bytes(b"0123456789"[b % 10] for b in range(256))
    to_crockford = bytes(CROCKFORD.encode()[b % 32] for b in range(256))
    flat = bytearray(rng.randbytes(24 * count))  # code i is flat[24 * i : 24 * i + 24]
    sums = 0
    for position in range(23):
        column = flat[position::24].translate(to_digit if position < 6 else to_crockford)
        flat[position::24] = column
        weight = pow(2, 23 - position, 37)
        weighted = bytes(
            ISO_37.index(chr(b)) * weight % 37 if chr(b) in CROCKFORD else 0 for b in range(256)
        )
        lanes = bytearray(2 * count)
        lanes[1::2] = column.translate(weighted)
        sums += int.from_bytes(lanes, "big")
    totals = sums.to_bytes(2 * count, "big")
    symbols = ISO_37.encode()
    lane_pairs = zip(totals[0::2], totals[1::2], strict=True)
    flat[23::24] = bytes(symbols[(1 - (high << 8) - low) % 37] for high, low in lane_pairs)
    text = flat.decode()
    codes = (text[start : start + 24] for start in range(0, 24 * count, 24))
    kept = [code for code in codes if code[-1] in CROCKFORD][:wanted]
    assert len(kept) == wanted
    return kept


def test_random_well_formed_codes_have_the_reference_check() -> None:
    codes = _random_well_formed(5_000, seed=1)
    assert len(set(codes)) == len(codes)
    for text in codes:
        assert text[-1] == mod37_2(text[:-1])
        assert parse_code(text).compact == text


@pytest.mark.slow
def test_a_million_guessed_codes_are_forged(authority: CodeAuthority) -> None:
    count = 1_000_000
    codes = _random_well_formed(count, seed=2024)
    check = authority.check
    forged = 0
    for text in codes:
        try:
            check(text)
        except ForgedCode:  # MalformedCode would escape and fail the test
            forged += 1
    assert forged == count


def test_code_under_another_key_is_forged(issued: list[VerificationCode]) -> None:
    other = CodeAuthority(secrets.token_bytes(32), REGION)
    for code in issued:
        with pytest.raises(ForgedCode):
            other.check(str(code))


def test_moved_to_another_region_is_forged(
    authority: CodeAuthority, issued: list[VerificationCode]
) -> None:
    moved_codes = [with_check("110100", code.body) for code in issued]
    moved_codes = [moved for moved in moved_codes if moved[-1] in CROCKFORD]  # issuable check
    assert len(moved_codes) > 100
    for moved in moved_codes:
        assert parse_code(moved).region == "110100"  # well-formed: any region parses
        with pytest.raises(ForgedCode):
            authority.check(moved)


def test_other_regions_authority_issues_its_region() -> None:
    beijing = CodeAuthority(KEY, "110100")
    code = beijing.issue()
    assert code.region == "110100"
    assert beijing.check(str(code)) == code
    # Same key, other region: the tag covers the region, so it is still checked properly.
    assert CodeAuthority(KEY, REGION).check(str(code)) == code


def test_issued_codes_show_no_order(authority: CodeAuthority) -> None:
    codes = [authority.issue() for _ in range(10_000)]
    assert all(code.check in CROCKFORD for code in codes)
    assert len({code.compact for code in codes}) == len(codes)
    random_parts = [code.body[:9] for code in codes]
    assert random_parts != sorted(random_parts)
    assert random_parts != sorted(random_parts, reverse=True)
    # A counter or clock would leave leading symbols constant; random ones use them all.
    assert {part[0] for part in random_parts} == set(CROCKFORD)


def test_not_a_code_is_malformed(authority: CodeAuthority, issued: list[VerificationCode]) -> None:
    code = issued[0]
    compact = code.compact
    bad = [
        "",
        compact[:-1],
        compact + "0",
        "A" + compact[1:],  # letter in the region
        compact[:-1] + "U",  # U is not Crockford
        compact[:-1] + "*",  # MOD 37-2 value 36, never issued
        compact.replace(compact[7], "é"),
        compact + " " * 100,  # bounded input
        "４３０９００" + compact[6:-1] + "码",  # full-width digits fold; the rest does not
        compact[:6] + "\u0301" + compact[6:],  # a combining accent is no separator
    ]
    for text in bad:
        with pytest.raises(MalformedCode):
            parse_code(text)
        with pytest.raises(MalformedCode):
            authority.check(text)


def test_authority_rejects_bad_key_or_region() -> None:
    with pytest.raises(ValueError):
        CodeAuthority(bytes(31), REGION)
    for region in ("43090", "4309001", "43090A", "４３０９００", ""):
        with pytest.raises(ValueError):
            CodeAuthority(KEY, region)


def test_key_is_not_in_repr() -> None:
    key = secrets.token_bytes(32)
    authority = CodeAuthority(key, REGION)
    for text in (repr(authority), str(authority)):
        assert REGION in text
        assert repr(key) not in text
        assert key.hex() not in text
        assert key.hex().upper() not in text


def _mutations(compact: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda i, s: compact[:i] + s + compact[i + 1 :],
        st.integers(0, 23),
        st.text(max_size=3),
    )


@settings(max_examples=300)
@given(
    text=st.one_of(
        st.text(),
        st.text(alphabet=CROCKFORD + "oOiIlLuU*- \t\n", min_size=20, max_size=40),
        _mutations(CodeAuthority(KEY, REGION).issue().compact),
    )
)
def test_arbitrary_text_raises_only_code_errors(text: str) -> None:
    authority = CodeAuthority(KEY, REGION)
    try:
        code = authority.check(text)
    except CodeError:
        return
    assert authority.check(str(code)) == code
