"""Identifiers of the domain: unified social credit codes, invoice numbers, lot numbers, bank references, and the
salted keys put on chain.

Every identifier that feeds a uniqueness key is *canonical ASCII* before it is hashed: an invoice number is ASCII
digits ``0-9`` and nothing else. Python's ``\\d`` and ``str.isdigit()`` accept hundreds of other characters
(full-width ``２``, Arabic-Indic ``٢``, superscript ``²``, ...), so the same invoice typed with another digit
class would hash to another key and could be registered, confirmed and financed twice. Such input is refused
(:class:`InvalidIdentifier`, a 422 at the REST edge), never folded silently into ASCII: the caller must send the
identifier as it is printed.

On chain an invoice is known only by the salted hash of its canonical key, which is its *national identity*: a
fully digitalised e-invoice's 20-digit number, or an older VAT invoice's 10/12-digit code plus its 8-digit number.
Either is unique nationwide, so the seller is *not* part of the key: the same invoice presented by a second
seller is the same invoice, and is refused. A warehouse lot is keyed by (warehouse's credit code, lot number):
lot numbers are only unique within one warehouse. The salt is a platform secret: the same invoice always hashes
to the same key, while nobody can recover invoice numbers from the chain by guessing.
"""

from __future__ import annotations

import re

from eth_utils import keccak

#: GB 32100-2015 alphabet: digits and capitals without I, O, S, V, Z.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Explicit ASCII classes with fullmatch: `$` would accept a trailing newline, `\d` any Unicode digit.
_CREDIT_CODE = re.compile(f"[{CREDIT_CODE_ALPHABET}]{{18}}")
_DIGITAL_INVOICE_NUMBER = re.compile(r"[0-9]{20}")
_VAT_INVOICE_CODE = re.compile(r"[0-9]{10}|[0-9]{12}")
_VAT_INVOICE_NUMBER = re.compile(r"[0-9]{8}")
_LOT_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,63}")
_BANK_REFERENCE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/:(),'+-]| [A-Za-z0-9._/:(),'+-])*")

INVOICE_NUMBER_PATTERN = "^[0-9]{20}$|^[0-9]{8}$"
"""What an invoice number looks like at the REST edge (OpenAPI ``pattern``): 20 ASCII digits, or 8 with a code."""
INVOICE_CODE_PATTERN = "^[0-9]{10}$|^[0-9]{12}$"
LOT_NUMBER_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
BANK_REFERENCE_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._/:(),'+-]| [A-Za-z0-9._/:(),'+-])*$"


class InvalidIdentifier(ValueError):
    """An identifier that does not follow its format (bad input, never a chain error)."""


def _require_ascii(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{what} must be text")
    if not value.isascii():
        raise InvalidIdentifier(
            f"{what} must be written in ASCII characters only (digits 0-9; full-width or other Unicode digits "
            "are refused, not converted)"
        )
    return value


def credit_code_check_character(first17: str) -> str:
    """The 18th (check) character of a unified social credit code."""
    if len(first17) != 17 or any(c not in CREDIT_CODE_ALPHABET for c in first17):
        raise InvalidIdentifier(f"credit code body must be 17 characters of {CREDIT_CODE_ALPHABET}")
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True))
    check = 31 - total % 31
    return CREDIT_CODE_ALPHABET[0 if check == 31 else check]


def validate_credit_code(code: str) -> str:
    """Return ``code`` if it is a well-formed credit code with the right check character."""
    _require_ascii(code, "a unified social credit code")
    if not _CREDIT_CODE.fullmatch(code):
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


def canonical_invoice_key(invoice_number: str, invoice_code: str | None = None) -> str:
    """The canonical key of an invoice, its national identity: ``einvoice:<20 digits>`` for a fully digitalised
    e-invoice (数电票), ``vat:<10 or 12-digit code>:<8-digit number>`` for an older VAT invoice. ASCII digits only;
    anything else is refused."""
    _require_ascii(invoice_number, "an invoice number")
    if invoice_code is None:
        if not _DIGITAL_INVOICE_NUMBER.fullmatch(invoice_number):
            raise InvalidIdentifier("an e-invoice number has 20 digits 0-9 (or give the invoice code of a VAT invoice)")
        return f"einvoice:{invoice_number}"
    _require_ascii(invoice_code, "an invoice code")
    if not _VAT_INVOICE_CODE.fullmatch(invoice_code) or not _VAT_INVOICE_NUMBER.fullmatch(invoice_number):
        raise InvalidIdentifier("a VAT invoice has a 10- or 12-digit code and an 8-digit number, digits 0-9")
    return f"vat:{invoice_code}:{invoice_number}"


def canonical_lot_number(lot_number: str) -> str:
    """A lot number in its canonical form: ASCII letters, digits and ``. _ / -``, 1-64 characters, starting with
    a letter or digit, letters in upper case (``coil-7`` and ``COIL-7`` are one lot; only ASCII letters are
    case-folded, anything outside ASCII is refused)."""
    _require_ascii(lot_number, "a lot number")
    canonical = lot_number.upper()
    if not _LOT_NUMBER.fullmatch(canonical):
        raise InvalidIdentifier(
            "a lot number is 1-64 ASCII letters, digits or . _ / - (starting with a letter or digit)"
        )
    return canonical


def canonical_lot_key(warehouse_credit_code: str, lot_number: str) -> str:
    """The canonical key of a warehouse lot: the warehouse's credit code and its canonical lot number."""
    validate_credit_code(warehouse_credit_code)
    return f"{warehouse_credit_code}|lot|{canonical_lot_number(lot_number)}"


def canonical_bank_reference(reference: str) -> str:
    """A bank transfer's reference as the settlement bank prints it: 1-64 ASCII characters of SWIFT's character
    set (letters, digits, ``. _ / : ( ) , ' + -``) starting with a letter or digit, with single spaces between
    words. Case is kept (banks' references are exact strings). Anything that has a second spelling is refused
    rather than rewritten: non-ASCII characters, leading, trailing or doubled spaces, tabs and line breaks."""
    _require_ascii(reference, "a bank reference")
    if len(reference) > 64 or not _BANK_REFERENCE.fullmatch(reference):
        raise InvalidIdentifier(
            "a bank reference is 1-64 ASCII letters, digits, . _ / : ( ) , ' + - and single spaces between words, "
            "starting with a letter or digit"
        )
    return reference


def bank_reference_hash(reference: str) -> bytes:
    """keccak256 of the canonical bank reference: what the deposit token records (once per mint, once per burn)."""
    return keccak(text=canonical_bank_reference(reference))


def salted_key_hash(salt: bytes, canonical_key: str) -> bytes:
    """keccak256(salt ‖ canonical key): what goes on chain in place of the key."""
    if len(salt) < 16:
        raise ValueError("the key salt must be at least 16 bytes")
    if not canonical_key.isascii():
        raise InvalidIdentifier("a canonical key is ASCII")
    return keccak(salt + canonical_key.encode("ascii"))


def no_document_hash(key_hash: bytes) -> bytes:
    """The document hash recorded for an invoice or lot registered without a document: derived from the *salted*
    key hash (never from the key itself, which would let anyone recover the invoice number by guessing)."""
    return keccak(b"scf-ledger:no-document:" + key_hash)
