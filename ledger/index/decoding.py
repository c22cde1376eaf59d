"""Decoding the ledger contracts' logs straight from their hex, with the ABIs.

:class:`EventDecoder` builds a ``(contract address, topic0) → EventSpec`` map once; fixed-size arguments are
read word by word, anything else goes through ``eth_abi``: many times faster than web3's contract event
processing. A decoded log is a :class:`ChainEvent`, which is what the raw event log stores and the
projections are computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ledger.errors import abi_type
from ledger.index.source import RawLog

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_ZERO_WORD = "0" * 64


@lru_cache(maxsize=1 << 16)
def _address(word_or_address: str) -> str:
    """EIP-55 form of an address given as a 32-byte word or a 20-byte hex string (cached: the cast repeats)."""
    return to_checksum_address("0x" + word_or_address[-40:])


def _word_reader(kind: str) -> Callable[[str], Any] | None:
    """A reader of one 64-hex-digit ABI word of static type ``kind``, or None when ``kind`` is not a
    single-word type."""
    if kind == "address":
        return _address
    if kind == "bool":
        return lambda word: word != _ZERO_WORD
    if kind.startswith("uint"):
        return lambda word: int(word, 16)
    if kind.startswith("int"):
        return _signed
    if kind.startswith("bytes") and kind != "bytes" and "[" not in kind:
        size = int(kind[5:])
        return lambda word: "0x" + word[: 2 * size]
    return None


def _signed(word: str) -> int:
    """A two's-complement ``intN`` (sign-extended to 256 bits by the ABI encoding)."""
    value = int(word, 16)
    return value - (1 << 256) if value >> 255 else value


def _to_json(value: Any) -> Any:
    """An ``eth_abi`` value as JSON: bytes as hex, addresses checksummed, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return _address(value)
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    return value


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event of one contract."""

    contract: str
    name: str
    indexed: tuple[tuple[str, Callable[[str], Any]], ...]
    """Name and word reader of each indexed argument (a hashed dynamic one is kept as its topic)."""
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    data_readers: tuple[Callable[[str], Any], ...] | None
    """Word readers of the data arguments when all are single words; None: decode with ``eth_abi``."""

    @classmethod
    def from_abi(cls, contract: str, entry: Mapping[str, Any]) -> EventSpec:
        indexed: list[tuple[str, Callable[[str], Any]]] = []
        data_names: list[str] = []
        data_types: list[str] = []
        for position, item in enumerate(entry["inputs"]):
            name = item["name"] or f"arg{position}"
            kind = abi_type(item)
            if item.get("indexed"):
                indexed.append((name, _word_reader(kind) or (lambda word: "0x" + word)))
            else:
                data_names.append(name)
                data_types.append(kind)
        readers = [_word_reader(kind) for kind in data_types]
        return cls(
            contract=contract,
            name=str(entry["name"]),
            indexed=tuple(indexed),
            data_names=tuple(data_names),
            data_types=tuple(data_types),
            data_readers=None if any(r is None for r in readers) else tuple(r for r in readers if r is not None),
        )

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, read), topic in zip(self.indexed, topics[1:], strict=True):
            args[name] = read(topic[2:])
        if self.data_readers is not None:
            body = data[2:]
            for position, (name, read) in enumerate(zip(self.data_names, self.data_readers, strict=True)):
                args[name] = read(body[64 * position : 64 * position + 64])
        elif self.data_names:
            values = abi_decode(list(self.data_types), bytes.fromhex(data[2:]))
            for name, value in zip(self.data_names, values, strict=True):
                args[name] = _to_json(value)
        return args


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
        self._specs: dict[tuple[str, str], EventSpec] = {}
        self._names: dict[str, tuple[str, str]] = {}
        for name, address in contracts.items():
            checksummed = to_checksum_address(address)
            self._names[checksummed.lower()] = (name, checksummed)
            for entry in abis[name]:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                signature = f"{entry['name']}({','.join(abi_type(item) for item in entry['inputs'])})"
                topic = "0x" + keccak(text=signature).hex()
                self._specs[(checksummed.lower(), topic)] = EventSpec.from_abi(name, entry)

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
            args=spec.decode(log.topics, log.data),
        )
