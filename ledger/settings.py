"""The ledger's settings: one pydantic-settings class, from environment variables (``SCF_*``) and ``.env``.

Every setting has a default that runs the local stack (anvil on 127.0.0.1:8545, a SQLite file under
``data/``); production overrides them by environment. ``.env.example`` lists them all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Configuration of the ledger and its service."""

    model_config = SettingsConfigDict(env_prefix="SCF_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # -- chain ---------------------------------------------------------------------------------------
    rpc_url: str = Field("http://127.0.0.1:8545", description="JSON-RPC endpoint of the chain")
    chain_id: int = Field(31337, description="expected eth_chainId; the ledger refuses to run on a mismatch")
    block_time: float = Field(1.0, gt=0, description="anvil's interval mining, seconds per block")
    block_gas_limit: int = Field(300_000_000, gt=0, description="anvil's block gas limit")
    anvil_port: int = Field(8545, description="port of the local anvil started by `scf chain start`")
    rpc_timeout: float = Field(10.0, gt=0, description="seconds to wait for one JSON-RPC answer")
    confirmations: int = Field(
        0, ge=0, description="blocks on top of an operation's block before it is reported confirmed or failed"
    )

    # -- storage -------------------------------------------------------------------------------------
    data_dir: Path = Field(PROJECT_ROOT / "data", description="chain state, keystore, documents, SQLite file")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/ledger.sqlite3 (PostgreSQL by URL)"
    )
    deployments_dir: Path = Field(PROJECT_ROOT / "deployments", description="deployed_addresses.json per chain")

    # -- secrets -------------------------------------------------------------------------------------
    master_secret: SecretStr = Field(
        SecretStr("change-me-local-development-only"),
        description="derives the keys that encrypt participants' signing keys and documents",
    )
    operator_key: SecretStr | None = Field(
        None,
        description="hex private key of the operator, who deploys the contracts and onboards participants; "
        "unset on a local chain (31337) means anvil's first dev account, elsewhere it is required",
    )
    key_salt: SecretStr = Field(
        SecretStr("local-development-invoice-key-salt"),
        description="platform salt of the invoice and lot keys put on chain (never change it after launch)",
    )

    # -- service -------------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="address the REST service listens on")
    api_port: int = Field(8000, description="port of the REST service")
    token_ttl_seconds: int = Field(900, gt=0, description="lifetime of a sign-in JWT")
    challenge_ttl_seconds: int = Field(300, gt=0, description="lifetime of a sign-in challenge nonce")
    max_wait_seconds: float = Field(30.0, gt=0, description="longest `Prefer: wait=N` honoured")
    gas_allowance_wei: int = Field(
        10**18, ge=0, description="ether the operator sends each new participant for gas (0 on a gas-free chain)"
    )
    large_single_threshold: int = Field(
        5_000_000, gt=0, description="report any single transfer or financing at or above this, in fen (50,000.00)"
    )
    large_daily_threshold: int = Field(
        200_000_000, gt=0, description="report a participant's daily total at or above this, in fen (2,000,000.00)"
    )
    audit_anchor_every: int = Field(
        100, ge=0, description="anchor the audit log's head on chain after this many new records (0: never by count)"
    )
    audit_anchor_seconds: float = Field(
        60.0, ge=0, description="anchor the audit log's head when it grew and this many seconds passed (0: never)"
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ledger.sqlite3'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
