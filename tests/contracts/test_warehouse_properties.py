"""Property-based (stateful) proof of the warehouse-receipt invariants of docs/design.md (1, 4, 5, 7 and 9).

Random participants (warehouses, owners, financiers, the regulator, the operator and a stranger) do random
things: issue receipts (sometimes re-using a lot key), request, fund, cancel and decline pledges, revalue and
re-grade goods, anchor sensor readings (alerts and margin calls from observed quantity), repay in part or in
full, enforce, request/withdraw/confirm redemption, transfer directly or through approvals and operators (safe
and plain), freeze receipts and participants, suspend, and move the clock. The machine does not predict
outcomes; it checks that whatever succeeded was allowed, that what failed emitted and moved nothing, and after
every step that:

1. every lot key maps to exactly one receipt, whose id is the key itself (no lot has two receipts);
7. no receipt has two open liens (requested or active pledges), the receipt's state agrees with its open
   pledge, and a receipt that was locked by a pledge at the previous step has not moved or been burnt since,
   unless the financier enforced the pledge, in which case it passed to the financier and nowhere else;
5. a funding moved the principal from financier to borrower and recorded the lien together, a repayment moved
   exactly the amount it reports from borrower to financier;
4. deposit-token total supply and the sum of all balances are conserved, and the contract holds no cash;
   every participant's ERC-721 balance is the number of live receipts it owns (the contract's own ERC-721
   core keeps its books);
9. only the named party acts (a successful action by anyone else fails the test).

One move tries to leave a receipt stuck in one of the ledger's own contracts (active participants): its owner
sends it there through any ERC-721 entry point, or a warehouse issues one to it. It must always fail, with
``RegistryRecipientIsLedgerContract`` whenever no earlier rule (a locked or frozen receipt, an inactive sender)
refuses it first.

Size: ``MAX_EXAMPLES`` examples of up to ``STEPS`` steps each (about 60 s on eth-tester); the chain is reset
between examples with snapshot/revert, never redeployed. ``SCF_PROPERTY_EXAMPLES`` / ``SCF_PROPERTY_STEPS``
run more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.types import TxReceipt

from ledger.tooling.sandbox import CAST, Sandbox
from tests.contracts.warehouse_fixtures import (
    DAY,
    GOODS,
    MAX_UINT256,
    P_BORROWER,
    P_DUE_DATE,
    P_FINANCIER,
    P_PRINCIPAL,
    P_RECEIPT,
    P_STATE,
    R_EXPIRY,
    R_FROZEN,
    R_STATE,
    R_WAREHOUSE,
    TONNE,
    ZERO_ADDRESS,
    GoodsStatus,
    PledgeState,
    ReceiptState,
    block_time,
    lot_key,
    receipt_id_of,
)

SOAK = os.environ.get("SCF_SOAK") == "1"
#: `make soak` (SCF_SOAK=1) runs 300 examples of up to 50 steps; SCF_PROPERTY_* override either size.
MAX_EXAMPLES = int(os.environ.get("SCF_PROPERTY_EXAMPLES", "300" if SOAK else "15"))
STEPS = int(os.environ.get("SCF_PROPERTY_STEPS", "50" if SOAK else "25"))

WAREHOUSES = ("warehouse", "warehouse2")
FINANCIERS = ("bank", "factor")
EVERYONE = (*WAREHOUSES, "steel", "trader", *FINANCIERS, "regulator", "operator", "outsider")
PARTICIPANTS = (*WAREHOUSES, "steel", "trader", *FINANCIERS)
OPEN = (PledgeState.REQUESTED, PledgeState.ACTIVE)
LOCKED_BY_PLEDGE = (ReceiptState.PLEDGE_REQUESTED, ReceiptState.PLEDGED)
LOCKED = (*LOCKED_BY_PLEDGE, ReceiptState.REDEMPTION_REQUESTED)

LEDGER_CONTRACTS = ("token", "receivables", "receipts")
#: What may refuse a movement before its recipient is looked at.
EARLIER_REFUSALS = {
    "ReceiptIsFrozen",
    "ReceiptLocked",
    "ERC721NonexistentToken",
    "RegistryMissingRole",
    "RegistryParticipantNotActive",
    "RegistryParticipantFrozen",
}

#: Stands for "the party entitled to act here" (the receipt's owner, the pledge's financier, ...), resolved
#: when the rule runs; drawn two times in three so that steps mostly get somewhere, else anyone acts.
RIGHT = "<entitled party>"
#: Stands for the address the receipt's owner approved, if any.
APPROVED = "<approved address>"

actors = st.sampled_from(EVERYONE)
parties = st.one_of(st.just(RIGHT), st.just(RIGHT), actors)
percent = st.integers(min_value=1, max_value=100)


def entitled(role: str) -> st.SearchStrategy[str]:
    """Mostly ``role``, sometimes anyone."""
    return st.one_of(st.just(role), st.just(role), actors)


@dataclass
class Model:
    lots: dict[bytes, int] = field(default_factory=dict)  # lot key -> receipt id
    receipts: list[int] = field(default_factory=list)
    pledges: list[int] = field(default_factory=list)
    suspended: set[str] = field(default_factory=set)
    frozen: set[str] = field(default_factory=set)
    # receipt id -> (owner, state) at the end of the previous step
    seen: dict[int, tuple[str, int]] = field(default_factory=dict)
    # pledges enforced by the step that just ran
    enforced: set[int] = field(default_factory=set)
    # states read by the invariants after the previous step: rules use them to pick promising targets
    receipt_states: dict[int, int] = field(default_factory=dict)
    pledge_states: dict[int, int] = field(default_factory=dict)
    # pledge id -> the registration number its financier recorded
    registered: dict[int, bytes] = field(default_factory=dict)


class WarehouseMachine(RuleBasedStateMachine):
    def __init__(self, sb: Sandbox) -> None:
        super().__init__()
        self.sb = sb
        self.w = sb.contracts["receipts"]
        self.token = sb.contracts["token"]
        self.registry = sb.contracts["registry"]
        # Views are called with an explicit `from`: without one web3 asks the node for its accounts on every
        # call, which triples the cost of a view on eth-tester.
        self.reader: dict[str, Any] = {"from": sb.address("operator")}
        self.snapshot = sb.snapshot()
        self.model = Model()
        self.supply = int(self.token.functions.totalSupply().call(self.reader))
        holders = [sb.address(n) for n in CAST] + [c.address for c in sb.contracts.values()]
        # The conservation check reads every balance after every step: straight from eth-tester, pre-encoded,
        # at half the cost of a web3 call.
        self.balance_queries = {
            h: {
                "from": sb.address("operator"),
                "to": self.token.address,
                "data": self.token.encode_abi("balanceOf", [h]),
            }
            for h in holders
        }

    def teardown(self) -> None:
        self.sb.revert(self.snapshot)

    # -- helpers ------------------------------------------------------------------------------------

    def active(self, who: str) -> bool:
        return who != "outsider" and who not in self.model.suspended and who not in self.model.frozen

    def name_of(self, address: str) -> str:
        return next(n for n in EVERYONE if self.sb.address(n) == address)

    def resolve(self, actor: str, entitled_address: str) -> str:
        """The participant name for ``actor``, the sentinel standing for ``entitled_address``."""
        if actor in (RIGHT, APPROVED):
            return self.name_of(entitled_address) if entitled_address != ZERO_ADDRESS else "outsider"
        return actor

    def send(self, fn: Any, actor: str) -> TxReceipt | None:
        receipt = self.sb.send_raw(fn, actor)
        if receipt["status"] != 1:
            assert receipt["logs"] == [], "a failed transaction emitted events"
            return None
        event(f"succeeded: {fn.fn_name}")  # coverage, shown by --hypothesis-show-statistics
        return receipt

    def receipt(self, receipt_id: int) -> tuple[Any, ...]:
        return tuple(self.w.functions.receipt(receipt_id).call(self.reader))

    def pledge(self, pledge_id: int) -> tuple[Any, ...]:
        return tuple(self.w.functions.pledge(pledge_id).call(self.reader))

    def owner(self, receipt_id: int) -> str:
        if self.receipt(receipt_id)[R_STATE] == ReceiptState.REDEEMED:
            return ZERO_ADDRESS
        return str(self.w.functions.ownerOf(receipt_id).call(self.reader))

    def cash(self, *addresses: str) -> tuple[int, ...]:
        return tuple(int(self.token.functions.balanceOf(a).call(self.reader)) for a in addresses)

    def pick_receipt(self, data: st.DataObject, states: tuple[ReceiptState, ...]) -> int:
        """A receipt, two times in three one that was in one of ``states`` after the previous step."""
        return self._pick(data, self.model.receipts, self.model.receipt_states, states)

    def pick_pledge(self, data: st.DataObject, states: tuple[PledgeState, ...]) -> int:
        """A pledge, two times in three one that was in one of ``states`` after the previous step."""
        return self._pick(data, self.model.pledges, self.model.pledge_states, states)

    @staticmethod
    def _pick(data: st.DataObject, ids: list[int], known: dict[int, int], states: tuple[int, ...]) -> int:
        preferred = [i for i in ids if known.get(i) in states]
        if preferred and data.draw(st.integers(0, 2)) > 0:
            return data.draw(st.sampled_from(preferred))
        return data.draw(st.sampled_from(ids))

    def has_receipts(self) -> bool:
        return bool(self.model.receipts)

    def has_pledges(self) -> bool:
        return bool(self.model.pledges)

    # -- issue and attest -----------------------------------------------------------------------------

    @initialize()
    def stock_the_warehouses(self) -> None:
        """Three lots to start with, one pledged and one with a request open, so that every example has
        receipts to move and liens to fund, repay and enforce from its first step."""
        for warehouse, owner in (("warehouse", "steel"), ("warehouse", "trader"), ("warehouse2", "steel")):
            self.issue(warehouse, owner, reuse=False, valuation=4_000_000_00, expires_days=365)
        first, second = self.model.receipts[:2]
        for receipt_id, owner, financier, due_days in (
            (first, "steel", "bank", 60),
            (second, "trader", "factor", 90),
        ):
            fn = self.w.functions.requestPledge(
                receipt_id, self.sb.address(financier), 2_000_000_00, 500, self.sb.now() + due_days * DAY
            )
            tx = self.sb.send(fn, owner)
            self.model.pledges.append(self.sb.events(tx, "receipts", "PledgeRequested")[0]["pledgeId"])
        self.sb.send(self.w.functions.fundPledge(self.model.pledges[0]), "bank")

    @rule(
        warehouse=st.one_of(st.sampled_from(WAREHOUSES), actors),
        owner=actors,
        reuse=st.booleans(),
        valuation=st.integers(1_000, 50_000_000_00),
        expires_days=st.integers(5, 400),
    )
    def issue(self, warehouse: str, owner: str, reuse: bool, valuation: int, expires_days: int) -> None:
        key = next(iter(self.model.lots)) if reuse and self.model.lots else lot_key()
        fn = self.w.functions.issueReceipt(
            self.sb.address(owner),
            key,
            GOODS,
            1_000,
            TONNE,
            valuation,
            self.sb.now() + expires_days * DAY,
            GOODS,
        )
        tx = self.send(fn, warehouse)
        if tx is None:
            return
        assert key not in self.model.lots, "invariant 1: a lot was receipted twice"
        assert warehouse in WAREHOUSES and self.active(warehouse), "invariant 9: issued by a non-warehouse"
        assert self.active(owner), "invariant 4: issued to an inactive participant"
        receipt_id = self.sb.events(tx, "receipts", "ReceiptIssued")[0]["receiptId"]
        assert receipt_id == receipt_id_of(key), "a receipt's id is its lot key"
        self.model.lots[key] = receipt_id
        self.model.receipts.append(receipt_id)

    @precondition(has_receipts)
    @rule(data=st.data(), actor=parties, pct=st.integers(1, 150))
    def revalue(self, data: st.DataObject, actor: str, pct: int) -> None:
        receipt_id = data.draw(st.sampled_from(self.model.receipts))
        before = self.receipt(receipt_id)
        actor = self.resolve(actor, before[R_WAREHOUSE])
        tx = self.send(self.w.functions.revalueReceipt(receipt_id, before[1] * pct // 100, GOODS), actor)
        if tx is None:
            return
        assert self.sb.address(actor) == before[R_WAREHOUSE] and self.active(actor), "invariant 9: attester"
        for call in self.sb.events(tx, "receipts", "PledgeMarginCalled"):
            assert before[R_STATE] == ReceiptState.PLEDGED
            assert call["principal"] * 10_000 > call["valuation"] * call["maintenanceRatioBps"]

    @precondition(has_receipts)
    @rule(data=st.data(), actor=parties, pct=st.integers(0, 120), tolerance=st.integers(0, 10_500))
    def anchor_readings(self, data: st.DataObject, actor: str, pct: int, tolerance: int) -> None:
        """Sensor readings anchored: an alert exactly when observed is short by more than the tolerance, a
        margin call only on a pledged receipt and only under the maintenance test, the valuation untouched."""
        receipt_id = data.draw(st.sampled_from(self.model.receipts))
        before = self.receipt(receipt_id)
        actor = self.resolve(actor, before[R_WAREHOUSE])
        quantity = before[2]
        observed = quantity * pct // 100
        fn = self.w.functions.anchorReadings(receipt_id, GOODS, self.sb.now(), pct, observed, tolerance)
        tx = self.send(fn, actor)
        if tx is None:
            return
        assert self.sb.address(actor) == before[R_WAREHOUSE] and self.active(actor), "invariant 9: attester"
        assert tolerance <= 10_000, "a tolerance above 10,000 bps was accepted"
        short = observed * 10_000 < quantity * (10_000 - tolerance)
        assert len(self.sb.events(tx, "receipts", "ReceiptCollateralShortfall")) == int(short)
        calls = self.sb.events(tx, "receipts", "PledgeMarginCalled")
        if calls:
            assert short and before[R_STATE] == ReceiptState.PLEDGED, "a margin call without a pledged shortfall"
            (call,) = calls
            assert call["valuation"] == before[1] * observed // quantity
            assert call["principal"] * 10_000 > call["valuation"] * call["maintenanceRatioBps"]
        assert self.receipt(receipt_id)[1] == before[1], "anchored readings changed the valuation"

    @precondition(has_receipts)
    @rule(data=st.data(), actor=parties, status=st.sampled_from([GoodsStatus.SOUND, *GoodsStatus]))
    def grade_goods(self, data: st.DataObject, actor: str, status: GoodsStatus) -> None:
        receipt_id = data.draw(st.sampled_from(self.model.receipts))
        warehouse = self.receipt(receipt_id)[R_WAREHOUSE]
        actor = self.resolve(actor, warehouse)
        if self.send(self.w.functions.updateGoodsStatus(receipt_id, status, GOODS), actor) is not None:
            assert self.sb.address(actor) == warehouse, "invariant 9: goods graded by a non-attester"

    # -- pledges ----------------------------------------------------------------------------------------

    @precondition(has_receipts)
    @rule(
        data=st.data(),
        actor=parties,
        financier=st.one_of(st.sampled_from(FINANCIERS), actors),
        pct=percent,
        rate=st.integers(0, 2_000),
        due_days=st.integers(1, 200),
        over=st.integers(0, 9),
    )
    def request_pledge(
        self, data: st.DataObject, actor: str, financier: str, pct: int, rate: int, due_days: int, over: int
    ) -> None:
        receipt_id = self.pick_receipt(data, (ReceiptState.ACTIVE,))
        before, owner = self.receipt(receipt_id), self.owner(receipt_id)
        actor = self.resolve(actor, owner)
        limit = self.w.functions.advanceLimit(receipt_id, self.sb.address(financier)).call(self.reader)
        principal = limit + 1 if over == 0 else max(1, limit * pct // 100)  # above the limit one time in ten
        fn = self.w.functions.requestPledge(
            receipt_id, self.sb.address(financier), principal, rate, self.sb.now() + due_days * DAY
        )
        tx = self.send(fn, actor)
        if tx is None:
            return
        assert self.sb.address(actor) == owner and self.active(actor), "invariant 9: pledged by a non-owner"
        assert financier in FINANCIERS and financier != actor, "invariant 9: lender is not a financier"
        assert before[R_STATE] == ReceiptState.ACTIVE and not before[R_FROZEN], "invariant 7: locked receipt"
        assert principal <= limit, "a request above the advance limit"
        assert block_time(self.sb, tx) < before[R_EXPIRY], "an expired receipt was pledged"
        self.model.pledges.append(self.sb.events(tx, "receipts", "PledgeRequested")[0]["pledgeId"])

    @precondition(has_pledges)
    @rule(data=st.data(), actor=parties)
    def fund(self, data: st.DataObject, actor: str) -> None:
        pledge_id = self.pick_pledge(data, (PledgeState.REQUESTED,))
        p = self.pledge(pledge_id)
        actor = self.resolve(actor, p[P_FINANCIER])
        cash = self.cash(p[P_BORROWER], p[P_FINANCIER])
        receipt_state = self.receipt(p[P_RECEIPT])[R_STATE]
        tx = self.send(self.w.functions.fundPledge(pledge_id), actor)
        if tx is None:
            # invariant 5: neither leg moved
            assert self.cash(p[P_BORROWER], p[P_FINANCIER]) == cash
            assert self.receipt(p[P_RECEIPT])[R_STATE] == receipt_state
            return
        assert self.sb.address(actor) == p[P_FINANCIER], "invariant 9: funded by someone not the financier"
        assert p[P_STATE] == PledgeState.REQUESTED and block_time(self.sb, tx) < p[P_DUE_DATE]
        principal = p[P_PRINCIPAL]
        assert self.cash(p[P_BORROWER], p[P_FINANCIER]) == (cash[0] + principal, cash[1] - principal)
        assert self.receipt(p[P_RECEIPT])[R_STATE] == ReceiptState.PLEDGED, "invariant 5: lien not recorded"

    @precondition(has_pledges)
    @rule(data=st.data(), actor=parties, future=st.booleans())
    def record_registration(self, data: st.DataObject, actor: str, future: bool) -> None:
        """The financier records the 中登网 registration of an active pledge, once, dated not after now."""
        pledge_id = self.pick_pledge(data, (PledgeState.ACTIVE,))
        p = self.pledge(pledge_id)
        actor = self.resolve(actor, p[P_FINANCIER])
        day = self.sb.now() + (2 * DAY if future else 0)
        number = f"{pledge_id:020d}".encode().ljust(32, b"\0")
        tx = self.send(self.w.functions.recordPledgeRegistration(pledge_id, number, day), actor)
        if tx is None:
            return
        assert self.sb.address(actor) == p[P_FINANCIER], "only the financier records a pledge's registration"
        assert p[P_STATE] == PledgeState.ACTIVE and not future, "a registration of a pledge not active, or dated later"
        assert pledge_id not in self.model.registered, "a pledge's registration recorded twice"
        self.model.registered[pledge_id] = number

    @precondition(has_pledges)
    @rule(data=st.data(), actor=parties, cancel=st.booleans())
    def close_request(self, data: st.DataObject, actor: str, cancel: bool) -> None:
        pledge_id = self.pick_pledge(data, (PledgeState.REQUESTED,))
        p = self.pledge(pledge_id)
        actor = self.resolve(actor, p[P_BORROWER] if cancel else p[P_FINANCIER])
        fn = self.w.functions.cancelPledge(pledge_id) if cancel else self.w.functions.declinePledge(pledge_id)
        if self.send(fn, actor) is not None:
            assert self.sb.address(actor) == (p[P_BORROWER] if cancel else p[P_FINANCIER]), "invariant 9"
            assert p[P_STATE] == PledgeState.REQUESTED

    @precondition(has_pledges)
    @rule(data=st.data(), actor=parties, pct=percent, full=st.booleans())
    def repay(self, data: st.DataObject, actor: str, pct: int, full: bool) -> None:
        pledge_id = self.pick_pledge(data, (PledgeState.ACTIVE,))
        p = self.pledge(pledge_id)
        actor = self.resolve(actor, p[P_BORROWER])
        amount = MAX_UINT256 if full else max(1, p[P_PRINCIPAL] * pct // 100)
        cash = self.cash(p[P_BORROWER], p[P_FINANCIER])
        tx = self.send(self.w.functions.repayPledge(pledge_id, amount), actor)
        if tx is None:
            assert self.cash(p[P_BORROWER], p[P_FINANCIER]) == cash
            return
        assert self.sb.address(actor) == p[P_BORROWER], "invariant 9: repaid by someone not the borrower"
        event = self.sb.events(tx, "receipts", "PledgeRepaid")[0]
        paid = event["amount"]
        assert paid == event["interestPaid"] + event["principalPaid"]
        assert event["principalOutstanding"] == p[P_PRINCIPAL] - event["principalPaid"]
        assert self.cash(p[P_BORROWER], p[P_FINANCIER]) == (cash[0] - paid, cash[1] + paid), "cash leg"
        released = self.sb.events(tx, "receipts", "PledgeReleased")
        assert bool(released) == (event["principalOutstanding"] == 0)

    @precondition(has_pledges)
    @rule(data=st.data(), actor=parties)
    def enforce(self, data: st.DataObject, actor: str) -> None:
        pledge_id = self.pick_pledge(data, (PledgeState.ACTIVE,))
        p = self.pledge(pledge_id)
        actor = self.resolve(actor, p[P_FINANCIER])
        cash = self.cash(p[P_BORROWER], p[P_FINANCIER])
        tx = self.send(self.w.functions.enforcePledge(pledge_id), actor)
        if tx is None:
            return
        assert self.sb.address(actor) == p[P_FINANCIER], "invariant 9: enforced by someone not the financier"
        assert block_time(self.sb, tx) > p[P_DUE_DATE], "enforced before the due date"
        assert self.owner(p[P_RECEIPT]) == p[P_FINANCIER]
        assert self.cash(p[P_BORROWER], p[P_FINANCIER]) == cash, "enforcement moved cash"
        self.model.enforced.add(pledge_id)

    # -- redemption ---------------------------------------------------------------------------------------

    @precondition(has_receipts)
    @rule(data=st.data(), actor=parties, action=st.sampled_from(["request", "withdraw", "confirm"]))
    def redemption(self, data: st.DataObject, actor: str, action: str) -> None:
        wanted = (ReceiptState.ACTIVE,) if action == "request" else (ReceiptState.REDEMPTION_REQUESTED,)
        receipt_id = self.pick_receipt(data, wanted)
        before, owner = self.receipt(receipt_id), self.owner(receipt_id)
        actor = self.resolve(actor, before[R_WAREHOUSE] if action == "confirm" else owner)
        fn = {
            "request": self.w.functions.requestRedemption,
            "withdraw": self.w.functions.withdrawRedemption,
            "confirm": self.w.functions.confirmRedemption,
        }[action](receipt_id)
        if self.send(fn, actor) is None:
            return
        expected = before[R_WAREHOUSE] if action == "confirm" else owner
        assert self.sb.address(actor) == expected and self.active(actor), f"invariant 9: {action} redemption"
        required = ReceiptState.ACTIVE if action == "request" else ReceiptState.REDEMPTION_REQUESTED
        assert before[R_STATE] == required, f"invariant 7: {action} redemption of a receipt in {before[R_STATE]}"
        if action == "confirm":
            assert not before[R_FROZEN], "a frozen receipt was redeemed"
            assert self.active(self.name_of(owner)), "invariant 4: goods released to an inactive owner"
            assert self.receipt(receipt_id)[R_STATE] == ReceiptState.REDEEMED

    # -- movements and approvals ------------------------------------------------------------------------

    @precondition(has_receipts)
    @rule(
        data=st.data(),
        actor=st.one_of(st.sampled_from([RIGHT, APPROVED]), actors),
        to=actors,
        entry=st.sampled_from(["plain", "safe", "safe+data"]),
    )
    def transfer(self, data: st.DataObject, actor: str, to: str, entry: str) -> None:
        receipt_id = self.pick_receipt(data, (ReceiptState.ACTIVE,))
        before, owner = self.receipt(receipt_id), self.owner(receipt_id)
        if owner == ZERO_ADDRESS:
            return
        approved_address = self.w.functions.getApproved(receipt_id).call(self.reader)
        actor = self.resolve(actor, approved_address if actor == APPROVED else owner)
        fn = self.transfer_fn(entry, owner, to, receipt_id)
        operator = self.w.functions.isApprovedForAll(owner, self.sb.address(actor)).call(self.reader)
        if self.send(fn, actor) is None:
            assert self.owner(receipt_id) == owner
            return
        holder = self.name_of(owner)
        moved_by = self.sb.address(actor)
        assert moved_by in (owner, approved_address) or operator, "invariant 9: moved by a stranger"
        assert self.active(actor) and self.active(holder) and self.active(to), "invariant 4: inactive party"
        assert before[R_STATE] == ReceiptState.ACTIVE, "invariant 7: a locked receipt moved"
        assert not before[R_FROZEN], "a frozen receipt moved"

    def has_locked_receipts(self) -> bool:
        return any(state in LOCKED for state in self.model.receipt_states.values())

    @precondition(has_locked_receipts)
    @rule(
        data=st.data(),
        via=st.sampled_from(["owner", "approved", "operator"]),
        spender=actors,
        to=actors,
        entry=st.sampled_from(["plain", "safe", "safe+data"]),
    )
    def try_to_move_a_locked_receipt(self, data: st.DataObject, via: str, spender: str, to: str, entry: str) -> None:
        """The bypass attempt: the owner, or an address or operator it approves now, moves a receipt locked
        by a pledge request, an active pledge or a redemption request, through any ERC-721 entry point."""
        receipt_id = self.pick_receipt(data, LOCKED)
        if self.model.receipt_states.get(receipt_id) not in LOCKED:
            return
        owner = self.owner(receipt_id)
        holder = self.name_of(owner)
        if via == "approved":
            self.send(self.w.functions.approve(self.sb.address(spender), receipt_id), holder)
        elif via == "operator":
            self.send(self.w.functions.setApprovalForAll(self.sb.address(spender), True), holder)
        mover = holder if via == "owner" else spender
        tx = self.send(self.transfer_fn(entry, owner, to, receipt_id), mover)
        assert tx is None, f"invariant 7: a locked receipt was moved by {via} {mover}"
        assert self.owner(receipt_id) == owner

    @rule(
        data=st.data(),
        contract=st.sampled_from(LEDGER_CONTRACTS),
        entry=st.sampled_from(["plain", "safe", "safe+data", "issue"]),
        warehouse=st.sampled_from(WAREHOUSES),
    )
    def send_a_receipt_to_a_ledger_contract(
        self, data: st.DataObject, contract: str, entry: str, warehouse: str
    ) -> None:
        """The stuck-asset attempt: a receipt delivered to one of the ledger's contracts by its owner, or issued
        to one by a warehouse. Refused always; by name whenever nothing else refuses it first."""
        if entry == "issue":
            fn = self.w.functions.issueReceipt(
                self.sb.address(contract), lot_key(), GOODS, 1_000, TONNE, 1_000_00, self.sb.now() + 90 * DAY, GOODS
            )
            actor, clear = warehouse, self.active(warehouse)
        else:
            if not self.model.receipts:
                return
            receipt_id = self.pick_receipt(data, (ReceiptState.ACTIVE,))
            owner = self.owner(receipt_id)
            actor = self.resolve(RIGHT, owner)
            fn = self.transfer_fn(entry, owner, contract, receipt_id)
            before = self.receipt(receipt_id)
            clear = owner != ZERO_ADDRESS and before[R_STATE] == ReceiptState.ACTIVE and not before[R_FROZEN]
            clear = clear and self.active(actor)
        assert self.send(fn, actor) is None, f"invariant 4: a receipt delivered to the {contract} contract"
        error = self.sb.revert_of(fn, actor).name
        event(f"to a ledger contract: {error}")
        if clear:
            assert error == "RegistryRecipientIsLedgerContract", f"{entry} to {contract}: {error}"
        else:
            assert error in {"RegistryRecipientIsLedgerContract", *EARLIER_REFUSALS}, f"{entry} to {contract}: {error}"

    def transfer_fn(self, entry: str, owner: str, to: str, receipt_id: int) -> Any:
        args = [owner, self.sb.address(to), receipt_id]
        if entry == "plain":
            return self.w.functions.transferFrom(*args)
        if entry == "safe":
            return self.w.get_function_by_signature("safeTransferFrom(address,address,uint256)")(*args)
        return self.w.get_function_by_signature("safeTransferFrom(address,address,uint256,bytes)")(*args, b"x")

    @precondition(has_receipts)
    @rule(data=st.data(), actor=parties, spender=actors)
    def approve(self, data: st.DataObject, actor: str, spender: str) -> None:
        receipt_id = data.draw(st.sampled_from(self.model.receipts))
        owner = self.owner(receipt_id)
        actor = self.resolve(actor, owner)
        if self.send(self.w.functions.approve(self.sb.address(spender), receipt_id), actor) is not None:
            assert self.active(actor), "invariant 9: an inactive participant approved"
            is_operator = self.w.functions.isApprovedForAll(owner, self.sb.address(actor)).call(self.reader)
            assert self.sb.address(actor) == owner or is_operator

    @rule(actor=actors, operator=actors, approved=st.booleans())
    def set_operator(self, actor: str, operator: str, approved: bool) -> None:
        fn = self.w.functions.setApprovalForAll(self.sb.address(operator), approved)
        if self.send(fn, actor) is not None:
            assert self.active(actor), "invariant 9: an inactive participant appointed an operator"

    # -- regulator, operator, clock ---------------------------------------------------------------------

    @precondition(has_receipts)
    @rule(data=st.data(), actor=entitled("regulator"), freeze=st.booleans())
    def freeze_receipt(self, data: st.DataObject, actor: str, freeze: bool) -> None:
        receipt_id = data.draw(st.sampled_from(self.model.receipts))
        if freeze:
            fn = self.w.functions.freezeReceipt(receipt_id, GOODS)
        else:
            fn = self.w.functions.unfreezeReceipt(receipt_id)
        if self.send(fn, actor) is not None:
            assert actor == "regulator", "invariant 9: only the regulator freezes receipts"

    @rule(
        actor=entitled("operator"),
        who=st.sampled_from(PARTICIPANTS),
        action=st.sampled_from(["suspend", "reinstate"]),
    )
    def suspend_or_reinstate(self, actor: str, who: str, action: str) -> None:
        fn = getattr(self.registry.functions, action)(self.sb.address(who))
        if self.send(fn, actor) is not None:
            assert actor == "operator"
            (self.model.suspended.add if action == "suspend" else self.model.suspended.discard)(who)

    @rule(actor=entitled("regulator"), who=st.sampled_from(PARTICIPANTS), freeze=st.booleans())
    def freeze_participant(self, actor: str, who: str, freeze: bool) -> None:
        fn = (
            self.registry.functions.freeze(self.sb.address(who), GOODS)
            if freeze
            else self.registry.functions.unfreeze(self.sb.address(who))
        )
        if self.send(fn, actor) is not None:
            assert actor == "regulator"
            (self.model.frozen.add if freeze else self.model.frozen.discard)(who)

    @rule(days=st.integers(1, 120))
    def let_time_pass(self, days: int) -> None:
        self.sb.travel_to(self.sb.now() + days * DAY)

    # -- invariants -------------------------------------------------------------------------------------

    @invariant()
    def each_lot_has_one_receipt(self) -> None:
        for key, receipt_id in self.model.lots.items():
            assert self.w.functions.receiptIdOfLot(key).call(self.reader) == receipt_id, "invariant 1"
        assert len(set(self.model.lots.values())) == len(self.model.lots) == len(self.model.receipts)

    @invariant()
    def no_receipt_has_two_liens_locked_receipts_stay_put_and_balances_count_them(self) -> None:
        open_by_receipt: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
        pledges = {pledge_id: self.pledge(pledge_id) for pledge_id in self.model.pledges}
        for pledge_id, p in pledges.items():
            if p[P_STATE] in OPEN:
                open_by_receipt.setdefault(p[P_RECEIPT], []).append((pledge_id, p))
        now: dict[int, tuple[str, int]] = {}
        for receipt_id in self.model.receipts:
            state = self.receipt(receipt_id)[R_STATE]
            redeemed = state == ReceiptState.REDEEMED
            owner = ZERO_ADDRESS if redeemed else str(self.w.functions.ownerOf(receipt_id).call(self.reader))
            now[receipt_id] = (owner, state)
            liens = open_by_receipt.get(receipt_id, [])
            assert len(liens) <= 1, f"invariant 7: receipt {receipt_id} has {len(liens)} open liens"
            if state in LOCKED_BY_PLEDGE:
                assert len(liens) == 1, f"receipt {receipt_id} is locked by a pledge but none is open"
                pledge_id, p = liens[0]
                assert self.w.functions.pledgeOf(receipt_id).call(self.reader) == pledge_id
                wanted = PledgeState.REQUESTED if state == ReceiptState.PLEDGE_REQUESTED else PledgeState.ACTIVE
                assert p[P_STATE] == wanted and p[P_BORROWER] == owner
            else:
                assert liens == [], "an open pledge on an unlocked receipt"
            seen = self.model.seen.get(receipt_id)
            if seen is not None and seen[1] in LOCKED_BY_PLEDGE:
                enforced = [pid for pid in self.model.enforced if pledges[pid][P_RECEIPT] == receipt_id]
                if enforced:
                    assert owner == pledges[enforced[0]][P_FINANCIER] and state == ReceiptState.ACTIVE
                else:
                    assert owner == seen[0], "invariant 7: a pledged receipt moved"
                    assert state != ReceiptState.REDEEMED, "invariant 7: a pledged receipt was burnt"
        # The ERC-721 books: every balance is the number of live receipts held.
        held: dict[str, int] = {}
        for owner, _ in now.values():
            if owner != ZERO_ADDRESS:
                held[owner] = held.get(owner, 0) + 1
        assert set(held) <= {self.sb.address(name) for name in EVERYONE}
        for name in EVERYONE:
            address = self.sb.address(name)
            assert self.sb.read("receipts", "balanceOf", address) == held.get(address, 0), f"balanceOf({name})"
        self.model.seen = now
        self.model.enforced = set()
        self.model.receipt_states = {receipt_id: state for receipt_id, (_, state) in now.items()}
        self.model.pledge_states = {pledge_id: p[P_STATE] for pledge_id, p in pledges.items()}

    @invariant()
    def registrations_are_those_recorded(self) -> None:
        for pledge_id in self.model.pledges:
            number = bytes(self.w.functions.pledgeRegistration(pledge_id).call(self.reader)[0])
            assert number == self.model.registered.get(pledge_id, bytes(32)), "a registration not the financier's"

    @invariant()
    def deposit_tokens_are_conserved(self) -> None:
        supply = self.token.functions.totalSupply().call(self.reader)
        assert supply == self.supply
        balances = {h: int(self.sb.tester.call(q, "latest"), 16) for h, q in self.balance_queries.items()}
        assert sum(balances.values()) == supply
        assert balances[self.w.address] == 0, "the receipts contract holds cash"


def test_warehouse_invariants_hold_under_random_operations(sandbox: Sandbox) -> None:
    run_warehouse_machine(sandbox)


@pytest.mark.soak
def test_warehouse_invariants_hold_under_random_operations_on_anvil(anvil_sandbox: Sandbox) -> None:
    """The same machine on a real anvil node, at the soak size when SCF_SOAK=1 (`make soak`)."""
    run_warehouse_machine(anvil_sandbox)


def run_warehouse_machine(sandbox: Sandbox) -> None:
    run_state_machine_as_test(
        lambda: WarehouseMachine(sandbox),
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            derandomize=os.environ.get("SCF_PROPERTY_SEED") is None,
            database=None,
        ),
    )
