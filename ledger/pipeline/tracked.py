"""What the pipeline tracks: the public :class:`Operation` snapshot, its working copy of each journaled
transaction (``_Tracked``), and the records of how a transaction finished (``_Outcome``) or was superseded
after running out of gas (``_Supersession``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Row

from ledger.journal import JournalTransaction, TransactionKind, TransactionStatus, utc_now

OUT_OF_GAS: Final = "OutOfGas"
"""``error_name`` of a transaction that ran out of gas (never a contract's error)."""

# ---------------------------------------------------------------------------------------------------------------
# The public view of an operation


@dataclass(frozen=True)
class Operation:
    """An operation as the pipeline last saw it (a snapshot; ask again for news)."""

    operation_id: str
    sender: str
    nonce: int
    tx_hash: str
    status: TransactionStatus
    to: str | None
    selector: str | None
    gas_limit: int
    kind: TransactionKind = TransactionKind.OPERATION
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def confirmed(self) -> bool:
        return self.status is TransactionStatus.CONFIRMED


@dataclass(eq=False)
class _Tracked:
    """The pipeline's working copy of one journaled transaction."""

    operation_id: str
    kind: TransactionKind
    sender: str
    nonce: int
    tx_hash: str
    raw_tx: bytes
    to: str | None
    selector: str | None
    gas_limit: int
    status: TransactionStatus = TransactionStatus.PENDING
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: dict[str, Any] | None = None
    last_seen: float = 0.0
    """Monotonic time of the last send attempt or of the last time the node was seen to know it."""
    check_now: bool = False
    """Look it up at the next reconciliation whatever ``last_seen`` says."""
    nonce_taken_rounds: int = 0
    """Consecutive look-ups that found the hash unknown and the nonce used: two, ``REPLACED_AFTER`` seconds
    apart at least, make it ``replaced``."""
    nonce_taken_since: float | None = None
    """Monotonic time of the first of those look-ups."""
    lost_block: int | None = None
    """The block it was mined in before the chain went back under it: lost transactions are sent again in the
    order of those blocks, so that one built on another's result (a confirmation of a registered invoice) does
    not reach the node before it."""
    finalizing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: asyncio.Future[None] | None = None
    gas_retries: int = 0
    """How many earlier attempts of this operation ran out of gas."""
    supersedes: _Supersession | None = None
    """The attempt that ran out of gas, which the journal writer closes when it journals this one."""
    superseded_by: _Tracked | None = None
    """The attempt that took over this operation after this one ran out of gas: waiters follow it."""

    @property
    def confirmed(self) -> bool:
        return self.status is TransactionStatus.CONFIRMED

    def snapshot(self) -> Operation:
        return Operation(
            operation_id=self.operation_id,
            sender=self.sender,
            nonce=self.nonce,
            tx_hash=self.tx_hash,
            status=self.status,
            to=self.to,
            selector=self.selector,
            gas_limit=self.gas_limit,
            kind=self.kind,
            block_number=self.block_number,
            block_hash=self.block_hash,
            gas_used=self.gas_used,
            error_name=self.error_name,
            error_args=self.error_args,
        )

    def row(self) -> dict[str, Any]:
        now = utc_now()
        return {
            "operation_id": self.operation_id,
            "kind": self.kind,
            "sender": self.sender,
            "nonce": self.nonce,
            "tx_hash": self.tx_hash,
            "raw_tx": self.raw_tx,
            "to": self.to,
            "selector": self.selector,
            "gas_limit": self.gas_limit,
            "status": self.status,
            "superseded": False,
            "created_at": now,
            "updated_at": now,
        }

    @classmethod
    def from_row(cls, row: JournalTransaction | Row[Any]) -> _Tracked:
        """From the journal's row: an ORM object or a Core row of the table (the same attributes)."""
        return cls(
            operation_id=row.operation_id,
            kind=row.kind,
            sender=row.sender,
            nonce=row.nonce,
            tx_hash=row.tx_hash,
            raw_tx=row.raw_tx,
            to=row.to,
            selector=row.selector,
            gas_limit=row.gas_limit,
            status=row.status,
            block_number=row.block_number,
            block_hash=row.block_hash,
            gas_used=row.gas_used,
            error_name=row.error_name,
            error_args=row.error_args,
        )


@dataclass(frozen=True)
class _Supersession:
    """An attempt that ran out of gas, renamed in the journal in the transaction that journals its successor."""

    tracked: _Tracked
    renamed: str
    """``<operation id>~oog<n>``: the operation id stays with the new attempt."""
    block_number: int
    block_hash: str
    gas_used: int


def _attempt_id(operation_id: str, retry: int) -> str:
    return f"{operation_id}~oog{retry}"


def _is_spent_attempt(operation_id: str) -> bool:
    return "~oog" in operation_id


@dataclass(frozen=True)
class _Outcome:
    """How a transaction finished."""

    tracked: _Tracked
    status: TransactionStatus
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: dict[str, Any] | None = None
    logs: Sequence[Mapping[str, Any]] | None = None
    """A confirmed transaction's logs, as the node gave them (JSON-RPC), kept for :meth:`Pipeline.logs_of`."""
