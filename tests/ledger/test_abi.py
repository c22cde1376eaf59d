"""The one ABI codec agrees with web3 on every function and event of the ledger's contracts.

Calls are encoded for every function of every compiled contract with sample arguments of each type and
compared with web3's ``encode_abi``; the logs of a receivable and a warehouse story are decoded by the codec
(native and JSON form) and compared with web3's ``process_log``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3

from ledger.abi import Codec, EventSpec, UnknownFunction, abi_type, is_dynamic, to_json
from ledger.compiler import compile_contracts
from ledger.tooling.sandbox import Sandbox

_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _sample(kind: str) -> Any:
    """A value of ABI type ``kind`` with every byte non-trivial, so a mis-encoding shows."""
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        size = kind[kind.rindex("[") + 1 : -1]
        return [_sample(inner) for _ in range(int(size) if size else 2)]
    if kind.startswith("("):
        return tuple(_sample(part) for part in _split(kind[1:-1]))
    if kind == "address":
        return _ADDRESS
    if kind == "bool":
        return True
    if kind == "string":
        return "収据 receipt"
    if kind == "bytes":
        return b"\x01\x02\x03"
    if kind.startswith("bytes"):
        return bytes(range(1, int(kind[5:]) + 1))
    if kind.startswith("uint"):
        return 2 ** int(kind[4:] or 256) // 3
    if kind.startswith("int"):
        return -(2 ** (int(kind[3:] or 256) - 1)) // 3
    raise AssertionError(f"no sample for {kind}")


def _split(types: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for position, char in enumerate(types):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(types[start:position])
            start = position + 1
    parts.append(types[start:])
    return [p for p in parts if p]


def test_calls_encode_as_web3_encodes_them_for_every_function_of_every_contract() -> None:
    artifacts = compile_contracts()
    w3 = Web3()
    checked = 0
    for name, artifact in artifacts.items():
        codec = Codec({name: artifact.abi})
        contract = w3.eth.contract(abi=artifact.abi)
        for spec in codec.functions(name):
            args = [_sample(kind) for kind in spec.argument_types]
            expected = bytes.fromhex(contract.encode_abi(spec.signature, args)[2:])
            assert spec.encode_call(args) == expected, spec.signature
            checked += 1
    assert checked > 150  # every contract's whole surface, not a sample


def test_an_overloaded_function_is_named_by_its_signature() -> None:
    receivables = compile_contracts()["Receivables"]
    codec = Codec({"receivables": receivables.abi})
    with pytest.raises(UnknownFunction, match="overloaded"):
        codec.function("receivables", "transferFrom")
    split = codec.function("receivables", "transferFrom(uint256,address,uint256)")
    assert split.selector == keccak(text="transferFrom(uint256,address,uint256)")[:4]
    with pytest.raises(UnknownFunction, match="no function"):
        codec.function("receivables", "mintForFree")


@pytest.fixture(scope="module")
def story_logs() -> Iterator[tuple[Sandbox, list[tuple[str, Any]]]]:
    """(sandbox, [(contract key, log)]) of every log on a chain where receivables were confirmed, split and
    financed, and warehouse receipts pledged and funded."""
    from tests.contracts.support import confirmed_piece, split
    from tests.contracts.warehouse_fixtures import pledged_receipt

    sandbox = Sandbox.create()
    with sandbox.isolated():
        _, piece = confirmed_piece(sandbox)
        split(sandbox, piece, "chemicals", 1_000, "seatmaker")
        pledged_receipt(sandbox)
        by_address = {c.address: key for key, c in sandbox.contracts.items()}
        logs = sandbox.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": list(by_address)})
        yield sandbox, [(by_address[log["address"]], log) for log in logs]


def test_events_decode_as_web3_decodes_them_in_native_and_json_form(
    story_logs: tuple[Sandbox, list[tuple[str, Any]]],
) -> None:
    sandbox, logs = story_logs
    names = set()
    for key, log in logs:
        topics = [bytes(t) for t in log["topics"]]
        spec = sandbox.codec.event(key, topics[0])
        assert isinstance(spec, EventSpec)
        expected = dict(getattr(sandbox.contracts[key].events, spec.name)().process_log(log)["args"])
        assert spec.decode(topics, bytes(log["data"])) == expected
        json_form = spec.decode_json(["0x" + t.hex() for t in topics], "0x" + bytes(log["data"]).hex())
        assert json_form == {name: to_json(value) for name, value in expected.items()}
        names.add(spec.name)
    assert {"InvoiceConfirmed", "PieceSplit", "ReceiptIssued", "PledgeFunded", "Transfer"} <= names


def test_abi_types_expand_tuples() -> None:
    entry = {"type": "tuple[]", "components": [{"type": "address"}, {"type": "uint96"}]}
    assert abi_type(entry) == "(address,uint96)[]"


def test_events_of_single_words_read_word_by_word_decode_as_eth_abi_decodes_them() -> None:
    checked = 0
    for name, artifact in compile_contracts().items():
        for spec in Codec({name: artifact.abi}).events(name):
            indexed = [_sample(kind) for _, kind in spec.indexed]
            plain = [_sample(kind) for _, kind in spec.plain]
            topics = [spec.topic] + [
                keccak(abi_encode([kind], [value])) if is_dynamic(kind) else abi_encode([kind], [value])
                for (_, kind), value in zip(spec.indexed, indexed, strict=True)
            ]
            data = abi_encode([kind for _, kind in spec.plain], plain)
            by_eth_abi = replace(spec, _native_readers=None).decode(topics, data)
            assert spec.decode(topics, data) == by_eth_abi, f"{name}.{spec.name}"
            checked += spec._native_readers is not None
    assert checked > 50  # most events are single words: read word by word
