"""Assertions shared by the contract tests."""

from __future__ import annotations

import itertools
from typing import Any

from web3.contract.contract import ContractFunction

from ledger.errors import ContractRevert
from ledger.identifiers import canonical_invoice_key, salted_key_hash
from ledger.tooling.sandbox import Sandbox

DAY = 86_400


def assert_reverts(sb: Sandbox, fn: ContractFunction, sender: str, error: str, **arguments: Any) -> ContractRevert:
    """Assert that ``fn`` sent by ``sender`` reverts on chain with the custom error named ``error`` (and, if
    given, with those argument values), and that the failed transaction emitted nothing."""
    receipt = sb.send_raw(fn, sender)
    assert receipt["status"] == 0, f"expected {error}, but the transaction succeeded"
    assert receipt["logs"] == []
    decoded = sb.revert_of(fn, sender)
    assert decoded.name == error, f"expected {error}, got {decoded}"
    for key, value in arguments.items():
        assert decoded.arguments[key] == value, f"{error}.{key}: expected {value!r}, got {decoded.arguments[key]!r}"
    return decoded


SALT = b"sandbox salt of the scf-ledger tests"
_invoice_numbers = itertools.count(1)
YUAN = 100  # fen
ACCEPT_ANY = (10_000, 2**96 - 1)
"""The caps of a financing request that accepts any terms (``maxDiscountRateBps``, ``maxFee``): for tests whose
subject is not the fee disclosure."""
NO_REVIEW = bytes(32)
"""An approval's credit review when the financier recorded none."""
REVIEW = bytes.fromhex("5e" * 32)
"""A financier's credit review (the hash of its review document), for financing beyond the review tenor."""


def invoice_key(number: int | None = None) -> bytes:
    """A salted invoice key: a fresh 20-digit e-invoice number, or number ``number``. The key is the invoice's
    national identity, whoever registers it."""
    n = next(_invoice_numbers) if number is None else number
    return salted_key_hash(SALT, canonical_invoice_key(f"{24310000000000000000 + n:020d}"))


def register_invoice(
    sb: Sandbox,
    *,
    seller: str = "seatmaker",
    buyer: str = "automaker",
    amount: int = 1_000_000 * YUAN,
    due_in: int = 90 * DAY,
    key: bytes | None = None,
    document: bytes = b"\x11" * 32,
) -> int:
    r = sb.contracts["receivables"]
    receipt = sb.send(
        r.functions.registerInvoice(
            key or invoice_key(), sb.address(buyer), amount, b"CNY", sb.now() + due_in, document
        ),
        seller,
    )
    return int(sb.events(receipt, "receivables", "InvoiceRegistered")[0]["invoiceId"])


def grant_credit(sb: Sandbox, core: str = "automaker", grant: int = 100_000_000 * YUAN, grantor: str = "bank") -> None:
    sb.send(sb.contracts["receivables"].functions.setCreditLine(sb.address(core), grant), grantor)


def confirm(sb: Sandbox, invoice_id: int, buyer: str = "automaker") -> int:
    receipt = sb.send(sb.contracts["receivables"].functions.confirmInvoice(invoice_id), buyer)
    return int(sb.events(receipt, "receivables", "InvoiceConfirmed")[0]["pieceId"])


def confirmed_piece(
    sb: Sandbox,
    *,
    seller: str = "seatmaker",
    buyer: str = "automaker",
    amount: int = 1_000_000 * YUAN,
    due_in: int = 90 * DAY,
) -> tuple[int, int]:
    """Grant credit if needed, register and confirm an invoice: (slot id, first piece id)."""
    line = sb.contracts["receivables"].functions.creditLine(sb.address(buyer)).call()
    if line[0] - line[1] < amount:
        grant_credit(sb, buyer, grant=line[1] + amount + 100_000_000 * YUAN)
    invoice_id = register_invoice(sb, seller=seller, buyer=buyer, amount=amount, due_in=due_in)
    return invoice_id, confirm(sb, invoice_id, buyer)


def split(sb: Sandbox, piece_id: int, to: str, value: int, sender: str) -> int:
    r = sb.contracts["receivables"]
    fn = r.get_function_by_signature("transferFrom(uint256,address,uint256)")(piece_id, sb.address(to), value)
    receipt = sb.send(fn, sender)
    return int(sb.events(receipt, "receivables", "PieceSplit")[0]["pieceId"])
