"""The one bounded JSON reader (RFC 8259): same values as json.loads within its limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary import jsonbody
from ostiary.errors import InvalidRequestError

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@given(values, st.booleans())
def test_agrees_with_json_loads_on_what_it_accepts(value: Any, ascii_only: bool) -> None:
    """Standard JSON (RFC 8259: no NaN or Infinity, which the reader refuses on purpose)."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert jsonbody.loads(body) == json.loads(body)


@given(st.integers(1, 200), st.sampled_from(["[", '{"a":']))
def test_depth_limit_is_exact(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = (opener * depth + "1" + closer * depth).encode()
    if depth <= jsonbody.MAX_DEPTH:
        assert jsonbody.loads(body) is not None
    else:
        with pytest.raises(InvalidRequestError, match="more than 64 levels deep"):
            jsonbody.loads(body)


@given(st.text(max_size=20), st.integers(0xD800, 0xDFFF), st.booleans())
def test_unpaired_surrogates_are_refused(text: str, code: int, as_key: bool) -> None:
    escaped = json.dumps(text)[1:-1] + f"\\u{code:04x}"
    body = (f'{{"{escaped}": 1}}' if as_key else f'["{escaped}"]').encode()
    with pytest.raises(InvalidRequestError, match="unpaired UTF-16 surrogate"):
        jsonbody.loads(body)


@pytest.mark.parametrize(
    ("body", "description", "status"),
    [
        (b'{"a": 1, "a": 1}', jsonbody.DUPLICATE, 400),
        (b'[{"b": {"a": 1, "a": 2}}]', jsonbody.DUPLICATE, 400),
        (b"[NaN]", jsonbody.NOT_JSON, 400),
        (b"-Infinity", jsonbody.NOT_JSON, 400),
        (b"\xef\xbb\xbf{}", jsonbody.NOT_JSON, 400),
        (b'"\xed\xa0\x80"', jsonbody.NOT_JSON, 400),  # a surrogate encoded as UTF-8 bytes
        (b"{} {}", jsonbody.NOT_JSON, 400),
        (b"{}\xc2\xa0", jsonbody.NOT_JSON, 400),  # only RFC 8259 whitespace around the value
        (b"[" * 10 + b"]" * 11, jsonbody.NOT_JSON, 400),
        (
            b"[" * 70 + b"]" * 69,
            "request body nests arrays and objects more than 64 levels deep",
            400,
        ),
        (b'"' + b"x" * 200 + b'"', jsonbody.TOO_LARGE, 413),
    ],
)
def test_refusals(body: bytes, description: str, status: int) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        jsonbody.loads(body, max_bytes=150)
    assert (refused.value.description, refused.value.status_code) == (description, status)


def test_brackets_inside_strings_do_not_count() -> None:
    body = b'{"a": "' + b"[{" * 500 + b'\\"]"}'
    assert jsonbody.loads(body) == {"a": "[{" * 500 + '"]'}


def test_nul_only_where_refused() -> None:
    assert jsonbody.loads(b'["a\\u0000"]') == ["a\x00"]
    with pytest.raises(InvalidRequestError, match="NUL"):
        jsonbody.loads(b'{"a\\u0000": 1}', allow_nul=False)


def test_paired_surrogates_are_one_character() -> None:
    assert jsonbody.loads_object(b'{"e": "\\ud83d\\ude00"}') == {"e": "\U0001f600"}
    with pytest.raises(InvalidRequestError, match="must be a JSON object"):
        jsonbody.loads_object(b"[]")
