"""Local signing of EIP-1559 transactions, and decoding them again (to replay one as a call, or sign it anew)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import coincurve
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

# ---------------------------------------------------------------------------------------------------------------
# Local signing of EIP-1559 transactions
#
# eth_account's ``sign_transaction`` validates and normalises a dictionary through several layers and takes
# about 1 ms; encoding the nine fields directly and signing with libsecp256k1 (coincurve) takes about 70 µs,
# which matters at a thousand transactions a second. The test suite checks byte equality with eth_account.


def _rlp_length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


def _rlp_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _rlp_length_prefix(len(value), 0x80) + value


def _rlp_int(value: int) -> bytes:
    if value < 0:
        raise ValueError("RLP integers are unsigned")
    if value == 0:
        return b"\x80"
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_list(encoded_items: Iterable[bytes]) -> bytes:
    body = b"".join(encoded_items)
    return _rlp_length_prefix(len(body), 0xC0) + body


_EMPTY_ACCESS_LIST: Final = b"\xc0"


def sign_dynamic_fee_transaction(
    key: coincurve.PrivateKey,
    *,
    chain_id: int,
    nonce: int,
    max_priority_fee_per_gas: int,
    max_fee_per_gas: int,
    gas: int,
    to: bytes | None,
    value: int,
    data: bytes,
) -> tuple[bytes, bytes]:
    """Sign an EIP-1559 transaction with an empty access list; return the raw envelope and its hash."""
    fields = [
        _rlp_int(chain_id),
        _rlp_int(nonce),
        _rlp_int(max_priority_fee_per_gas),
        _rlp_int(max_fee_per_gas),
        _rlp_int(gas),
        _rlp_bytes(to or b""),
        _rlp_int(value),
        _rlp_bytes(data),
        _EMPTY_ACCESS_LIST,
    ]
    signature = key.sign_recoverable(keccak(b"\x02" + _rlp_list(fields)), hasher=None)
    fields.append(_rlp_int(signature[64]))
    fields.append(_rlp_int(int.from_bytes(signature[:32], "big")))
    fields.append(_rlp_int(int.from_bytes(signature[32:64], "big")))
    raw = b"\x02" + _rlp_list(fields)
    return raw, keccak(raw)


def decode_dynamic_fee_transaction(raw: bytes) -> dict[str, Any]:
    """The fields of a signed type-2 transaction (for replaying it as a call)."""
    import rlp  # type: ignore[import-untyped]  # local: only needed to replay a revert

    if raw[:1] != b"\x02":
        raise ValueError("not an EIP-1559 transaction")
    items = rlp.decode(raw[1:])
    chain_id, nonce, tip, fee_cap, gas, to, value, data = items[:8]
    return {
        "chain_id": int.from_bytes(chain_id, "big"),
        "nonce": int.from_bytes(nonce, "big"),
        "max_priority_fee_per_gas": int.from_bytes(tip, "big"),
        "max_fee_per_gas": int.from_bytes(fee_cap, "big"),
        "gas": int.from_bytes(gas, "big"),
        "to": to_checksum_address(to) if to else None,
        "value": int.from_bytes(value, "big"),
        "data": bytes(data),
    }
