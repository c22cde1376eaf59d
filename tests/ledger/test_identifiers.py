"""Credit codes, invoice keys and lot keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.identifiers import (
    CREDIT_CODE_ALPHABET,
    InvalidIdentifier,
    canonical_invoice_key,
    canonical_lot_key,
    credit_code_check_character,
    salted_key_hash,
    synthetic_credit_code,
    validate_credit_code,
)

SALT = b"0123456789abcdef-salt"


def test_check_character_matches_the_standards_example() -> None:
    # GB 32100-2015's worked example: 91350100M000100Y4 has check character 3.
    assert credit_code_check_character("91350100M000100Y4") == "3"
    assert validate_credit_code("91350100M000100Y43")


def test_check_character_is_zero_when_remainder_is_zero() -> None:
    # "00000000000000000" sums to 0: 31 - 0 = 31, which maps to "0".
    assert credit_code_check_character("0" * 17) == "0"


@given(st.integers(min_value=0, max_value=10**9))
def test_synthetic_credit_codes_are_valid(seed: int) -> None:
    assert validate_credit_code(synthetic_credit_code(seed))


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=30))
def test_a_wrong_check_character_is_refused(seed: int, shift: int) -> None:
    code = synthetic_credit_code(seed)
    wrong = CREDIT_CODE_ALPHABET[(CREDIT_CODE_ALPHABET.index(code[17]) + shift) % 31]
    with pytest.raises(InvalidIdentifier, match="check character"):
        validate_credit_code(code[:17] + wrong)


@pytest.mark.parametrize(
    "code", ["", "91310000MA1FL8KQ3", "91310000MA1FL8KQ3XX", "91310000MA1FL8KQ3I", "9131000OMA1FL8KQ30"]
)
def test_malformed_credit_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_credit_code(code)


def test_e_invoice_and_vat_invoice_keys() -> None:
    seller = synthetic_credit_code(1)
    assert canonical_invoice_key(seller, "24312000000000012345") == f"{seller}|24312000000000012345"
    assert canonical_invoice_key(seller, "01234567", "3100231130") == f"{seller}|3100231130|01234567"
    with pytest.raises(InvalidIdentifier):
        canonical_invoice_key(seller, "12345")
    with pytest.raises(InvalidIdentifier):
        canonical_invoice_key(seller, "0123456", "3100231130")


def test_salted_key_is_deterministic_and_salt_dependent() -> None:
    key = canonical_invoice_key(synthetic_credit_code(2), "24312000000000012345")
    assert salted_key_hash(SALT, key) == salted_key_hash(SALT, key)
    assert salted_key_hash(SALT, key) != salted_key_hash(SALT + b"x", key)
    with pytest.raises(ValueError, match="salt"):
        salted_key_hash(b"short", key)


def test_lot_key_validates_lot_number() -> None:
    warehouse = synthetic_credit_code(3)
    assert canonical_lot_key(warehouse, "COIL-2026/11-0042").endswith("|lot|COIL-2026/11-0042")
    with pytest.raises(InvalidIdentifier):
        canonical_lot_key(warehouse, "")
