"""The ledger's two stories told through :class:`ledger.client.LedgerClient`, on any chain and with any sender.

The same code runs on eth-tester with the sequential :class:`~ledger.client.Web3Sender`
(``tests/ledger/test_client.py``) and on a real anvil through the transaction pipeline
(``tests/e2e/test_ledger_anvil.py``); only the chain's clock and the funding of gas differ, and they come in
as a :class:`Chain`. Every participant is a fresh account the operator onboards through the client, so a story
can run on any deployment. The stories assert as they go (balances move by exactly the prices, states follow
the lifecycles of docs/design.md, the double pledge is refused by its error name) and return what they made, so
callers can check it again later (after an anvil restart, or against the index).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from ledger.client import LedgerClient, OperationMethod, Outcome
from ledger.errors import ContractRevert
from ledger.identifiers import (
    canonical_invoice_key,
    canonical_lot_key,
    salted_key_hash,
    synthetic_credit_code,
)
from ledger.models import InvoiceState, PledgeState, ReceiptState, RequestState, Role
from ledger.pipeline import Operation
from scf.examples import receipt_elements as receipt_elements

DAY = 86_400
YUAN = 100  # fen
KEY_SALT = b"salt of the scf-ledger story tests"
TONNE = "tonne"

_serial = itertools.count(1)


@dataclass
class Chain:
    """What a story needs of the chain besides the client: its clock and gas money for new accounts."""

    now: Callable[[], int]
    travel_to: Callable[[int], Awaitable[None]]
    fund_gas: Callable[[str], Awaitable[None]]


class Signers(dict[str, LocalAccount]):
    """Signing keys in memory by address: the client's ``signer`` in tests (the service uses the keystore)."""

    def add(self, account: LocalAccount) -> LocalAccount:
        self[account.address] = account
        return account

    def __call__(self, address: str) -> LocalAccount:
        return self[address]


@dataclass
class Cast:
    """Participants onboarded by :func:`onboard`: name → account, with their signing keys."""

    operator: str
    accounts: dict[str, LocalAccount] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.accounts[name].address


ROLES: Mapping[str, Role] = {
    "agent": Role.SETTLEMENT_AGENT,
    "regulator": Role.REGULATOR,
    "automaker": Role.CORE_FIRM,
    "seatmaker": Role.SUPPLIER,
    "foammaker": Role.SUPPLIER,
    "bank": Role.FINANCIER,
    "factor": Role.FINANCIER,
    "warehouse": Role.WAREHOUSE,
    "steel": Role.SUPPLIER,
}

OPENING_CASH: Mapping[str, int] = {
    "automaker": 50_000_000 * YUAN,
    "bank": 50_000_000 * YUAN,
    "factor": 50_000_000 * YUAN,
    "seatmaker": 100_000 * YUAN,
    "foammaker": 100_000 * YUAN,
    "steel": 1_000_000 * YUAN,
}


async def done(client: LedgerClient, pending: Awaitable[Operation]) -> Outcome:
    """Submit, then wait for the outcome (raising the contract's named error if it failed)."""
    return await client.outcome(await pending)


async def onboard(
    client: LedgerClient, chain: Chain, operator: LocalAccount, signers: Signers, tag: str, regulator: LocalAccount
) -> Cast:
    """Register a cast of fresh accounts (roles of :data:`ROLES`; keys added to ``signers``), mint their opening
    cash through the settlement agent and let the ledger contracts draw their cash legs. Registrations and
    mints go in flight together. The cast's regulator is registered by the operator without a role and admitted
    by ``regulator``, the deployment's first regulator: the operator cannot grant the regulator role."""
    cast = Cast(operator=operator.address, accounts={"operator": signers.add(operator)})
    signers.add(regulator)
    for name in ROLES:
        cast.accounts[name] = signers.add(Account.from_key(keccak(text=f"story {tag} {name}")))
    await asyncio.gather(*(chain.fund_gas(cast[name]) for name in ROLES))
    registrations = [
        client.register_participant(
            operator.address,
            cast[name],
            keccak(text=f"identity {tag} {name}"),
            [] if role is Role.REGULATOR else [role],
        )
        for name, role in ROLES.items()
    ]
    for outcome in await asyncio.gather(*(done(client, r) for r in registrations)):
        assert outcome.event("ParticipantRegistered")
    await done(client, client.admit_regulator(regulator.address, cast["regulator"]))
    agent = cast["agent"]
    mints = [
        client.mint_deposit(agent, cast[name], amount, keccak(text=f"opening {tag} {name}"))
        for name, amount in OPENING_CASH.items()
    ]
    await asyncio.gather(*(done(client, m) for m in mints))
    spenders = [s for s in ("receivables", "receipts") if s in client.contracts]
    approvals = [client.approve_settlement(cast[name], s) for name in OPENING_CASH for s in spenders]
    await asyncio.gather(*(done(client, a) for a in approvals))
    for name, amount in OPENING_CASH.items():
        assert client.balance_of(cast[name]) == amount
    return cast


@dataclass(frozen=True)
class ReceivableStoryResult:
    invoice_id: int
    pieces: dict[str, int]
    balances: dict[str, int]


async def receivable_story(client: LedgerClient, chain: Chain, cast: Cast) -> ReceivableStoryResult:
    """Tier 1 invoices the core firm, which confirms; tier 1 pays tier 2 with part of the receivable; tier 2
    has its piece financed by the factor (delivery versus payment); the core firm repays at maturity; every
    holder redeems. A rejected invoice, a refused over-split and a declined request show the error paths."""
    automaker, seatmaker, foammaker, factor, bank = (
        cast[n] for n in ("automaker", "seatmaker", "foammaker", "factor", "bank")
    )
    story = 1_000 + next(_serial)  # each run of the story registers invoices of its own
    amount = 1_000_000 * YUAN
    due = chain.now() + 90 * DAY

    await done(client, client.set_credit_line(bank, automaker, 10 * amount))
    assert client.credit_line(automaker).limit == 10 * amount

    def invoice_key(number: int) -> bytes:
        return salted_key_hash(KEY_SALT, canonical_invoice_key(f"{story:010d}{number:010d}"))

    registered = await done(
        client,
        client.register_invoice(seatmaker, invoice_key(1), automaker, amount, "CNY", due, keccak(text="doc 1")),
    )
    invoice_id = int(registered.event("InvoiceRegistered")["invoiceId"])
    assert client.invoice_id_of_key(invoice_key(1)) == invoice_id
    assert client.invoice(invoice_id).state is InvoiceState.REGISTERED

    # The same invoice twice is refused before anything is signed.
    with pytest.raises(ContractRevert) as twice:
        await client.register_invoice(seatmaker, invoice_key(1), automaker, amount, "CNY", due, b"\x01" * 32)
    assert twice.value.name == "ReceivablesInvoiceAlreadyRegistered"

    # Only the buyer confirms.
    with pytest.raises(ContractRevert) as stranger:
        await client.confirm_invoice(bank, invoice_id)
    assert stranger.value.name in ("ReceivablesNotBuyer", "RegistryMissingRole")

    confirmed = await done(client, client.confirm_invoice(automaker, invoice_id))
    first_piece = int(confirmed.event("InvoiceConfirmed")["pieceId"])
    invoice = client.invoice(invoice_id)
    assert invoice.state is InvoiceState.CONFIRMED and invoice.outstanding == amount
    assert client.piece(first_piece).owner == seatmaker
    assert client.credit_line(automaker).used == amount

    # A second invoice the buyer rejects.
    other = await done(
        client,
        client.register_invoice(seatmaker, invoice_key(2), automaker, 5_000 * YUAN, "CNY", due, keccak(text="d2")),
    )
    other_id = int(other.event("InvoiceRegistered")["invoiceId"])
    await done(client, client.reject_invoice(automaker, other_id, keccak(text="goods not received")))
    assert client.invoice(other_id).state is InvoiceState.REJECTED

    # Tier 1 pays tier 2 with 300,000 yuan of the receivable: a new piece recording its parent.
    with pytest.raises(ContractRevert) as too_much:
        await client.transfer_piece(seatmaker, first_piece, foammaker, amount + 1)
    assert too_much.value.name == "ReceivablesInsufficientValue"
    split = await done(client, client.transfer_piece(seatmaker, first_piece, foammaker, 300_000 * YUAN))
    foam_piece = int(split.event("PieceSplit")["pieceId"])
    assert client.path_of(foam_piece) == [first_piece, foam_piece]
    assert client.piece(first_piece).value == 700_000 * YUAN
    assert client.piece(foam_piece).value == 300_000 * YUAN

    # Tier 2 asks the bank, which declines; then the factor, which approves at 6% a year and funds. Each request
    # carries the most tier 2 accepts (6% a year, a fee of 500 yuan): the factor cannot approve above it.
    caps = (600, 500 * YUAN)
    asked_bank = await done(client, client.request_financing(foammaker, foam_piece, 300_000 * YUAN, bank, *caps))
    declined_id = int(asked_bank.event("FinancingRequested")["requestId"])
    await done(client, client.decline_financing(bank, declined_id))
    assert client.financing_request(declined_id).state is RequestState.DECLINED

    asked_twice = await done(client, client.request_financing(foammaker, foam_piece, 300_000 * YUAN, factor, *caps))
    cancelled_id = int(asked_twice.event("FinancingRequested")["requestId"])
    await done(client, client.cancel_financing(foammaker, cancelled_id))
    assert client.financing_request(cancelled_id).state is RequestState.CANCELLED

    requested = await done(client, client.request_financing(foammaker, foam_piece, 300_000 * YUAN, factor, *caps))
    request_id = int(requested.event("FinancingRequested")["requestId"])
    with pytest.raises(ContractRevert) as locked:
        await client.transfer_piece(foammaker, foam_piece, seatmaker, 1 * YUAN)
    assert locked.value.name == "ReceivablesPieceLocked"
    with pytest.raises(ContractRevert) as above:
        await client.approve_financing(factor, request_id, 600, 500 * YUAN + 1)
    assert above.value.name == "ReceivablesTermsAboveAccepted"
    await done(client, client.approve_financing(factor, request_id, 600, 500 * YUAN))
    discount, fee, price = client.quote_financing(request_id)
    assert fee == 500 * YUAN and discount > 0 and price == 300_000 * YUAN - discount - fee
    foam_cash, factor_cash = client.balance_of(foammaker), client.balance_of(factor)
    funded = await done(client, client.fund_financing(factor, request_id))
    factor_piece = int(funded.event("FinancingFunded")["pieceId"])
    assert int(funded.event("FinancingFunded")["price"]) == price
    assert client.balance_of(foammaker) == foam_cash + price
    assert client.balance_of(factor) == factor_cash - price
    assert client.piece(factor_piece).owner == factor
    assert client.financing_request(request_id).state is RequestState.FUNDED
    # The factor registers the transfer in 中登网 and records its number and date against the financing.
    number = b"04539487000452458806".ljust(32, b"\0")
    registered = await done(client, client.record_financing_registration(factor, request_id, number, chain.now()))
    assert registered.named("FinancingRegistered")

    # Maturity: the core firm repays in two instalments; then every holder redeems its share.
    await chain.travel_to(due)
    await done(client, client.repay(automaker, invoice_id, 400_000 * YUAN))
    await done(client, client.repay(automaker, invoice_id, 600_000 * YUAN))
    assert client.obligation_state(invoice_id) is InvoiceState.PAID
    balances = {}
    for holder, piece_id in (("seatmaker", first_piece), ("factor", factor_piece)):
        before = client.balance_of(cast[holder])
        expected = client.redeemable(piece_id)
        redeemed = await done(client, client.redeem(cast[holder], piece_id))
        assert int(redeemed.event("PieceRedeemed")["payout"]) == expected
        balances[holder] = client.balance_of(cast[holder])
        assert balances[holder] == before + expected
    assert client.invoice(invoice_id).redeemed == amount
    pieces = {"seatmaker": first_piece, "foammaker": foam_piece, "factor": factor_piece}
    return ReceivableStoryResult(invoice_id, pieces, balances)


@dataclass(frozen=True)
class WarehouseStoryResult:
    redeemed_receipt: int
    enforced_receipt: int
    pledges: tuple[int, ...]


async def _issue(client: LedgerClient, chain: Chain, cast: Cast, lot: str, valuation: int) -> int:
    lot_key = salted_key_hash(KEY_SALT, canonical_lot_key(synthetic_credit_code(2_000), lot))
    issued = await done(
        client,
        client.issue_receipt(
            cast["warehouse"],
            cast["steel"],
            lot_key,
            keccak(text=f"hot-rolled coil Q235B, lot {lot}"),
            1_000,
            TONNE,
            valuation,
            chain.now() + 365 * DAY,
            keccak(text=f"encrypted documents of lot {lot}"),
        ),
    )
    receipt_id = int(issued.event("ReceiptIssued")["receiptId"])
    assert client.receipt_id_of_lot(lot_key) == receipt_id
    return receipt_id


async def warehouse_story(client: LedgerClient, chain: Chain, cast: Cast) -> WarehouseStoryResult:
    """A steel trader's coil at a licensed warehouse: a receipt, a pledge loan from the bank, a second pledge
    refused, a valuation drop with a margin call, repayment and release, redemption of the goods; then a second
    lot whose loan is not repaid and which the bank takes on enforcement."""
    steel, bank, factor, warehouse, regulator = (cast[n] for n in ("steel", "bank", "factor", "warehouse", "regulator"))
    serial = next(_serial)
    valuation = 4_000_000 * YUAN
    receipt_id = await _issue(client, chain, cast, f"SH-{serial}-A", valuation)
    receipt = client.receipt(receipt_id)
    assert receipt.owner == steel and receipt.state is ReceiptState.ACTIVE and receipt.unit == TONNE

    # A regulator's freeze stops a pledge until lifted.
    await done(client, client.freeze_receipt(regulator, receipt_id, keccak(text="inspection")))
    with pytest.raises(ContractRevert) as frozen:
        await client.pledge(steel, receipt_id, bank, 1_000 * YUAN, 600, chain.now() + 30 * DAY)
    assert frozen.value.name == "ReceiptIsFrozen"
    await done(client, client.unfreeze_receipt(regulator, receipt_id))

    limit = client.advance_limit(receipt_id, bank)
    assert limit == valuation * 7_000 // 10_000
    due = chain.now() + 180 * DAY
    with pytest.raises(ContractRevert) as over:
        await client.pledge(steel, receipt_id, bank, limit + 1, 600, due)
    assert over.value.name == "PledgeExceedsAdvanceLimit"
    requested = await done(client, client.pledge(steel, receipt_id, bank, limit, 600, due))
    pledge_id = int(requested.event("PledgeRequested")["pledgeId"])
    steel_cash = client.balance_of(steel)
    await done(client, client.fund_pledge(bank, pledge_id))
    assert client.balance_of(steel) == steel_cash + limit
    assert client.pledge_loan(pledge_id).state is PledgeState.ACTIVE
    assert client.pledge_of(receipt_id) == pledge_id
    # The bank registers the pledge in 中登网 and records its number and date against the loan.
    number = b"04539487000452458901".ljust(32, b"\0")
    registered = await done(client, client.record_pledge_registration(bank, pledge_id, number, chain.now()))
    assert registered.named("PledgeRegistered")

    # The same goods cannot back a second loan, nor leave the owner.
    with pytest.raises(ContractRevert) as second:
        await client.pledge(steel, receipt_id, factor, 1_000 * YUAN, 600, due)
    assert second.value.name in ("ReceiptAlreadyPledged", "ReceiptLocked")
    with pytest.raises(ContractRevert) as moved:
        await client.transfer_receipt(steel, receipt_id, factor)
    assert moved.value.name == "ReceiptLocked"

    # Coil prices fall 20%: the loan is above 80% of the new valuation, a margin call.
    lower = valuation * 8 // 10
    called = await done(client, client.revalue_receipt(warehouse, receipt_id, lower, keccak(text="price list")))
    assert called.named("PledgeMarginCalled")
    # A period of the weighbridge's readings anchored: the whole quantity observed, so no collateral alert.
    quantity = client.receipt(receipt_id).quantity
    digest = keccak(text="weighbridge readings, period 1")
    anchored = await done(client, client.anchor_readings(warehouse, receipt_id, digest, chain.now(), 12, quantity, 50))
    assert anchored.named("ReceiptReadingsAnchored") and not anchored.named("ReceiptCollateralShortfall")
    status = client.receipt(receipt_id).goods_status
    await done(client, client.update_goods_status(warehouse, receipt_id, status, keccak(text="inspected")))

    await chain.travel_to(chain.now() + 30 * DAY)
    await done(client, client.repay_pledge(steel, pledge_id, limit // 4))
    principal, interest = client.amount_owed(pledge_id)
    assert 0 < principal < limit
    # Interest accrues by the second, so "everything owed" is settled at the transaction's own time.
    steel_cash = client.balance_of(steel)
    released = await done(client, client.repay_pledge(steel, pledge_id))
    paid = int(released.event("PledgeRepaid")["amount"])
    assert paid >= principal + interest and client.balance_of(steel) == steel_cash - paid
    assert released.named("PledgeReleased")
    assert client.pledge_loan(pledge_id).state is PledgeState.RELEASED
    assert client.receipt(receipt_id).state is ReceiptState.ACTIVE

    # The goods leave: the owner asks, withdraws, asks again, the warehouse confirms; the receipt is burnt.
    await done(client, client.request_redemption(steel, receipt_id))
    await done(client, client.withdraw_redemption(steel, receipt_id))
    await done(client, client.request_redemption(steel, receipt_id))
    await done(client, client.confirm_redemption(warehouse, receipt_id))
    assert client.receipt(receipt_id).state is ReceiptState.REDEEMED

    # A second lot: one pledge request cancelled, one declined, then a loan left unpaid and enforced.
    second_id = await _issue(client, chain, cast, f"SH-{serial}-B", valuation)
    due = chain.now() + 60 * DAY
    cancelled = await done(client, client.pledge(steel, second_id, factor, 100_000 * YUAN, 800, due))
    await done(client, client.cancel_pledge(steel, int(cancelled.event("PledgeRequested")["pledgeId"])))
    declined = await done(client, client.pledge(steel, second_id, factor, 100_000 * YUAN, 800, due))
    await done(client, client.decline_pledge(factor, int(declined.event("PledgeRequested")["pledgeId"])))
    loan = await done(client, client.pledge(steel, second_id, bank, 1_000_000 * YUAN, 800, due))
    loan_id = int(loan.event("PledgeRequested")["pledgeId"])
    await done(client, client.fund_pledge(bank, loan_id))
    with pytest.raises(ContractRevert) as early:
        await client.enforce_pledge(bank, loan_id)
    assert early.value.name == "PledgeNotDue"
    await chain.travel_to(due + DAY)
    await done(client, client.enforce_pledge(bank, loan_id))
    assert client.pledge_loan(loan_id).state is PledgeState.ENFORCED
    assert client.receipt(second_id).owner == bank
    return WarehouseStoryResult(receipt_id, second_id, (pledge_id, loan_id))


def every_domain_method() -> set[str]:
    """The names of the client's write methods (coroutines), which the client tests must each exercise."""
    return {
        name
        for name in dir(LedgerClient)
        if not name.startswith("_")
        and name not in ("outcome", "submit")
        and (
            isinstance(getattr(LedgerClient, name), OperationMethod)
            or asyncio.iscoroutinefunction(getattr(LedgerClient, name))
        )
    }
