"""The encrypted keystore: keys survive a round trip, never touch the disk in plaintext, and refuse to decrypt
when the file was altered or the master secret is another one."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from ledger.keystore import KeyDecryptionError, Keystore, UnknownAccount, derive_password

SECRET = "test master secret"
FAST_N = 2**10  # scrypt cost for tests; production default is 2**14


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keystore", SECRET, scrypt_n=FAST_N)


def test_created_key_round_trips_through_a_fresh_keystore(keystore: Keystore) -> None:
    address = keystore.create()
    reopened = Keystore(keystore.directory, SECRET, scrypt_n=FAST_N)
    account = reopened.account(address)
    assert account.address == address
    assert account.key == keystore.account(address).key
    assert reopened.addresses() == [address]


def test_imported_key_round_trips_and_reimport_is_a_no_op(keystore: Keystore) -> None:
    key = keccak(text="a supplier's key")
    address = keystore.import_key(key)
    assert address == Account.from_key(key).address
    assert keystore.import_key("0x" + key.hex()) == address
    assert Keystore(keystore.directory, SECRET, scrypt_n=FAST_N).account(address.lower()).key == key
    assert keystore.addresses() == [address]


def test_key_files_are_owner_only_and_hold_no_plaintext_key(keystore: Keystore) -> None:
    key = keccak(text="a financier's key")
    address = keystore.import_key(key)
    path = keystore.directory / f"{address}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keystore.directory.stat().st_mode) & 0o077 == 0
    content = path.read_bytes()
    for needle in (key, key.hex().encode(), key.hex().upper().encode()):
        assert needle not in content
    password = derive_password(SECRET.encode(), address).encode()
    assert password not in content
    assert SECRET.encode() not in content
    keyfile = json.loads(content)
    assert keyfile["version"] == 3
    assert keyfile["crypto"]["kdf"] == "scrypt"
    assert keyfile["crypto"]["kdfparams"]["n"] == FAST_N
    assert list(keystore.directory.glob(".*")) == []  # no temporary file left behind


def test_tampered_key_file_is_refused(keystore: Keystore) -> None:
    address = keystore.create()
    path = keystore.directory / f"{address}.json"
    keyfile = json.loads(path.read_text())
    ciphertext = bytearray(bytes.fromhex(keyfile["crypto"]["ciphertext"]))
    ciphertext[0] ^= 0x01
    keyfile["crypto"]["ciphertext"] = ciphertext.hex()
    path.write_text(json.dumps(keyfile))
    with pytest.raises(KeyDecryptionError, match="MAC mismatch"):
        Keystore(keystore.directory, SECRET, scrypt_n=FAST_N).account(address)


def test_key_file_moved_under_another_address_is_refused(keystore: Keystore) -> None:
    first, second = keystore.create(), keystore.create()
    (keystore.directory / f"{first}.json").replace(keystore.directory / f"{second}.json")
    with pytest.raises(KeyDecryptionError):  # the password is derived from the address, so it fails the MAC
        Keystore(keystore.directory, SECRET, scrypt_n=FAST_N).account(second)


def test_wrong_master_secret_is_refused(keystore: Keystore) -> None:
    address = keystore.create()
    with pytest.raises(KeyDecryptionError):
        Keystore(keystore.directory, "another secret", scrypt_n=FAST_N).account(address)


def test_each_account_has_its_own_password() -> None:
    one, two = Account.create().address, Account.create().address
    assert derive_password(b"s", one) != derive_password(b"s", two)
    assert derive_password(b"s", one) == derive_password(b"s", one.lower())
    assert derive_password(b"s", one) != derive_password(b"t", one)


def test_unknown_address_raises_unknown_account(keystore: Keystore) -> None:
    with pytest.raises(UnknownAccount):
        keystore.account(Account.create().address)
    with pytest.raises(UnknownAccount):
        keystore.account("not an address")
    assert keystore.addresses() == []


def test_empty_master_secret_and_bad_scrypt_cost_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Keystore(tmp_path, "")
    with pytest.raises(ValueError):
        Keystore(tmp_path, SECRET, scrypt_n=1000)
