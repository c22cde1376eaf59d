"""Decoding the ledger contracts' logs straight from their hex, with the ledger's one ABI codec.

:class:`EventDecoder` builds a ``(contract address, topic0) → EventSpec`` map once from the events of
:class:`ledger.abi.Codec`, whose JSON form (:meth:`ledger.abi.EventSpec.decode_json`) reads fixed-size
arguments word by word and anything else through ``eth_abi``: many times faster than web3's contract event
processing. A decoded log is a :class:`ChainEvent`, which is what the raw event log stores and the
projections are computed from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from ledger.abi import Codec, EventSpec
from ledger.index.source import RawLog

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(slots=True)
class ChainEvent:
    """A decoded event with its position on the chain: what projections are computed from."""

    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    tx_index: int
    log_index: int
    contract: str
    address: str
    name: str
    args: dict[str, Any]

    def as_row(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "log_index": self.log_index,
            "block_hash": self.block_hash,
            "block_timestamp": self.block_timestamp,
            "tx_hash": self.tx_hash,
            "tx_index": self.tx_index,
            "contract": self.contract,
            "address": self.address,
            "name": self.name,
            "args": self.args,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ChainEvent:
        return cls(
            block_number=row["block_number"],
            block_hash=row["block_hash"],
            block_timestamp=row["block_timestamp"],
            tx_hash=row["tx_hash"],
            tx_index=row["tx_index"],
            log_index=row["log_index"],
            contract=row["contract"],
            address=row["address"],
            name=row["name"],
            args=dict(row["args"]),
        )


class EventDecoder:
    """Decodes the logs of the ledger's contracts: ``(address, topic0) → EventSpec``, built once."""

    def __init__(self, contracts: Mapping[str, str], abis: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        codec = Codec({name: abis[name] for name in contracts})
        self._specs: dict[tuple[str, str], EventSpec] = {}
        self._names: dict[str, tuple[str, str]] = {}
        for name, address in contracts.items():
            checksummed = to_checksum_address(address)
            self._names[checksummed.lower()] = (name, checksummed)
            for spec in codec.events(name):
                self._specs[(checksummed.lower(), "0x" + spec.topic.hex())] = spec

    @property
    def addresses(self) -> list[str]:
        return [checksummed for _, checksummed in self._names.values()]

    def decode(self, log: RawLog, timestamp: int) -> ChainEvent | None:
        """The event of ``log``, or None for a log no ABI describes (an anonymous or unknown event)."""
        if not log.topics:
            return None
        spec = self._specs.get((log.address, log.topics[0]))
        if spec is None:
            return None
        return ChainEvent(
            block_number=log.block_number,
            block_hash=log.block_hash,
            block_timestamp=timestamp,
            tx_hash=log.tx_hash,
            tx_index=log.tx_index,
            log_index=log.log_index,
            contract=spec.contract,
            address=self._names[log.address][1],
            name=spec.name,
            args=spec.decode_json(log.topics, log.data),
        )
