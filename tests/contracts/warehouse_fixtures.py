"""Helpers and fixtures shared by the warehouse-receipt tests (examples, properties, gas).

They build on the lead's :class:`ledger.tooling.sandbox.Sandbox` (``WarehouseReceipts`` deployed as ``receipts``,
every opening-balance holder having approved it for deposit tokens) and add what only these tests need:
mirrors of the contract's enums, salted lot keys, issue/pledge/fund shortcuts, a ``sensor`` participant
(an oracle with no role) registered for one test, and :func:`measure_warehouse_gas`, which the gas test and
``scripts/gas_report.py`` share.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eth_utils import keccak
from web3.types import TxReceipt

from ledger.identifiers import canonical_lot_key, salted_key_hash, synthetic_credit_code
from ledger.models import GoodsStatus as GoodsStatus
from ledger.models import PledgeState as PledgeState
from ledger.models import ReceiptState as ReceiptState
from ledger.tooling.sandbox import Sandbox

DAY = 86_400
YEAR = 365 * DAY
BPS = 10_000
YUAN = 100  # fen
MAX_UINT256 = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_HASH = b"\x00" * 32

SALT = b"sandbox salt of the scf-ledger tests"
WAREHOUSE_CODES = {"warehouse": synthetic_credit_code(201), "warehouse2": synthetic_credit_code(202)}
TONNE = b"tonne".ljust(8, b"\x00")
GOODS = keccak(text="hot-rolled steel coil, Q235B, 1,000 t")
DOCUMENTS = keccak(text="encrypted warehouse documents of the lot")

#: A steel trader's lot of coil: 1,000 t at ¥4,000/t.
QUANTITY = 1_000
VALUATION = 4_000_000 * YUAN
#: 70% of the valuation, the default advance limit.
PRINCIPAL = VALUATION * 7_000 // BPS
RATE_BPS = 600

_lot_numbers = itertools.count(1)


# Field positions of the `receipt(id)` and `pledge(id)` tuples.
R_WAREHOUSE, R_VALUATION, R_QUANTITY, R_UNIT, R_VALUED_AT, R_EXPIRY, R_GOODS, R_STATE, R_FROZEN = range(9)
(
    P_BORROWER,
    P_RECEIPT,
    P_RATE,
    P_STATE,
    P_FINANCIER,
    P_PRINCIPAL,
    P_INTEREST_DUE,
    P_DUE_DATE,
    P_ACCRUED_FROM,
) = range(9)


def lot_key(warehouse: str = "warehouse", number: int | None = None) -> bytes:
    """A fresh salted lot key: the warehouse's synthetic credit code and a lot number."""
    n = next(_lot_numbers) if number is None else number
    code = WAREHOUSE_CODES.get(warehouse, synthetic_credit_code(299))
    return salted_key_hash(SALT, canonical_lot_key(code, f"COIL-2025-{n:06d}"))


def receipt_id_of(key: bytes) -> int:
    """The id of the receipt for lot key ``key``: the key hash read as a big-endian ``uint256``."""
    return int.from_bytes(key, "big")


def interest(principal: int, rate_bps: int, seconds: int) -> int:
    """ceil(principal * rate * seconds / (365 days * 10,000)): the contract's act/365 simple interest."""
    return -(-principal * rate_bps * seconds // (YEAR * BPS))


def receipts(sb: Sandbox) -> Any:
    return sb.contracts["receipts"]


def issue_fn(
    sb: Sandbox,
    *,
    owner: str = "steel",
    key: bytes | None = None,
    quantity: int = QUANTITY,
    unit: bytes = TONNE,
    valuation: int = VALUATION,
    expires_in: int = YEAR,
    goods: bytes = GOODS,
    documents: bytes = DOCUMENTS,
) -> Any:
    return receipts(sb).functions.issueReceipt(
        sb.address(owner),
        key or lot_key(),
        goods,
        quantity,
        unit,
        valuation,
        sb.now() + expires_in,
        documents,
    )


def issue_receipt(sb: Sandbox, *, warehouse: str = "warehouse", **terms: Any) -> int:
    """Issue a receipt (by default 1,000 t of coil worth ¥4,000,000, owned by the steel trader); its id."""
    tx = sb.send(issue_fn(sb, **terms), warehouse)
    return int(sb.events(tx, "receipts", "ReceiptIssued")[0]["receiptId"])


def request_fn(
    sb: Sandbox,
    receipt_id: int,
    *,
    financier: str = "bank",
    principal: int = PRINCIPAL,
    rate_bps: int = RATE_BPS,
    due_in: int = 90 * DAY,
) -> Any:
    return receipts(sb).functions.requestPledge(
        receipt_id, sb.address(financier), principal, rate_bps, sb.now() + due_in
    )


def request_pledge(sb: Sandbox, receipt_id: int, *, owner: str = "steel", **terms: Any) -> int:
    tx = sb.send(request_fn(sb, receipt_id, **terms), owner)
    return int(sb.events(tx, "receipts", "PledgeRequested")[0]["pledgeId"])


def fund_pledge(sb: Sandbox, pledge_id: int, financier: str = "bank") -> TxReceipt:
    return sb.send(receipts(sb).functions.fundPledge(pledge_id), financier)


def pledged_receipt(sb: Sandbox, *, owner: str = "steel", financier: str = "bank", **terms: Any) -> tuple[int, int]:
    """Issue a receipt to ``owner`` and have ``financier`` fund a pledge on it: (receipt id, pledge id)."""
    receipt_id = issue_receipt(sb, owner=owner)
    pledge_id = request_pledge(sb, receipt_id, owner=owner, financier=financier, **terms)
    fund_pledge(sb, pledge_id, financier)
    return receipt_id, pledge_id


def receipt_of(sb: Sandbox, receipt_id: int) -> tuple[Any, ...]:
    return tuple(receipts(sb).functions.receipt(receipt_id).call())


def pledge_of(sb: Sandbox, pledge_id: int) -> tuple[Any, ...]:
    return tuple(receipts(sb).functions.pledge(pledge_id).call())


def owner_of(sb: Sandbox, receipt_id: int) -> str:
    return str(receipts(sb).functions.ownerOf(receipt_id).call())


def block_time(sb: Sandbox, tx: TxReceipt) -> int:
    return int(sb.w3.eth.get_block(tx["blockNumber"])["timestamp"])


@contextmanager
def sensor_participant(sb: Sandbox) -> Iterator[str]:
    """An active participant with no role (an attested sensor feed), known to the sandbox as ``sensor``.

    Register it inside a test's snapshot, so that the chain forgets it afterwards; the name goes on leaving.
    """
    address = sb.w3.eth.accounts[1]
    identity = keccak(text="identity record of sensor")
    sb.send(sb.contracts["registry"].functions.register(address, identity, []), "operator")
    sb.accounts["sensor"] = address
    try:
        yield "sensor"
    finally:
        del sb.accounts["sensor"]


class GasRecorder:
    """Sends transactions on the sandbox and keeps the gas each used, by operation name."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.gas: dict[str, int] = {}

    def run(self, name: str | None, fn: Any, sender: str) -> TxReceipt:
        tx = self.sb.send(fn, sender)
        if name is not None:
            self.gas[name] = int(tx["gasUsed"])
        return tx

    def issue(self, name: str | None = None) -> int:
        tx = self.run(name, issue_fn(self.sb), "warehouse")
        return int(self.sb.events(tx, "receipts", "ReceiptIssued")[0]["receiptId"])

    def request(self, name: str | None, receipt_id: int, due_in: int) -> int:
        tx = self.run(name, request_fn(self.sb, receipt_id, due_in=due_in), "steel")
        return int(self.sb.events(tx, "receipts", "PledgeRequested")[0]["pledgeId"])


def measure_warehouse_gas(sb: Sandbox) -> dict[str, int]:
    """Gas used by each warehouse-receipt operation, run once each on ``sb``; the chain is restored after.

    A realistic order: the steel trader's lot is receipted, pledged to the bank, revalued (once above the
    maintenance ratio, once below: a margin call), repaid in part and in full; another lot is pledged and
    enforced; a third redeemed; a fourth transferred. ``issue`` is the owner's first receipt, which pays for a
    fresh ERC-721 balance word as the design's reference mint does; ``issue (owner already holds a receipt)``
    the next one. ``requestPledge+fund`` and ``redeem`` are sums of two transactions.
    """
    w = receipts(sb)
    rec = GasRecorder(sb)
    with sb.isolated():
        pledged = rec.issue("issue")
        enforced = rec.issue("issue (owner already holds a receipt)")
        redeemed, moved = rec.issue(), rec.issue()

        pledge_id = rec.request("requestPledge", pledged, 90 * DAY)
        rec.run("fundPledge", w.functions.fundPledge(pledge_id), "bank")
        rec.run("revalue", w.functions.revalueReceipt(pledged, VALUATION - 1, b"\x01" * 32), "warehouse")
        breach = PRINCIPAL * 10_000 // 8_000 - 1
        rec.run("revalue (margin call)", w.functions.revalueReceipt(pledged, breach, b"\x02" * 32), "warehouse")
        sb.travel_to(sb.now() + 30 * DAY)
        rec.run("repay (partial)", w.functions.repayPledge(pledge_id, PRINCIPAL // 2), "steel")
        sb.travel_to(sb.now() + 30 * DAY)
        rec.run("repay", w.functions.repayPledge(pledge_id, MAX_UINT256), "steel")

        second = rec.request(None, enforced, 30 * DAY)
        rec.run(None, w.functions.fundPledge(second), "bank")
        sb.travel_to(pledge_of(sb, second)[P_DUE_DATE] + 1)
        rec.run("enforce", w.functions.enforcePledge(second), "bank")

        rec.run("requestRedemption", w.functions.requestRedemption(redeemed), "steel")
        rec.run("confirmRedemption", w.functions.confirmRedemption(redeemed), "warehouse")
        steel, trader = sb.address("steel"), sb.address("trader")
        rec.run("transferFrom", w.functions.transferFrom(steel, trader, moved), "steel")
    gas = rec.gas
    gas["requestPledge+fund"] = gas["requestPledge"] + gas["fundPledge"]
    gas["redeem"] = gas["requestRedemption"] + gas["confirmRedemption"]
    return gas
