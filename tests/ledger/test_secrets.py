"""The secret settings: how a value is judged outside the local chain, every refused default, secrets read from
files only when no other user can read them, and the keys derived from the master secret (the same bytes as
before they had one module, so that what was encrypted stays readable)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_utils import to_checksum_address
from pydantic import SecretStr, ValidationError

from ledger.node import DEV_ACCOUNTS, LOCAL_CHAIN_ID, dev_key
from ledger.secrets import (
    MasterSecret,
    MasterSecrets,
    SecretRefused,
    check_secrets,
    fresh_secrets,
    master_secrets,
    operator_key_refusal,
    weakness,
)
from ledger.settings import DEV_KEY_SALT, DEV_MASTER_SECRET, Settings

PRODUCTION_CHAIN = 4242


def strong() -> str:
    return secrets.token_hex(32)


def production(**overrides: object) -> Settings:
    """A correct production configuration on chain 4242, with ``overrides`` (``...``: leave that setting out)."""
    values: dict[str, object] = {
        "chain_id": PRODUCTION_CHAIN,
        "master_secret": SecretStr(strong()),
        "key_salt": SecretStr(strong()),
        "operator_key": SecretStr("0x" + strong()),
    }
    values.update(overrides)
    values = {name: value for name, value in values.items() if value is not ...}
    return Settings(**values)  # type: ignore[arg-type]


# -- judging a value ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        secrets.token_hex(32),
        "0x" + secrets.token_hex(48),
        base64.b64encode(os.urandom(32)).decode(),
        base64.urlsafe_b64encode(os.urandom(33)).decode().rstrip("="),
    ],
    ids=["hex-32", "0x-hex-48", "base64-32", "base64url-33"],  # the values are random: ids the same in every process
)
def test_random_bytes_of_32_or_more_as_hex_or_base64_pass(value: str) -> None:
    assert weakness(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        (DEV_MASTER_SECRET, "fewer than 32"),  # base64url of 24 bytes, as it happens
        (DEV_KEY_SALT, "fewer than 32"),
        ("correct horse battery staple of the supply chain ledger", "not random bytes"),
        (secrets.token_hex(31), "holds 31 bytes, fewer than 32"),
        (base64.b64encode(os.urandom(24)).decode(), "holds 24 bytes"),
        ("42" * 32, "repeats a few byte values"),
        ("0123456789abcdef" * 4, "repeats a few byte values"),
        ("A" * 64, "repeats a few byte values"),
    ],
    ids=["empty", "dev-master-secret", "dev-key-salt", "passphrase", "hex-31", "base64-24", "42s", "hex-pattern", "As"],
)
def test_defaults_short_values_passphrases_and_patterns_are_weak(value: str, reason: str) -> None:
    found = weakness(value)
    assert found is not None and reason in found


def test_operator_key_refusals_off_the_local_chain() -> None:
    assert operator_key_refusal(None, PRODUCTION_CHAIN) is not None
    assert "required on chain 4242" in str(operator_key_refusal("  ", PRODUCTION_CHAIN))
    assert "not a valid private key" in str(operator_key_refusal("0x1234", PRODUCTION_CHAIN))
    for index in range(DEV_ACCOUNTS):
        assert "public dev keys" in str(operator_key_refusal("0x" + dev_key(index).hex(), PRODUCTION_CHAIN))
    assert "repeats a few byte values" in str(operator_key_refusal("0x" + "42" * 32, PRODUCTION_CHAIN))
    assert operator_key_refusal("0x" + strong(), PRODUCTION_CHAIN) is None
    # On the local chain: unset (anvil's first dev account), a dev key, any valid key; never a non-key.
    assert operator_key_refusal(None, LOCAL_CHAIN_ID) is None
    assert operator_key_refusal("0x" + dev_key(1).hex(), LOCAL_CHAIN_ID) is None
    assert "not a valid private key" in str(operator_key_refusal("nonsense", LOCAL_CHAIN_ID))


def test_scf_secrets_new_values_pass_every_check() -> None:
    fresh = fresh_secrets()
    settings = production(
        master_secret=SecretStr(fresh.master_secret),
        key_salt=SecretStr(fresh.key_salt),
        operator_key=SecretStr(fresh.operator_key),
    )
    assert check_secrets(settings) == []
    assert fresh.operator_address == Account.from_key(fresh.operator_key).address
    assert len({fresh.master_secret, fresh.key_salt, fresh.operator_key[2:]}) == 3


# -- refused settings on a production chain ---------------------------------------------------------------------


def test_a_correct_production_configuration_is_accepted() -> None:
    assert check_secrets(production()) == []


@pytest.mark.parametrize(
    ("overrides", "setting", "reason"),
    [
        ({"master_secret": SecretStr(DEV_MASTER_SECRET)}, "SCF_MASTER_SECRET", "development default"),
        ({"key_salt": SecretStr(DEV_KEY_SALT)}, "SCF_KEY_SALT", "development default"),
        ({"operator_key": None}, "SCF_OPERATOR_KEY", "is required on chain 4242"),
        ({"operator_key": SecretStr("0x" + dev_key(0).hex())}, "SCF_OPERATOR_KEY", "public dev keys"),
        ({"master_secret": SecretStr("s3cret-but-short")}, "SCF_MASTER_SECRET", "fewer than 32"),
        ({"key_salt": SecretStr(secrets.token_hex(16))}, "SCF_KEY_SALT", "holds 16 bytes"),
        ({"master_secret": SecretStr("ab" * 40)}, "SCF_MASTER_SECRET", "repeats a few byte values"),
    ],
)
def test_each_development_default_and_weak_value_is_refused_on_a_production_chain(
    overrides: dict[str, object], setting: str, reason: str
) -> None:
    with pytest.raises(SecretRefused) as refused:
        check_secrets(production(**overrides))
    assert refused.value.setting == setting
    assert reason in str(refused.value) and "scf secrets new" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_development_defaults_are_accepted_on_the_local_chain() -> None:
    assert check_secrets(Settings(chain_id=LOCAL_CHAIN_ID)) == []


def test_a_weak_previous_master_secret_reads_but_is_warned_about() -> None:
    settings = production(previous_master_secrets=SecretStr(f"{DEV_MASTER_SECRET}, {strong()}"))
    warnings = check_secrets(settings)
    assert len(warnings) == 1 and "no sign-in token signed with it is accepted" in warnings[0]
    ring = master_secrets(settings)
    assert [s.strong for s in ring.previous] == [False, True]
    assert ring.previous[0].id == MasterSecret.of(DEV_MASTER_SECRET).id


# -- secrets from files -----------------------------------------------------------------------------------------


def _secret_file(tmp_path: Path, value: str, mode: int) -> Path:
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_secret_file_readable_by_its_owner_only_is_read_without_its_final_new_line(tmp_path: Path, mode: int) -> None:
    value = strong()
    settings = Settings(master_secret_file=_secret_file(tmp_path, value, mode))
    assert settings.master_secret.get_secret_value() == value
    assert settings.secret_source("master_secret") == "SCF_MASTER_SECRET_FILE"
    assert settings.secret_source("key_salt") == "SCF_KEY_SALT"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
@pytest.mark.parametrize("name", ["master_secret", "previous_master_secrets", "key_salt", "operator_key"])
def test_a_secret_file_other_users_can_read_or_write_is_refused(tmp_path: Path, name: str, mode: int) -> None:
    path = _secret_file(tmp_path, strong(), mode)
    with pytest.raises(ValidationError, match=f"SCF_{name.upper()}_FILE: .* other users \\(mode 0{mode:o}\\)"):
        Settings(**{f"{name}_file": path})  # type: ignore[arg-type]


def test_a_secret_and_its_file_together_are_refused(tmp_path: Path) -> None:
    path = _secret_file(tmp_path, strong(), 0o600)
    with pytest.raises(ValidationError, match="set SCF_KEY_SALT or SCF_KEY_SALT_FILE, not both"):
        Settings(key_salt=SecretStr(strong()), key_salt_file=path)


def test_an_empty_or_missing_secret_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is empty"):
        Settings(operator_key_file=_secret_file(tmp_path, "", 0o600))
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(operator_key_file=tmp_path / "nowhere")


def test_a_weak_secret_from_a_file_is_refused_under_the_file_setting(tmp_path: Path) -> None:
    settings = production(master_secret=..., master_secret_file=_secret_file(tmp_path, DEV_MASTER_SECRET, 0o600))
    with pytest.raises(SecretRefused) as refused:
        check_secrets(settings)
    assert refused.value.setting == "SCF_MASTER_SECRET_FILE"


def test_previous_master_secrets_file_holds_one_per_line(tmp_path: Path) -> None:
    one, two = strong(), strong()
    path = _secret_file(tmp_path, f"{one}\n{two}", 0o600)
    ring = master_secrets(Settings(master_secret=SecretStr(strong()), previous_master_secrets_file=path))
    assert [s.id for s in ring.previous] == [MasterSecret.of(one).id, MasterSecret.of(two).id]


# -- the derived keys --------------------------------------------------------------------------------------------


def _hkdf(material: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def test_derived_keys_are_those_earlier_versions_derived_so_stored_data_stays_readable() -> None:
    value = "change-me-local-development-only"
    secret = MasterSecret.of(value)
    address = to_checksum_address("0x70997970c51812dc3a010c7d01b50e0d17dc79c8")
    assert secret.token_key == _hkdf(value.encode(), b"scf-ledger sign-in tokens")
    assert secret.document_key(3) == _hkdf(value.encode(), b"scf-ledger documents v3")
    assert secret.keystore_password(address) == _hkdf(value.encode(), b"scf-ledger keystore " + address.encode()).hex()
    assert secret.id == _hkdf(value.encode(), b"scf-ledger master secret id", 8).hex()
    assert secret.webhook_key == _hkdf(value.encode(), b"scf-ledger webhook secrets")
    keys = {
        secret.token_key,
        secret.document_key(1),
        bytes.fromhex(secret.keystore_password(address)),
        secret.webhook_key,
    }
    assert len(keys) == 4  # one key per use


def test_derived_bytes_are_pinned_so_data_encrypted_today_decrypts_tomorrow() -> None:
    """Every key the ledger derives from a master secret is derived in :mod:`ledger.secrets` only; these values
    were derived by the code that encrypted existing key files, documents and tokens, so a change that would
    leave them unreadable fails here."""
    secret = MasterSecret.of("pinned-master-secret-of-the-layout-test-0123456789")
    assert secret.id == "67f0dce3583bb3e6"
    assert secret.token_key.hex() == "e515ffc554b7afdc44ce42227556c3c82723103b7ce8c78d61b1b897256a77b0"
    assert secret.document_key(1).hex() == "1ecf16337050c404a197c26a4681c10039d1ca662f3a5b5b5b659715f4f4bf79"
    password = secret.keystore_password("0x" + "ab" * 20)
    assert password == "9cdf4e81721b6731c4ddce7389769e301e4d610be511943117180b000a4f498d"
    assert secret.webhook_key.hex() == "e4bfa5d15a2149dcd56fe30ccb5e5e7dc2a4da4000f7d638be45fc524f0aa40c"


def test_a_master_secret_shows_its_id_never_its_value() -> None:
    value = strong()
    ring = MasterSecrets.of(value, [strong(), value])  # the current one repeated as previous is dropped
    assert len(ring.previous) == 1
    assert value not in repr(ring) and ring.current.id in repr(ring.current)
    assert ring.get(ring.previous[0].id) is ring.previous[0] and ring.get("0" * 16) is None


# -- the commands --------------------------------------------------------------------------------------------------


def test_scf_secrets_new_prints_values_that_scf_secrets_check_accepts_on_a_production_chain(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scf.cli import app

    runner = CliRunner()
    printed = runner.invoke(app, ["secrets", "new"])
    assert printed.exit_code == 0, printed.output
    values = dict(line.split("=", 1) for line in printed.output.splitlines() if line.startswith("SCF_"))
    assert sorted(values) == ["SCF_KEY_SALT", "SCF_MASTER_SECRET", "SCF_OPERATOR_KEY"]
    production_env = {"SCF_CHAIN_ID": str(PRODUCTION_CHAIN), "SCF_DATA_DIR": str(tmp_path)}
    accepted = runner.invoke(app, ["secrets", "check"], env={**production_env, **values})
    assert accepted.exit_code == 0, accepted.output
    assert "accepted on chain 4242" in accepted.output
    assert values["SCF_MASTER_SECRET"] not in accepted.output  # its id only
    refused = runner.invoke(app, ["secrets", "check"], env={**production_env, **values, "SCF_KEY_SALT": DEV_KEY_SALT})
    assert refused.exit_code == 1
    assert "SCF_KEY_SALT holds the public development default" in refused.output
