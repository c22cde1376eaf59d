"""The service's secrets: every key derived from the master secret, the checks a secret setting must pass
outside the local chain, and fresh values (``scf secrets new``).

Derivations (the only place any key is derived from a master secret)
---------------------------------------------------------------------

HKDF-SHA256 (RFC 5869) of the master secret's UTF-8 bytes, without salt, with one ``info`` per use:

======================================== ==========================================================
``info``                                 key
======================================== ==========================================================
``scf-ledger sign-in tokens``            HS256 key of the sign-in JWTs (:meth:`MasterSecret.token_key`)
``scf-ledger documents v<N>``            AES-256-GCM key of document key version N (:meth:`MasterSecret.document_key`)
``scf-ledger keystore <address>``        keystore password of an account, hex (:meth:`MasterSecret.keystore_password`)
``scf-ledger webhook secrets``           AES-256-GCM key of webhook signing secrets (:meth:`MasterSecret.webhook_key`)
``scf-ledger master secret id``          8 bytes, the secret's public id (:attr:`MasterSecret.id`)
======================================== ==========================================================

The id names, without revealing it (HKDF is one-way), the secret a key file, a document, a webhook signing
secret (:func:`seal_webhook_secret`) or a sign-in token was made with, so that after a rotation each is read
with the right one: :class:`MasterSecrets` holds the
current secret (everything new is written with it) and the previous ones (``SCF_PREVIOUS_MASTER_SECRETS``),
which are only ever read with, until ``scf secrets rotate`` has re-encrypted everything under the current one.

How a value is judged outside the local chain
---------------------------------------------

Entropy cannot be measured from one value, so a secret setting is accepted off the local chain (any chain id
but :data:`~ledger.node.LOCAL_CHAIN_ID`) only in the form ``scf secrets new`` prints, random bytes written out:

- hex (optionally ``0x``) or base64 / base64url (padding optional) of **at least 32 bytes**;
- with **at least 16 distinct byte values** among them (32 random bytes have about 30; a value made of a few
  repeated bytes, ``4242…42``, is not random);
- not a published development value: the defaults of ``SCF_MASTER_SECRET`` and ``SCF_KEY_SALT``, anvil's
  public dev keys as ``SCF_OPERATOR_KEY``.

A passphrase, however long, is refused: it is not random bytes, and HKDF does not stretch it. The operator key
is a private key (exactly 32 bytes of hex) and must also not be one of anvil's dev keys. The rule catches the
defaults, short values and patterns; it cannot tell whether bytes that look random were chosen at random, so
generate them (``scf secrets new``, ``openssl rand -hex 32``), never type them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_utils import to_checksum_address
from pydantic import SecretStr

from ledger.node import DEV_ACCOUNTS, LOCAL_CHAIN_ID, dev_key
from ledger.settings import DEV_KEY_SALT, DEV_MASTER_SECRET, Settings

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES: Final = 32
"""The fewest random bytes a secret setting holds off the local chain."""
MIN_DISTINCT_BYTES: Final = 16
"""The fewest distinct byte values among them (32 random bytes have about 30)."""

TOKEN_INFO: Final = b"scf-ledger sign-in tokens"
DOCUMENT_INFO_PREFIX: Final = b"scf-ledger documents v"
KEYSTORE_INFO_PREFIX: Final = b"scf-ledger keystore "
WEBHOOK_INFO: Final = b"scf-ledger webhook secrets"
ID_INFO: Final = b"scf-ledger master secret id"
NONCE_BYTES: Final = 12

SecretValue = SecretStr | str | bytes


def _hkdf(material: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def _material(value: SecretValue) -> bytes:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not value:
        raise ValueError("the master secret must not be empty")
    return value


# -- the master secret and its keys ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MasterSecret:
    """One master secret and the keys derived from it. Its repr shows the id only."""

    material: bytes = field(repr=False)

    @classmethod
    def of(cls, value: SecretValue) -> MasterSecret:
        return cls(_material(value))

    @cached_property
    def id(self) -> str:
        """The secret's public id: 16 hex digits, derived one way (it reveals nothing of the secret)."""
        return _hkdf(self.material, ID_INFO, 8).hex()

    @cached_property
    def token_key(self) -> bytes:
        """The HS256 key of sign-in JWTs."""
        return _hkdf(self.material, TOKEN_INFO)

    def document_key(self, version: int) -> bytes:
        """The AES-256-GCM key of document key version ``version`` (from 1)."""
        if version < 1:
            raise ValueError(f"key versions start at 1, not {version}")
        return _hkdf(self.material, DOCUMENT_INFO_PREFIX + str(version).encode())

    @cached_property
    def webhook_key(self) -> bytes:
        """The AES-256-GCM key of webhook subscriptions' signing secrets (:func:`seal_webhook_secret`)."""
        return _hkdf(self.material, WEBHOOK_INFO)

    def keystore_password(self, address: str) -> str:
        """The keystore password of ``address``: every key file has its own."""
        return _hkdf(self.material, KEYSTORE_INFO_PREFIX + to_checksum_address(address).encode("ascii")).hex()

    @cached_property
    def strong(self) -> bool:
        """Whether it passes the production check (:func:`weakness`): a previous secret that does not is used
        to read what it encrypted, never to accept a sign-in token off the local chain."""
        return weakness(self.material.decode("utf-8", "replace")) is None and not self.is_development_default

    @property
    def is_development_default(self) -> bool:
        return self.material == DEV_MASTER_SECRET.encode()

    def __repr__(self) -> str:
        return f"MasterSecret(id={self.id})"


@dataclass(frozen=True)
class MasterSecrets:
    """The current master secret (writes) and the previous ones (reads only, until a rotation is done)."""

    current: MasterSecret
    previous: tuple[MasterSecret, ...] = ()

    @classmethod
    def of(
        cls, current: MasterSecrets | MasterSecret | SecretValue, previous: Iterable[SecretValue] = ()
    ) -> MasterSecrets:
        if isinstance(current, MasterSecrets):
            return current
        now = current if isinstance(current, MasterSecret) else MasterSecret.of(current)
        earlier: list[MasterSecret] = []
        for value in previous:
            secret = MasterSecret.of(value)
            if secret.id != now.id and all(secret.id != e.id for e in earlier):
                earlier.append(secret)
        return cls(now, tuple(earlier))

    @property
    def all(self) -> tuple[MasterSecret, ...]:
        """The current secret first, then the previous ones."""
        return (self.current, *self.previous)

    def get(self, secret_id: str | None) -> MasterSecret | None:
        """The secret with this id, or None."""
        return next((s for s in self.all if s.id == secret_id), None)


def master_secrets(settings: Settings) -> MasterSecrets:
    """The master secrets of ``settings``: ``SCF_MASTER_SECRET`` and ``SCF_PREVIOUS_MASTER_SECRETS``."""
    return MasterSecrets.of(settings.master_secret, split_secrets(settings.previous_master_secrets))


def split_secrets(value: SecretStr | None) -> list[str]:
    """The secrets of a list setting: separated by commas, spaces or new lines (none of which hex or base64 has)."""
    if value is None:
        return []
    return [part for part in re.split(r"[,\s]+", value.get_secret_value()) if part]


# -- webhook signing secrets at rest -----------------------------------------------------------------------


class SealedSecretError(ValueError):
    """A sealed webhook secret does not open: altered, moved to another subscription, or sealed with a master
    secret that is neither the current one nor a previous one."""


def _webhook_associated_data(subscription_id: int) -> bytes:
    return f"scf-ledger webhook subscription {subscription_id}".encode("ascii")


def seal_webhook_secret(secret: MasterSecret, subscription_id: int, value: str) -> bytes:
    """``value`` (a subscription's signing secret) encrypted for the database: a fresh 96-bit nonce followed by
    the AES-256-GCM ciphertext and tag under :meth:`MasterSecret.webhook_key`, bound to the subscription's id
    (a sealed secret copied to another subscription's row does not open)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(secret.webhook_key).encrypt(
        nonce, value.encode("utf-8"), _webhook_associated_data(subscription_id)
    )


def open_webhook_secret(secrets: MasterSecrets, secret_id: str, subscription_id: int, sealed: bytes) -> str:
    """The signing secret :func:`seal_webhook_secret` sealed with the master secret whose id is ``secret_id``."""
    secret = secrets.get(secret_id)
    if secret is None:
        raise SealedSecretError(
            f"the signing secret of webhook subscription {subscription_id} is sealed with master secret {secret_id}, "
            "which is neither SCF_MASTER_SECRET nor one of SCF_PREVIOUS_MASTER_SECRETS"
        )
    try:
        plain = AESGCM(secret.webhook_key).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _webhook_associated_data(subscription_id)
        )
    except (InvalidTag, ValueError):
        raise SealedSecretError(
            f"the signing secret of webhook subscription {subscription_id} does not authenticate"
        ) from None
    return plain.decode("utf-8")


# -- judging a value ------------------------------------------------------------------------------------------

_HEX = re.compile(r"^(?:0x)?([0-9a-fA-F]+)$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def random_bytes_of(value: str) -> bytes | None:
    """The bytes ``value`` spells as hex (optionally ``0x``) or base64 / base64url, or None if it is neither."""
    value = value.strip()
    hexadecimal = _HEX.match(value)
    if hexadecimal and len(hexadecimal.group(1)) % 2 == 0:
        return bytes.fromhex(hexadecimal.group(1))
    if not _BASE64.match(value):
        return None
    standard = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def weakness(value: str) -> str | None:
    """Why ``value`` is no production secret (see the module's docstring), or None when it passes."""
    if not value.strip():
        return "is empty"
    decoded = random_bytes_of(value)
    if decoded is None:
        return "is not random bytes written as hex or base64"
    if len(decoded) < MIN_SECRET_BYTES:
        return f"holds {len(decoded)} bytes, fewer than {MIN_SECRET_BYTES}"
    distinct = len(set(decoded))
    if distinct < MIN_DISTINCT_BYTES:
        return f"repeats a few byte values ({distinct} distinct), it is not random"
    return None


def operator_key_refusal(value: str | None, chain_id: int) -> str | None:
    """Why ``value`` cannot be the operator's private key on ``chain_id`` (None: it can; None as ``value``
    is allowed on the local chain only, where the operator is anvil's first dev account)."""
    if value is None or not value.strip():
        if chain_id == LOCAL_CHAIN_ID:
            return None
        return f"is required on chain {chain_id} (anvil's public dev keys serve only the local chain {LOCAL_CHAIN_ID})"
    try:
        key = bytes(Account.from_key(value.strip()).key)
    except (ValueError, TypeError):
        return "is not a valid private key (64 hex digits)"
    if chain_id == LOCAL_CHAIN_ID:
        return None
    if key in {dev_key(i) for i in range(DEV_ACCOUNTS)}:
        return f"is one of anvil's public dev keys; refusing to use it on chain {chain_id}"
    if len(set(key)) < MIN_DISTINCT_BYTES:
        return f"repeats a few byte values ({len(set(key))} distinct), it is not random"
    return None


class SecretRefused(ValueError):
    """A secret setting is refused on this chain; the message names the setting and how to make a value."""

    def __init__(self, setting: str, reason: str, *, advice: str = "`scf secrets new` prints fresh values") -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting} {reason}; {advice}")


def check_secrets(settings: Settings) -> list[str]:
    """Refuse (:class:`SecretRefused`) a secret setting that is unfit for ``settings.chain_id``; return warnings.

    On the local chain everything is accepted but an operator key that is no private key. Elsewhere the master
    secret and the key salt must pass :func:`weakness` and not be the development defaults, and the operator key
    :func:`operator_key_refusal`. A previous master secret that fails the check is still used to read what it
    encrypted (so that a deployment that ran on the default can move off it), never to accept a sign-in token:
    a warning says so.
    """
    local = settings.chain_id == LOCAL_CHAIN_ID
    where = f"outside the local chain {LOCAL_CHAIN_ID}"
    for name, default in (("master_secret", DEV_MASTER_SECRET), ("key_salt", DEV_KEY_SALT)):
        if local:
            break
        value: SecretStr = getattr(settings, name)
        setting = settings.secret_source(name)
        if value.get_secret_value() == default:
            raise SecretRefused(setting, f"holds the public development default, refused {where}")
        reason = weakness(value.get_secret_value())
        if reason is not None:
            if name == "key_salt":
                raise SecretRefused(
                    setting,
                    f"{reason}, refused {where}",
                    advice="`scf secrets new` prints a salt (choose it before launch: it never changes after)",
                )
            raise SecretRefused(setting, f"{reason}, refused {where}")
    operator = None if settings.operator_key is None else settings.operator_key.get_secret_value()
    refusal = operator_key_refusal(operator, settings.chain_id)
    if refusal is not None:
        raise SecretRefused(settings.secret_source("operator_key"), refusal)
    if local:
        return []
    warnings = []
    for secret in master_secrets(settings).previous:
        if not secret.strong:
            warnings.append(
                f"a previous master secret ({secret.id}) is weak or the development default: it is used to read "
                "what it encrypted until `scf secrets rotate` is done, and no sign-in token signed with it is accepted"
            )
    return warnings


# -- fresh values --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreshSecrets:
    master_secret: str
    key_salt: str
    operator_key: str

    @property
    def operator_address(self) -> str:
        return str(Account.from_key(self.operator_key).address)


def fresh_secrets() -> FreshSecrets:
    """New random values for ``SCF_MASTER_SECRET``, ``SCF_KEY_SALT`` and ``SCF_OPERATOR_KEY`` (32 bytes each)."""
    while True:
        values = FreshSecrets(secrets.token_hex(32), secrets.token_hex(32), "0x" + secrets.token_hex(32))
        # Drawn until each passes (a 32-byte draw fails the distinct-bytes rule with odds far below 2**-100;
        # a private key must also be below the curve's order).
        if all(weakness(v) is None for v in (values.master_secret, values.key_salt)) and (
            operator_key_refusal(values.operator_key, 0) is None
        ):
            return values
