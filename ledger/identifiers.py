"""Identifiers of the domain: unified social credit codes, invoice numbers, and the salted keys put on chain.

On chain an invoice is known only by the salted hash of its canonical key (seller's credit code + invoice
number, plus the invoice code for older VAT invoices), and a warehouse lot by the salted hash of (warehouse's
credit code + lot number). The salt is a platform secret: the same invoice always hashes to the same key, so
a second registration is refused, while nobody can recover invoice numbers from the chain by guessing.
"""

from __future__ import annotations

import re

from eth_utils import keccak

#: GB 32100-2015 alphabet: digits and capitals without I, O, S, V, Z.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE = re.compile(f"^[{CREDIT_CODE_ALPHABET}]{{18}}$")
_DIGITAL_INVOICE_NUMBER = re.compile(r"^\d{20}$")
_VAT_INVOICE_CODE = re.compile(r"^(\d{10}|\d{12})$")
_VAT_INVOICE_NUMBER = re.compile(r"^\d{8}$")
_LOT_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


class InvalidIdentifier(ValueError):
    """An identifier that does not follow its format (bad input, never a chain error)."""


def credit_code_check_character(first17: str) -> str:
    """The 18th (check) character of a unified social credit code."""
    if len(first17) != 17 or any(c not in CREDIT_CODE_ALPHABET for c in first17):
        raise InvalidIdentifier(f"credit code body must be 17 characters of {CREDIT_CODE_ALPHABET}")
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True))
    check = 31 - total % 31
    return CREDIT_CODE_ALPHABET[0 if check == 31 else check]


def validate_credit_code(code: str) -> str:
    """Return ``code`` if it is a well-formed credit code with the right check character."""
    if not _CREDIT_CODE.match(code):
        raise InvalidIdentifier("a unified social credit code is 18 characters of digits and capitals (no I O S V Z)")
    if credit_code_check_character(code[:17]) != code[17]:
        raise InvalidIdentifier("the credit code's check character is wrong")
    return code


def synthetic_credit_code(seed: int) -> str:
    """A made-up but well-formed credit code for test data (never a real company's)."""
    body = "91"  # registration authority 9 (industry and commerce), type 1 (enterprise)
    body += f"{310000 + seed % 10000:06d}"  # an administrative division in the 31xxxx (Shanghai) range
    value = seed * 7919 + 104729
    for _ in range(9):
        body += CREDIT_CODE_ALPHABET[value % 31]
        value //= 31
    return body + credit_code_check_character(body)


def canonical_invoice_key(seller_credit_code: str, invoice_number: str, invoice_code: str | None = None) -> str:
    """The canonical key of an invoice: a fully digitalised e-invoice's 20-digit number, or an older VAT
    invoice's 10/12-digit code plus its 8-digit number, under the seller's credit code."""
    validate_credit_code(seller_credit_code)
    if invoice_code is None:
        if not _DIGITAL_INVOICE_NUMBER.match(invoice_number):
            raise InvalidIdentifier("an e-invoice number has 20 digits (or give the invoice code of a VAT invoice)")
        return f"{seller_credit_code}|{invoice_number}"
    if not _VAT_INVOICE_CODE.match(invoice_code) or not _VAT_INVOICE_NUMBER.match(invoice_number):
        raise InvalidIdentifier("a VAT invoice has a 10- or 12-digit code and an 8-digit number")
    return f"{seller_credit_code}|{invoice_code}|{invoice_number}"


def canonical_lot_key(warehouse_credit_code: str, lot_number: str) -> str:
    """The canonical key of a warehouse lot: the warehouse's credit code and its lot number."""
    validate_credit_code(warehouse_credit_code)
    if not _LOT_NUMBER.match(lot_number):
        raise InvalidIdentifier("a lot number is 1-64 letters, digits or . _ / -")
    return f"{warehouse_credit_code}|lot|{lot_number}"


def salted_key_hash(salt: bytes, canonical_key: str) -> bytes:
    """keccak256(salt ‖ canonical key): what goes on chain in place of the key."""
    if len(salt) < 16:
        raise ValueError("the key salt must be at least 16 bytes")
    return keccak(salt + canonical_key.encode())
