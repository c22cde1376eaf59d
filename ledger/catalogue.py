"""The catalogue of the ledger's business operations: each declared once, as data.

An :class:`OperationSpec` names an operation (``invoice.confirm``), the contract function it calls, its
arguments (in the order the client's method takes them), who may call it (the contracts enforce it; the REST
service checks it first for a clear answer), and which fields of which events form its result. From this one
entry come:

- the client's submit path, :meth:`ledger.client.LedgerClient.submit` (``client.submit("invoice.confirm",
  buyer, {"invoice_id": 7})``), and its one-line typed front end (``client.confirm_invoice(buyer, 7)``, an
  :class:`ledger.client.OperationMethod`);
- the REST action that performs it (:mod:`api.actions`: the route, its body, its guard, its links, and the
  operation's ``kind`` in ``GET /operations/{id}``);
- the result an operation shows when it is confirmed (:meth:`Catalogue.result_fields`);
- the documentation of each of them.

Adding an operation: declare the function in the contract's interface (its errors with a ``@custom:kind``),
add an entry here, and one :class:`api.actions.Action` beside the resource's routes. Arguments that need
work before they go on chain (an enum to its number, text to bytes, roles to their ids, a value that picks
between overloads) get an ``encode`` function; everything else goes on chain as given. No encoding reads the chain:
a choice that depends on the chain's state (a whole piece or a part of it) is the contract's, made as the
transaction runs, not the service's from a read made before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from ledger.models import GoodsStatus, Role

MAX_UINT256 = 2**256 - 1


class Reader(Protocol):
    """What an operation's ``encode`` may read: the deployed contracts' addresses and the chain."""

    def address_of(self, contract: str) -> str: ...


Encoder = Callable[[Reader, str, Mapping[str, Any]], tuple[str, list[Any]]]
"""``(reader, sender, arguments by name) → (function, call arguments)``."""


@dataclass(frozen=True)
class OperationSpec:
    """One business operation."""

    name: str
    """Stable name, ``<resource>.<verb>``: the operation's ``kind`` in the REST service and its journal."""
    contract: str
    """Contract key (``registry``, ``token``, ``receivables``, ``receipts``, ``anchor``)."""
    function: str
    """The function called: its name, or its signature when overloaded."""
    params: tuple[str, ...]
    """The arguments' names, in the order the client's method takes them (after the sender)."""
    sender: str
    """What the sender is called (``buyer``, ``financier``): in the client's signature and the docs."""
    roles: tuple[Role, ...]
    """Who may call it (any of these; empty: whoever the contract's own rule names, e.g. a piece's holder)."""
    summary: str
    results: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """event → {event argument: result field}: what the operation's result shows."""
    own_results: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    """(contract, event) → {event argument: result field}: what only this operation's result shows, where no
    event of :attr:`results` gave the field (an event whose name other contracts share, such as ERC-721's
    ``Transfer`` of pieces and of receipts, is shown this way: named with its contract, for one operation)."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    encode: Encoder | None = None

    def bind(self, args: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
        """The arguments by name: from a mapping or in :attr:`params` order, defaults filled in. A missing or
        unknown argument is a ``TypeError``."""
        if isinstance(args, Mapping):
            values = dict(args)
        else:
            if len(args) > len(self.params):
                raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
            values = dict(zip(self.params, args, strict=False))
        for name, default in self.defaults.items():
            values.setdefault(name, default)
        unknown = set(values) - set(self.params)
        missing = [p for p in self.params if p not in values]
        if unknown or missing:
            raise TypeError(f"{self.name}: unknown arguments {sorted(unknown)}, missing {missing}")
        return values

    def call(self, reader: Reader, sender: str, args: Mapping[str, Any] | Sequence[Any]) -> tuple[str, list[Any]]:
        """(function, call arguments) for ``sender`` calling with ``args``."""
        values = self.bind(args)
        if self.encode is not None:
            return self.encode(reader, sender, values)
        return self.function, [values[p] for p in self.params]


class Catalogue(Mapping[str, OperationSpec]):
    """Operations by name."""

    def __init__(self, operations: Iterable[OperationSpec]) -> None:
        self._operations: dict[str, OperationSpec] = {}
        for operation in operations:
            if operation.name in self._operations:
                raise ValueError(f"operation {operation.name} declared twice")
            self._operations[operation.name] = operation

    def __getitem__(self, name: str) -> OperationSpec:
        return self._operations[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._operations)

    def __len__(self) -> int:
        return len(self._operations)

    def extended(self, *operations: OperationSpec) -> Catalogue:
        """This catalogue with more operations (a deployment's own, or a test's)."""
        return Catalogue([*self.values(), *operations])

    @cached_property
    def result_fields(self) -> dict[str, dict[str, str]]:
        """event → {argument: result field}, over every operation: what a confirmed operation's result shows
        of each event its transaction emitted (the first event to give a field gives it)."""
        merged: dict[str, dict[str, str]] = {}
        for operation in self.values():
            for event, fields in operation.results.items():
                known = merged.setdefault(event, {})
                for argument, name in fields.items():
                    if known.get(argument, name) != name:
                        raise ValueError(f"{event}.{argument} shown as {known[argument]} and as {name}")
                    known[argument] = name
        return merged

    def functions(self) -> set[tuple[str, str]]:
        """(contract, function) of every operation (an operation that picks between overloads: each)."""
        return {(o.contract, o.function) for o in self.values()}


# -- argument encoders --------------------------------------------------------------------------------------------


def role_id(role: Role) -> bytes:
    """The on-chain AccessControl id of ``role`` (:attr:`ledger.models.Role.role_id`)."""
    return role.role_id


def currency_code(currency: str) -> bytes:
    """An ISO 4217 code as the contracts keep it (``bytes3``)."""
    code = currency.encode("ascii")
    if len(code) != 3:
        raise ValueError(f"currency {currency!r} is not a 3-letter code")
    return code


def unit_code(unit: str) -> bytes:
    """A unit of measure as the contracts keep it (``bytes8``, ASCII, zero-padded)."""
    code = unit.encode("ascii")
    if len(code) > 8:
        raise ValueError(f"unit {unit!r} is longer than 8 characters")
    return code.ljust(8, b"\x00")


def _register_participant(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "register", [v["account"], v["identity_hash"], [role_id(r) for r in v["roles"]]]


def _register_self_custody(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "registerSelfCustody", [v["account"], v["identity_hash"], [role_id(r) for r in v["roles"]]]


def _grant_role(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "grantRole", [role_id(v["role"]), v["account"]]


def _admit_regulator(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "grantRole", [Role.REGULATOR.role_id, v["account"]]


def _approve_settlement(reader: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "approve", [reader.address_of(v["spender_contract"]), MAX_UINT256]


def _register_invoice(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "registerInvoice", [
        v["key_hash"],
        v["buyer"],
        v["amount"],
        currency_code(v["currency"]),
        v["due_date"],
        v["document_hash"],
    ]


def _issue_receipt(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "issueReceipt", [
        v["owner"],
        v["lot_key_hash"],
        v["goods_hash"],
        v["quantity"],
        unit_code(v["unit"]),
        v["valuation"],
        v["expiry"],
        v["document_hash"],
    ]


def _update_goods_status(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "updateGoodsStatus", [v["receipt_id"], int(GoodsStatus(v["status"])), v["attestation_hash"]]


def _transfer_receipt(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    return "transferFrom", [sender, v["to"], v["receipt_id"]]


def _repay_pledge(_: Reader, sender: str, v: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """No amount: everything owed when the transaction runs (the contract takes all-ones as that)."""
    return "repayPledge", [v["pledge_id"], MAX_UINT256 if v["amount"] is None else v["amount"]]


# -- the operations -----------------------------------------------------------------------------------------------

_OPERATOR, _REGULATOR, _AGENT = (Role.OPERATOR,), (Role.REGULATOR,), (Role.SETTLEMENT_AGENT,)
_CORE, _SUPPLIER, _FINANCIER, _WAREHOUSE = (Role.CORE_FIRM,), (Role.SUPPLIER,), (Role.FINANCIER,), (Role.WAREHOUSE,)
_ANYONE: tuple[Role, ...] = ()


def _op(
    name: str,
    contract: str,
    function: str,
    sender: str,
    params: str,
    roles: tuple[Role, ...],
    summary: str,
    *,
    results: Mapping[str, Mapping[str, str]] | None = None,
    own_results: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    encode: Encoder | None = None,
) -> OperationSpec:
    return OperationSpec(
        name=name,
        contract=contract,
        function=function,
        params=tuple(params.split()),
        sender=sender,
        roles=roles,
        summary=summary,
        results=results or {},
        own_results=own_results or {},
        defaults=defaults or {},
        encode=encode,
    )


CATALOGUE = Catalogue(
    [
        # participants (the registry)
        _op(
            "participant.register",
            "registry",
            "register",
            "operator",
            "account identity_hash roles",
            _OPERATOR,
            "Register a participant's address with the hash of its identity record and its roles.",
            results={"ParticipantRegistered": {"account": "address"}},
            encode=_register_participant,
        ),
        _op(
            "participant.register-self-custody",
            "registry",
            "registerSelfCustody",
            "operator",
            "account identity_hash roles",
            _OPERATOR,
            "Register a self-custody participant: an address whose key (or whose contract account's owners) signs "
            "its acts; the operator holds no key of it.",
            results={"ParticipantRegistered": {"account": "address"}},
            encode=_register_self_custody,
        ),
        _op(
            "participant.adopt-self-custody",
            "registry",
            "adoptSelfCustody",
            "operator",
            "account signer",
            _OPERATOR,
            "Switch a hosted participant to self-custody with its own key: the hosted key is retired on chain.",
        ),
        _op(
            "key.recovery.propose",
            "registry",
            "proposeKeyRecovery",
            "operator",
            "account signer",
            _OPERATOR,
            "Propose a new key for a self-custody participant whose key is lost (a regulator must approve).",
        ),
        _op(
            "key.recovery.approve",
            "registry",
            "approveKeyRecovery",
            "regulator",
            "account signer",
            _REGULATOR,
            "Approve the operator's proposal: the new key replaces the lost one, which can do nothing after.",
        ),
        _op(
            "participant.grant-role",
            "registry",
            "grantRole",
            "operator",
            "account role",
            _OPERATOR,
            "Grant a registered participant one more role (never the regulator's: a regulator admits regulators).",
            encode=_grant_role,
        ),
        _op(
            "participant.admit-regulator",
            "registry",
            "grantRole",
            "regulator",
            "account",
            _REGULATOR,
            "Admit a registered participant as a regulator: only a regulator may (the role is its own admin); never "
            "an account that holds the operator's roles.",
            encode=_admit_regulator,
        ),
        _op(
            "participant.suspend",
            "registry",
            "suspend",
            "operator",
            "account",
            _OPERATOR,
            "Suspend a participant: it can start no new business until reinstated.",
        ),
        _op(
            "participant.reinstate",
            "registry",
            "reinstate",
            "operator",
            "account",
            _OPERATOR,
            "Reinstate a suspended participant.",
        ),
        _op(
            "freeze.participant",
            "registry",
            "freeze",
            "regulator",
            "account reason",
            _REGULATOR,
            "Freeze a participant: no deposit-token movement to or from it, no new business.",
        ),
        _op(
            "unfreeze.participant",
            "registry",
            "unfreeze",
            "regulator",
            "account",
            _REGULATOR,
            "Lift a participant's freeze.",
        ),
        # cash (the deposit token)
        _op(
            "deposit",
            "token",
            "mint",
            "agent",
            "to amount bank_reference",
            _AGENT,
            "Credit deposit tokens for money received at the settlement bank (a bank reference credits once).",
            results={"DepositMinted": {"amount": "amount"}},
        ),
        _op(
            "withdrawal",
            "token",
            "burn",
            "agent",
            "holder amount bank_reference",
            _AGENT,
            "Burn deposit tokens for money paid out by the settlement bank (a bank reference debits once).",
            results={"DepositBurned": {"amount": "amount"}},
        ),
        _op(
            "settlement.approve",
            "token",
            "approve",
            "holder",
            "spender_contract",
            _ANYONE,
            "Let a ledger contract (`receivables` or `receipts`) draw the holder's cash legs.",
            encode=_approve_settlement,
        ),
        # receivables
        _op(
            "credit-line.set",
            "receivables",
            "setCreditLine",
            "grantor",
            "core_firm grant",
            (Role.FINANCIER, Role.OPERATOR),
            "Set the grantor's credit grant to a core firm (it replaces the grantor's earlier grant).",
        ),
        _op(
            "invoice.register",
            "receivables",
            "registerInvoice",
            "seller",
            "key_hash buyer amount currency due_date document_hash",
            _SUPPLIER,
            "Register an invoice on its buyer, under the salted hash of its national identity.",
            results={"InvoiceRegistered": {"invoiceId": "invoice_id"}},
            encode=_register_invoice,
        ),
        _op(
            "invoice.confirm",
            "receivables",
            "confirmInvoice",
            "buyer",
            "invoice_id",
            _CORE,
            "Confirm an invoice: the buyer's undertaking to pay it at its due date, as a receivable piece to the "
            "seller.",
            results={"InvoiceConfirmed": {"pieceId": "piece_id"}},
        ),
        _op(
            "invoice.reject",
            "receivables",
            "rejectInvoice",
            "buyer",
            "invoice_id reason",
            _CORE,
            "Reject an invoice, with the hash of the reason.",
        ),
        _op(
            "receivable.transfer",
            "receivables",
            "transferPiece",
            "holder",
            "piece_id to amount",
            _ANYONE,
            "Pay with part (a new piece recording its parent) or all of a receivable piece (the piece itself): "
            "which, the contract decides from the piece's value as the transaction runs, so exactly the amount "
            "moves.",
            results={"PieceSplit": {"pieceId": "piece_id"}},
            # All of it: no split, the piece itself moved (its ERC-721 Transfer names it).
            own_results={("receivables", "Transfer"): {"tokenId": "piece_id"}},
        ),
        _op(
            "financing.request",
            "receivables",
            "requestFinancing",
            "holder",
            "piece_id amount financier max_discount_rate_bps max_fee",
            _ANYONE,
            "Ask a financier to buy part or all of a piece at a discount, accepting at most a discount rate (a year, "
            "365-day basis) and a fee: the quote shown before asking.",
            results={"FinancingRequested": {"requestId": "request_id"}},
        ),
        _op(
            "financing.approve",
            "receivables",
            "approveFinancing",
            "financier",
            "request_id discount_rate_bps fee day_count_basis review",
            _FINANCIER,
            "Offer terms on a financing request, within what it accepted: the discount rate, a flat fee, the day "
            "count and the hash of the credit review (required when the obligation runs longer than the review "
            "tenor).",
            defaults={"day_count_basis": 365, "review": bytes(32)},
        ),
        _op(
            "financing.fund",
            "receivables",
            "fundFinancing",
            "financier",
            "request_id",
            _FINANCIER,
            "Pay the price and take the piece, in one transaction (delivery versus payment).",
            results={
                "FinancingFunded": {"pieceId": "piece_id", "discount": "discount", "fee": "fee", "price": "price"}
            },
        ),
        _op(
            "financing.register",
            "receivables",
            "recordFinancingRegistration",
            "financier",
            "request_id number registered_at",
            _FINANCIER,
            "Record the 中登网 registration of a funded financing (动产和权利担保统一登记): its initial registration "
            "number (ASCII digits, left-aligned in 32 bytes) and date. Once recorded, the obligation is financed by "
            "no other financier until it is paid.",
        ),
        _op(
            "financing.decline",
            "receivables",
            "declineFinancing",
            "financier",
            "request_id",
            _FINANCIER,
            "Decline a financing request.",
        ),
        _op(
            "financing.cancel",
            "receivables",
            "cancelFinancing",
            "holder",
            "request_id",
            _ANYONE,
            "Withdraw one's own financing request.",
        ),
        _op(
            "obligation.repay",
            "receivables",
            "repay",
            "payer",
            "slot_id amount",
            _CORE,
            "Pay towards an obligation (the confirmed invoice) for its holders to redeem.",
            results={"ObligationRepaid": {"repaid": "repaid", "outstanding": "outstanding"}},
        ),
        _op(
            "receivable.redeem",
            "receivables",
            "redeem",
            "holder",
            "piece_id",
            _ANYONE,
            "Redeem a piece for its share of what the obligor repaid.",
            results={"PieceRedeemed": {"payout": "payout"}},
        ),
        _op(
            "obligation.default",
            "receivables",
            "markDefaulted",
            "caller",
            "slot_id piece_id",
            _ANYONE,
            "Mark an overdue obligation defaulted (by a holder of one of its pieces, or the operator).",
            defaults={"piece_id": 0},
        ),
        _op(
            "freeze.piece",
            "receivables",
            "freezePiece",
            "regulator",
            "piece_id reason",
            _REGULATOR,
            "Freeze a receivable piece: it cannot move, be financed or be redeemed.",
        ),
        _op(
            "unfreeze.piece",
            "receivables",
            "unfreezePiece",
            "regulator",
            "piece_id",
            _REGULATOR,
            "Lift a piece's freeze.",
        ),
        # warehouse receipts and pledge loans
        _op(
            "receipt.issue",
            "receipts",
            "issueReceipt",
            "warehouse",
            "owner lot_key_hash goods_hash quantity unit valuation expiry document_hash",
            _WAREHOUSE,
            "Issue a warehouse receipt for a lot the warehouse holds (a lot is receipted once).",
            results={"ReceiptIssued": {"receiptId": "receipt_id"}},
            encode=_issue_receipt,
        ),
        _op(
            "receipt.revalue",
            "receipts",
            "revalueReceipt",
            "valuer",
            "receipt_id valuation attestation_hash",
            _ANYONE,
            "The receipt's warehouse or its appointed oracle: record a new valuation of the goods, with the hash "
            "of its attestation.",
        ),
        _op(
            "receipt.goods-status",
            "receipts",
            "updateGoodsStatus",
            "valuer",
            "receipt_id status attestation_hash",
            _ANYONE,
            "The receipt's warehouse or its appointed oracle: record the goods' condition, with the hash of its "
            "attestation.",
            encode=_update_goods_status,
        ),
        _op(
            "receipt.anchor-readings",
            "receipts",
            "anchorReadings",
            "valuer",
            "receipt_id digest period_end readings observed_quantity tolerance_bps",
            _ANYONE,
            "The receipt's warehouse or its appointed oracle (the service's sensor monitor): anchor the digest of a "
            "period of sensor readings and the quantity they observed; a shortfall beyond the tolerance raises a "
            "collateral alert and, for a pledged receipt, the margin test.",
            results={"ReceiptReadingsAnchored": {"digest": "digest"}},
        ),
        _op(
            "receipt.appoint-oracle",
            "receipts",
            "appointOracle",
            "warehouse",
            "oracle",
            _WAREHOUSE,
            "Appoint an inspection oracle to value and watch the warehouse's goods.",
        ),
        _op(
            "receipt.transfer",
            "receipts",
            "transferFrom",
            "owner",
            "receipt_id to",
            _ANYONE,
            "Transfer a receipt (title to the goods) to another participant.",
            encode=_transfer_receipt,
        ),
        _op(
            "pledge.request",
            "receipts",
            "requestPledge",
            "owner",
            "receipt_id financier principal rate_bps due_date",
            _ANYONE,
            "Ask a financier for a loan against a receipt (at most its advance rate of the valuation).",
            results={"PledgeRequested": {"pledgeId": "pledge_id"}},
        ),
        _op(
            "pledge.fund",
            "receipts",
            "fundPledge",
            "financier",
            "pledge_id",
            _FINANCIER,
            "Lend the principal and take the lien on the receipt, in one transaction.",
            results={"PledgeFunded": {"principal": "principal"}},
        ),
        _op(
            "pledge.register",
            "receipts",
            "recordPledgeRegistration",
            "financier",
            "pledge_id number registered_at",
            _FINANCIER,
            "Record the 中登网 registration of an active pledge (动产和权利担保统一登记): its initial registration "
            "number (ASCII digits, left-aligned in 32 bytes) and date.",
        ),
        _op(
            "pledge.decline",
            "receipts",
            "declinePledge",
            "financier",
            "pledge_id",
            _FINANCIER,
            "Decline a pledge request.",
        ),
        _op(
            "pledge.cancel",
            "receipts",
            "cancelPledge",
            "owner",
            "pledge_id",
            _ANYONE,
            "Withdraw one's own pledge request.",
        ),
        _op(
            "pledge.repay",
            "receipts",
            "repayPledge",
            "borrower",
            "pledge_id amount",
            _ANYONE,
            "Pay towards a pledge loan, interest first; paying everything owed releases the lien.",
            results={
                "PledgeRepaid": {
                    "amount": "amount",
                    "principalOutstanding": "principal_outstanding",
                    "interestOutstanding": "interest_outstanding",
                }
            },
            defaults={"amount": None},
            encode=_repay_pledge,
        ),
        _op(
            "pledge.enforce",
            "receipts",
            "enforcePledge",
            "financier",
            "pledge_id",
            _FINANCIER,
            "Take the receipt of an overdue or under-collateralised pledge loan.",
        ),
        _op(
            "receipt.redeem",
            "receipts",
            "requestRedemption",
            "owner",
            "receipt_id",
            _ANYONE,
            "Ask the warehouse to release the goods against the receipt.",
        ),
        _op(
            "receipt.redemption-withdraw",
            "receipts",
            "withdrawRedemption",
            "owner",
            "receipt_id",
            _ANYONE,
            "Withdraw a redemption request.",
        ),
        _op(
            "receipt.redemption-confirm",
            "receipts",
            "confirmRedemption",
            "warehouse",
            "receipt_id",
            _WAREHOUSE,
            "Confirm the goods were released: the receipt is redeemed.",
        ),
        _op(
            "freeze.receipt",
            "receipts",
            "freezeReceipt",
            "regulator",
            "receipt_id reason",
            _REGULATOR,
            "Freeze a warehouse receipt: it cannot move, be pledged or be redeemed.",
        ),
        _op(
            "unfreeze.receipt",
            "receipts",
            "unfreezeReceipt",
            "regulator",
            "receipt_id",
            _REGULATOR,
            "Lift a receipt's freeze.",
        ),
        _op(
            "advance-rate.set",
            "receipts",
            "setFinancierAdvanceRate",
            "operator",
            "financier advance_rate_bps",
            _OPERATOR,
            "Set the most a financier may lend against a receipt, in basis points of its valuation.",
        ),
        # the service's audit log
        _op(
            "audit.anchor",
            "anchor",
            "anchor",
            "operator",
            "sequence head",
            _OPERATOR,
            "Anchor the audit log's head on chain: it holds `sequence` records and the last hashes to `head`.",
        ),
    ]
)
