"""Credit codes, invoice keys and lot keys."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from ledger.identifiers import (
    CREDIT_CODE_ALPHABET,
    InvalidIdentifier,
    bank_reference_hash,
    canonical_bank_reference,
    canonical_invoice_key,
    canonical_lot_key,
    canonical_lot_number,
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


def test_e_invoice_and_vat_invoice_keys_are_their_national_identity() -> None:
    assert canonical_invoice_key("24312000000000012345") == "einvoice:24312000000000012345"
    assert canonical_invoice_key("01234567", "3100231130") == "vat:3100231130:01234567"
    # a 12-digit code + 8-digit number has 20 digits too, but is another kind of invoice: another key
    assert canonical_invoice_key("01234567", "310023113012") != canonical_invoice_key("31002311301201234567")
    with pytest.raises(InvalidIdentifier):
        canonical_invoice_key("12345")
    with pytest.raises(InvalidIdentifier):
        canonical_invoice_key("0123456", "3100231130")


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("26340899421241000001".translate(FULL_WIDTH), None),  # the whole number full-width
        ("2634089942124100000" + "١", None),  # one Arabic-Indic digit at the end
        ("01234567", "3100231130".translate(FULL_WIDTH)),  # a full-width invoice code
        ("0123456" + "٧", "3100231130"),
        ("2634089942124100000¹", None),  # a superscript one: str.isdigit() says True
        ("26340899421241000001\n", None),  # `$` of a regular expression would accept the trailing newline
        (" 26340899421241000001", None),
    ],
)
def test_invoice_numbers_in_other_digit_classes_are_refused_not_folded(number: str, code: str | None) -> None:
    with pytest.raises(InvalidIdentifier):
        canonical_invoice_key(number, code)


_DIGITS = st.text(alphabet="0123456789", min_size=20, max_size=20)
_UNICODE_DIGITS = st.characters(categories=["Nd", "No"]).filter(lambda c: c not in "0123456789")


@given(st.text())
def test_an_accepted_invoice_number_is_twenty_ascii_digits_whatever_the_text(text: str) -> None:
    try:
        key = canonical_invoice_key(text)
    except InvalidIdentifier:
        return
    assert len(text) == 20 and all(c in "0123456789" for c in text)
    assert key == f"einvoice:{text}"


@given(st.text(), st.one_of(st.none(), st.text()))
def test_every_accepted_invoice_key_is_ascii_and_names_its_input(number: str, code: str | None) -> None:
    try:
        key = canonical_invoice_key(number, code)
    except InvalidIdentifier:
        return
    assert key.isascii()
    assert key.rsplit(":", 1)[1] == number  # nothing was rewritten: the key holds the number as sent
    assert (code is None) == key.startswith("einvoice:")


@given(_DIGITS, st.integers(min_value=0, max_value=19), _UNICODE_DIGITS)
def test_one_non_ascii_digit_anywhere_refuses_the_invoice_number(digits: str, at: int, other: str) -> None:
    """Any character Unicode counts as a digit (decimal digits of every script, superscripts, circled digits...)
    other than 0-9, at any place of an otherwise valid number, is refused: it would otherwise be a second key for
    the same invoice."""
    with pytest.raises(InvalidIdentifier):
        canonical_invoice_key(digits[:at] + other + digits[at + 1 :])


@given(st.text())
def test_an_accepted_credit_code_is_ascii_from_its_alphabet(text: str) -> None:
    try:
        validate_credit_code(text)
    except InvalidIdentifier:
        return
    assert len(text) == 18 and all(c in CREDIT_CODE_ALPHABET for c in text)


@given(st.text())
def test_an_accepted_lot_number_is_ascii_and_its_key_is_its_upper_case(text: str) -> None:
    try:
        canonical = canonical_lot_number(text)
    except InvalidIdentifier:
        return
    assert text.isascii() and canonical == text.upper() and canonical.isascii()
    assert canonical_lot_key(synthetic_credit_code(3), text) == canonical_lot_key(synthetic_credit_code(3), canonical)


def test_lot_numbers_differing_only_in_ascii_case_are_one_lot() -> None:
    warehouse = synthetic_credit_code(3)
    assert canonical_lot_key(warehouse, "coil-2026/11-0042") == canonical_lot_key(warehouse, "COIL-2026/11-0042")
    with pytest.raises(InvalidIdentifier):
        canonical_lot_key(warehouse, "COIL-2026/11-００42")
    with pytest.raises(InvalidIdentifier):
        canonical_lot_key(warehouse, "ǅ-1")  # a title-case letter outside ASCII: never case-folded


@given(st.text())
def test_an_accepted_bank_reference_is_ascii_and_kept_as_sent(text: str) -> None:
    try:
        canonical = canonical_bank_reference(text)
    except InvalidIdentifier:
        return
    assert canonical == text and text.isascii() and text == text.strip() and "  " not in text
    assert 1 <= len(text) <= 64 and all(c.isprintable() for c in text)


@pytest.mark.parametrize("reference", ["wire 1 ", " wire 1", "wire  1", "wire\t1", "wire １", "", "x" * 65])
def test_bank_references_with_a_second_spelling_are_refused(reference: str) -> None:
    with pytest.raises(InvalidIdentifier):
        canonical_bank_reference(reference)


def test_bank_reference_hash_is_the_hash_of_the_reference_as_sent() -> None:
    assert bank_reference_hash("CNAPS 2026120400017") == keccak(text="CNAPS 2026120400017")
    assert bank_reference_hash("cnaps 2026120400017") != bank_reference_hash("CNAPS 2026120400017")


def test_salted_key_is_deterministic_and_salt_dependent() -> None:
    key = canonical_invoice_key("24312000000000012345")
    assert salted_key_hash(SALT, key) == salted_key_hash(SALT, key)
    assert salted_key_hash(SALT, key) != salted_key_hash(SALT + b"x", key)
    with pytest.raises(ValueError, match="salt"):
        salted_key_hash(b"short", key)


def test_lot_key_validates_lot_number() -> None:
    warehouse = synthetic_credit_code(3)
    assert canonical_lot_key(warehouse, "COIL-2026/11-0042").endswith("|lot|COIL-2026/11-0042")
    with pytest.raises(InvalidIdentifier):
        canonical_lot_key(warehouse, "")
