"""Signed sensor readings of the goods behind a warehouse receipt (see docs/sensors.md).

A device (weighbridge, load cell, camera counter, temperature probe) holds its own secp256k1 key and signs each
reading as EIP-712 typed data, ``Reading``, in a domain of its own (:data:`DOMAIN_NAME`, bound to the chain and
to the ``WarehouseReceipts`` contract). This module is the runtime core of it, without a web framework or a
database: the reading as a value, its canonical hash, the signer's recovery, the refusal rules that need only
the reading and what the ledger already holds of the device (:func:`check`), the observed quantity of a period
and the digest of a period that the service anchors on chain (:func:`period_digest`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from ledger.acts import recover_hash

DOMAIN_NAME = "scf-ledger sensor reading"
DOMAIN_VERSION = "1"
READING_FIELDS: tuple[tuple[str, str], ...] = (
    ("device", "address"),
    ("receiptId", "uint256"),
    ("seq", "uint64"),
    ("observedAt", "uint64"),
    ("weight", "uint64"),
    ("count", "uint64"),
    ("temperatureCenti", "int32"),
    ("location", "string"),
)
READING_TYPE = "Reading(" + ",".join(f"{kind} {name}" for name, kind in READING_FIELDS) + ")"
READING_TYPE_HASH = keccak(text=READING_TYPE)
DOMAIN_TYPE_HASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
LOCATION = re.compile(r"[\x20-\x7e]{0,64}")
"""A location: printable ASCII, at most 64 characters (a bay, a GNSS fix as text, or empty)."""
UINT64 = 2**64 - 1


class DeviceKind(StrEnum):
    """What a device measures: the field of its readings that counts (the others are 0)."""

    WEIGHBRIDGE = "weighbridge"
    LOAD_CELL = "load_cell"
    CAMERA_COUNTER = "camera_counter"
    TEMPERATURE_PROBE = "temperature_probe"

    @property
    def measure(self) -> str:
        """``weight``, ``count`` or ``temperature``."""
        if self in (DeviceKind.WEIGHBRIDGE, DeviceKind.LOAD_CELL):
            return "weight"
        return "count" if self is DeviceKind.CAMERA_COUNTER else "temperature"


class Refusal(StrEnum):
    """Why a reading was refused (each is counted, per lot, and none is applied)."""

    MALFORMED = "malformed"
    """Not a reading: a field missing, of the wrong type or out of range."""
    BAD_SIGNATURE = "bad-signature"
    """The signature is not the named device's over this reading (or is malformed or malleable)."""
    UNKNOWN_DEVICE = "unknown-device"
    """No lot registered the device."""
    OTHER_LOT = "other-lot"
    """The device is registered for another lot than the reading names."""
    REPLAY = "replay"
    """A reading of the device with this sequence number was already applied."""
    OUT_OF_ORDER = "out-of-order"
    """Its sequence number or its time is below the device's last applied reading's."""
    FUTURE_DATED = "future-dated"
    """Observed later than now plus the allowed clock skew."""


class ReadingRefused(Exception):
    """A reading refused, with its reason."""

    def __init__(self, reason: Refusal, detail: str, receipt_id: int | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.receipt_id = receipt_id


@dataclass(frozen=True)
class Reading:
    """One reading as the device signed it. Weight and count in the device's units (the lot's
    ``units_per_quantity`` of them make one unit of the receipt); temperature in hundredths of a degree
    Celsius."""

    device: str
    receipt_id: int
    seq: int
    observed_at: int
    weight: int
    count: int
    temperature_centi: int
    location: str

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (field names as signed)."""
        return {
            "device": self.device,
            "receiptId": self.receipt_id,
            "seq": self.seq,
            "observedAt": self.observed_at,
            "weight": self.weight,
            "count": self.count,
            "temperatureCenti": self.temperature_centi,
            "location": self.location,
        }

    def struct_hash(self) -> bytes:
        """``hashStruct(Reading)``: the reading's canonical hash, independent of the domain."""
        kinds = ["bytes32", "address", "uint256", "uint64", "uint64", "uint64", "uint64", "int32", "bytes32"]
        values = [
            READING_TYPE_HASH,
            self.device,
            self.receipt_id,
            self.seq,
            self.observed_at,
            self.weight,
            self.count,
            self.temperature_centi,
            keccak(text=self.location),
        ]
        return keccak(abi_encode(kinds, values))

    def value(self, measure: str) -> int:
        return {"weight": self.weight, "count": self.count, "temperature": self.temperature_centi}[measure]


def _integer(message: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = message.get(name)
    if type(value) is not int or not low <= value <= high:  # not bools, strings or floats
        raise ReadingRefused(Refusal.MALFORMED, f"{name} must be an integer in [{low}, {high}]")
    return value


def parse(message: Any) -> Reading:
    """A reading from its message (the JSON object a device sends, field names as signed), checked strictly: a
    :class:`ReadingRefused` ``malformed`` otherwise."""
    if not isinstance(message, Mapping) or set(message) != {name for name, _ in READING_FIELDS}:
        raise ReadingRefused(Refusal.MALFORMED, f"a reading has exactly the fields {READING_TYPE}")
    device = message["device"]
    if not isinstance(device, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", device):
        raise ReadingRefused(Refusal.MALFORMED, "device must be a 0x-prefixed 20-byte address")
    location = message["location"]
    if not isinstance(location, str) or not LOCATION.fullmatch(location):
        raise ReadingRefused(Refusal.MALFORMED, "location must be printable ASCII, at most 64 characters")
    return Reading(
        device=to_checksum_address(device),
        receipt_id=_integer(message, "receiptId", 1, 2**256 - 1),
        seq=_integer(message, "seq", 0, UINT64),
        observed_at=_integer(message, "observedAt", 0, UINT64),
        weight=_integer(message, "weight", 0, UINT64),
        count=_integer(message, "count", 0, UINT64),
        temperature_centi=_integer(message, "temperatureCenti", -(2**31), 2**31 - 1),
        location=location,
    )


def domain_separator(chain_id: int, receipts_contract: str) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPE_HASH,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                to_checksum_address(receipts_contract),
            ],
        )
    )


def typed_data(reading: Reading, chain_id: int, receipts_contract: str) -> dict[str, Any]:
    """The EIP-712 document a device signs (``eth_signTypedData_v4``'s argument)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Reading": [{"name": n, "type": t} for n, t in READING_FIELDS],
        },
        "primaryType": "Reading",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(receipts_contract),
        },
        "message": reading.message(),
    }


def signing_hash(reading: Reading, chain_id: int, receipts_contract: str) -> bytes:
    """What the device's signature is over."""
    return keccak(b"\x19\x01" + domain_separator(chain_id, receipts_contract) + reading.struct_hash())


def signer(reading: Reading, signature: bytes, chain_id: int, receipts_contract: str) -> str | None:
    """The address that signed the reading, or None for a malformed or malleable (high-s) signature."""
    return recover_hash(signing_hash(reading, chain_id, receipts_contract), signature)


@dataclass(frozen=True)
class DeviceState:
    """What the ledger holds of a device when a reading of it arrives."""

    receipt_id: int
    last_seq: int | None
    last_observed_at: int | None
    applied: bool = False
    """Whether this very reading (its struct hash) was applied already."""


def check(
    reading: Reading,
    signature: bytes,
    device: DeviceState | None,
    *,
    chain_id: int,
    receipts_contract: str,
    now: int,
    clock_skew: int,
) -> None:
    """Raise :class:`ReadingRefused` unless the reading may be applied: signed by the device it names, a device
    registered for the lot it names, a sequence number above the device's last, not observed before the last
    reading nor after ``now + clock_skew``. The store applies it under a unique (device, seq) constraint, so
    two copies racing in are one reading and one replay."""
    if signer(reading, signature, chain_id, receipts_contract) != reading.device:
        raise ReadingRefused(Refusal.BAD_SIGNATURE, f"not signed by {reading.device}", reading.receipt_id)
    if device is None:
        raise ReadingRefused(Refusal.UNKNOWN_DEVICE, f"{reading.device} is not registered", reading.receipt_id)
    if device.receipt_id != reading.receipt_id:
        raise ReadingRefused(Refusal.OTHER_LOT, f"{reading.device} is registered for another lot", reading.receipt_id)
    if device.last_seq is not None:
        if device.applied or reading.seq == device.last_seq:
            raise ReadingRefused(Refusal.REPLAY, f"sequence {reading.seq} was applied already", reading.receipt_id)
        if reading.seq < device.last_seq:
            detail = f"sequence {reading.seq} after {device.last_seq}"
            raise ReadingRefused(Refusal.OUT_OF_ORDER, detail, reading.receipt_id)
    if device.last_observed_at is not None and reading.observed_at < device.last_observed_at:
        detail = f"observed at {reading.observed_at}, before the last reading ({device.last_observed_at})"
        raise ReadingRefused(Refusal.OUT_OF_ORDER, detail, reading.receipt_id)
    if reading.observed_at > now + clock_skew:
        detail = f"observed at {reading.observed_at}, after now ({now}) plus {clock_skew} s"
        raise ReadingRefused(Refusal.FUTURE_DATED, detail, reading.receipt_id)


def period_digest(struct_hashes: Iterable[bytes]) -> bytes:
    """The digest anchored for a period: keccak256 of the readings' struct hashes concatenated, in the order
    (observed at, device, seq). Anyone holding the readings recomputes it."""
    return keccak(b"".join(struct_hashes))


def observed_quantity(latest: Sequence[tuple[int, int]]) -> int | None:
    """The quantity a period observed, in the receipt's unit, from each measuring device's latest reading and
    its ``units_per_quantity``: the lowest of them, each rounded down (the lender's side). None when no
    measuring device read anything."""
    if not latest:
        return None
    return min(value // units for value, units in latest)
