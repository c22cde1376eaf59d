"""Contract errors, decoded once, by name, into domain exceptions.

Every revert of the ledger's contracts is a named custom error (``ReceivablesPieceLocked(pieceId,
requestId)``). This module builds a selector → error map from the compiled ABIs (with :mod:`ledger.abi`, the
one codec) and turns revert data into a :class:`ContractRevert` subclass named after the error, with its
arguments by name. It understands how both kinds of node report a revert: eth-tester raises
``TransactionFailed("execution reverted: b'...'")`` and a JSON-RPC node (anvil, Besu) answers with the revert
data as hex in the error's ``data``.

What an error means to the caller is its :class:`ErrorKind`, declared beside the error in the contracts'
NatSpec (``/// @custom:kind conflict``) and read from the compiled ``devdoc`` by :func:`error_kinds`; the
library errors our contracts raise but cannot annotate (OpenZeppelin's) have theirs in
:data:`LIBRARY_ERROR_KINDS`. :meth:`ErrorDecoder.from_artifacts` gives every error class its kind, which
``api.problems`` turns into an HTTP status.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, Final, Protocol

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

from ledger.abi import ErrorSpec as ErrorSpec  # re-exported: the decoder's specs are the codec's
from ledger.abi import abi_type as abi_type
from ledger.abi import error_specs

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


class ErrorKind(StrEnum):
    """What a contract error means to the caller: the ``@custom:kind`` of its NatSpec. Each kind is one HTTP
    status (``api.problems.KIND_STATUS``)."""

    FORBIDDEN = "forbidden"
    """Not the caller's to do: someone else's object, or a role the caller lacks (403)."""
    NOT_FOUND = "not-found"
    """The object named does not exist (404)."""
    CONFLICT = "conflict"
    """Already done, or in the way: a duplicate, a state that does not allow it, a lock, a freeze (409)."""
    INVALID = "invalid"
    """The request itself breaks a rule of the ledger: an amount, a date, a recipient (422)."""


KIND_TAG: Final = "custom:kind"
"""The key of an error's ``/// @custom:kind <kind>`` in solc's ``devdoc``."""

LIBRARY_ERROR_KINDS: Final[Mapping[str, ErrorKind]] = {
    # OpenZeppelin's AccessControl (IAccessControl).
    "AccessControlUnauthorizedAccount": ErrorKind.FORBIDDEN,
    "AccessControlBadConfirmation": ErrorKind.INVALID,
    # EIP-6093 ERC-20 errors (OpenZeppelin's IERC20Errors): a balance or allowance short is in the way.
    "ERC20InsufficientBalance": ErrorKind.CONFLICT,
    "ERC20InsufficientAllowance": ErrorKind.CONFLICT,
    "ERC20InvalidSender": ErrorKind.INVALID,
    "ERC20InvalidReceiver": ErrorKind.INVALID,
    "ERC20InvalidApprover": ErrorKind.INVALID,
    "ERC20InvalidSpender": ErrorKind.INVALID,
    # EIP-6093 ERC-721 errors (OpenZeppelin's IERC721Errors), as the service has always answered them.
    "ERC721InvalidOwner": ErrorKind.INVALID,
    "ERC721NonexistentToken": ErrorKind.INVALID,
    "ERC721IncorrectOwner": ErrorKind.INVALID,
    "ERC721InvalidSender": ErrorKind.INVALID,
    "ERC721InvalidReceiver": ErrorKind.INVALID,
    "ERC721InsufficientApproval": ErrorKind.INVALID,
    "ERC721InvalidApprover": ErrorKind.INVALID,
    "ERC721InvalidOperator": ErrorKind.INVALID,
    # OpenZeppelin utilities our contracts link in.
    "SafeCastOverflowedUintDowncast": ErrorKind.INVALID,
    "SafeERC20FailedOperation": ErrorKind.INVALID,
    "StringsInsufficientHexLength": ErrorKind.INVALID,
}
"""Kinds of the library errors in our ABIs, whose declarations we cannot annotate (they are in
``node_modules``). A library error that carries its own ``@custom:kind`` does not belong here."""


class DocumentedArtifact(Protocol):
    """What :func:`error_kinds` reads of a compiled contract (``ledger.compiler.Artifact``)."""

    @property
    def name(self) -> str: ...

    @property
    def abi(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def devdoc(self) -> Mapping[str, Any]: ...


def error_kinds(artifacts: Mapping[str, DocumentedArtifact] | Iterable[DocumentedArtifact]) -> dict[str, ErrorKind]:
    """The kind of every custom error the artifacts' ABIs declare that has one, by error name.

    A kind comes from the error's ``@custom:kind`` in a compiled ``devdoc`` (``errors``, by signature), else
    from :data:`LIBRARY_ERROR_KINDS`; an error with neither is absent (``tests/contracts/test_error_docs.py``
    fails on it). Raises :class:`ValueError` on a tag that names no :class:`ErrorKind`, and on two kinds for
    one error name (the service answers by name).
    """
    documented = list(artifacts.values() if isinstance(artifacts, Mapping) else artifacts)
    tagged: dict[str, tuple[ErrorKind, str]] = {}
    for artifact in documented:
        for signature, docs in (artifact.devdoc.get("errors") or {}).items():
            name = str(signature).split("(", 1)[0]
            for doc in docs if isinstance(docs, list) else [docs]:
                text = doc.get(KIND_TAG) if isinstance(doc, Mapping) else None
                if text is None:
                    continue
                try:
                    kind = ErrorKind(str(text).strip())
                except ValueError:
                    known = ", ".join(k.value for k in ErrorKind)
                    raise ValueError(
                        f"{artifact.name}: error {signature} has @custom:kind {text!r}; expected one of {known}"
                    ) from None
                seen = tagged.get(name)
                if seen is not None and seen[0] is not kind:
                    raise ValueError(
                        f"error {name} is declared {seen[0].value} in {seen[1]} and {kind.value} in {artifact.name}"
                    )
                tagged[name] = (kind, artifact.name)
    declared = {str(entry["name"]) for artifact in documented for entry in artifact.abi if entry.get("type") == "error"}
    kinds: dict[str, ErrorKind] = {}
    for name in sorted(declared):
        if name in tagged:
            kinds[name] = tagged[name][0]
        elif name in LIBRARY_ERROR_KINDS:
            kinds[name] = LIBRARY_ERROR_KINDS[name]
    return kinds


class ContractRevert(Exception):
    """A contract call reverted with a named error. Subclasses are named after the Solidity error."""

    error_name: ClassVar[str] = "ContractRevert"
    kind: ClassVar[ErrorKind | None] = None
    """What the error means (its NatSpec ``@custom:kind``), set by :meth:`ErrorDecoder.from_artifacts`;
    ``None`` for an error no decoder with kinds has seen."""

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
    kind = ErrorKind.INVALID


class RevertedWithReason(ContractRevert):
    """A plain ``Error(string)`` revert; the ledger's own contracts never raise one."""

    error_name = "Error"
    kind = ErrorKind.INVALID


class Panic(ContractRevert):
    """A ``Panic(uint256)``: an assertion or arithmetic check failed inside a contract."""

    error_name = "Panic"
    kind = ErrorKind.INVALID


class OutOfGas(Exception):
    """A transaction ran out of gas even after the pipeline signed it again with more: the node's or the block's
    limit, never the contract's refusal (so it is not a :class:`ContractRevert`)."""

    error_name: ClassVar[str] = "OutOfGas"

    def __init__(self, arguments: Mapping[str, Any] | None = None) -> None:
        self.arguments: dict[str, Any] = dict(arguments or {})
        super().__init__(f"out of gas ({', '.join(f'{k}={v}' for k, v in self.arguments.items())})")


_BUILT_IN_KINDS: Final[Mapping[str, ErrorKind | None]] = {
    c.error_name: c.kind for c in (UnknownRevert, RevertedWithReason, Panic)
}
"""The reverts that are no custom error, by the names a journal keeps them under (``UnknownRevert``)."""


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


class ErrorDecoder:
    """Maps revert data of the ledger's contracts to :class:`ContractRevert` subclasses, by selector.

    Build it with :meth:`from_artifacts`, which also gives each error class its :class:`ErrorKind`.
    """

    _classes: ClassVar[dict[str, type[ContractRevert]]] = {}

    def __init__(
        self, abis: Iterable[Iterable[Mapping[str, Any]]], *, kinds: Mapping[str, ErrorKind] | None = None
    ) -> None:
        """``kinds`` (error name → kind) is set on the errors' classes, which every decoder shares: one error
        name cannot have two kinds (:class:`ValueError`)."""
        for name, kind in (kinds or {}).items():
            self.exception_class(name, kind=kind)
        self._by_selector: dict[bytes, ErrorSpec] = error_specs(list(abi) for abi in abis)

    @classmethod
    def from_artifacts(cls, artifacts: Mapping[str, DocumentedArtifact] | Iterable[DocumentedArtifact]) -> ErrorDecoder:
        """The decoder of every error in the compiled artifacts, each error's class given its kind
        (:func:`error_kinds`)."""
        documented = list(artifacts.values() if isinstance(artifacts, Mapping) else artifacts)
        return cls((a.abi for a in documented), kinds=error_kinds(documented))

    @property
    def error_names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self._by_selector.values())

    @classmethod
    def exception_class(cls, name: str, *, kind: ErrorKind | None = None) -> type[ContractRevert]:
        """The exception class for error ``name``: one class per name, shared by every decoder. ``kind``, when
        given, is recorded on the class; a different kind recorded before is a :class:`ValueError`."""
        known = cls._classes.get(name)
        if known is None:
            namespace = {"error_name": name, "kind": _BUILT_IN_KINDS.get(name), "__module__": __name__}
            known = type(name, (ContractRevert,), namespace)
            cls._classes[name] = known
        if kind is not None and known.kind is not kind:
            if known.kind is not None:
                raise ValueError(f"error {name} is {known.kind.value}, not {kind.value}")
            known.kind = kind
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
            arguments = spec.decode_arguments(payload)
        except Exception:  # malformed payload under a known selector
            return UnknownRevert({"data": data}, data=data)
        return self.exception_class(spec.name)(arguments, data=data)

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
