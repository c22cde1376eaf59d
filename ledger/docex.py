"""Documents between gateways (docs/consortium.md, "Documents between gateways"): the envelope, the gateway's
exchange key, the signed requests and answers, the peers a gateway trusts, its outbox and its inbox.

**The envelope** (version 1, JSON). The document is encrypted once with a fresh random AES-256-GCM content key;
the content key is wrapped for each recipient gateway's X25519 public key with a fresh ephemeral X25519 key per
recipient: ``wrap key = HKDF-SHA256(ECDH(ephemeral, recipient), info = "scf-docex-v1 wrap" | ephemeral public |
recipient public)``, the wrapped key's associated data naming the document's SHA-256, the recipient's public key
and the envelope id. The content's associated data binds the envelope's header (id, SHA-256, invoice, sender,
content type, parties). Every primitive is the ``cryptography`` package's; nothing here is hand-made crypto.

**Keys.** A gateway's X25519 private key is derived from its current master secret (HKDF, its own ``info``), so
it needs no key file of its own; ``GET /gateway`` publishes the public key with the gateway account's signature
of it (:func:`key_statement`). A peer is trusted only as configured (``SCF_GATEWAY_PEERS``: its URL, account,
exchange key, role and the accounts it serves): the configured list is the registry of gateways a gateway trusts.

**Requests** between gateways are signed by the sending gateway's own account (its ``SCF_OPERATOR_KEY``, EIP-191)
over the method, path, SHA-256 of the body, a timestamp and the receiving gateway's account; the receiver checks
the signer against its peers and the timestamp against its clock. Its answer is signed likewise over the status,
the SHA-256 of the answer and the request's signature, and the sender counts a delivery only on an answer signed by
the peer it meant: both ends are authenticated, over plain HTTP or behind a TLS proxy alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from sqlalchemy import DateTime, Integer, LargeBinary, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ledger.db import Base, utc_now
from ledger.secrets import MasterSecret

VERSION = 1
EXCHANGE_KEY_INFO = b"scf-ledger gateway exchange key x25519 v1"
WRAP_INFO = b"scf-docex-v1 wrap"
INBOX_PATH = "/gateway/inbox"
HEADER_GATEWAY = "X-SCF-Gateway"
HEADER_TIMESTAMP = "X-SCF-Timestamp"
HEADER_SIGNATURE = "X-SCF-Signature"
NONCE_BYTES = 12


class EnvelopeError(Exception):
    """An envelope that is malformed or does not authenticate."""


class NotAddressed(EnvelopeError):
    """The envelope holds no wrapped key for this gateway's exchange key: it cannot open it."""


class SignatureError(Exception):
    """A request or answer between gateways without a valid signature of a trusted peer."""


# -- keys ------------------------------------------------------------------------------------------------------


def exchange_key(secret: MasterSecret) -> X25519PrivateKey:
    """This gateway's X25519 private key, derived from its master secret (a new master secret: a new key)."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=EXCHANGE_KEY_INFO).derive(secret.material)
    return X25519PrivateKey.from_private_bytes(seed)


def public_hex(key: X25519PrivateKey | X25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_statement(account: str, chain_id: int, public_key: str) -> str:
    """The text a gateway's account signs to publish its exchange key (``GET /gateway``)."""
    return f"scf-ledger gateway exchange key\naccount: {account}\nchain: {chain_id}\nx25519: {public_key}"


def _public(value: str) -> X25519PublicKey:
    try:
        raw = bytes.fromhex(value)
        if len(raw) != 32:
            raise ValueError("not 32 bytes")
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an X25519 public key (64 hex digits): {exc}") from None


# -- peers -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A gateway this gateway trusts (``SCF_GATEWAY_PEERS``)."""

    url: str
    account: str
    exchange_key: str
    role: str
    serves: tuple[str, ...]


def parse_peers(value: str) -> tuple[Peer, ...]:
    """``SCF_GATEWAY_PEERS``: a JSON list of ``{"url", "account", "exchange_key", "role", "serves"}``."""
    if not value.strip():
        return ()
    items = json.loads(value)
    if not isinstance(items, list):
        raise ValueError("SCF_GATEWAY_PEERS must be a JSON list of peers")
    peers: list[Peer] = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("each peer of SCF_GATEWAY_PEERS is an object")
        url, account, key = item.get("url"), item.get("account"), item.get("exchange_key")
        role = item.get("role", "member")
        serves = item.get("serves", [])
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"peer url {url!r} is not an http(s) URL")
        if not isinstance(account, str) or not is_address(account):
            raise ValueError(f"peer account {account!r} is not an address")
        if not isinstance(key, str):
            raise ValueError(f"peer exchange_key {key!r} is not a string")
        _public(key)
        if role not in ("operator", "member", "regulator"):
            raise ValueError(f"peer role {role!r} is not operator, member or regulator")
        if not isinstance(serves, list) or not all(isinstance(a, str) and is_address(a) for a in serves):
            raise ValueError("peer serves must be a list of addresses")
        peers.append(
            Peer(
                url.rstrip("/"),
                str(to_checksum_address(account)),
                key.lower(),
                role,
                tuple(str(to_checksum_address(a)) for a in serves),
            )
        )
    return tuple(peers)


def peer_serving(peers: Iterable[Peer], address: str) -> Peer | None:
    return next((peer for peer in peers if address in peer.serves), None)


# -- the envelope ----------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError("a binary field is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise EnvelopeError("a binary field is not base64") from None


def _header(envelope: Mapping[str, Any]) -> bytes:
    fields = ("version", "id", "sha256", "invoice_id", "sender", "content_type", "parties")
    return json.dumps({f: envelope[f] for f in fields}, sort_keys=True, separators=(",", ":")).encode()


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    info = WRAP_INFO + b"|" + ephemeral + recipient
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _wrap_aad(sha256: str, recipient: bytes, envelope_id: str) -> bytes:
    return b"scf-docex-v1|" + sha256.encode("ascii") + b"|" + recipient + b"|" + envelope_id.encode("ascii")


def seal(
    content: bytes,
    *,
    invoice_id: int,
    sender: str,
    recipients: Iterable[str],
    content_type: str = "application/octet-stream",
    parties: Iterable[str] = (),
) -> dict[str, Any]:
    """An envelope of ``content`` that only the holders of the ``recipients``' X25519 keys can open."""
    keys = sorted({key.lower() for key in recipients})
    if not keys:
        raise ValueError("an envelope needs at least one recipient")
    envelope: dict[str, Any] = {
        "version": VERSION,
        "id": uuid.uuid4().hex,
        "sha256": hashlib.sha256(content).hexdigest(),
        "invoice_id": invoice_id,
        "sender": sender,
        "content_type": content_type,
        "parties": sorted(set(parties)),
    }
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    envelope["nonce"] = _b64(nonce)
    envelope["ciphertext"] = _b64(AESGCM(content_key).encrypt(nonce, content, _header(envelope)))
    wrapped: list[dict[str, str]] = []
    for key in keys:
        recipient = _public(key)
        raw_recipient = bytes.fromhex(key)
        ephemeral = X25519PrivateKey.generate()
        raw_ephemeral = bytes.fromhex(public_hex(ephemeral))
        wrap_key = _wrap_key(ephemeral.exchange(recipient), raw_ephemeral, raw_recipient)
        wrap_nonce = os.urandom(NONCE_BYTES)
        aad = _wrap_aad(envelope["sha256"], raw_recipient, envelope["id"])
        wrapped.append(
            {
                "key": key,
                "ephemeral": raw_ephemeral.hex(),
                "nonce": _b64(wrap_nonce),
                "wrapped": _b64(AESGCM(wrap_key).encrypt(wrap_nonce, content_key, aad)),
            }
        )
    envelope["recipients"] = wrapped
    return envelope


def check_shape(envelope: Any) -> dict[str, Any]:
    """``envelope`` if it has the fields and types of a version-1 envelope (:class:`EnvelopeError` otherwise)."""
    if not isinstance(envelope, dict):
        raise EnvelopeError("the envelope is not a JSON object")
    if envelope.get("version") != VERSION:
        raise EnvelopeError(f"the envelope's version is not {VERSION}")
    strings = ("id", "sha256", "sender", "content_type", "nonce", "ciphertext")
    if not all(isinstance(envelope.get(f), str) for f in strings):
        raise EnvelopeError(f"the envelope lacks one of {', '.join(strings)}")
    invoice_id = envelope.get("invoice_id")
    if type(invoice_id) is not int or invoice_id < 1:
        raise EnvelopeError("the envelope's invoice_id is not a positive integer")
    if len(envelope["id"]) != 32 or any(c not in "0123456789abcdef" for c in envelope["id"]):
        raise EnvelopeError("the envelope's id is not 32 hex digits")
    if len(envelope["sha256"]) != 64 or any(c not in "0123456789abcdef" for c in envelope["sha256"]):
        raise EnvelopeError("the envelope's sha256 is not 64 lower-case hex digits")
    if not is_address(envelope["sender"]) or len(envelope["content_type"]) > 200:
        raise EnvelopeError("the envelope's sender or content type is not valid")
    parties = envelope.get("parties")
    if (
        not isinstance(parties, list)
        or len(parties) > 50
        or not all(isinstance(p, str) and is_address(p) for p in parties)
    ):
        raise EnvelopeError("the envelope's parties are not a list of at most 50 addresses")
    recipients = envelope.get("recipients")
    if not isinstance(recipients, list) or not recipients or len(recipients) > 50:
        raise EnvelopeError("the envelope's recipients are not a list of 1 to 50")
    for entry in recipients:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) for f in ("key", "ephemeral")):
            raise EnvelopeError("a recipient of the envelope is malformed")
    return envelope


def open_envelope(envelope: Mapping[str, Any], key: X25519PrivateKey) -> bytes:
    """The content of ``envelope``, opened with this gateway's key: :class:`NotAddressed` if it holds no wrapped
    key for it, :class:`EnvelopeError` if anything does not authenticate or the content is not its SHA-256."""
    own = public_hex(key)
    entry = next((r for r in envelope["recipients"] if r.get("key") == own), None)
    if entry is None:
        raise NotAddressed("the envelope is not addressed to this gateway's exchange key")
    try:
        raw_ephemeral = bytes.fromhex(entry["ephemeral"])
        ephemeral = X25519PublicKey.from_public_bytes(raw_ephemeral)
        wrap_key = _wrap_key(key.exchange(ephemeral), raw_ephemeral, bytes.fromhex(own))
        aad = _wrap_aad(envelope["sha256"], bytes.fromhex(own), envelope["id"])
        content_key = AESGCM(wrap_key).decrypt(_unb64(entry.get("nonce")), _unb64(entry.get("wrapped")), aad)
        content = AESGCM(content_key).decrypt(
            _unb64(envelope["nonce"]), _unb64(envelope["ciphertext"]), _header(envelope)
        )
    except (InvalidTag, ValueError):
        raise EnvelopeError("the envelope does not authenticate for this gateway's key") from None
    if hashlib.sha256(content).hexdigest() != envelope["sha256"]:
        raise EnvelopeError("the content is not the SHA-256 the envelope names")
    return content


def encode(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


# -- signed requests and answers -------------------------------------------------------------------------------


def request_message(method: str, path: str, body: bytes, timestamp: int, sender: str, receiver: str) -> str:
    digest = hashlib.sha256(body).hexdigest()
    return f"scf-docex-v1 request\n{method.upper()}\n{path}\n{digest}\n{timestamp}\n{sender}\n{receiver}"


def answer_message(status: int, body: bytes, request_signature: str) -> str:
    return f"scf-docex-v1 answer\n{status}\n{hashlib.sha256(body).hexdigest()}\n{request_signature}"


def _sign(account: LocalAccount, text: str) -> str:
    return str(account.sign_message(encode_defunct(text=text)).signature.to_0x_hex())


def _recover(text: str, signature: str) -> str:
    try:
        return str(
            Account.recover_message(encode_defunct(text=text), signature=bytes.fromhex(signature.removeprefix("0x")))
        )
    except Exception:  # a signature that is not one (eth_keys raises several kinds)
        raise SignatureError("the signature does not recover an account") from None


def sign_request(account: LocalAccount, receiver: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers that authenticate a request of this gateway's ``account`` to the peer ``receiver``."""
    timestamp = int(time.time())
    sender = str(account.address)
    return {
        HEADER_GATEWAY: sender,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: _sign(account, request_message(method, path, body, timestamp, sender, receiver)),
    }


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    receiver: str,
    peers: Iterable[Peer],
    max_skew: float,
    now: float | None = None,
) -> Peer:
    """The trusted peer that signed this request to ``receiver`` (:class:`SignatureError` otherwise)."""
    sender, stamp, signature = (headers.get(h) for h in (HEADER_GATEWAY, HEADER_TIMESTAMP, HEADER_SIGNATURE))
    if not sender or not stamp or not signature:
        raise SignatureError(f"the request lacks {HEADER_GATEWAY}, {HEADER_TIMESTAMP} or {HEADER_SIGNATURE}")
    if not stamp.isdigit():
        raise SignatureError(f"{HEADER_TIMESTAMP} is not a Unix time")
    if abs((time.time() if now is None else now) - int(stamp)) > max_skew:
        raise SignatureError(f"{HEADER_TIMESTAMP} is more than {max_skew:g} seconds from this gateway's clock")
    if not is_address(sender):
        raise SignatureError(f"{HEADER_GATEWAY} is not an address")
    sender = str(to_checksum_address(sender))
    peer = next((p for p in peers if p.account == sender), None)
    if peer is None:
        raise SignatureError(f"{sender} is not a gateway this gateway trusts (SCF_GATEWAY_PEERS)")
    if _recover(request_message(method, path, body, int(stamp), sender, receiver), signature) != sender:
        raise SignatureError(f"the signature is not {sender}'s over this request")
    return peer


def sign_answer(account: LocalAccount, status: int, body: bytes, request_signature: str) -> dict[str, str]:
    return {
        HEADER_GATEWAY: str(account.address),
        HEADER_SIGNATURE: _sign(account, answer_message(status, body, request_signature)),
    }


def verify_answer(headers: Mapping[str, str], status: int, body: bytes, request_signature: str, peer: Peer) -> None:
    signature = headers.get(HEADER_SIGNATURE)
    if not signature:
        raise SignatureError("the answer is not signed")
    if _recover(answer_message(status, body, request_signature), signature) != peer.account:
        raise SignatureError(f"the answer is not signed by {peer.account}, the peer this was sent to")


# -- outbox and inbox ------------------------------------------------------------------------------------------


class OutboxRecord(Base):
    """An envelope waiting for (or done with) its delivery to one peer (``0021_document_exchange``)."""

    __tablename__ = "document_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    envelope_id: Mapped[str] = mapped_column(String(32), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    peer_account: Mapped[str] = mapped_column(String(42))
    peer_url: Mapped[str] = mapped_column(String(500))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The envelope as sent: ciphertext only (this gateway reads the document from its own store)."""
    state: Mapped[str] = mapped_column(String(12), default="pending")
    """``pending``, ``delivered``, or ``refused`` (the peer refused it for good: a 4xx other than 408/429)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InboxRecord(Base):
    """An envelope received from a peer, once (``0021_document_exchange``)."""

    __tablename__ = "document_inbox"

    envelope_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(42))
    invoice_id: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


def enqueue(sessions: sessionmaker[Session], envelope: Mapping[str, Any], peers: Iterable[Peer]) -> list[int]:
    """One outbox row per peer for ``envelope``; their ids."""
    body = encode(envelope)
    with sessions() as session, session.begin():
        rows = [
            OutboxRecord(
                envelope_id=envelope["id"],
                sha256=envelope["sha256"],
                peer_account=peer.account,
                peer_url=peer.url,
                body=body,
            )
            for peer in peers
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


Post = Callable[[str, bytes, Mapping[str, str]], Answer]
"""Send a POST (url, body, headers) and return the answer; raises ``OSError``/``httpx.HTTPError`` when the peer
cannot be reached."""


def backoff(attempts: int, first: float, longest: float) -> float:
    return float(min(longest, first * 2 ** max(0, attempts - 1)))


def deliver_due(
    sessions: sessionmaker[Session],
    account: LocalAccount,
    peers: Iterable[Peer],
    post: Post,
    *,
    first_backoff: float,
    longest_backoff: float,
    now: Callable[[], datetime] = utc_now,
) -> int:
    """Try every pending outbox row that is due, once each; return how many were delivered. A peer that cannot
    be reached, answers 5xx, 408 or 429, or answers without its signature is tried again after a backoff
    (doubling from ``first_backoff`` to ``longest_backoff``); any other 4xx refuses the row for good."""
    trusted = {peer.account: peer for peer in peers}
    with sessions() as session:
        due = session.scalars(
            select(OutboxRecord.id)
            .where(OutboxRecord.state == "pending", OutboxRecord.next_attempt_at <= now())
            .order_by(OutboxRecord.id)
        ).all()
    delivered = 0
    for row_id in due:
        with sessions() as session:
            row = session.get(OutboxRecord, row_id)
            assert row is not None
            session.expunge(row)
        peer = trusted.get(row.peer_account)
        error: str | None
        state = "pending"
        if peer is None:
            error = f"{row.peer_account} is no longer a peer (SCF_GATEWAY_PEERS)"
        else:
            headers = sign_request(account, peer.account, "POST", INBOX_PATH, row.body)
            headers["Content-Type"] = "application/json"
            try:
                answer = post(peer.url + INBOX_PATH, row.body, headers)
            except OSError as exc:
                error = f"unreachable: {exc}"
            except Exception as exc:  # httpx's transport errors
                error = f"unreachable: {type(exc).__name__}: {exc}"
            else:
                try:
                    verify_answer(answer.headers, answer.status, answer.body, headers[HEADER_SIGNATURE], peer)
                except SignatureError as exc:
                    error = f"answer {answer.status}: {exc}"
                else:
                    if answer.status < 300:
                        state, error = "delivered", None
                    elif 400 <= answer.status < 500 and answer.status not in (408, 429):
                        state, error = (
                            "refused",
                            f"answer {answer.status}: {answer.body[:500].decode(errors='replace')}",
                        )
                    else:
                        error = f"answer {answer.status}: {answer.body[:500].decode(errors='replace')}"
        with sessions() as session, session.begin():
            stored = session.get(OutboxRecord, row_id)
            assert stored is not None
            stored.attempts += 1
            stored.state = state
            stored.last_error = error
            if state == "delivered":
                stored.delivered_at = now()
                delivered += 1
            elif state == "pending":
                stored.next_attempt_at = now() + timedelta(
                    seconds=backoff(stored.attempts, first_backoff, longest_backoff)
                )
    return delivered


def record_received(sessions: sessionmaker[Session], envelope: Mapping[str, Any]) -> bool:
    """Note ``envelope`` as received; False if it was received before (the same envelope id)."""
    try:
        with sessions() as session, session.begin():
            if session.get(InboxRecord, envelope["id"]) is not None:
                return False
            session.add(
                InboxRecord(
                    envelope_id=envelope["id"],
                    sha256=envelope["sha256"],
                    sender=envelope["sender"],
                    invoice_id=envelope["invoice_id"],
                )
            )
        return True
    except IntegrityError:  # received concurrently
        return False


def already_received(sessions: sessionmaker[Session], envelope_id: str) -> bool:
    with sessions() as session:
        return session.get(InboxRecord, envelope_id) is not None
