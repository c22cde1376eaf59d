"""Projections of the deposit token (``token``): every transfer, with the bank reference of issues and redemptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.index.decoding import ChainEvent
from ledger.index.projections.support import ProjectionTable, address_or_none, registrar

if TYPE_CHECKING:
    from ledger.index.unit_of_work import Projector

EVENT_PROJECTIONS: ProjectionTable = {}
_projection = registrar(EVENT_PROJECTIONS)


# -- deposit token ------------------------------------------------------------------------------------------


@_projection("token", "Transfer")
def _deposit_transferred(p: Projector, e: ChainEvent) -> None:
    p.deposit_transfers.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "sender": address_or_none(e.args["from"]),
            "recipient": address_or_none(e.args["to"]),
            "amount": e.args["value"],
            "bank_reference": None,
            "agent": None,
        }
    )


@_projection("token", "DepositMinted", "DepositBurned")
def _deposit_settled(p: Projector, e: ChainEvent) -> None:
    """Issues and redemptions carry the bank's reference; the ERC-20 ``Transfer`` just before says the rest."""
    key = (e.block_number, e.log_index - 1)
    transfer = p.deposit_transfers.require(key, e)
    transfer["bank_reference"] = e.args["bankReference"]
    transfer["agent"] = e.args["agent"]
    p.deposit_transfers.changed(key)
