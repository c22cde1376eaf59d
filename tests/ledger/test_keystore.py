"""The encrypted keystore: keys survive a round trip, never touch the disk in plaintext, and refuse to decrypt
when the file was altered or the master secret is another one; after a change of master secret a file is read
with the previous secret it names until it is re-encrypted under the new one."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from ledger.keystore import SECRET_ID_FIELD, KeyDecryptionError, Keystore, UnknownAccount
from ledger.secrets import MasterSecret, MasterSecrets

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
    password = MasterSecret.of(SECRET).keystore_password(address).encode()
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
    assert MasterSecret.of("s").keystore_password(one) != MasterSecret.of("s").keystore_password(two)
    assert MasterSecret.of("s").keystore_password(one) == MasterSecret.of("s").keystore_password(one.lower())
    assert MasterSecret.of("s").keystore_password(one) != MasterSecret.of("t").keystore_password(one)


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


NEW_SECRET = "the next master secret"


def test_a_key_file_names_its_master_secret_and_is_read_with_the_previous_one_after_a_change(
    keystore: Keystore,
) -> None:
    address = keystore.create()
    key = keystore.account(address).key
    path = keystore.directory / f"{address}.json"
    assert json.loads(path.read_text())[SECRET_ID_FIELD] == MasterSecret.of(SECRET).id
    rotated = Keystore(keystore.directory, MasterSecrets.of(NEW_SECRET, [SECRET]), scrypt_n=FAST_N)
    assert rotated.account(address).key == key
    with pytest.raises(KeyDecryptionError, match="neither SCF_MASTER_SECRET nor"):
        Keystore(keystore.directory, NEW_SECRET, scrypt_n=FAST_N).account(address)


def test_reencryption_puts_a_key_file_under_the_new_master_secret_only(keystore: Keystore) -> None:
    address = keystore.create()
    key = keystore.account(address).key
    rotated = Keystore(keystore.directory, MasterSecrets.of(NEW_SECRET, [SECRET]), scrypt_n=FAST_N)
    assert rotated.reencrypt(address) is True
    assert rotated.reencrypt(address) is False  # already under the new secret: not written again
    assert rotated.secret_id_of(address) == MasterSecret.of(NEW_SECRET).id
    assert Keystore(keystore.directory, NEW_SECRET, scrypt_n=FAST_N).account(address).key == key
    keyfile = json.loads((keystore.directory / f"{address}.json").read_text())
    with pytest.raises(ValueError, match="MAC mismatch"):  # the old secret's password opens it no more
        Account.decrypt(keyfile, MasterSecret.of(SECRET).keystore_password(address))
    assert list(keystore.directory.glob(".*")) == []


def test_a_key_file_from_before_secret_ids_is_read_by_trying_each_secret(keystore: Keystore) -> None:
    address = keystore.create()
    key = keystore.account(address).key
    path = keystore.directory / f"{address}.json"
    keyfile = json.loads(path.read_text())
    del keyfile[SECRET_ID_FIELD]
    path.write_text(json.dumps(keyfile))
    rotated = Keystore(keystore.directory, MasterSecrets.of(NEW_SECRET, [SECRET]), scrypt_n=FAST_N)
    assert rotated.secret_id_of(address) is None
    assert rotated.account(address).key == key
    assert rotated.reencrypt(address) is True
    assert rotated.secret_id_of(address) == MasterSecret.of(NEW_SECRET).id


def test_an_erased_key_is_gone_from_disk_and_memory_and_the_others_stay(keystore: Keystore) -> None:
    kept = keystore.create()
    erased = keystore.create()
    assert keystore.account(erased).address == erased  # decrypted, so kept in memory
    assert keystore.erase(erased.lower())
    assert erased not in keystore
    assert keystore.addresses() == [kept]
    assert list(keystore.directory.iterdir()) == [keystore.directory / f"{kept}.json"]  # no leftover file
    with pytest.raises(UnknownAccount):
        keystore.account(erased)  # not served from memory either
    with pytest.raises(UnknownAccount):
        Keystore(keystore.directory, SECRET, scrypt_n=FAST_N).account(erased)
    assert not keystore.erase(erased)  # a second time: nothing to erase
    assert keystore.account(kept).address == kept
    with pytest.raises(UnknownAccount):
        keystore.erase("not an address")
