"""One ABI codec for the ledger's contracts: calls encoded, results, events and custom errors decoded.

Built once from the compiled ABIs (``{contract key: abi}``), and used by everything that speaks to the
contracts: the client (calls, view results, the events of an operation), the indexer (events, in the JSON
form it stores), the sandbox and the error decoder. Encoding and decoding go straight through ``eth_abi``
with each function's, event's and error's types worked out once: web3's contract objects re-validate the
whole ABI (a keccak per entry) on every call, which is most of a read's cost.

Two forms of decoded values:

- **native** (:meth:`EventSpec.decode`, :meth:`FunctionSpec.decode_result`): what ``eth_abi`` gives, with
  addresses checksummed — ints, bools, ``bytes``, tuples. What the client and tests compare against.
- **JSON** (:meth:`EventSpec.decode_json`): from the hex strings of a JSON-RPC log, with single-word
  arguments read straight from the hex (no ``eth_abi`` round trip: the indexer decodes every log of the
  chain), ``bytes`` as ``0x`` hex strings and tuples as lists. What the index stores.

An indexed argument of a dynamic type (string, bytes, array, tuple) is only its keccak hash in the topic:
both forms give that topic (bytes, or hex).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

ABI = Sequence[Mapping[str, Any]]

_ZERO_WORD = "0" * 64


def abi_type(entry: Mapping[str, Any]) -> str:
    """The canonical ABI type of an ABI input or output, tuples expanded (``(address,uint96)[]``)."""
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in entry["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@lru_cache(maxsize=1 << 16)
def checksum_address(value: str) -> str:
    """``to_checksum_address``, remembered: the same few addresses (the contracts, the participants) come back in
    every log and result, and each checksum is a keccak."""
    return str(to_checksum_address(value))


def checksummed(value: Any) -> Any:
    """``value`` with every address in it checksummed (tuples and lists walked)."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return checksum_address(value)
    if isinstance(value, tuple | list):
        return type(value)(checksummed(v) for v in value)
    return value


def to_json(value: Any) -> Any:
    """A native value as JSON: bytes as ``0x`` hex, addresses checksummed, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return checksum_address(value)
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value


def is_dynamic(kind: str) -> bool:
    """Whether values of ``kind`` are hashed when indexed in an event's topic."""
    return kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")


def _names(inputs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(str(item.get("name") or f"arg{position}") for position, item in enumerate(inputs))


# -- functions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One function: its selector, argument names and types, result types."""

    contract: str
    name: str
    argument_names: tuple[str, ...]
    argument_types: tuple[str, ...]
    output_types: tuple[str, ...]
    state_mutability: str

    @cached_property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.argument_types)})"

    @cached_property
    def selector(self) -> bytes:
        """Remembered: every call encodes it, and each is a keccak (about 1 % of the service's CPU under load)."""
        return function_signature_to_4byte_selector(self.signature)

    @property
    def changes_state(self) -> bool:
        return self.state_mutability not in ("view", "pure")

    def encode_call(self, args: Sequence[Any]) -> bytes:
        """The call data: selector, then the arguments ABI-encoded."""
        if len(args) != len(self.argument_types):
            raise TypeError(f"{self.signature} takes {len(self.argument_types)} arguments, got {len(args)}")
        return self.selector + abi_encode(list(self.argument_types), list(args))

    def decode_result(self, data: bytes) -> tuple[Any, ...]:
        """The outputs of a call (native form), always as a tuple."""
        return tuple(checksummed(v) for v in abi_decode(list(self.output_types), bytes(data)))

    @classmethod
    def from_abi(cls, contract: str, entry: Mapping[str, Any]) -> FunctionSpec:
        inputs = entry.get("inputs", [])
        return cls(
            contract=contract,
            name=str(entry["name"]),
            argument_names=_names(inputs),
            argument_types=tuple(abi_type(i) for i in inputs),
            output_types=tuple(abi_type(o) for o in entry.get("outputs", [])),
            state_mutability=str(entry.get("stateMutability", "nonpayable")),
        )


class UnknownFunction(LookupError):
    """No such function in the contract's ABI, or a name that several overloads share."""


# -- events -------------------------------------------------------------------------------------------------


def _word_reader(kind: str) -> Callable[[str], Any] | None:
    """A reader of one 64-hex-digit ABI word of static type ``kind`` into its JSON form, or None when ``kind``
    is not a single-word type."""
    if kind == "address":
        return _checksummed_word
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


@lru_cache(maxsize=1 << 16)
def _checksummed_word(word: str) -> str:
    """EIP-55 form of the address in a 64-hex-digit word, cached: the same parties recur in log after log, and
    each checksum costs a keccak (uncached, the indexer decodes address-bearing logs about 30 times slower)."""
    return to_checksum_address("0x" + word[24:])


def _native_word_reader(kind: str) -> Callable[[bytes], Any] | None:
    """A reader of one 32-byte ABI word of static type ``kind`` into the value ``eth_abi`` decodes (addresses
    checksummed, as :meth:`EventSpec.decode` gives them), or None when ``kind`` is not a single-word type."""
    if kind == "address":
        return lambda word: checksum_address("0x" + word[12:].hex())
    if kind == "bool":
        return lambda word: word[-1] != 0
    if kind.startswith("uint"):
        return lambda word: int.from_bytes(word, "big")
    if kind.startswith("int"):
        return lambda word: int.from_bytes(word, "big", signed=True)
    if kind.startswith("bytes") and kind != "bytes" and "[" not in kind:
        size = int(kind[5:])
        return lambda word: word[:size]
    return None


def _same(word: bytes) -> bytes:
    return word  # an indexed dynamic argument: its topic is its hash


def _native_readers(indexed: Sequence[str], plain: Sequence[str]) -> tuple[Callable[[bytes], Any], ...] | None:
    readers: list[Callable[[bytes], Any] | None] = [
        _same if is_dynamic(kind) else _native_word_reader(kind) for kind in indexed
    ]
    readers += [_native_word_reader(kind) for kind in plain]
    return None if any(r is None for r in readers) else tuple(r for r in readers if r is not None)


def _signed(word: str) -> int:
    """A two's-complement ``intN`` (sign-extended to 256 bits by the ABI encoding)."""
    value = int(word, 16)
    return value - (1 << 256) if value >> 255 else value


def _topic_hex(word: str) -> str:
    return "0x" + word


@dataclass(frozen=True)
class EventSpec:
    """One event of one contract: its topic and how to decode its logs."""

    contract: str
    name: str
    topic: bytes
    order: tuple[str, ...]
    """Every argument's name, in declaration order."""
    indexed: tuple[tuple[str, str], ...]
    """(name, type) of each indexed argument, in topic order."""
    plain: tuple[tuple[str, str], ...]
    """(name, type) of each argument in the data."""
    _indexed_readers: tuple[Callable[[str], Any], ...]
    _data_readers: tuple[Callable[[str], Any], ...] | None
    """Word readers of the data arguments when all are single words; None: decode with ``eth_abi``."""
    _native_readers: tuple[Callable[[bytes], Any], ...] | None = None
    """Native word readers of every argument (indexed ones, then the data's) when all are single words; None:
    decode with ``eth_abi`` (:meth:`decode`)."""

    @classmethod
    def from_abi(cls, contract: str, entry: Mapping[str, Any]) -> EventSpec:
        inputs = entry.get("inputs", [])
        names = _names(inputs)
        types = [abi_type(i) for i in inputs]
        indexed = tuple((n, t) for n, t, i in zip(names, types, inputs, strict=True) if i.get("indexed"))
        plain = tuple((n, t) for n, t, i in zip(names, types, inputs, strict=True) if not i.get("indexed"))
        readers = [_word_reader(t) for _, t in plain]
        return cls(
            contract=contract,
            name=str(entry["name"]),
            topic=keccak(text=f"{entry['name']}({','.join(types)})"),
            order=names,
            indexed=indexed,
            plain=plain,
            _indexed_readers=tuple(
                _topic_hex if is_dynamic(t) else (_word_reader(t) or _topic_hex) for _, t in indexed
            ),
            _data_readers=None if any(r is None for r in readers) else tuple(r for r in readers if r is not None),
            _native_readers=_native_readers([t for _, t in indexed], [t for _, t in plain]),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """The arguments (native form) of a log with ``topics`` (topic 0 first) and ``data``, in order."""
        readers = self._native_readers
        if readers is not None and len(topics) == len(self.indexed) + 1 and len(data) >= 32 * len(self.plain):
            # every argument one word: read the words (what eth_abi gives, without its decoder objects)
            words = [bytes(topic) for topic in topics[1:]]
            words += [bytes(data[32 * i : 32 * i + 32]) for i in range(len(self.plain))]
            names = [name for name, _ in self.indexed] + [name for name, _ in self.plain]
            read = {name: reader(word) for name, reader, word in zip(names, readers, words, strict=True)}
            return {name: read[name] for name in self.order}
        values: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, topics[1:], strict=True):
            values[name] = bytes(topic) if is_dynamic(kind) else abi_decode([kind], bytes(topic))[0]
        if self.plain:
            decoded = abi_decode([t for _, t in self.plain], bytes(data))
            for (name, _), value in zip(self.plain, decoded, strict=True):
                values[name] = value
        return {name: checksummed(values[name]) for name in self.order}

    def decode_json(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """The arguments (JSON form) of a JSON-RPC log's hex ``topics`` (topic 0 first) and ``data``: indexed
        arguments first, then the data's, as the index has always stored them."""
        args: dict[str, Any] = {}
        for (name, _), read, topic in zip(self.indexed, self._indexed_readers, topics[1:], strict=True):
            args[name] = read(topic[2:])
        if self._data_readers is not None:
            body = data[2:]
            for position, ((name, _), read) in enumerate(zip(self.plain, self._data_readers, strict=True)):
                args[name] = read(body[64 * position : 64 * position + 64])
        elif self.plain:
            values = abi_decode([t for _, t in self.plain], bytes.fromhex(data[2:]))
            for (name, _), value in zip(self.plain, values, strict=True):
                args[name] = to_json(value)
        return args


# -- errors -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorSpec:
    """One custom error of the ABIs: its name, argument names and ABI types."""

    name: str
    argument_names: tuple[str, ...]
    argument_types: tuple[str, ...]

    @cached_property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.argument_types)})"

    @cached_property
    def selector(self) -> bytes:
        return function_signature_to_4byte_selector(self.signature)

    def decode_arguments(self, payload: bytes) -> dict[str, Any]:
        """The error's arguments (native form) from the revert data after the selector."""
        values = abi_decode(list(self.argument_types), payload)
        return dict(zip(self.argument_names, values, strict=True))

    @classmethod
    def from_abi(cls, entry: Mapping[str, Any]) -> ErrorSpec:
        inputs = entry.get("inputs", [])
        return cls(str(entry["name"]), _names(inputs), tuple(abi_type(i) for i in inputs))


def error_specs(abis: Iterable[ABI]) -> dict[bytes, ErrorSpec]:
    """Every custom error of ``abis`` by selector; a 4-byte clash between two signatures is an error."""
    by_selector: dict[bytes, ErrorSpec] = {}
    for abi in abis:
        for entry in abi:
            if entry.get("type") != "error":
                continue
            spec = ErrorSpec.from_abi(entry)
            known = by_selector.get(spec.selector)
            if known is not None and known.signature != spec.signature:  # pragma: no cover - 4-byte clash
                raise ValueError(f"selector clash between {known.signature} and {spec.signature}")
            by_selector[spec.selector] = spec
    return by_selector


# -- the codec ------------------------------------------------------------------------------------------------


class Codec:
    """The functions, events and errors of the ledger's contracts, by contract key (``registry``, ``token``,
    ``receivables``, ``receipts``, ``anchor``, …)."""

    def __init__(self, abis: Mapping[str, ABI]) -> None:
        self.abis = {key: list(abi) for key, abi in abis.items()}
        self._functions: dict[tuple[str, str], FunctionSpec] = {}
        self._overloaded: set[tuple[str, str]] = set()
        self._events: dict[tuple[str, bytes], EventSpec] = {}
        for key, abi in self.abis.items():
            for entry in abi:
                if entry.get("type") == "function":
                    spec = FunctionSpec.from_abi(key, entry)
                    self._functions[(key, spec.signature)] = spec
                    if (key, spec.name) in self._functions:
                        self._overloaded.add((key, spec.name))
                    self._functions[(key, spec.name)] = spec
                elif entry.get("type") == "event" and not entry.get("anonymous"):
                    event = EventSpec.from_abi(key, entry)
                    self._events[(key, event.topic)] = event
        self.errors = error_specs(self.abis.values())

    @property
    def contracts(self) -> tuple[str, ...]:
        return tuple(self.abis)

    def function(self, contract: str, function: str) -> FunctionSpec:
        """A function by name (when not overloaded) or by signature (``transferFrom(uint256,address,uint256)``)."""
        if (contract, function) in self._overloaded:
            raise UnknownFunction(f"{contract}.{function} is overloaded: name it by its signature")
        try:
            return self._functions[(contract, function)]
        except KeyError:
            raise UnknownFunction(f"{contract} has no function {function}") from None

    def functions(self, contract: str) -> list[FunctionSpec]:
        """Every function of ``contract``, each once."""
        return [spec for (key, name), spec in self._functions.items() if key == contract and "(" in name]

    def encode_call(self, contract: str, function: str, args: Sequence[Any]) -> bytes:
        return self.function(contract, function).encode_call(args)

    def event(self, contract: str, topic: bytes) -> EventSpec | None:
        """The event of ``contract`` whose topic 0 is ``topic``; None for another contract's or an unknown one."""
        return self._events.get((contract, bytes(topic)))

    def events(self, contract: str | None = None) -> list[EventSpec]:
        return [spec for (key, _), spec in self._events.items() if contract is None or key == contract]

    def event_named(self, contract: str, name: str) -> EventSpec:
        for spec in self.events(contract):
            if spec.name == name:
                return spec
        raise LookupError(f"{contract} has no event {name}")

    def error(self, data: bytes) -> ErrorSpec | None:
        """The custom error whose selector starts ``data``; None when no ABI declares it."""
        return self.errors.get(bytes(data[:4]))
