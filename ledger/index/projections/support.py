"""What every projection module uses: the type of a projection, the decorator that registers one in its
module's table, and the readings of event arguments shared by several contracts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ledger.index.decoding import ZERO_ADDRESS, ChainEvent

if TYPE_CHECKING:
    from ledger.index.unit_of_work import Projector

Projection = Callable[["Projector", ChainEvent], None]
ProjectionTable = dict[tuple[str, str], Projection]
"""``(contract, event) → the function that applies that event to the projections``."""


def registrar(table: ProjectionTable) -> Callable[..., Callable[[Projection], Projection]]:
    """The decorator ``@projection(contract, *events)`` of one module, registering into ``table``."""

    def projection(contract: str, *events: str) -> Callable[[Projection], Projection]:
        """Registers the function that applies ``events`` of ``contract`` to the projections."""

        def register(function: Projection) -> Projection:
            for event in events:
                table[(contract, event)] = function
            return function

        return register

    return projection


def address_or_none(address: str) -> str | None:
    return None if address == ZERO_ADDRESS else address


def ascii_text(hex_bytes: str) -> str:
    """A left-aligned, zero-padded ASCII ``bytesN`` (``0x434e59`` → ``CNY``)."""
    return bytes.fromhex(hex_bytes[2:]).rstrip(b"\0").decode("ascii", errors="replace")
