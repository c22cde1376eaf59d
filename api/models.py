"""The answers of the read routes, as pydantic models: what ``GET`` returns, field by field, in the OpenAPI document.

Each model is the JSON a route has always answered, written down: the same field names, nesting and value types.
Two kinds of integer appear:

- an object read from the chain (``GET /invoices/{id}``, ``GET /pledges/{id}``, …) carries its integers as
  JSON integers, however large (:class:`int`);
- a list read from the index (``GET /invoices``, ``GET /audit/events``, …) carries the index row as stored, with
  every integer beyond 2^53 as a decimal string, since JavaScript's numbers cannot hold it
  (:data:`WideInt`, :func:`api.problems.jsonable`). Timestamps, block numbers and small counts are
  always integers there.

Some answers add a field only in some states (a financing request's ``quote`` while it is approved, a pledge's
``owed`` while it is active): those fields default to None and their routes answer with
``response_model_exclude_unset=True``, so that the field is absent, not null, where it always was absent.

The models of list items (``*Item``) mirror the index tables column for column
(``tests/api/test_read_answers.py`` checks that they stay in step).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

WideInt = Annotated[
    int | str,
    Field(description="an integer: a JSON integer below 2^53, a string of its decimal digits from 2^53 on"),
]
"""An integer of an index row as a list answers it (see the module's docstring)."""

FEN_UNIT: dict[str, Any] = {"x-unit": "fen"}
"""The mark of a field that is money in fen (``x-unit`` in the OpenAPI document): lists exported as files sum
these fields in their totals row (:mod:`api.exports`)."""

WideFen = Annotated[
    int | str,
    Field(
        description="an amount in fen: a JSON integer below 2^53, a string of its decimal digits from 2^53 on",
        json_schema_extra=FEN_UNIT,
    ),
]
"""An amount of money (fen) of an index row as a list answers it."""
Fen = Annotated[int, Field(description="an amount in fen", json_schema_extra=FEN_UNIT)]
"""An amount of money (fen) as a JSON integer."""


# -- lists -------------------------------------------------------------------------------------------------------


class NumberedPage(BaseModel, Generic[T]):
    """A page of a list paged by page number only."""

    items: list[T]
    page: int | None = Field(description="the page's number; null when paging by cursor")
    size: int = Field(description="items per page asked for")
    total: int | None = Field(description="how many items match; null when not counted")


class Page(NumberedPage[T], Generic[T]):
    """A page of a list paged by cursor or page number (see each list's description, "Paging")."""

    next: str | None = Field(description="the cursor of the next page (send it as `after`); null on the last page")


# -- participants, credit lines, balances ------------------------------------------------------------------------


class ParticipantView(BaseModel):
    """A participant as the service onboarded it, with its standing on chain."""

    id: str = Field(description="the participant's on-chain account")
    name: str
    credit_code: str
    roles: list[str]
    login_address: str | None
    status: str | None = Field(None, description="on chain: active or suspended (from the index)")
    frozen: bool | None = None
    custody: Literal["hosted", "self"] = Field(
        "hosted",
        description="`hosted`: its key is in the service's keystore and the service signs for it; `self`: it "
        "signs its own acts (the service relays them)",
    )
    signer: str | None = Field(None, description="self-custody: the key that signs its acts, when not the account")


class CreditLineView(BaseModel):
    """A core firm's credit line on chain: what financiers granted it and how much confirmed invoices use."""

    core_firm: str
    limit: int = Field(description="fen")
    used: int = Field(description="fen: the outstanding amount of the invoices it confirmed")
    available: int = Field(description="fen: limit − used")


class BalanceView(BaseModel):
    """The caller's deposit-token balance on chain."""

    participant: str
    currency: str
    balance: int = Field(description="fen")


# -- invoices, pieces, financing requests ------------------------------------------------------------------------


class InvoiceView(BaseModel):
    """An invoice (and its obligation, once confirmed) as on chain now."""

    id: int
    seller: str
    buyer: str
    amount: int = Field(description="fen")
    repaid: int = Field(description="fen the buyer repaid")
    redeemed: int = Field(description="fen paid out to the pieces' holders")
    outstanding: int = Field(description="fen still owed: amount − repaid")
    state: str = Field(description="registered, rejected, confirmed, paid or defaulted")
    due_date: int = Field(description="unix seconds")
    confirmed_at: int | None = Field(description="unix seconds; null until confirmed")
    document_hash: str


class InvoiceItem(BaseModel):
    """An invoice as the index holds it (the table ``invoices``)."""

    id: WideInt
    key_hash: str
    seller: str
    buyer: str
    amount: WideFen
    currency: str
    due_date: WideInt
    document_hash: str
    state: str
    registered_at: int
    confirmed_at: int | None
    first_piece_id: WideInt | None
    rejection_reason: str | None
    repaid: WideFen
    redeemed: WideFen
    defaulted_by: str | None
    updated_block: int
    invoice_number: str | None = Field(
        None, description="the invoice's number as registered through this gateway (null when registered elsewhere)"
    )


class PieceView(BaseModel):
    """A receivable piece (ERC-3525 token) as on chain now, with its path of splits and what it may redeem."""

    id: int
    owner: str | None = Field(description="null once burnt")
    slot_id: int = Field(description="the obligation (invoice) the piece is a share of")
    parent_id: int | None
    value: int = Field(description="fen")
    open_request_id: int | None = Field(description="the financing request the piece is locked in, if any")
    frozen: bool
    path: list[int] = Field(description="the piece's ancestors, from the first piece of the obligation")
    redeemable: int = Field(description="fen the holder could redeem now")


class PieceItem(BaseModel):
    """A piece as the index holds it (the table ``pieces``)."""

    id: WideInt
    slot_id: WideInt
    owner: str | None
    value: WideFen
    checkpoint: WideInt
    parent_id: WideInt | None
    root_id: WideInt
    depth: int
    path: str
    frozen: bool
    open_request_id: WideInt | None
    burnt: bool
    created_at: int
    updated_block: int


class Quote(BaseModel):
    """What funding an approved request would settle now, fen."""

    discount: int
    fee: int
    price: int


class FinancingRequestView(BaseModel):
    """A financing request as on chain now."""

    id: int
    holder: str
    piece_id: int
    financier: str
    amount: int = Field(description="fen of the piece offered")
    state: str = Field(description="requested, approved, funded, declined or cancelled")
    discount_rate_bps: int
    day_count_basis: int
    fee: int
    price: int | None = Field(description="fen paid to the holder; null until funded")
    funded_piece_id: int | None
    max_discount_rate_bps: int = Field(
        description="the most the holder accepted when it asked: a discount rate a year on a 365-day basis (terms on"
        " a 360-day basis are compared at their 365-day equivalent)"
    )
    max_fee: int = Field(description="the most fee the holder accepted when it asked, fen")
    review: str | None = Field(
        description="the financier's credit review recorded with its approval (hash or reference, 0x and 64 hex"
        " digits); null when it recorded none"
    )
    quote: Quote | None = Field(None, description="present only while the request is approved")


class FinancingRequestItem(BaseModel):
    """A financing request as the index holds it (the table ``financing_requests``)."""

    id: WideInt
    piece_id: WideInt
    holder: str
    financier: str
    amount: WideFen
    state: str
    discount_rate_bps: int | None
    day_count_basis: int | None
    fee: WideFen | None
    discount: WideFen | None
    price: WideFen | None
    funded_piece_id: WideInt | None
    max_discount_rate_bps: int | None = Field(description="the rate cap the holder accepted (365-day basis), bp")
    max_fee: WideFen | None = Field(description="the fee cap the holder accepted")
    review: str | None = Field(description="the financier's credit review (32 zero bytes: none); null until approved")
    requested_at: int
    approved_at: int | None
    closed_at: int | None
    registration_number: str | None = Field(
        None, description="the 中登网 initial registration number its financier recorded; null while unregistered"
    )
    registered_at: int | None = Field(None, description="the registration's date as recorded, Unix seconds (UTC)")
    registration_recorded_at: int | None = Field(None, description="when the registration was recorded on chain")
    updated_block: int
    obligor: str = Field(description="the core firm that owes the piece: the buyer of its invoice")
    obligor_name: str | None = Field(description="the obligor's name, where this service onboarded it")
    due_date: int = Field(description="when the obligor pays the piece, Unix seconds (UTC): the financing's maturity")


# -- warehouse receipts, pledges, margin calls -------------------------------------------------------------------


class Owed(BaseModel):
    """What the borrower owes on an active pledge now, fen."""

    principal: int
    interest: int
    total: int


class ReceiptView(BaseModel):
    """A warehouse receipt as on chain now, with its open pledge and what is owed on it."""

    id: WideInt
    warehouse: str
    owner: str | None = Field(description="null once redeemed (burnt)")
    valuation: int = Field(description="fen")
    quantity: WideInt
    unit: str
    valued_at: int
    expiry: int
    goods_status: str
    state: str
    frozen: bool
    pledge_id: int | None = Field(description="the open pledge (requested or active), if any")
    owed: Owed | None = Field(description="what is owed on the pledge while it is active")


class PledgeView(BaseModel):
    """A pledge loan as on chain now."""

    id: int
    receipt_id: WideInt
    borrower: str
    financier: str
    state: str = Field(description="requested, cancelled, declined, active, released or enforced")
    rate_bps: int
    principal: int = Field(description="fen still owed (the requested principal until funded)")
    interest_due: int
    due_date: int
    accrued_from: int | None
    owed: Owed | None = Field(None, description="present only while the pledge is active")
    advance_limit: int | None = Field(
        None, description="present only while requested: the most the financier may lend against the receipt now"
    )


class ReceiptItem(BaseModel):
    """A warehouse receipt as the index holds it (the table ``warehouse_receipts``)."""

    id: WideInt
    warehouse: str
    owner: str | None
    lot_key_hash: str
    goods_hash: str
    document_hash: str
    quantity: WideInt
    unit: str
    valuation: WideFen
    valued_at: int
    expiry: WideInt
    goods_status: str
    state: str
    frozen: bool
    pledge_id: WideInt | None
    oracle: str | None
    issued_at: int
    updated_block: int
    lot_number: str | None = Field(
        None, description="the lot's number as issued through this gateway (null when issued elsewhere)"
    )
    goods_description: str | None = Field(
        None, description="the goods as described at issue through this gateway (their keccak is goods_hash)"
    )


class PledgeItem(BaseModel):
    """A pledge as the index holds it (the table ``pledges``)."""

    id: WideInt
    receipt_id: WideInt
    borrower: str
    financier: str
    state: str
    rate_bps: int
    due_date: WideInt
    principal_requested: WideFen
    principal: WideFen
    interest_due: WideFen
    accrued_from: int | None
    funded_at: int | None
    closed_at: int | None
    margin_called_at: int | None
    requested_at: int
    registration_number: str | None = Field(
        None, description="the 中登网 initial registration number its financier recorded; null while unregistered"
    )
    registered_at: int | None = Field(None, description="the registration's date as recorded, Unix seconds (UTC)")
    registration_recorded_at: int | None = Field(None, description="when the registration was recorded on chain")
    updated_block: int


class MarginCallItem(BaseModel):
    """A margin call as the index holds it (the table ``pledge_margin_calls``)."""

    block_number: int
    log_index: int
    tx_hash: str
    block_timestamp: int
    pledge_id: WideInt
    receipt_id: WideInt
    borrower: str
    financier: str
    principal: WideFen = Field(description="the principal outstanding when the call was raised, fen")
    valuation: WideFen = Field(description="the receipt's new valuation that raised it, fen")
    maintenance_ratio_bps: int


# -- the regulator's reads ---------------------------------------------------------------------------------------


class EventItem(BaseModel):
    """One log of a ledger contract as the index decoded it (the table ``events``)."""

    block_number: int
    log_index: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    tx_index: int
    contract: str = Field(description="registry, token, receivables or receipts")
    address: str
    name: str
    args: dict[str, Any] = Field(description="the event's arguments by name; integers beyond 2^53 as strings")


class LargeMovement(BaseModel):
    """A deposit-token movement at or above the single threshold."""

    kind: Literal["deposit", "withdrawal", "transfer"]
    time: int = Field(description="unix seconds")
    date: str = Field(description="its UTC day")
    block_number: int
    log_index: int
    tx_hash: str
    sender: str | None
    recipient: str | None
    amount: WideFen
    bank_reference: str | None
    agent: str | None


class LargeFinancing(BaseModel):
    """A funded financing whose price is at or above the single threshold."""

    kind: Literal["financing"]
    time: int = Field(description="unix seconds (when funded)")
    date: str
    request_id: WideInt
    piece_id: WideInt
    holder: str
    financier: str
    face_amount: WideFen
    amount: WideFen = Field(description="the price paid")
    discount: WideFen | None
    fee: WideFen | None
    funded_piece_id: WideInt | None


class DailyTotal(BaseModel):
    """A participant's deposit-token amounts sent and received in one UTC day, at or above the daily threshold."""

    participant: str
    date: str
    sent: WideFen
    received: WideFen
    total: WideFen
    movements: int


class LargeTransactionReport(BaseModel):
    """The large-value transaction report (DOMAIN.md, "Regulatory reporting"), amounts in fen."""

    currency: str
    date_from: dt.date | None
    date_to: dt.date | None
    single_threshold: int
    daily_threshold: int
    single: list[Annotated[LargeMovement | LargeFinancing, Field(discriminator="kind")]]
    daily: list[DailyTotal]


class PaymentDisciplineLine(BaseModel):
    """One core firm's payment discipline at the chain's time: its confirmed obligations unpaid past their due
    date, its payments made after it, and how long it took to confirm what its suppliers registered."""

    core_firm: str = Field(description="the obligor: the invoices' buyer")
    name: str | None = Field(description="its name as onboarded, when this service onboarded it")
    confirmed: int = Field(description="obligations it confirmed, ever")
    outstanding: int = Field(description="confirmed obligations not paid in full (state confirmed or defaulted)")
    outstanding_amount: WideFen = Field(description="what they still owe (amount − repaid)")
    overdue: int = Field(description="of the outstanding obligations, those past their due date at the chain's time")
    overdue_amount: WideFen = Field(description="what the overdue obligations still owe")
    max_days_past_due: int = Field(description="days past the due date of the oldest overdue obligation (0: none)")
    average_days_past_due: int = Field(
        description="days past due of the overdue obligations, weighted by what each still owes; to the nearest "
        "day, halves up (0: none)"
    )
    defaulted: int = Field(description="outstanding obligations marked defaulted on chain")
    paid_late: int = Field(description="obligations paid in full whose last payment came after the due date")
    repaid_late_amount: WideFen = Field(description="every payment made after its obligation's due date, summed")
    registered: int = Field(description="invoices its suppliers registered with it as buyer")
    confirmed_late: int = Field(description="of those, confirmed more than `confirmation_days` after registration")
    confirmed_late_amount: WideFen
    confirmed_late_share_bps: int = Field(
        description="confirmed_late / registered in basis points, to the nearest, halves up (0: none registered)"
    )
    awaiting: int = Field(description="invoices registered and neither confirmed nor rejected yet")
    awaiting_late: int = Field(description="of those, registered more than `confirmation_days` before the chain's time")
    awaiting_late_amount: WideFen
    late_share_bps: int = Field(
        description="(confirmed_late + awaiting_late) / registered in basis points, to the nearest, halves up"
    )


class PaymentDisciplineReport(BaseModel):
    """The core firms' payment discipline (issue 18, item 5), amounts in fen, days of 86,400 seconds."""

    currency: str
    chain_time: int = Field(description="the timestamp of the chain's latest block, Unix seconds: the report's now")
    confirmation_days: int = Field(description="the delay after registration beyond which a confirmation is late")
    firms: list[PaymentDisciplineLine] = Field(description="largest overdue amount first, then by address")


class FreezeItem(BaseModel):
    """Something frozen now, with the latest freeze event of it (null fields when the index has none)."""

    id: str = Field(description="`<kind>:<target>`, as `DELETE /freezes/{freeze_id}` takes it")
    kind: Literal["participant", "piece", "receipt"]
    target: WideInt = Field(description="the participant's address, or the piece's or receipt's id")
    reason_hash: str | None
    frozen_by: str | None
    frozen_at: int | None
    block_number: int | None
    tx_hash: str | None


# -- daily statements --------------------------------------------------------------------------------------------


class StatementMovement(BaseModel):
    """One movement of an account in a statement, with the balance after it."""

    time: int = Field(description="unix seconds (the block's time)")
    block_number: int
    log_index: int
    tx_hash: str
    kind: str = Field(
        description="deposits: deposit, withdrawal, received or sent; receivables: issued, received, sent, "
        "redeemed or burnt"
    )
    counterparty: str | None = Field(
        description="the other party: the payer or payee, or (deposits, withdrawals) the settlement agent"
    )
    amount: Fen = Field(description="signed fen: positive in, negative out")
    balance: Fen = Field(description="the account's balance after this movement, fen")
    reference: str | None = Field(description="a deposit's or withdrawal's bank reference hash")
    piece_id: int | None = Field(description="receivables: the piece whose value moved")
    invoice_id: int | None = Field(description="receivables: the invoice (slot) of the piece")


class StatementAccount(BaseModel):
    """An account over the statement's day: `opening` + the sum of the movements' amounts = `closing`."""

    opening: Fen
    movements: list[StatementMovement]
    closing: Fen


class Statement(BaseModel):
    """A participant's daily statement, amounts in fen (CNY)."""

    participant: str
    date: dt.date = Field(description="the calendar day in `time_zone`")
    time_zone: str = Field(description="the IANA time zone of the day (the setting `SCF_REPORT_TIME_ZONE`)")
    currency: str
    from_time: int = Field(description="the day's first second, unix seconds (inclusive)")
    to_time: int = Field(description="the next day's first second, unix seconds (exclusive)")
    indexed_block: int | None = Field(
        description="the last block the index had read: movements of later blocks are not in the statement yet"
    )
    deposits: StatementAccount = Field(description="the deposit token")
    receivables: StatementAccount = Field(description="the value of the receivable pieces held")


class StatementLine(BaseModel):
    """A row of a statement as a file (CSV, XLSX): each account's opening, its movements, its closing."""

    account: Literal["deposits", "receivables"]
    kind: str = Field(description="opening, closing, or a movement's kind")
    time: int
    block_number: int | None = None
    log_index: int | None = None
    tx_hash: str | None = None
    counterparty: str | None = None
    amount: Fen | None = Field(
        None, description="a movement's signed fen; on the closing row, the sum of the movements"
    )
    balance: Fen
    reference: str | None = None
    piece_id: int | None = None
    invoice_id: int | None = None


# -- the service's audit log --------------------------------------------------------------------------------------


class AuditRecordView(BaseModel):
    """One API action as the audit log recorded it, with its hash and its predecessor's."""

    sequence: int
    recorded_at: str = Field(description="UTC, to the microsecond (`YYYY-MM-DDTHH:MM:SS.ffffffZ`)")
    actor: str | None
    method: str
    route: str
    path: str
    operation_id: str | None
    body_sha256: str | None
    status_code: int
    outcome: str
    replayed: bool
    request_id: str | None
    prev_hash: str
    hash: str


class AuditLogPage(BaseModel):
    """Records of the audit log after a sequence, in order."""

    items: list[AuditRecordView]
    after: int
    size: int


class AuditHeadView(BaseModel):
    sequence: int = Field(description="how many records the log holds")
    hash: str = Field(description="the last record's hash")


class AuditAnchorView(BaseModel):
    sequence: int
    hash: str
    block_number: int


class AuditVerificationView(BaseModel):
    """What verifying the audit log found; `valid` is false from the first broken record or anchor on."""

    valid: bool
    records: int = Field(description="records checked")
    head: AuditHeadView
    anchors_checked: int
    latest_anchor: AuditAnchorView | None
    unanchored_records: int = Field(description="records after the latest anchor: they rest on the hash chain alone")
    first_invalid: int | None = Field(description="the sequence of the first record that does not verify")
    reason: str | None


# -- the system --------------------------------------------------------------------------------------------------


class Health(BaseModel):
    """The service's health: 200 with `status` ok, or 503 with `status` degraded and the reason in `detail`."""

    chain_id: int
    contracts: dict[str, str] = Field(description="the ledger's contracts by name: their addresses")
    status: Literal["ok", "degraded"]
    chain: Literal["reachable", "unreachable"]
    head: int | None = Field(None, description="the chain's latest block (when reachable)")
    indexed: int | None = Field(None, description="the last block in the index (when reachable)")
    lag: int | None = Field(None, description="blocks the index trails the chain by (when reachable)")
    detail: str | None = Field(None, description="why the chain is unreachable (when degraded)")
    in_flight: int = Field(description="ledger operations signed and not yet final (by this process)")
    pipeline_owner: bool = Field(
        description="whether this process signs: always with SQLite; where several processes share a PostgreSQL "
        "database, only the one holding the pipeline's lease (the others queue their submissions for it)"
    )
    process: int = Field(description="this process's id (several may serve one address)")
    handed_off: int = Field(description="submissions this process queued for the pipeline's owner (while on standby)")
    indexer_process: int | None = Field(
        None,
        description="the id of the indexer's own process, where it runs in one (SCF_INDEXER=process) started by this "
        "process; null where the indexer is a thread, or runs in another process of the service",
    )
    indexer_restarts: int = Field(0, description="how often this process started its indexer's process again")


class Rules(BaseModel):
    """The ledger's rule parameters as the contracts hold them now, and the chain's time they apply at."""

    chain_time: int = Field(description="the timestamp of the chain's latest block, Unix seconds (UTC)")
    max_tenor: int = Field(description="the longest a receivable may run from confirmation to due date, seconds")
    grace_period: int = Field(description="seconds after the due date before an unpaid obligation may be defaulted")
    review_tenor: int = Field(
        description="the longest a receivable may run from confirmation to due date and be financed without the"
        " financier's credit review (银发〔2025〕77号: more than six months needs one), seconds"
    )
    maintenance_ratio_bps: int = Field(description="the loan-to-value above which a pledge is called for margin, bp")
    default_advance_rate_bps: int = Field(description="the share of a receipt's valuation a financier may lend, bp")


# -- answers of the service's own writes (not ledger operations) -------------------------------------------------


class StoredDocument(BaseModel):
    """A document stored (201) or found stored already (200), by its content's hash."""

    sha256: str
    size: int = Field(description="bytes")


class AuditAnchorResult(BaseModel):
    """An anchor of the audit log's head on chain; `anchored` false when the head was anchored already (then
    without `operation_id` and `block_number`)."""

    anchored: bool
    sequence: int
    hash: str
    operation_id: str | None = Field(None, description="present only when anchored now")
    block_number: int | None = Field(None, description="present only when anchored now")


# -- the event feed and webhook subscriptions --------------------------------------------------------------------


class FeedEventView(BaseModel):
    """One event of the feed (``GET /events``, the `data:` of ``GET /events/stream``, a webhook's body)."""

    seq: int = Field(description="the event's place in the feed: the cursor to send back as `after`")
    id: str = Field(description="`<block_hash>:<log_index>`, the same in an event's `added` and `retracted` rows")
    action: Literal["added", "retracted"] = Field(
        description="`retracted`: a reorganisation took the event off the chain"
    )
    kind: str = Field(description="the business kind, e.g. `invoice.confirmed`, `piece.transferred`")
    block_number: int
    log_index: int
    block_time: int = Field(description="the block's timestamp, seconds since the epoch")
    tx_hash: str
    contract: str = Field(description="registry, token, receivables or receipts")
    event: str = Field(description="the contract's event name")
    fields: dict[str, Any] = Field(description="the event's arguments in snake_case; amounts in integer fen")
    parties: list[str] = Field(description="the participants the event names (who may see it)")


class FeedPage(BaseModel):
    """A page of the event feed."""

    items: list[FeedEventView]
    next: int = Field(description="the cursor to send back as `after`; it stays put while no event follows")
    limit: int


class SubscriptionView(BaseModel):
    """A webhook subscription."""

    id: int
    owner: str
    url: str
    kinds: list[str] = Field(description="the kinds delivered (empty: every kind the owner may see)")
    counterparty: str | None = Field(description="only events naming this participant (null: any)")
    cursor: int = Field(description="the sequence number of the last event delivered")
    status: Literal["active", "paused", "deleted"]
    failures: int = Field(description="failed attempts in a row (0 after a success)")
    paused_reason: str | None
    created_at: dt.datetime


class NewSubscriptionView(SubscriptionView):
    """A subscription just created, with its signing secret (shown this once)."""

    secret: str = Field(description="the key of the `SCF-Signature` HMAC of every delivery")


class SubscriptionList(BaseModel):
    """The caller's subscriptions."""

    items: list[SubscriptionView]


class DeliveryView(BaseModel):
    """One attempt to deliver one event to a subscription."""

    id: int
    seq: int = Field(description="the event's sequence number in the feed")
    event_id: str
    attempt: int = Field(description="1 for the first try of this event, 2 for the next, …")
    at: dt.datetime
    ok: bool = Field(description="the receiver answered 2xx")
    status_code: int | None = Field(description="the receiver's HTTP status (null: no answer)")
    error: str | None
    duration_ms: int


class DeliveryPage(BaseModel):
    """A page of a subscription's delivery log."""

    items: list[DeliveryView]
    next: int = Field(description="the delivery id to send back as `after`")
