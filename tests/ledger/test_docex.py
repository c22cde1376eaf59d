"""The envelope, the signatures and the peers list of documents between gateways (:mod:`ledger.docex`), without a
chain: what the envelope binds, what a signature covers, which peers lists are refused."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from pydantic import ValidationError

from ledger import docex
from ledger.secrets import MasterSecret
from ledger.settings import Settings

CONTENT = b"%PDF-1.7 invoice 25117000000000000042"
SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _keys(n: int) -> list[X25519PrivateKey]:
    return [X25519PrivateKey.generate() for _ in range(n)]


def _sealed(*keys: X25519PrivateKey) -> dict[str, Any]:
    return docex.seal(CONTENT, invoice_id=7, sender=SENDER, recipients=[docex.public_hex(k) for k in keys])


def test_every_recipient_opens_the_envelope_and_no_one_else() -> None:
    firm, bank, regulator, operator = _keys(4)
    envelope = docex.check_shape(json.loads(docex.encode(_sealed(firm, bank, regulator))))
    for key in (firm, bank, regulator):
        assert docex.open_envelope(envelope, key) == CONTENT
    with pytest.raises(docex.NotAddressed):
        docex.open_envelope(envelope, operator)
    assert CONTENT not in docex.encode(envelope)


def test_each_envelope_and_recipient_has_a_fresh_ephemeral_key_and_content_key() -> None:
    firm, bank = _keys(2)
    one, two = _sealed(firm, bank), _sealed(firm, bank)
    ephemerals = {r["ephemeral"] for e in (one, two) for r in e["recipients"]}
    assert len(ephemerals) == 4
    assert one["ciphertext"] != two["ciphertext"] and one["id"] != two["id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("invoice_id", 8),
        ("sender", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        ("content_type", "text/html"),
        ("parties", [SENDER]),
        ("id", "0" * 32),
    ],
)
def test_the_header_is_bound_to_the_content(field: str, value: Any) -> None:
    (key,) = _keys(1)
    envelope = {**_sealed(key), field: value}
    with pytest.raises(docex.EnvelopeError):
        docex.open_envelope(envelope, key)


def test_the_document_hash_and_the_recipient_are_bound_to_the_wrapped_key() -> None:
    firm, bank = _keys(2)
    envelope = _sealed(firm, bank)
    with pytest.raises(docex.EnvelopeError):  # another document's name
        docex.open_envelope({**envelope, "sha256": "ab" * 32}, firm)
    # The firm's wrapped key moved into the bank's slot does not open for the bank.
    by_key = {r["key"]: r for r in envelope["recipients"]}
    moved = {**by_key[docex.public_hex(firm)], "key": docex.public_hex(bank)}
    with pytest.raises(docex.EnvelopeError):
        docex.open_envelope({**envelope, "recipients": [moved]}, bank)


def test_an_altered_ciphertext_does_not_open() -> None:
    (key,) = _keys(1)
    envelope = _sealed(key)
    raw = bytearray(base64.b64decode(envelope["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(docex.EnvelopeError):
        docex.open_envelope({**envelope, "ciphertext": base64.b64encode(bytes(raw)).decode()}, key)


def test_a_gateways_exchange_key_is_its_master_secrets() -> None:
    one, two = MasterSecret.of("a" * 64), MasterSecret.of("b" * 64)
    assert docex.public_hex(docex.exchange_key(one)) == docex.public_hex(docex.exchange_key(MasterSecret.of("a" * 64)))
    assert docex.public_hex(docex.exchange_key(one)) != docex.public_hex(docex.exchange_key(two))


@pytest.mark.parametrize(
    "envelope",
    [
        [],
        {"version": 2},
        {**{"version": 1}, "id": "x"},
    ],
)
def test_a_malformed_envelope_is_refused(envelope: Any) -> None:
    with pytest.raises(docex.EnvelopeError):
        docex.check_shape(envelope)


def test_an_envelope_with_a_boolean_or_string_invoice_is_refused() -> None:
    (key,) = _keys(1)
    for value in (True, "7", 7.0, 0):
        with pytest.raises(docex.EnvelopeError):
            docex.check_shape({**_sealed(key), "invoice_id": value})


def test_a_signature_covers_method_path_body_time_sender_and_receiver() -> None:
    sender, receiver = Account.create(), Account.create()
    peer = docex.Peer("http://127.0.0.1:1", str(sender.address), "00" * 32, "member", ())
    body = b'{"a": 1}'
    headers = docex.sign_request(sender, str(receiver.address), "POST", docex.INBOX_PATH, body)

    def verify(**changes: Any) -> docex.Peer:
        arguments: dict[str, Any] = {
            "headers": headers,
            "method": "POST",
            "path": docex.INBOX_PATH,
            "body": body,
            "receiver": str(receiver.address),
            "peers": [peer],
            "max_skew": 300,
        }
        arguments.update(changes)
        return docex.verify_request(
            arguments.pop("headers"), arguments.pop("method"), arguments.pop("path"), arguments.pop("body"), **arguments
        )

    assert verify() == peer
    for changes in (
        {"method": "PUT"},
        {"path": "/gateway/other"},
        {"body": b'{"a": 2}'},
        {"receiver": str(Account.create().address)},
        {"peers": []},
        {"now": time.time() + 301},
        {"headers": {**headers, docex.HEADER_TIMESTAMP: str(int(headers[docex.HEADER_TIMESTAMP]) + 1)}},
        {"headers": {**headers, docex.HEADER_SIGNATURE: "0x" + "00" * 65}},
    ):
        with pytest.raises(docex.SignatureError):
            verify(**changes)


def test_the_outbox_backs_off_doubling_up_to_the_longest_wait() -> None:
    assert [docex.backoff(n, 1.0, 10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@pytest.mark.parametrize(
    "peers",
    [
        "{}",
        "not json",
        '[{"url": "ftp://x", "account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "exchange_key": "'
        + "00" * 32
        + '"}]',
        '[{"url": "http://x", "account": "0x7099", "exchange_key": "' + "00" * 32 + '"}]',
        '[{"url": "http://x", "account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "exchange_key": "00"}]',
        '[{"url": "http://x", "account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "exchange_key": "'
        + "00" * 32
        + '", "role": "king"}]',
        '[{"url": "http://x", "account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "exchange_key": "'
        + "00" * 32
        + '", "serves": ["nobody"]}]',
    ],
)
def test_a_bad_peers_list_is_refused_at_start(peers: str) -> None:
    with pytest.raises(ValidationError):
        Settings(gateway_peers=peers)
