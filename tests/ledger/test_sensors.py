"""The reading's signature and the refusal rules of :mod:`ledger.sensors`, without a service or a database.

Each rule has a test named after it that fails without its check; the signature is made by eth-account's own
EIP-712 signer, so the ledger's hashing is checked against the standard's.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.sensors import (
    DeviceState,
    Reading,
    ReadingRefused,
    Refusal,
    check,
    observed_quantity,
    parse,
    period_digest,
    signing_hash,
    typed_data,
)

CHAIN_ID = 31337
RECEIPTS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NOW = 1_780_000_000
LOT = 2**200 + 7


def reading(device: LocalAccount, **changes: int | str) -> Reading:
    fields: dict[str, int | str] = {
        "receipt_id": LOT,
        "seq": 10,
        "observed_at": NOW,
        "weight": 1_000_000,
        "count": 0,
        "temperature_centi": -250,
        "location": "bay 3",
    }
    fields.update(changes)
    return Reading(device.address, **fields)  # type: ignore[arg-type]


def sign(r: Reading, key: LocalAccount, chain_id: int = CHAIN_ID) -> bytes:
    return bytes(key.sign_typed_data(full_message=typed_data(r, chain_id, RECEIPTS)).signature)


def verdict(r: Reading, signature: bytes, state: DeviceState | None) -> Refusal | None:
    try:
        check(r, signature, state, chain_id=CHAIN_ID, receipts_contract=RECEIPTS, now=NOW, clock_skew=60)
    except ReadingRefused as refused:
        return refused.reason
    return None


@pytest.fixture
def device() -> LocalAccount:
    return Account.create()


def registered(last_seq: int | None = 9, last_observed_at: int | None = NOW - 60, applied: bool = False) -> DeviceState:
    return DeviceState(LOT, last_seq, last_observed_at, applied)


def test_the_signing_hash_is_eip712s_as_eth_account_computes_it(device: LocalAccount) -> None:
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    r = reading(device)
    assert signing_hash(r, CHAIN_ID, RECEIPTS) == _hash_eip191_message(
        encode_typed_data(full_message=typed_data(r, CHAIN_ID, RECEIPTS))
    )


def test_a_valid_reading_passes(device: LocalAccount) -> None:
    r = reading(device)
    assert verdict(r, sign(r, device), registered()) is None
    assert verdict(r, sign(r, device), registered(None, None)) is None  # the device's first reading


def test_replayed_reading_is_refused(device: LocalAccount) -> None:
    r = reading(device)
    assert verdict(r, sign(r, device), registered(last_seq=10)) is Refusal.REPLAY
    assert verdict(r, sign(r, device), registered(last_seq=12, applied=True)) is Refusal.REPLAY


def test_out_of_order_reading_is_refused(device: LocalAccount) -> None:
    r = reading(device)
    assert verdict(r, sign(r, device), registered(last_seq=11)) is Refusal.OUT_OF_ORDER
    assert verdict(r, sign(r, device), registered(last_observed_at=NOW + 1)) is Refusal.OUT_OF_ORDER


def test_future_dated_reading_is_refused(device: LocalAccount) -> None:
    late = reading(device, observed_at=NOW + 61)
    assert verdict(late, sign(late, device), registered()) is Refusal.FUTURE_DATED
    skewed = reading(device, observed_at=NOW + 60)
    assert verdict(skewed, sign(skewed, device), registered()) is None


def test_wrongly_signed_reading_is_refused(device: LocalAccount) -> None:
    r = reading(device)
    assert verdict(r, sign(r, Account.create()), registered()) is Refusal.BAD_SIGNATURE
    assert verdict(reading(device, weight=1), sign(r, device), registered()) is Refusal.BAD_SIGNATURE
    assert verdict(r, sign(r, device, chain_id=1), registered()) is Refusal.BAD_SIGNATURE
    signature = sign(r, device)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (
        signature[:32] + (n - int.from_bytes(signature[32:64], "big")).to_bytes(32, "big") + bytes([signature[64] ^ 1])
    )
    assert verdict(r, high_s, registered()) is Refusal.BAD_SIGNATURE  # the malleable twin


def test_reading_from_a_device_of_another_lot_is_refused(device: LocalAccount) -> None:
    r = reading(device)
    assert verdict(r, sign(r, device), DeviceState(LOT + 1, None, None)) is Refusal.OTHER_LOT


def test_reading_from_an_unregistered_device_is_refused(device: LocalAccount) -> None:
    r = reading(device)
    assert verdict(r, sign(r, device), None) is Refusal.UNKNOWN_DEVICE


@pytest.mark.parametrize(
    "change",
    [{"seq": True}, {"weight": "1"}, {"count": 1.0}, {"seq": -1}, {"weight": 2**64}, {"location": "x" * 65}],
)
def test_malformed_reading_is_refused(device: LocalAccount, change: dict[str, object]) -> None:
    message = {**reading(device).message(), **change}
    with pytest.raises(ReadingRefused) as refused:
        parse(message)
    assert refused.value.reason is Refusal.MALFORMED


def test_parse_is_the_inverse_of_message(device: LocalAccount) -> None:
    r = reading(device)
    assert parse(r.message()) == r


def test_observed_quantity_is_the_lowest_device_rounded_down() -> None:
    assert observed_quantity([(999_999, 1_000), (2_000, 2)]) == 999
    assert observed_quantity([]) is None


def test_period_digest_depends_on_every_reading_and_its_order(device: LocalAccount) -> None:
    a, b = reading(device).struct_hash(), reading(device, seq=11).struct_hash()
    assert period_digest([a, b]) != period_digest([b, a]) != period_digest([a])
