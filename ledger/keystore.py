"""Participants' signing keys, encrypted at rest.

Each key is one Ethereum keystore v3 file (scrypt + AES-128-CTR + a keccak MAC, the format geth and every
wallet read) at ``<directory>/<address>.json``, readable by its owner only (0600). The file's password is
never stored: it is derived from the service's master secret and the account's address
(:meth:`ledger.secrets.MasterSecret.keystore_password`), so every file has its own password and a copied file
is useless without the master secret. No private key is ever written in plaintext.

A file records the id of the master secret that encrypted it (``x-scf-master-secret``, beside the standard
fields, which wallets ignore), so that after the master secret changed it is read with the previous one it
names; a file written before the field existed is tried with each secret in turn. :meth:`Keystore.reencrypt`
writes a file again under the current secret (``scf secrets rotate`` does it for every file).

Decrypting costs one scrypt run (n = 2**14 here by default, about 50 ms; the keystore standard's 2**18 takes
about a second), so a decrypted account is kept in memory after its first use.
"""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from ledger.abi import checksum_address
from ledger.secrets import MasterSecret, MasterSecrets, SecretValue

DEFAULT_SCRYPT_N = 2**14
"""scrypt cost of new key files: 16 times cheaper than the keystore standard's 2**18 (about 1 s per decrypt)."""

SECRET_ID_FIELD = "x-scf-master-secret"
"""The key file's field naming the master secret (its id) that encrypted it."""


class KeystoreError(Exception):
    """A key file is missing, unreadable or cannot be decrypted."""


class UnknownAccount(KeystoreError, KeyError):
    """No key file for this address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"no key for {address} in the keystore")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class KeyDecryptionError(KeystoreError):
    """A key file does not decrypt with the password derived from the master secret: the file was altered
    (MAC mismatch) or the master secret is not the one that wrote it."""


class Keystore:
    """Encrypted signing keys of the participants the service signs for.

    ``directory`` is created (0700) when missing; usually ``Settings.data_dir / "keystore"``. New files are
    encrypted with the current master secret; a file is read with the secret it names. Thread-safe.
    """

    def __init__(
        self,
        directory: Path | str,
        master_secrets: MasterSecrets | SecretValue,
        *,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> None:
        if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
            raise ValueError("scrypt_n must be a power of two")
        self.directory = Path(directory)
        self.scrypt_n = scrypt_n
        self.secrets = MasterSecrets.of(master_secrets)
        self._accounts: dict[str, LocalAccount] = {}
        self._lock = threading.Lock()

    # -- writing ------------------------------------------------------------------------------------

    def create(self) -> str:
        """Generate a new key, store it encrypted and return its checksum address."""
        account: LocalAccount = Account.create()
        self._store(account)
        return str(account.address)

    def import_key(self, private_key: bytes | str) -> str:
        """Store an existing private key (32 bytes, or hex) encrypted and return its address.

        Importing a key that is already stored is a no-op; a different file under the same address (which can
        only be a damaged one) is an error.
        """
        account: LocalAccount = Account.from_key(private_key)
        address = str(account.address)
        if self._path(address).exists():
            if self.account(address).key != account.key:  # pragma: no cover - needs a keccak collision
                raise KeystoreError(f"a different key is stored for {address}")
            return address
        self._store(account)
        return address

    def reencrypt(self, address: str) -> bool:
        """Write the key file of ``address`` again under the current master secret, unless it already is;
        return whether it was rewritten. The file is replaced atomically, so a reader sees the old file or
        the new one, never a mix."""
        address = to_checksum_address(address)
        keyfile = self._read(address)
        if keyfile.get(SECRET_ID_FIELD) == self.secrets.current.id:
            return False
        account = self._decrypt(address, keyfile)
        self._store(account)
        return True

    def erase(self, address: str) -> bool:
        """Delete the key of ``address`` (its file and the decrypted account kept in memory); return whether there
        was one. The file is first renamed out of the keystore's name space (atomically: a reader finds the key
        or no key, never half a file), overwritten with zeros and synced, then unlinked, and the directory synced,
        so that the deletion survives a crash. Used when a hosted participant takes its own key
        (self-custody): the service must hold no key of it any more."""
        if not is_address(address):
            raise UnknownAccount(address)
        address = to_checksum_address(address)
        path = self._path(address)
        doomed = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.erased")
        with self._lock:
            self._accounts.pop(address, None)
            try:
                os.replace(path, doomed)
            except FileNotFoundError:
                return False
        try:
            size = doomed.stat().st_size
            with open(doomed, "r+b") as handle:
                handle.write(bytes(size))
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            doomed.unlink(missing_ok=True)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return True

    def secret_id_of(self, address: str) -> str | None:
        """The id of the master secret the key file of ``address`` says it is encrypted with (None: it
        predates the field)."""
        value = self._read(to_checksum_address(address)).get(SECRET_ID_FIELD)
        return value if isinstance(value, str) else None

    def _store(self, account: LocalAccount) -> None:
        address = str(account.address)
        secret = self.secrets.current
        keyfile = Account.encrypt(
            account.key, secret.keystore_password(address), kdf="scrypt", iterations=self.scrypt_n
        )
        keyfile[SECRET_ID_FIELD] = secret.id
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(address)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(keyfile, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        with self._lock:
            self._accounts[address] = account

    # -- reading ------------------------------------------------------------------------------------

    def account(self, address: str) -> LocalAccount:
        """The decrypted account of ``address`` (decrypted once, then served from memory)."""
        if not is_address(address):
            raise UnknownAccount(address)
        address = checksum_address(address)
        with self._lock:
            cached = self._accounts.get(address)
        if cached is not None:
            return cached
        account = self._decrypt(address, self._read(address))
        with self._lock:
            self._accounts[address] = account
        return account

    def _read(self, address: str) -> dict[str, Any]:
        path = self._path(address)
        try:
            keyfile: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnknownAccount(address) from None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"unreadable key file {path.name}: {exc}") from exc
        if not isinstance(keyfile, dict):
            raise KeystoreError(f"malformed key file {path.name}")
        return keyfile

    def _decrypt(self, address: str, keyfile: dict[str, Any]) -> LocalAccount:
        """The account in ``keyfile``, decrypted with the master secret it names (or, when it names none, the
        first that opens it)."""
        named = keyfile.get(SECRET_ID_FIELD)
        secret = self.secrets.get(named) if isinstance(named, str) else None
        if named is not None and secret is None:
            raise KeyDecryptionError(
                f"key file of {address} is encrypted with master secret {named}, which is neither "
                "SCF_MASTER_SECRET nor one of SCF_PREVIOUS_MASTER_SECRETS"
            )
        candidates: tuple[MasterSecret, ...] = (secret,) if secret is not None else self.secrets.all
        failure: Exception | None = None
        for candidate in candidates:
            try:
                private_key = Account.decrypt(keyfile, candidate.keystore_password(address))
            except ValueError as exc:  # eth_account: "MAC mismatch"
                failure = exc
                continue
            except (KeyError, TypeError) as exc:
                raise KeystoreError(f"malformed key file of {address}: {exc!r}") from exc
            account: LocalAccount = Account.from_key(private_key)
            if account.address != address:
                raise KeyDecryptionError(f"key file of {address} holds the key of {account.address}")
            return account
        raise KeyDecryptionError(f"key file of {address} does not decrypt: {failure}") from failure

    def addresses(self) -> list[str]:
        """Checksum addresses of every stored key, sorted."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.json"):
            if is_address(path.stem):
                found.append(to_checksum_address(path.stem))
        return sorted(found)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and _is_address(address) and self._path(address).exists()

    def _path(self, address: str) -> Path:
        return self.directory / f"{checksum_address(address)}.json"


@lru_cache(maxsize=1 << 12)
def _is_address(value: str) -> bool:
    """``is_address``, remembered: the pipeline asks whether it holds a sender's key for every transaction, and
    the check of a mixed-case address is a keccak (as is the checksum of its file name, also remembered)."""
    return bool(is_address(value))
