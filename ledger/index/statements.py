"""A participant's daily statement from the index: what it held at the start of a period, each movement in it,
what it held at the end, for the deposit token (fen) and for receivables (the value of the pieces it holds, fen).

Both accounts are computed from the chain's events as the index holds them, in the chain's order (block, log
index), so ``opening + sum(movements) == closing`` holds by construction and the closing balance is what the
chain says after the period's last event:

- deposits: the token's transfers (:class:`~ledger.index.models.DepositTransferRow`); an issue (mint) is a
  ``deposit``, a redemption (burn) a ``withdrawal``, a transfer ``received`` or ``sent``;
- receivables: the pieces' ERC-721 ``Transfer`` (a piece changing hands moves its whole value) and ERC-3525
  ``TransferValue`` (value into a new piece when an invoice is confirmed: ``issued``; between pieces of
  different holders, as in a split transfer or a financing: ``received``/``sent``; out of a piece when it is
  redeemed: ``redeemed``). Value moved between two pieces of the same holder is no movement of the holder.

The receivables account replays every piece event up to the period's end (a piece's value when it changes
hands depends on its whole history); its cost grows with the ledger's history of pieces, read in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.index.decoding import ZERO_ADDRESS
from ledger.index.models import DepositTransferRow, EventRow, IndexCheckpointRow, PieceRow

_BATCH = 1000


@dataclass(frozen=True)
class Movement:
    """One movement of an account: ``amount`` signed (in: positive, out: negative), fen."""

    time: int
    block_number: int
    log_index: int
    tx_hash: str
    kind: str
    counterparty: str | None
    amount: int
    reference: str | None = None
    """A deposit's or withdrawal's bank reference hash."""
    piece_id: int | None = None
    invoice_id: int | None = None


@dataclass
class Account:
    """An account over a period ``[start, end)``: ``opening + sum(movements) == closing``."""

    opening: int = 0
    movements: list[Movement] = field(default_factory=list)

    @property
    def closing(self) -> int:
        return self.opening + sum(m.amount for m in self.movements)

    def add(self, movement: Movement, start: int) -> None:
        if movement.time < start:
            self.opening += movement.amount
        else:
            self.movements.append(movement)


def indexed_block(session: Session) -> int | None:
    """The last block the index holds (None before the first sync): a statement reads the events up to it,
    so that what it reads in several queries is one state of the index."""
    return session.scalar(select(IndexCheckpointRow.block_number))


def deposit_account(session: Session, participant: str, start: int, end: int, through_block: int) -> Account:
    """The participant's deposit-token account over ``[start, end)`` (unix seconds), from the events of blocks up
    to ``through_block``."""
    account = Account()
    query = (
        select(DepositTransferRow)
        .where(
            or_(DepositTransferRow.sender == participant, DepositTransferRow.recipient == participant),
            DepositTransferRow.block_timestamp < end,
            DepositTransferRow.block_number <= through_block,
        )
        .order_by(DepositTransferRow.block_number, DepositTransferRow.log_index)
        .execution_options(yield_per=_BATCH)
    )
    for row in session.scalars(query):
        amount = int(row.amount)
        where = (row.block_timestamp, row.block_number, row.log_index, row.tx_hash)
        if row.recipient == participant:
            kind = "deposit" if row.sender is None else "received"
            counterparty = row.agent if row.sender is None else row.sender
            account.add(Movement(*where, kind, counterparty, amount, row.bank_reference), start)
        if row.sender == participant:
            kind = "withdrawal" if row.recipient is None else "sent"
            counterparty = row.agent if row.recipient is None else row.recipient
            account.add(Movement(*where, kind, counterparty, -amount, row.bank_reference), start)
    return account


def _piece_events(session: Session, end: int, through_block: int) -> Iterator[EventRow]:
    query = (
        select(EventRow)
        .where(
            EventRow.contract == "receivables",
            EventRow.name.in_(("Transfer", "TransferValue")),
            EventRow.block_timestamp < end,
            EventRow.block_number <= through_block,
        )
        .order_by(EventRow.block_number, EventRow.log_index)
        .execution_options(yield_per=_BATCH)
    )
    yield from session.scalars(query)


def receivables_account(session: Session, participant: str, start: int, end: int, through_block: int) -> Account:
    """The participant's receivables account over ``[start, end)``: the value of the pieces it holds, fen, from
    the events of blocks up to ``through_block``."""
    account = Account()
    owners: dict[int, str | None] = {}
    values: dict[int, int] = {}

    def book(event: EventRow, holder: str | None, kind: str, counterparty: str | None, amount: int, piece: int) -> None:
        if holder == participant and amount != 0:
            where = (event.block_timestamp, event.block_number, event.log_index, event.tx_hash)
            account.add(Movement(*where, kind, counterparty, amount, piece_id=piece), start)

    for event in _piece_events(session, end, through_block):
        args = event.args
        if event.name == "Transfer":
            piece, sender, recipient = int(args["tokenId"]), args["from"], args["to"]
            value = values.get(piece, 0)
            if sender == ZERO_ADDRESS:
                owners[piece], values[piece] = recipient, 0
            elif recipient == ZERO_ADDRESS:
                owners[piece], values[piece] = None, 0
                book(event, sender, "burnt", None, -value, piece)
            else:
                owners[piece] = recipient
                book(event, sender, "sent", recipient, -value, piece)
                book(event, recipient, "received", sender, value, piece)
            continue
        source, target, value = int(args["_fromTokenId"]), int(args["_toTokenId"]), int(args["_value"])
        if source:
            values[source] = values.get(source, 0) - value
        if target:
            values[target] = values.get(target, 0) + value
        if not source:
            book(event, owners.get(target), "issued", None, value, target)
        elif not target:
            book(event, owners.get(source), "redeemed", None, -value, source)
        elif owners.get(source) != owners.get(target):
            book(event, owners.get(source), "sent", owners.get(target), -value, source)
            book(event, owners.get(target), "received", owners.get(source), value, target)
    pieces = {m.piece_id for m in account.movements if m.piece_id is not None}
    if pieces:
        found = session.execute(select(PieceRow.id, PieceRow.slot_id).where(PieceRow.id.in_(pieces)))
        slots = {int(piece): int(slot) for piece, slot in found}
        account.movements = [
            m if m.piece_id is None else replace(m, invoice_id=slots[m.piece_id]) for m in account.movements
        ]
    return account
