"""Contract errors, decoded once, by name, into domain exceptions.

Every revert of the ledger's contracts is a named custom error (``ReceivablesPieceLocked(pieceId,
requestId)``). This module builds a selector → error map from the compiled ABIs and turns revert data into a
:class:`ContractRevert` subclass named after the error, with its arguments by name. It understands how both
kinds of node report a revert: eth-tester raises ``TransactionFailed("execution reverted: b'...'")`` and a
JSON-RPC node (anvil, Besu) answers with the revert data as hex in the error's ``data``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

_PANIC_REASONS = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised function",
}


class ContractRevert(Exception):
    """A contract call reverted with a named error. Subclasses are named after the Solidity error."""

    error_name: ClassVar[str] = "ContractRevert"

    def __init__(self, arguments: Mapping[str, Any] | None = None, *, data: bytes = b"") -> None:
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.data = data
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.arguments.items())
        super().__init__(f"{self.error_name}({rendered})")

    @property
    def name(self) -> str:
        return self.error_name


class UnknownRevert(ContractRevert):
    """Revert data that matches no error of the ledger's ABIs (or no data at all: out of gas, invalid opcode)."""

    error_name = "UnknownRevert"


class RevertedWithReason(ContractRevert):
    """A plain ``Error(string)`` revert; the ledger's own contracts never raise one."""

    error_name = "Error"


class Panic(ContractRevert):
    """A ``Panic(uint256)``: an assertion or arithmetic check failed inside a contract."""

    error_name = "Panic"


class OutOfGas(Exception):
    """A transaction ran out of gas even after the pipeline signed it again with more: the node's or the block's
    limit, never the contract's refusal (so it is not a :class:`ContractRevert`)."""

    error_name: ClassVar[str] = "OutOfGas"

    def __init__(self, arguments: Mapping[str, Any] | None = None) -> None:
        self.arguments: dict[str, Any] = dict(arguments or {})
        super().__init__(f"out of gas ({', '.join(f'{k}={v}' for k, v in self.arguments.items())})")


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


@dataclass(frozen=True)
class ErrorSpec:
    """One custom error of the ABIs: its name, argument names and ABI types."""

    name: str
    argument_names: tuple[str, ...]
    argument_types: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.argument_types)})"

    @property
    def selector(self) -> bytes:
        return function_signature_to_4byte_selector(self.signature)


def abi_type(entry: Mapping[str, Any]) -> str:
    """The canonical ABI type of an ABI input or output, tuples expanded (``(address,uint96)[]``)."""
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in entry["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


class ErrorDecoder:
    """Maps revert data of the ledger's contracts to :class:`ContractRevert` subclasses, by selector."""

    _classes: ClassVar[dict[str, type[ContractRevert]]] = {}

    def __init__(self, abis: Iterable[Iterable[Mapping[str, Any]]]) -> None:
        self._by_selector: dict[bytes, ErrorSpec] = {}
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                spec = ErrorSpec(
                    name=str(entry["name"]),
                    argument_names=tuple(str(i.get("name") or f"arg{n}") for n, i in enumerate(entry["inputs"])),
                    argument_types=tuple(abi_type(i) for i in entry["inputs"]),
                )
                known = self._by_selector.get(spec.selector)
                if known is not None and known.signature != spec.signature:  # pragma: no cover - 4-byte clash
                    raise ValueError(f"selector clash between {known.signature} and {spec.signature}")
                self._by_selector[spec.selector] = spec

    @property
    def error_names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self._by_selector.values())

    @classmethod
    def exception_class(cls, name: str) -> type[ContractRevert]:
        """The exception class for error ``name``: one class per name, shared by every decoder."""
        known = cls._classes.get(name)
        if known is None:
            known = type(name, (ContractRevert,), {"error_name": name, "__module__": __name__})
            cls._classes[name] = known
        return known

    def decode(self, data: bytes) -> ContractRevert:
        """Decode raw revert data into the matching exception (never raises)."""
        selector, payload = data[:4], data[4:]
        if selector == function_signature_to_4byte_selector("Error(string)"):
            (reason,) = abi_decode(["string"], payload)
            return RevertedWithReason({"reason": reason}, data=data)
        if selector == function_signature_to_4byte_selector("Panic(uint256)"):
            (code,) = abi_decode(["uint256"], payload)
            return Panic({"code": code, "reason": _PANIC_REASONS.get(code, "unknown panic")}, data=data)
        spec = self._by_selector.get(selector)
        if spec is None:
            return UnknownRevert({"data": data}, data=data)
        try:
            values = abi_decode(list(spec.argument_types), payload)
        except Exception:  # malformed payload under a known selector
            return UnknownRevert({"data": data}, data=data)
        return self.exception_class(spec.name)(dict(zip(spec.argument_names, values, strict=True)), data=data)

    def from_exception(self, exc: BaseException) -> ContractRevert | None:
        """The decoded revert carried by a web3 or eth-tester exception, or ``None`` when it carries none."""
        data = revert_data_of(exc)
        return None if data is None else self.decode(data)


_HEX_DATA = re.compile(r"0x[0-9a-fA-F]{8,}")


def revert_data_of(exc: BaseException) -> bytes | None:
    """Extract raw revert data from the exception a node raised for a reverted call.

    - web3 ``ContractCustomError`` / ``ContractLogicError`` (JSON-RPC nodes such as anvil): hex in ``data``;
    - eth-tester ``TransactionFailed``: ``"execution reverted: b'...'"`` with the bytes' repr;
    - an RPC error dictionary whose ``data`` holds the hex (some clients nest it).
    """
    data = getattr(exc, "data", None)
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, Mapping):
        nested = data.get("data")
        if isinstance(nested, str) and nested.startswith("0x"):
            return bytes.fromhex(nested[2:])
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, bytes):
            return arg
        if isinstance(arg, Mapping):
            nested = arg.get("data")
            if isinstance(nested, str) and nested.startswith("0x"):
                return bytes.fromhex(nested[2:])
        if isinstance(arg, str):
            marker = "execution reverted: "
            if marker in arg:
                text = arg[arg.index(marker) + len(marker) :].strip()
                if text.startswith(("b'", 'b"')):
                    try:
                        literal = ast.literal_eval(text)
                    except (ValueError, SyntaxError):
                        continue
                    if isinstance(literal, bytes):
                        return literal
                if _HEX_DATA.fullmatch(text) and len(text) % 2 == 0:
                    return bytes.fromhex(text[2:])
            elif _HEX_DATA.fullmatch(arg) and len(arg) % 2 == 0:
                return bytes.fromhex(arg[2:])
    return None
