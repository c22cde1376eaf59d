"""Property-based (stateful) proof of the receivables invariants of docs/design.md (1-6, 9, 10, 12 and 13).

Random participants, the regulator and strangers included, do random things: register (sometimes re-using a
key), confirm, reject, grant credit, split, transfer, request/approve/fund/decline/cancel financing, repay,
redeem, default, suspend, freeze, and move the clock. The machine does not predict outcomes; it checks that
whatever succeeded was allowed, that what failed changed nothing, and after every step that:

1. every invoice key maps to exactly one invoice;
2. each core firm's confirmed-unpaid total equals what its obligations owe and stays within its credit line;
3. for every slot the live pieces' values add up to face value minus what was redeemed;
4. every successful movement was between active, unfrozen participants, before maturity;
5. a funding moved the piece and the price together (or, failing, neither);
6. per slot redeemed ≤ repaid, and the contract holds exactly what was repaid and not yet redeemed;
9. only the roles named act (a successful action by anyone else fails the test);
12. every approval that succeeded is within what its request accepted (the rate cap on a 365-day basis, a 360-day
    rate at its 365-day equivalent; the fee cap), and a funding never pays the holder less than the caps' price;
13. every approval and funding that succeeded of an obligation running longer than the review tenor (confirmation
    to maturity) carries the financier's credit review (银发〔2025〕77号);
10. every act of a participant is authorised by it: a self-custody participant (three are switched at the
    start: a core firm, one of the first two sellers, a financier; the operator may switch more) never acts by
    its own transaction (``RegistrySignedActsOnly``, changing nothing); whatever the rules ask of it, it signs
    as an EIP-712 act that anyone relays (the service, a stranger, another participant, its own address), which
    the same rules check as they check a direct call (the model follows its events) and which is refused, if
    at all, by the contract's rules, never by its signature. It rotates its key now and then. A signed act
    already performed, replayed by anyone, an act signed by a hosted key (the operator's, any participant's,
    its own retired one) or by a rotated-out key, and an act past its deadline are refused by name and change
    nothing.

One move tries to leave assets stuck in the ledger's own contracts (active participants, since the
receivables contract holds repayments): deposit tokens sent, sent through an allowance or minted to one, a
piece or part of one sent to one. It must always fail, with ``RegistryRecipientIsLedgerContract`` whenever no
earlier rule (an inactive sender, a locked, frozen or matured piece) refuses it first.

Size: ``MAX_EXAMPLES`` examples of up to ``STEPS`` steps each (about 2 minutes on eth-tester on a 2-core
machine); the chain is reset between examples with snapshot/revert. ``make soak`` runs more (``SCF_PROPERTY_EXAMPLES``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger import acts
from ledger.tooling.sandbox import CAST, Sandbox, _key_of
from tests.contracts.support import ACCEPT_ANY, DAY, NO_REVIEW, REVIEW, invoice_key

SOAK = os.environ.get("SCF_SOAK") == "1"
#: `make soak` (SCF_SOAK=1) runs 300 examples of up to 60 steps; SCF_PROPERTY_* override either size.
MAX_EXAMPLES = int(os.environ.get("SCF_PROPERTY_EXAMPLES", "300" if SOAK else "20"))
STEPS = int(os.environ.get("SCF_PROPERTY_STEPS", "60" if SOAK else "40"))

CORE_FIRMS = ("automaker", "truckmaker")
SUPPLIERS = ("seatmaker", "chemicals", "trader")
FINANCIERS = ("bank", "factor")
EVERYONE = (*CORE_FIRMS, *SUPPLIERS, *FINANCIERS, "regulator", "operator", "outsider")
HOLDERS = (*SUPPLIERS, *FINANCIERS, *CORE_FIRMS)
CONFIRMED, PAID, DEFAULTED = 3, 4, 5
REQUESTED, APPROVED = 1, 2
LEDGER_CONTRACTS = ("token", "receivables", "receipts")
#: What may refuse a movement before its recipient is looked at: the piece's own state, then the sender.
PIECE_REFUSALS = {
    "ReceivablesNonexistentPiece",
    "ReceivablesPieceLocked",
    "ReceivablesPieceFrozen",
    "ReceivablesNotTransferable",
    "ReceivablesMatured",
}
SENDER_REFUSALS = {"RegistryParticipantNotActive", "RegistryParticipantFrozen"}
#: The contracts that refuse a self-custody participant's own transaction (they take its signed acts).
RECIPIENTS = ("receivables", "token")
#: The signed act of a receivables function of the same name (``assignPiece`` and ``approveSettlement`` aside).
SIGNED_FORM = {act.function: act.name for act in acts.ACT_TYPES.values()}
#: Who relays a signed act, turn by turn: the service, a stranger, another participant, the account's own
#: (retired) address (``None``). The relayer changes nothing.
RELAYERS = ("operator", "outsider", "regulator", None)
#: A deadline no run reaches: the machine's acts are refused for their deadline only where it means them to.
FAR = 2**40
#: The lifecycle a run must go through, each step both ways: function → its signed act.
LIFECYCLE = {
    "confirmInvoice": "ConfirmInvoice",
    "transferFrom": "AssignPiece",
    "fundFinancing": "FundFinancing",
    "repay": "Repay",
    "redeem": "Redeem",
}
#: How a rightly signed act must never be refused.
SIGNATURE_REFUSALS = {"SignedActsInvalidSignature", "SignedActsNonceUsed", "SignedActsExpired"}

actors = st.sampled_from(EVERYONE)
OUTCOMES: dict[str, int] = {}
fractions = st.integers(min_value=1, max_value=100)


@dataclass
class Model:
    keys: dict[bytes, int] = field(default_factory=dict)
    invoices: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (seller, buyer)
    pending: set[int] = field(default_factory=set)  # registered, not yet confirmed or rejected
    slots: set[int] = field(default_factory=set)
    pieces: dict[int, int] = field(default_factory=dict)  # piece -> slot
    requests: set[int] = field(default_factory=set)  # every request ever made
    approved: set[int] = field(default_factory=set)  # approved and not yet funded or closed
    maturity: dict[int, int] = field(default_factory=dict)  # slot -> maturity
    suspended: set[str] = field(default_factory=set)
    frozen: set[str] = field(default_factory=set)
    self_custody: dict[str, LocalAccount] = field(default_factory=dict)  # name -> the key in place
    retired: dict[str, list[LocalAccount]] = field(default_factory=dict)  # name -> its rotated-out keys
    performed: list[tuple[ContractFunction, str, int]] = field(default_factory=list)  # (signed act, who, nonce)
    funded: dict[int, tuple[int, str]] = field(default_factory=dict)  # request -> (slot, financier address)
    registered: dict[int, bytes] = field(default_factory=dict)  # request -> the registration number recorded
    bound: dict[int, tuple[int, str]] = field(default_factory=dict)  # slot -> (first registered request, financier)


class ReceivablesMachine(RuleBasedStateMachine):
    def __init__(self, sb: Sandbox) -> None:
        super().__init__()
        self.sb = sb
        self.r = sb.contracts["receivables"]
        self.token = sb.contracts["token"]
        self.registry = sb.contracts["registry"]
        self.snapshot = sb.snapshot()
        self.model = Model()
        self.supply = int(self.token.functions.totalSupply().call())
        self.recipients = {sb.contracts[name].address for name in RECIPIENTS}
        self.nonces = 0
        self.last_error = ""

    def teardown(self) -> None:
        self.sb.revert(self.snapshot)

    # -- helpers ------------------------------------------------------------------------------------

    def active(self, who: str) -> bool:
        return who != "outsider" and who not in self.model.suspended and who not in self.model.frozen

    def send(self, fn, actor: str) -> TxReceipt | None:  # type: ignore[no-untyped-def]
        """``actor`` does ``fn``: by its own transaction, or, a self-custody participant, by its signed act
        (:meth:`send_signed`). The receipt, or None when refused (the error's name in :attr:`last_error`)."""
        if actor in self.model.self_custody and fn.address in self.recipients:
            return self.send_signed(fn, actor)
        receipt = self.sb.send_raw(fn, actor)
        outcome = "ok" if receipt["status"] == 1 else self.sb.revert_of(fn, actor).name
        count(f"{fn.fn_name} {outcome}")
        if receipt["status"] != 1:
            assert receipt["logs"] == []
            self.last_error = outcome
            return None
        return receipt

    def send_signed(self, fn: ContractFunction, actor: str) -> TxReceipt | None:
        """Invariant 10: a self-custody participant's own transaction is refused (simulated: a refused call
        changes nothing); the act, where it has a signed form, is signed by the participant's key and relayed
        instead."""
        refusal = self.sb.revert_of(fn, actor).name
        assert refusal == "RegistrySignedActsOnly", f"invariant 10: {actor}'s own {fn.fn_name}: {refusal}"
        count(f"{fn.fn_name} {refusal}")
        self.last_error = refusal
        act = self.signed_form(fn)
        return None if act is None else self.perform(actor, *act)

    def signed_form(self, fn: ContractFunction) -> tuple[str, list[Any]] | None:
        """The signed act that does what ``fn`` does, with its call arguments; None where there is none."""
        args = list(fn.args)
        if fn.address == self.token.address:
            return ("ApproveSettlement", args) if fn.fn_name == "approve" else None
        if fn.fn_name == "transferFrom":
            if [i["type"] for i in fn.abi["inputs"]] == ["address", "address", "uint256"]:
                return "AssignPiece", [args[2], args[1], self.piece(args[2])[3]]  # the whole piece
            return "AssignPiece", args
        if fn.fn_name == "transferPiece":
            return "AssignPiece", args
        return (SIGNED_FORM[fn.fn_name], args) if fn.fn_name in SIGNED_FORM else None

    def next_nonce(self) -> int:
        """Nonces of every account from one counter, each used once; spread over the bitmap's words."""
        self.nonces += 1
        return self.nonces * 37

    def perform(self, who: str, act: str, call_args: list[Any]) -> TxReceipt | None:
        """``who``'s act signed by its key in place, relayed by the next relayer: performed, or refused by the
        contract's own rules (never by the signature's) having changed nothing."""
        key = self.model.self_custody[who]
        nonce = self.next_nonce()
        document = self.sb.act_document(act, who, call_args, nonce=nonce, deadline=FAR)
        call = self.sb.act_function(document, acts.sign(document, key))
        relayer = RELAYERS[nonce % len(RELAYERS)] or who
        receipt = self.sb.send_raw(call, relayer)
        outcome = "ok" if receipt["status"] == 1 else self.sb.revert_of(call, relayer).name
        count(f"signed {act} {outcome}")
        if receipt["status"] != 1:
            assert receipt["logs"] == []
            assert outcome not in SIGNATURE_REFUSALS, f"invariant 10: {who}'s rightly signed {act}: {outcome}"
            self.last_error = outcome
            return None
        (performed,) = self.sb.events(receipt, "acts", "ActPerformed")
        assert (performed["account"], performed["signer"], performed["nonce"]) == (
            self.sb.address(who),
            key.address,
            nonce,
        )
        self.model.performed.append((call, who, nonce))
        return receipt

    def refused(self, call: ContractFunction, relayer: str, move: str, error: str, **arguments: Any) -> None:
        """Invariant 10: ``call`` (a signed act) relayed by ``relayer`` is refused with ``error`` and changes
        nothing."""
        before = self.ledger_state()
        receipt = self.sb.send_raw(call, relayer)
        assert receipt["status"] == 0, f"invariant 10: a {move} act was performed"
        assert receipt["logs"] == []
        decoded = self.sb.revert_of(call, relayer)
        count(f"{move} {decoded.name}")
        assert decoded.name == error, f"{move}: {decoded}"
        for name, value in arguments.items():
            assert decoded.arguments[name] == value, f"{move}: {decoded}"
        assert self.ledger_state() == before

    def ledger_state(self) -> tuple[dict[int, tuple], dict[str, int]]:  # type: ignore[type-arg]
        return {p: self.piece(p) for p in self.model.pieces}, {n: self.cash(self.sb.address(n)) for n in HOLDERS}

    def some_act(self, data: st.DataObject, who: str) -> tuple[str, list[Any]]:
        """An act a forger would want of ``who``: the confirmation of an invoice it was billed, or the
        assignment of a piece."""
        billed = [i for i in sorted(self.model.pending) if self.model.invoices[i][1] == who]
        if billed and data.draw(st.booleans()):
            return "ConfirmInvoice", [data.draw(st.sampled_from(billed))]
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        return "AssignPiece", [piece_id, self.sb.address(data.draw(actors)), max(1, self.piece(piece_id)[3])]

    def pick(self, data: st.DataObject, rightful: str) -> str:
        """The rightful actor six times in seven; otherwise anyone (the regulator and strangers too)."""
        return data.draw(actors) if data.draw(st.integers(0, 6)) == 0 else rightful

    def name_of(self, address: str) -> str:
        return next((n for n in CAST if self.sb.address(n) == address), "outsider")

    def piece(self, piece_id: int) -> tuple:  # type: ignore[type-arg]
        return tuple(self.sb.read("receivables", "piece", piece_id))

    def live_pieces(self) -> list[int]:
        return [p for p in self.model.pieces if self.piece(p)[0] != "0x" + "00" * 20]

    def maturity(self, slot: int) -> int:
        return int(self.sb.read("receivables", "invoice", slot)[1])

    @initialize(
        amounts=st.lists(st.integers(1, 2_000_000), min_size=2, max_size=2),
        due_days=st.lists(st.integers(20, 200), min_size=2, max_size=2),
        self_custody=st.tuples(
            st.sampled_from(CORE_FIRMS), st.sampled_from(("seatmaker", "chemicals")), st.sampled_from(FINANCIERS)
        ),
    )
    def open_credit_lines_and_confirm_two_invoices(
        self, amounts: list[int], due_days: list[int], self_custody: tuple[str, str, str]
    ) -> None:
        """Every example starts with credit lines and two confirmed obligations, so that its steps act on
        real pieces from the first one, and with a core firm, one of the two first sellers and a financier
        switched to self-custody (the other core firm, seller and financier and the trader stay hosted)."""
        for core in CORE_FIRMS:
            self.sb.send(self.r.functions.setCreditLine(self.sb.address(core), 5_000_000), "bank")
        for (seller, buyer), amount, days in zip(
            (("seatmaker", "automaker"), ("chemicals", "truckmaker")), amounts, due_days, strict=True
        ):
            key = invoice_key()
            fn = self.r.functions.registerInvoice(
                key, self.sb.address(buyer), amount, b"CNY", self.sb.now() + days * DAY, b"\x01" * 32
            )
            registered = self.send(fn, seller)
            assert registered is not None
            invoice_id = self.sb.events(registered, "receivables", "InvoiceRegistered")[0]["invoiceId"]
            receipt = self.send(self.r.functions.confirmInvoice(invoice_id), buyer)
            assert receipt is not None
            self.model.maturity[invoice_id] = self.sb.now() + days * DAY - 1
            self.model.keys[key] = invoice_id
            self.model.invoices[invoice_id] = (seller, buyer)
            self.model.slots.add(invoice_id)
            self.model.pieces[self.sb.events(receipt, "receivables", "InvoiceConfirmed")[0]["pieceId"]] = invoice_id
        for who in self_custody:
            self.model.self_custody[who] = self.sb.adopt_self_custody(who)

    # -- rules --------------------------------------------------------------------------------------

    @rule(
        seller=st.sampled_from((*SUPPLIERS, *SUPPLIERS, *EVERYONE)),
        buyer=st.sampled_from((*CORE_FIRMS, *CORE_FIRMS, *CORE_FIRMS, *EVERYONE)),
        amount=st.integers(1, 3_000_000),
        due_days=st.integers(1, 400),
        reuse=st.booleans(),
    )
    def register(self, seller: str, buyer: str, amount: int, due_days: int, reuse: bool) -> None:
        key = next(iter(self.model.keys)) if reuse and self.model.keys else invoice_key()
        self.registered(seller, buyer, amount, due_days, key)

    def registered(self, seller: str, buyer: str, amount: int, due_days: int, key: bytes) -> int | None:
        """``seller`` registers an invoice on ``buyer``: its id, or None when refused."""
        fn = self.r.functions.registerInvoice(
            key, self.sb.address(buyer), amount, b"CNY", self.sb.now() + due_days * DAY, b"\x01" * 32
        )
        receipt = self.send(fn, seller)
        if receipt is None:
            return None
        assert key not in self.model.keys, "invariant 1: a key was registered twice"
        assert seller in SUPPLIERS and self.active(seller) and buyer in CORE_FIRMS, "invariant 9"
        invoice_id = int(self.sb.events(receipt, "receivables", "InvoiceRegistered")[0]["invoiceId"])
        self.model.keys[key] = invoice_id
        self.model.invoices[invoice_id] = (seller, buyer)
        self.model.pending.add(invoice_id)
        return invoice_id

    @precondition(lambda self: bool(self.model.pending))
    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        if not self.model.invoices:
            return
        invoice_id = data.draw(st.sampled_from(sorted(self.model.pending)))
        self.confirmed(invoice_id, self.pick(data, self.model.invoices[invoice_id][1]))

    def confirmed(self, invoice_id: int, actor: str) -> int | None:
        """``actor`` confirms invoice ``invoice_id``: the first piece, or None when refused."""
        receipt = self.send(self.r.functions.confirmInvoice(invoice_id), actor)
        if receipt is None:
            return None
        assert actor == self.model.invoices[invoice_id][1], "invariant 2: confirmed by someone not the buyer"
        assert self.active(actor) and self.active(self.model.invoices[invoice_id][0])
        piece_id = int(self.sb.events(receipt, "receivables", "InvoiceConfirmed")[0]["pieceId"])
        self.model.slots.add(invoice_id)
        self.model.pending.discard(invoice_id)
        self.model.maturity[invoice_id] = self.maturity(invoice_id)
        self.model.pieces[piece_id] = invoice_id
        return piece_id

    @precondition(lambda self: bool(self.model.invoices))
    @rule(data=st.data(), actor=actors)
    def reject(self, data: st.DataObject, actor: str) -> None:
        if not self.model.invoices:
            return
        invoice_id = data.draw(st.sampled_from(sorted(self.model.pending or self.model.invoices)))
        if self.send(self.r.functions.rejectInvoice(invoice_id, b"\x00" * 32), actor) is not None:
            assert actor == self.model.invoices[invoice_id][1], "invariant 9: rejected by someone not the buyer"
            self.model.pending.discard(invoice_id)

    @rule(
        grantor=st.sampled_from((*FINANCIERS, *FINANCIERS, *EVERYONE)),
        core=st.sampled_from((*CORE_FIRMS, *EVERYONE)),
        grant=st.integers(0, 8_000_000),
    )
    def set_credit_line(self, grantor: str, core: str, grant: int) -> None:
        if self.send(self.r.functions.setCreditLine(self.sb.address(core), grant), grantor) is not None:
            assert grantor in (*FINANCIERS, "operator") and core in CORE_FIRMS, "invariant 9"

    @precondition(lambda self: bool(self.model.pieces))
    @rule(data=st.data(), to=actors, fraction=fractions, whole=st.booleans())
    def transfer(self, data: st.DataObject, to: str, fraction: int, whole: bool) -> None:
        if not self.model.pieces:
            return
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        self.moved(piece_id, self.pick(data, self.name_of(self.piece(piece_id)[0])), to, fraction, whole)

    def moved(self, piece_id: int, actor: str, to: str, fraction: int, whole: bool) -> None:
        """``actor`` assigns piece ``piece_id`` to ``to``: the whole piece, or ``fraction`` % of its value."""
        before = self.piece(piece_id)
        holder = self.name_of(before[0])
        if whole:
            fn = self.r.functions.transferFrom(before[0], self.sb.address(to), piece_id)
        else:
            value = max(1, before[3] * fraction // 100)
            fn = self.r.get_function_by_signature("transferFrom(uint256,address,uint256)")(
                piece_id, self.sb.address(to), value
            )
        receipt = self.send(fn, actor)
        if receipt is None:
            return
        slot = self.model.pieces[piece_id]
        assert actor == holder, "invariant 9: a piece moved by someone not its holder (no approvals given)"
        assert self.active(holder) and self.active(to), "invariant 4: moved to or from an inactive party"
        assert before[5] == 0 and before[6] & 1 == 0, "invariant 4: a locked or frozen piece moved"
        block_time = self.sb.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        assert block_time < self.maturity(slot), "invariant 4: moved at or after maturity"
        for event in self.sb.events(receipt, "receivables", "PieceSplit"):
            self.model.pieces[event["pieceId"]] = slot

    @precondition(lambda self: bool(self.model.pieces))
    @rule(data=st.data(), to=actors, stale=st.sampled_from((0, 0, -1, 1, -100, 100)))
    def pay_with(self, data: st.DataObject, to: str, stale: int) -> None:
        """``transferPiece`` of all of a piece as a payer read it ``stale`` fen ago (the piece has since lost or
        gained that much): the payee receives exactly what was asked, the whole piece only when it is all of it."""
        if not self.model.pieces:
            return
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        before = self.piece(piece_id)
        value = before[3] + stale
        if value < 0 or value >= 2**96:
            return
        actor = self.pick(data, self.name_of(before[0]))
        receipt = self.send(self.r.functions.transferPiece(piece_id, self.sb.address(to), value), actor)
        if receipt is None:
            return
        assert 0 < value <= before[3], "a payment of more than the piece holds, or of nothing"
        splits = self.sb.events(receipt, "receivables", "PieceSplit")
        if value == before[3]:
            assert splits == [] and self.piece(piece_id)[0] == self.sb.address(to), "all of a piece moves it"
        else:
            (split,) = splits
            assert (split["to"], split["value"]) == (self.sb.address(to), value), "the payee got another amount"
            assert self.piece(piece_id)[3] == before[3] - value and self.piece(piece_id)[0] == before[0]
            self.model.pieces[split["pieceId"]] = self.model.pieces[piece_id]

    @precondition(lambda self: bool(self.model.pieces))
    @rule(
        data=st.data(),
        financier=st.sampled_from((*FINANCIERS, *FINANCIERS, *EVERYONE)),
        fraction=fractions,
        caps=st.one_of(st.just(ACCEPT_ANY), st.tuples(st.integers(0, 2_000), st.integers(0, 5_000))),
    )
    def request_financing(self, data: st.DataObject, financier: str, fraction: int, caps: tuple[int, int]) -> None:
        if not self.model.pieces:
            return
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        owner, value = self.piece(piece_id)[0], self.piece(piece_id)[3]
        actor = self.pick(data, self.name_of(owner))
        fn = self.r.functions.requestFinancing(
            piece_id, max(1, value * fraction // 100), self.sb.address(financier), *caps
        )
        receipt = self.send(fn, actor)
        if receipt is None:
            return
        assert financier in FINANCIERS and self.active(actor), "invariant 9"
        self.model.requests.add(self.sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"])

    @precondition(lambda self: bool(self.model.requests))
    @rule(
        data=st.data(),
        rate=st.integers(0, 2_000),
        fee_bps=st.integers(0, 300),
        basis=st.sampled_from([360, 365]),
        review=st.sampled_from([NO_REVIEW, REVIEW]),
    )
    def approve_financing(self, data: st.DataObject, rate: int, fee_bps: int, basis: int, review: bytes) -> None:
        if not self.model.requests:
            return
        request_id = data.draw(st.sampled_from(sorted(self.model.requests)))
        request = self.sb.read("receivables", "financingRequest", request_id)
        financier, fee = request[5], request[7] * fee_bps // 10_000
        actor = self.pick(data, self.name_of(financier))
        if self.send(self.r.functions.approveFinancing(request_id, rate, fee, basis, review), actor) is not None:
            assert self.sb.address(actor) == financier, "invariant 9: approved by someone not the financier"
            self.check_approved(request_id)
            self.model.approved.add(request_id)

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data(), over=st.sampled_from(["rate", "fee", "basis"]))
    def approve_above_what_was_accepted(self, data: st.DataObject, over: str) -> None:
        """The request's financier offers terms just above the caps its holder accepted: always refused."""
        request_id = data.draw(st.sampled_from(sorted(self.model.requests)))
        request = self.sb.read("receivables", "financingRequest", request_id)
        max_rate, max_fee = request[10], request[11]
        if over == "rate" and max_rate < 10_000:
            terms = (max_rate + 1, max_fee, 365)
        elif over == "basis" and max_rate > 0:
            terms = (max_rate, max_fee, 360)  # the same rate on 360 days is more than the cap's 365
        elif max_fee < 2**96 - 1:
            terms = (max_rate, max_fee + 1, 365)
        else:
            return
        fn = self.r.functions.approveFinancing(request_id, *terms, REVIEW)
        assert self.send(fn, self.name_of(request[5])) is None, "invariant 12: approved above the caps"

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data())
    def approve_a_long_tenor_without_review(self, data: st.DataObject) -> None:
        """The financier approves, within the caps, without a credit review: refused whenever the obligation
        runs longer than the review tenor."""
        request_id = data.draw(st.sampled_from(sorted(self.model.requests)))
        request = self.sb.read("receivables", "financingRequest", request_id)
        fn = self.r.functions.approveFinancing(request_id, 0, 0, 365, NO_REVIEW)
        if self.send(fn, self.name_of(request[5])) is not None:
            self.check_approved(request_id)
            self.model.approved.add(request_id)

    def tenor_of_request(self, request: Any) -> int:
        """Confirmation to maturity of the obligation of a request's piece."""
        invoice = self.sb.read("receivables", "invoice", self.model.pieces[request[1]])
        return int(invoice[1]) - int(invoice[4])

    def check_approved(self, request_id: int) -> None:
        """Invariants 12 and 13 for an approval that succeeded."""
        request = self.sb.read("receivables", "financingRequest", request_id)
        rate, basis, fee, max_rate, max_fee, review = (
            request[3],
            request[4],
            request[6],
            request[10],
            request[11],
            request[12],
        )
        assert rate * 365 <= max_rate * basis and fee <= max_fee, "invariant 12: approved above the caps"
        if self.tenor_of_request(request) > self.sb.read("receivables", "reviewTenor"):
            assert bytes(review) != NO_REVIEW, "invariant 13: a long tenor approved without a credit review"

    @precondition(lambda self: bool(self.model.approved))
    @rule(data=st.data())
    def fund_financing(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(sorted(self.model.approved)))
        financier = self.sb.read("receivables", "financingRequest", request_id)[5]
        self.fund(request_id, self.pick(data, self.name_of(financier)))

    @precondition(lambda self: bool(self.model.pieces))
    @rule(
        data=st.data(),
        by_signature=st.booleans(),
        fraction=fractions,
        rate=st.integers(0, 1_500),
        fee_bps=st.integers(0, 100),
        basis=st.sampled_from([360, 365]),
    )
    def finance_a_piece(
        self, data: st.DataObject, by_signature: bool, fraction: int, rate: int, fee_bps: int, basis: int
    ) -> None:
        """The whole financing by the rightful parties: request, approve, fund (each step may still be refused
        by the rules: a locked, frozen or matured piece, an inactive party). It finances a piece its supplier
        holds free where there is one, with a financier that signs its acts or one that is hosted as
        ``by_signature`` says, so that every run funds financings both ways whichever way its earlier steps went
        (other rules try the pieces and parties that cannot)."""
        pieces = sorted(self.model.pieces)
        free = [p for p in pieces if self.financeable(p)]
        piece_id = data.draw(st.sampled_from(free or pieces))
        # A financier that signs its acts, or one whose key the operator hosts, as drawn: both ways every run.
        signing = [f for f in FINANCIERS if (f in self.model.self_custody) == by_signature and self.active(f)]
        financier = data.draw(st.sampled_from(signing or list(FINANCIERS)))
        owner, value = self.piece(piece_id)[0], self.piece(piece_id)[3]
        holder = self.name_of(owner)
        amount = max(1, value * fraction // 100)
        requested = self.send(
            self.r.functions.requestFinancing(piece_id, amount, self.sb.address(financier), *ACCEPT_ANY), holder
        )
        if requested is None:
            return
        request_id = self.sb.events(requested, "receivables", "FinancingRequested")[0]["requestId"]
        self.model.requests.add(request_id)
        fee = amount * fee_bps // 10_000
        if self.send(self.r.functions.approveFinancing(request_id, rate, fee, basis, REVIEW), financier) is None:
            return
        self.model.approved.add(request_id)
        self.fund(request_id, financier)

    def financeable(self, piece_id: int) -> bool:
        """Held by an active supplier, not locked by a request, not frozen, its obligation confirmed and not yet
        due."""
        owner, _, _, value, _, lock, flags = self.piece(piece_id)[:7]
        holder = self.name_of(owner)
        invoice = self.sb.read("receivables", "invoice", self.model.pieces[piece_id])
        if holder not in SUPPLIERS or not self.active(holder) or value == 0 or lock != 0 or flags & 1:
            return False
        return invoice[2] == CONFIRMED and invoice[1] > self.sb.now() + DAY

    def fund(self, request_id: int, actor: str) -> None:
        request = self.sb.read("receivables", "financingRequest", request_id)
        holder, source, financier = request[0], request[1], request[5]
        owners = {p: self.piece(p)[0] for p in self.model.pieces}
        cash = (self.cash(holder), self.cash(financier))
        receipt = self.send(self.r.functions.fundFinancing(request_id), actor)
        if receipt is None:
            # invariant 5: nothing moved
            assert {p: self.piece(p)[0] for p in self.model.pieces} == owners
            assert (self.cash(holder), self.cash(financier)) == cash
            return
        assert self.sb.address(actor) == financier, "invariant 9: funded by someone not the financier"
        self.model.approved.discard(request_id)
        event = self.sb.events(receipt, "receivables", "FinancingFunded")[0]
        price = event["price"]
        assert 0 < price <= request[7], "a financing paid more than the value bought"
        assert self.cash(holder) == cash[0] + price, "invariant 5: cash leg"
        assert self.cash(financier) == cash[1] - price, "invariant 5: cash leg"
        funded_piece = event["pieceId"]
        self.model.pieces[funded_piece] = self.model.pieces[source]
        slot = self.model.pieces[source]
        if slot in self.model.bound:
            assert financier == self.model.bound[slot][1], "invariant 14: a registered receivable financed elsewhere"
        self.model.funded[request_id] = (slot, financier)
        assert self.piece(funded_piece)[0] == financier, "invariant 5: asset leg"
        assert self.piece(funded_piece)[3] == request[7]
        # invariant 12: never less than the price at the caps the holder accepted, as of the funding
        amount, max_rate, max_fee = request[7], request[10], request[11]
        block_time = self.sb.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        days = -(-max(self.maturity(self.model.pieces[source]) - block_time, 0) // DAY)
        capped_discount = -(-(amount * max_rate * days) // (365 * 10_000))
        assert price >= amount - capped_discount - max_fee, "invariant 12: paid less than the caps' price"
        if self.tenor_of_request(request) > self.sb.read("receivables", "reviewTenor"):
            assert bytes(request[12]) != NO_REVIEW, "invariant 13: a long tenor funded without a credit review"

    @precondition(lambda self: bool(self.model.funded))
    @rule(data=st.data(), when=st.sampled_from(["today", "today", "earlier", "tomorrow", "none"]))
    def record_registration(self, data: st.DataObject, when: str) -> None:
        """The financier records the 中登网 registration of a funded financing (others are refused, as are a
        second record, a future or missing date, and another financier's registration of a bound receivable)."""
        request_id = data.draw(st.sampled_from(sorted(self.model.funded)))
        slot, financier = self.model.funded[request_id]
        actor = self.pick(data, self.name_of(financier))
        now = self.sb.now()
        day = {"today": now, "earlier": now - 3 * DAY, "tomorrow": now + 2 * DAY, "none": 0}[when]
        number = f"{request_id:020d}".encode().ljust(32, b"\0")
        receipt = self.send(self.r.functions.recordFinancingRegistration(request_id, number, day), actor)
        if receipt is None:
            if self.last_error == "ReceivablesRegisteredElsewhere":
                assert self.model.bound[slot][1] != financier
            return
        assert self.sb.address(actor) == financier, (
            "invariant 14: a registration recorded by another than its financier"
        )
        assert request_id not in self.model.registered, "a registration recorded twice"
        assert when in ("today", "earlier"), f"a registration dated {when} was recorded"
        assert self.model.bound.get(slot, (request_id, financier))[1] == financier, "invariant 14: bound elsewhere"
        self.model.registered[request_id] = number
        self.model.bound.setdefault(slot, (request_id, financier))

    @precondition(lambda self: bool(self.model.requests))
    @rule(data=st.data(), cancel=st.booleans())
    def close_request(self, data: st.DataObject, cancel: bool) -> None:
        if not self.model.requests:
            return
        request_id = data.draw(st.sampled_from(sorted(self.model.requests)))
        request = self.sb.read("receivables", "financingRequest", request_id)
        actor = self.pick(data, self.name_of(request[0] if cancel else request[5]))
        fn = self.r.functions.cancelFinancing(request_id) if cancel else self.r.functions.declineFinancing(request_id)
        if self.send(fn, actor) is not None:
            assert self.sb.address(actor) == (request[0] if cancel else request[5]), "invariant 9"
            self.model.approved.discard(request_id)

    @precondition(lambda self: bool(self.model.slots))
    @rule(data=st.data(), fraction=fractions)
    def repay(self, data: st.DataObject, fraction: int) -> None:
        if not self.model.slots:
            return
        slot = data.draw(st.sampled_from(sorted(self.model.slots)))
        actor = self.pick(data, self.model.invoices[slot][1])
        invoice = self.sb.read("receivables", "invoice", slot)
        amount = max(1, (invoice[5] - invoice[6]) * fraction // 100)
        if self.send(self.r.functions.repay(slot, amount), actor) is not None:
            assert actor == self.model.invoices[slot][1], "invariant 9: repaid by someone not the buyer"

    @precondition(lambda self: bool(self.model.pieces))
    @rule(data=st.data())
    def redeem(self, data: st.DataObject) -> None:
        if not self.model.pieces:
            return
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        owner = self.piece(piece_id)[0]
        actor = self.pick(data, self.name_of(owner))
        receipt = self.send(self.r.functions.redeem(piece_id), actor)
        if receipt is not None:
            assert self.sb.address(actor) == owner and self.active(actor), "invariant 9: redeemed by a non-holder"

    @precondition(lambda self: bool(self.model.pieces))
    @rule(data=st.data(), fraction=fractions)
    def repay_then_redeem(self, data: st.DataObject, fraction: int) -> None:
        """The buyer repays part of an obligation and the holder of one of its pieces redeems its share at once
        (apart, the two moves seldom meet: a holder asks before anything was repaid, or after it redeemed)."""
        live = self.live_pieces()
        if not live:
            return
        piece_id = data.draw(st.sampled_from(sorted(live)))
        slot = self.model.pieces[piece_id]
        buyer = self.model.invoices[slot][1]
        invoice = self.sb.read("receivables", "invoice", slot)
        self.send(self.r.functions.repay(slot, max(1, (invoice[5] - invoice[6]) * fraction // 100)), buyer)
        owner = self.piece(piece_id)[0]
        holder = self.name_of(owner)
        if holder != "outsider" and self.send(self.r.functions.redeem(piece_id), holder) is not None:
            assert self.active(holder), "invariant 9: redeemed by an inactive holder"

    @precondition(lambda self: any(self.sb.now() > m + 30 * DAY for m in self.model.maturity.values()))
    @rule(data=st.data())
    def mark_defaulted(self, data: st.DataObject) -> None:
        if not self.model.pieces:
            return
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        slot = self.model.pieces[piece_id]
        owner = self.piece(piece_id)[0]
        actor = self.pick(data, self.name_of(owner))
        receipt = self.send(self.r.functions.markDefaulted(slot, piece_id), actor)
        if receipt is not None:
            assert actor == "operator" or self.sb.address(actor) == owner, "invariant 9"
            block_time = self.sb.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
            assert block_time > self.maturity(slot) + self.r.functions.gracePeriod().call()

    @rule(
        actor=st.sampled_from(("operator", "operator", *EVERYONE)),
        who=st.sampled_from(HOLDERS),
        action=st.sampled_from(["suspend", "reinstate"]),
    )
    def suspend_or_reinstate(self, actor: str, who: str, action: str) -> None:
        fn = getattr(self.registry.functions, action)(self.sb.address(who))
        if self.send(fn, actor) is not None:
            assert actor == "operator", "invariant 9: only the operator suspends"
            (self.model.suspended.add if action == "suspend" else self.model.suspended.discard)(who)

    @rule(
        actor=st.sampled_from(("regulator", "regulator", *EVERYONE)), who=st.sampled_from(HOLDERS), freeze=st.booleans()
    )
    def freeze_or_unfreeze(self, actor: str, who: str, freeze: bool) -> None:
        fn = (
            self.registry.functions.freeze(self.sb.address(who), b"\x00" * 32)
            if freeze
            else self.registry.functions.unfreeze(self.sb.address(who))
        )
        if self.send(fn, actor) is not None:
            assert actor == "regulator", "invariant 9: only the regulator freezes"
            (self.model.frozen.add if freeze else self.model.frozen.discard)(who)

    @precondition(lambda self: bool(self.model.pieces))
    @rule(data=st.data(), actor=st.sampled_from(("regulator", "regulator", *EVERYONE)), freeze=st.booleans())
    def freeze_piece(self, data: st.DataObject, actor: str, freeze: bool) -> None:
        if not self.model.pieces:
            return
        piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
        fn = (
            self.r.functions.freezePiece(piece_id, b"\x00" * 32) if freeze else self.r.functions.unfreezePiece(piece_id)
        )
        if self.send(fn, actor) is not None:
            assert actor == "regulator", "invariant 9: only the regulator freezes pieces"

    @rule(
        data=st.data(),
        contract=st.sampled_from(LEDGER_CONTRACTS),
        kind=st.sampled_from(["cash", "cash through an allowance", "mint", "whole piece", "part of a piece"]),
        fraction=fractions,
    )
    def send_to_a_ledger_contract(self, data: st.DataObject, contract: str, kind: str, fraction: int) -> None:
        """The stuck-asset attempt: an asset delivered to one of the ledger's contracts by whoever may otherwise
        move it. Refused always; by name whenever nothing else refuses it first (a failure changes nothing:
        :meth:`send` checks that it emitted nothing, the invariants that every balance and value is intact)."""
        target = self.sb.address(contract)
        clear = True  # no rule but the recipient's can refuse it
        if kind in ("cash", "cash through an allowance"):
            holder = data.draw(st.sampled_from(HOLDERS))
            amount = max(1, self.cash(self.sb.address(holder)) * fraction // 100)
            if kind == "cash":
                fn, actor = self.token.functions.transfer(target, amount), holder
            else:
                actor = data.draw(st.sampled_from([h for h in HOLDERS if h != holder]))
                assert self.send(self.token.functions.approve(self.sb.address(actor), amount), holder) is not None
                fn = self.token.functions.transferFrom(self.sb.address(holder), target, amount)
                clear = self.active(actor)
            clear = clear and self.active(holder)
        elif kind == "mint":
            fn, actor = self.token.functions.mint(target, 1 + fraction, b"\x15" * 32), "agent"
        else:
            if not self.model.pieces:
                return
            piece_id = data.draw(st.sampled_from(sorted(self.model.pieces)))
            before = self.piece(piece_id)
            actor = self.name_of(before[0])
            if kind == "whole piece":
                fn = self.r.functions.transferFrom(before[0], target, piece_id)
            else:
                fn = self.r.get_function_by_signature("transferFrom(uint256,address,uint256)")(
                    piece_id, target, max(1, before[3] * fraction // 100)
                )
            slot = self.model.pieces[piece_id]
            clear = (
                before[0] != "0x" + "00" * 20
                and self.active(actor)
                and before[5] == 0
                and before[6] & 1 == 0
                and self.sb.read("receivables", "invoice", slot)[2] == CONFIRMED
                and self.sb.now() + 2 < self.maturity(slot)
            )
        receipt = self.send(fn, actor)
        assert receipt is None, f"invariant 4: {kind} delivered to the {contract} contract"
        error = self.last_error
        if actor in self.model.self_custody and kind.startswith("cash"):
            assert error == "RegistrySignedActsOnly", f"{kind} to {contract}: {error}"  # no signed form
        elif clear:
            assert error == "RegistryRecipientIsLedgerContract", f"{kind} to {contract}: {error}"
        else:
            allowed = {"RegistryRecipientIsLedgerContract", *SENDER_REFUSALS, *PIECE_REFUSALS}
            assert error in allowed, f"{kind} to {contract}: {error}"
        OUTCOMES[f"to a ledger contract: {error}"] = OUTCOMES.get(f"to a ledger contract: {error}", 0) + 1

    @rule(
        data=st.data(),
        amount=st.integers(1, 1_000_000),
        due_days=st.integers(20, 200),
        to=actors,
        fraction=fractions,
    )
    def trade_by_signatures(self, data: st.DataObject, amount: int, due_days: int, to: str, fraction: int) -> None:
        """A self-custody supplier registers an invoice on a self-custody core firm, which confirms it, and the
        supplier assigns part of the new piece on: three signed acts, each relayed by someone else (each may
        still be refused by the contract's rules: an inactive party, a credit line used up, a frozen piece)."""
        sellers = sorted(set(SUPPLIERS) & set(self.model.self_custody))
        buyers = sorted(set(CORE_FIRMS) & set(self.model.self_custody))
        if not sellers or not buyers:
            return
        seller, buyer = data.draw(st.sampled_from(sellers)), data.draw(st.sampled_from(buyers))
        invoice_id = self.registered(seller, buyer, amount, due_days, invoice_key())
        piece_id = None if invoice_id is None else self.confirmed(invoice_id, buyer)
        if piece_id is not None:
            self.moved(piece_id, seller, to, fraction, whole=False)

    @rule(
        data=st.data(),
        actor=st.sampled_from(("operator", "operator", *EVERYONE)),
        who=st.sampled_from(HOLDERS),
        rotate=st.booleans(),
    )
    def change_custody(self, data: st.DataObject, actor: str, who: str, rotate: bool) -> None:
        """A self-custody participant's key in place signs its replacement (generation by generation), relayed by
        anyone; or ``actor`` switches ``who`` to self-custody (only the operator may, once)."""
        if rotate:
            who = data.draw(st.sampled_from(sorted(self.model.self_custody)))
            old = self.model.self_custody[who]
            new = self.sb.signing_key(who, len(self.model.retired.get(who, [])) + 1)
            assert self.perform(who, "RotateKey", [new.address]) is not None, "invariant 10: a rotation was refused"
            assert self.sb.read("registry", "signerOf", self.sb.address(who)) == new.address
            self.model.retired.setdefault(who, []).append(old)
            self.model.self_custody[who] = new
            return
        key = self.sb.signing_key(who)
        if self.send(self.registry.functions.adoptSelfCustody(self.sb.address(who), key.address), actor) is not None:
            assert actor == "operator" and who not in self.model.self_custody, "invariant 10: switched by " + actor
            self.model.self_custody[who] = key

    @rule(
        data=st.data(),
        how=st.sampled_from(["replayed", "forged", "expired"]),
        forger=st.sampled_from(tuple(CAST)),
        retired=st.booleans(),
        ago=st.integers(0, 30 * DAY),
        relayer=actors,
    )
    def misuse_a_signed_act(
        self, data: st.DataObject, how: str, forger: str, retired: bool, ago: int, relayer: str
    ) -> None:
        """Invariant 10, each refused by name and changing nothing: a signed act already performed, replayed; an
        act of a self-custody participant signed by a hosted key of the operator's keystore (any of the cast's,
        the participant's own retired address among them) or by one of its rotated-out keys; a rightly signed act
        whose deadline has passed (by a second or by weeks) when it is relayed."""
        if how == "replayed":
            if not self.model.performed:
                return
            call, who, nonce = data.draw(st.sampled_from(self.model.performed))
            account = self.sb.address(who).lower()
            self.refused(call, relayer, how, "SignedActsNonceUsed", account=account, nonce=nonce)
            return
        who = data.draw(st.sampled_from(sorted(self.model.self_custody)))
        act, call_args = self.some_act(data, who)
        nonce = self.next_nonce()
        key = self.model.self_custody[who]
        if how == "forged":
            old_keys = self.model.retired.get(who, [])
            forged = data.draw(st.sampled_from(old_keys)) if retired and old_keys else Account.from_key(_key_of(forger))
            document = self.sb.act_document(act, who, call_args, nonce=nonce, deadline=FAR)
            call = self.sb.act_function(document, acts.sign(document, forged))
            self.refused(call, relayer, how, "SignedActsInvalidSignature", signer=key.address.lower())
        else:
            deadline = self.sb.now() - ago
            document = self.sb.act_document(act, who, call_args, nonce=nonce, deadline=deadline)
            call = self.sb.act_function(document, acts.sign(document, key))
            self.refused(call, relayer, how, "SignedActsExpired", deadline=deadline)
        assert not self.sb.read("acts", "nonceUsed", self.sb.address(who), nonce)

    @rule(days=st.integers(1, 45))
    def let_time_pass(self, days: int) -> None:
        self.sb.travel_to(self.sb.now() + days * DAY)

    # -- invariants ---------------------------------------------------------------------------------

    @invariant()
    def each_key_maps_to_one_invoice(self) -> None:
        for key, invoice_id in self.model.keys.items():
            assert self.sb.read("receivables", "invoiceIdOfKey", key) == invoice_id
        assert len(set(self.model.keys.values())) == len(self.model.keys)

    @invariant()
    def pieces_add_up_to_face_minus_redeemed_and_payouts_never_exceed_payments(self) -> None:
        values: dict[int, int] = {}
        for piece_id, slot in self.model.pieces.items():
            p = self.piece(piece_id)
            assert p[2] == 0 or self.model.pieces.get(p[2]) == slot, "a piece's parent is in another slot"
            values[slot] = values.get(slot, 0) + p[3]
        held = 0
        owed: dict[str, int] = {}
        for slot in self.model.slots:
            invoice = self.sb.read("receivables", "invoice", slot)
            amount, repaid, redeemed = invoice[5], invoice[6], invoice[7]
            assert values.get(slot, 0) == amount - redeemed, "invariant 3"
            assert redeemed <= repaid <= amount, "invariant 6"
            held += repaid - redeemed
            buyer = self.model.invoices[slot][1]
            owed[buyer] = owed.get(buyer, 0) + amount - repaid
        assert self.cash(self.r.address) == held, "invariant 6: contract cash"
        for core in CORE_FIRMS:
            limit, used = self.sb.read("receivables", "creditLine", self.sb.address(core))
            assert used == owed.get(core, 0) and used <= limit, "invariant 2"

    @invariant()
    def no_two_financiers_hold_registered_financings_of_one_receivable(self) -> None:
        """Invariant 14: the registrations recorded are those the model made, and the registered financings of
        one receivable are all one financier's."""
        by_slot: dict[int, set[str]] = {}
        for request_id, number in self.model.registered.items():
            slot, financier = self.model.funded[request_id]
            assert bytes(self.sb.read("receivables", "financingRegistration", request_id)[0]) == number
            by_slot.setdefault(slot, set()).add(financier)
        for slot, financiers in by_slot.items():
            assert len(financiers) == 1, f"invariant 14: obligation {slot} registered by {financiers}"
        for slot in self.model.slots:
            bound = self.model.bound.get(slot, (0, ""))[0]
            assert self.sb.read("receivables", "registeredFinancingOf", slot) == bound

    @invariant()
    def deposit_tokens_are_conserved(self) -> None:
        holders = [self.sb.address(n) for n in CAST] + [c.address for c in self.sb.contracts.values()]
        assert self.sb.read("token", "totalSupply") == self.supply
        assert sum(self.cash(h) for h in holders) == self.supply

    def cash(self, holder: str) -> int:
        return int(self.sb.read("token", "balanceOf", holder))


def count(outcome: str) -> None:
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


def test_receivables_invariants_hold_under_random_operations(sandbox: Sandbox) -> None:
    run_receivables_machine(sandbox)


@pytest.mark.soak
def test_receivables_invariants_hold_under_random_operations_on_anvil(anvil_sandbox: Sandbox) -> None:
    """The same machine on a real anvil node, at the soak size when SCF_SOAK=1 (`make soak`)."""
    run_receivables_machine(anvil_sandbox)


def run_receivables_machine(sandbox: Sandbox) -> None:
    OUTCOMES.clear()
    run_state_machine_as_test(
        lambda: ReceivablesMachine(sandbox),
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            derandomize=os.environ.get("SCF_PROPERTY_SEED") is None,
            database=None,
        ),
    )
    print("outcomes:", dict(sorted(OUTCOMES.items())))
    # the run must have exercised the lifecycle, not only refusals, by hosted participants' own transactions
    # and by self-custody participants' signed acts
    for operation, act in LIFECYCLE.items():
        assert OUTCOMES.get(f"{operation} ok", 0) > 0, f"no successful {operation} in the whole run"
        assert OUTCOMES.get(f"signed {act} ok", 0) > 0, f"no signed {act} performed in the whole run"
    assert OUTCOMES.get("to a ledger contract: RegistryRecipientIsLedgerContract", 0) > 0
    for move in ("replayed SignedActsNonceUsed", "forged SignedActsInvalidSignature", "expired SignedActsExpired"):
        assert OUTCOMES.get(move, 0) > 0, f"no {move} in the whole run"
