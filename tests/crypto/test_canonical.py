"""canonical_json against the examples of RFC 8785."""

from __future__ import annotations

import json
import math
import struct

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.crypto import ContentError, canonical_json
from sealgate.crypto.canonical import canonical_string

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
NUMBER_VECTORS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # -0
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

# RFC 8785 §3.2.2 (input as JSON text) and §3.2.3 (sorting by UTF-16 code units).
DOCUMENT_VECTORS = [
    (
        r'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        r' "string": "\u20ac$\u000F\u000aA\u0027\u0042\u0022\u005c\\\"\/",'
        r' "literals": [null, true, false]}',
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    ),
    (
        r'{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet",'
        r' "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",'
        r' "\u00f6": "Latin Small Letter O With Diaeresis"}',
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign",'
        '"😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet"}',
    ),
    ('{"姓名": "张三", "a": [1, 2.0, -0.0, 1e21]}', '{"a":[1,2,0,1e+21],"姓名":"张三"}'),
]


@pytest.mark.parametrize(("bits", "expected"), NUMBER_VECTORS)
def test_rfc8785_numbers(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_json(value) == expected.encode()


@pytest.mark.parametrize(("text", "expected"), DOCUMENT_VECTORS)
def test_rfc8785_documents(text: str, expected: str) -> None:
    assert canonical_json(json.loads(text)) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        {"x": [math.nan]},
        {1: "non-string key"},
        {b"k": "bytes key"},
        2**53,  # beyond the exact integer range of an IEEE double
        b"bytes",
        {"set"},
        object(),
        "\ud800",  # lone surrogate
        {"\ud800": 1},  # a lone surrogate in a key (rfc8785 sorts keys as UTF-16)
    ],
    # the same names in every process (pytest-xdist compares them): no object's address
    ids=lambda value: "object()" if type(value) is object else repr(value),
)
def test_rejects_non_json(value: object) -> None:
    with pytest.raises(ContentError):
        canonical_json(value)


def test_rejects_cycles_and_deep_nesting() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(ContentError):
        canonical_json(cyclic)


def test_content_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        canonical_json(math.nan)


def test_errors_never_carry_the_value() -> None:
    # content carries identity numbers; an error message may reach a log or a client
    for value in (430902199001011231, {"id": 430902199001011231}, ["\ud800430902"]):
        with pytest.raises(ContentError) as caught:
            canonical_json(value)
        assert "430902" not in str(caught.value)
        assert caught.value.__cause__ is None


# Any JSON value: the fast path (json's C encoder) must write exactly what rfc8785 writes.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(_json_values)
def test_fast_path_writes_what_rfc8785_writes(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ContentError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@settings(max_examples=1000, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=())))  # surrogates included
def test_a_string_alone_is_written_as_rfc8785_writes_it(text: str) -> None:
    try:
        expected = rfc8785.dumps(text)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ContentError) as caught:
            canonical_string(text)
        assert caught.value.__cause__ is None
        return
    assert canonical_string(text) == expected == canonical_json(text)


def test_astral_keys_sort_by_utf16_code_units() -> None:
    # U+FF61 sorts after U+1F600 in UTF-16 (0xD83D...) though before it by code point.
    value = {"\uff61": 1, "\U0001f600": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("😀".encode()) < canonical_json(value).index(b"\xef\xbd\xa1")
