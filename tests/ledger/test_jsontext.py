"""JSON text written by orjson where it is exact, by the standard library where orjson would refuse: the values
read back are always the values written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import jsontext

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_every_value_reads_back_as_written_whatever_its_integers(value: Any) -> None:
    assert json.loads(jsontext.dumps(value)) == value


@pytest.mark.parametrize("amount", [2**64, 2**256 - 1, -(2**63) - 1, 2**63 - 1])
def test_an_integer_beyond_64_bits_is_written_exactly_not_refused(amount: int) -> None:
    written = jsontext.dumps({"amount": amount, "name": "宝钢"})
    assert json.loads(written) == {"amount": amount, "name": "宝钢"}
    assert written == json.dumps({"amount": amount, "name": "宝钢"}, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_text_is_compact_utf8_as_starlette_writes_it() -> None:
    value = {"invoice": "26312000000012345678", "seller": "上海宝钢钢材贸易有限公司", "items": [1, 2, {"a": None}]}
    assert jsontext.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsontext.dumps_text(value) == jsontext.dumps(value).decode()


def test_keys_that_are_not_strings_are_written_as_the_standard_library_writes_them() -> None:
    assert json.loads(jsontext.dumps({1: "a", "b": 2})) == {"1": "a", "b": 2}
