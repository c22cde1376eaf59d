"""The ledger's settings: one pydantic-settings class, from environment variables (``SCF_*``) and ``.env``.

Every setting has a default that runs the local stack (anvil on 127.0.0.1:8545, a SQLite file under
``data/``); production overrides them by environment. ``.env.example`` lists them all.

Each secret setting can instead be read from a file, as container secrets are mounted: ``SCF_MASTER_SECRET_FILE``,
``SCF_PREVIOUS_MASTER_SECRETS_FILE``, ``SCF_KEY_SALT_FILE``, ``SCF_OPERATOR_KEY_FILE`` name a file that only its
owner may read or write (mode 0600 or 0400; anything more open is refused), holding the value (surrounding
white space, such as a final new line, is not part of it). A setting and its ``_FILE`` together are refused.
What the secrets must be outside the local chain is :mod:`ledger.secrets`' concern.
"""

from __future__ import annotations

import stat
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

DEV_MASTER_SECRET: Final = "change-me-local-development-only"
"""The master secret's default: public, accepted on the local chain only."""
DEV_KEY_SALT: Final = "local-development-invoice-key-salt"
"""The invoice and lot key salt's default: public, accepted on the local chain only."""

SECRET_FILE_SETTINGS: Final = {
    "master_secret": "master_secret_file",
    "previous_master_secrets": "previous_master_secrets_file",
    "key_salt": "key_salt_file",
    "operator_key": "operator_key_file",
}
"""Each secret setting and the setting that names a file to read it from instead."""


def env_name(field_name: str) -> str:
    """The environment variable of a setting: ``master_secret`` -> ``SCF_MASTER_SECRET``."""
    return f"SCF_{field_name.upper()}"


def read_secret_file(path: Path, setting: str) -> str:
    """The secret in ``path`` (stripped), refusing a file that other users may read or write."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{setting}: {path} is not a file")
        if mode & 0o077:
            raise ValueError(
                f"{setting}: {path} can be read or written by other users (mode {stat.S_IMODE(mode):04o}); "
                "make it readable by the service's user only (chmod 600, or mount the secret with mode 0400)"
            )
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{setting}: {path} is empty")
    return value


class Settings(BaseSettings):
    """Configuration of the ledger and its service."""

    model_config = SettingsConfigDict(env_prefix="SCF_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # -- chain ---------------------------------------------------------------------------------------
    rpc_url: str = Field("http://127.0.0.1:8545", description="JSON-RPC endpoint of the chain")
    chain_id: int = Field(31337, description="expected eth_chainId; the ledger refuses to run on a mismatch")
    block_time: float = Field(1.0, gt=0, description="anvil's interval mining, seconds per block")
    block_gas_limit: int = Field(300_000_000, gt=0, description="anvil's block gas limit")
    anvil_port: int = Field(8545, description="port of the local anvil started by `scf chain start`")
    anvil_prune_history: bool = Field(
        False,
        description="the local anvil keeps no past states (--prune-history): its memory stays flat, and reads at "
        "past blocks fail",
    )
    rpc_timeout: float = Field(10.0, gt=0, description="seconds to wait for one JSON-RPC answer")
    confirmations: int = Field(
        0, ge=0, description="blocks on top of an operation's block before it is reported confirmed or failed"
    )
    gas_estimate_every: int = Field(
        16,
        ge=1,
        description="a call like others whose gas was estimated (same contract, function and calldata length) is "
        "estimated again only every this many pre-flights, and otherwise sent with their highest estimate plus the "
        "margin and one fresh storage slot's gas; one that runs out is signed again with a fresh estimate. 1 "
        "estimates every call",
    )
    logs_max_range: int = Field(
        2_000,
        ge=1,
        description="most blocks one eth_getLogs may span (the indexer's pages, the audit anchors' reads); at most "
        "the node's own limit (Besu's --rpc-max-logs-range, 5000 by default)",
    )

    # -- storage -------------------------------------------------------------------------------------
    data_dir: Path = Field(PROJECT_ROOT / "data", description="chain state, keystore, documents, SQLite file")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/ledger.sqlite3 (PostgreSQL by URL)"
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="service processes `scf serve` runs on the one port; more than one needs PostgreSQL "
        "(SCF_DATABASE_URL): one of them signs at a time, the others hand it their submissions",
    )
    indexer: Literal["thread", "process"] = Field(
        "thread",
        description="where the service's event indexer runs: a thread of the service's process, or a process of "
        "its own (its own interpreter: the requests' Python no longer shares one with decoding and writing the "
        "index)",
    )
    deployments_dir: Path = Field(PROJECT_ROOT / "deployments", description="deployed_addresses.json per chain")

    # -- secrets -------------------------------------------------------------------------------------
    master_secret: SecretStr = Field(
        SecretStr(DEV_MASTER_SECRET),
        description="derives the keys that encrypt participants' signing keys and documents and sign sign-in "
        "tokens; the default is public and refused outside the local chain",
    )
    previous_master_secrets: SecretStr | None = Field(
        None,
        description="earlier master secrets, separated by commas: only read with (documents and keys they "
        "encrypted, sign-in tokens for one token lifetime) until `scf secrets rotate` re-encrypted everything",
    )
    operator_key: SecretStr | None = Field(
        None,
        description="hex private key of this gateway's own account: on the operator's gateway the operator's, who "
        "deploys the contracts and onboards participants; on a member's gateway its relayer's, which pays the gas "
        "of the acts it relays; on the regulator's gateway the regulator's. Unset on a local chain (31337) means "
        "anvil's first dev account, elsewhere it is required",
    )
    regulator_address: str | None = Field(
        None,
        description="account of the first regulator, named when the contracts are deployed (only a regulator "
        "admits further regulators; the operator cannot); its key stays with the regulator. Unset on a local chain "
        "(31337) means anvil's dev account 9, hosted by this service; elsewhere it is required",
    )
    key_salt: SecretStr = Field(
        SecretStr(DEV_KEY_SALT),
        description="platform salt of the invoice and lot keys put on chain (never change it after launch); "
        "the default is public and refused outside the local chain",
    )
    master_secret_file: Path | None = Field(None, description="read SCF_MASTER_SECRET from this file (mode 0600)")
    previous_master_secrets_file: Path | None = Field(
        None, description="read SCF_PREVIOUS_MASTER_SECRETS from this file, one per line (mode 0600)"
    )
    key_salt_file: Path | None = Field(None, description="read SCF_KEY_SALT from this file (mode 0600)")
    operator_key_file: Path | None = Field(None, description="read SCF_OPERATOR_KEY from this file (mode 0600)")

    # -- gateway -------------------------------------------------------------------------------------
    gateway_role: Literal["operator", "member", "regulator"] = Field(
        "operator",
        description="what this gateway is in a consortium (docs/consortium.md): the operator's (deploys when the "
        "chain has no deployment, onboards, anchors the audit log), a member's (a bank's or a core firm's: attaches "
        "to the deployment recorded in SCF_DEPLOYMENTS_DIR, never deploys, serves the participants it adopts) or the "
        "regulator's (attaches likewise and refuses every state-changing route but freezes)",
    )
    gateway_peers: str = Field(
        "",
        description="the other gateways this one exchanges documents with (docs/consortium.md): a JSON list of "
        '{"url", "account", "exchange_key", "role", "serves"}: base URL, the gateway\'s own account, its X25519 '
        "exchange key (GET /gateway), operator/member/regulator, and the participants' accounts it serves",
    )
    docex_backoff_seconds: float = Field(
        1.0, gt=0, description="first retry of an undelivered document to a peer gateway within this many seconds"
    )
    docex_backoff_max_seconds: float = Field(
        300.0, gt=0, description="longest wait between retries of an undelivered document (doubling)"
    )
    docex_max_skew_seconds: float = Field(
        300.0, gt=0, description="refuse a peer gateway's signed request stamped further than this from our clock"
    )

    @field_validator("gateway_peers")
    @classmethod
    def _peers(cls, value: str) -> str:
        from ledger.docex import parse_peers

        parse_peers(value)
        return value

    # -- service -------------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="address the REST service listens on")
    api_port: int = Field(8000, description="port of the REST service")
    token_ttl_seconds: int = Field(900, gt=0, description="lifetime of a sign-in JWT")
    challenge_ttl_seconds: int = Field(300, gt=0, description="lifetime of a sign-in challenge nonce")
    auth_cache_seconds: float = Field(
        1.0,
        ge=0,
        description="how long an API key or participant looked up is trusted before it is read again; a change "
        "made through this process takes effect on the next request, one made by another process within this "
        "time (on PostgreSQL: as soon as its notification is heard, entries then trusted for 10 s or this if "
        "longer; 0: no cache)",
    )
    max_wait_seconds: float = Field(30.0, gt=0, description="longest `Prefer: wait=N` honoured")
    batch_max_items: int = Field(100, ge=1, le=1_000, description="most operations one `POST /batch` request may carry")
    gas_allowance_wei: int = Field(
        10**18, ge=0, description="ether the operator sends each new participant for gas (0 on a gas-free chain)"
    )
    large_single_threshold: int = Field(
        5_000_000, gt=0, description="report any single transfer or financing at or above this, in fen (50,000.00)"
    )
    large_daily_threshold: int = Field(
        200_000_000, gt=0, description="report a participant's daily total at or above this, in fen (2,000,000.00)"
    )
    late_confirmation_days: int = Field(
        30,
        gt=0,
        le=3650,
        description="the payment-discipline report counts an invoice confirmed (or still awaiting confirmation) more "
        "than this many days after its registration as confirmed late",
    )
    registration_grace_days: int = Field(
        30,
        gt=0,
        le=3650,
        description="the unregistered report lists a funded financing or an active pledge whose 中登网 registration "
        "its financier has not recorded this many days after funding",
    )
    report_time_zone: str = Field(
        "Asia/Shanghai",
        description="the IANA time zone whose calendar days the daily statements count (China Standard Time, UTC+8)",
    )
    audit_anchor_every: int = Field(
        100, ge=0, description="anchor the audit log's head on chain after this many new records (0: never by count)"
    )
    audit_anchor_seconds: float = Field(
        60.0, ge=0, description="anchor the audit log's head when it grew and this many seconds passed (0: never)"
    )
    sensor_mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="the MQTT broker devices publish signed readings to (mqtt://host:port; empty: HTTP only). "
        "A broker that does not answer is retried in the background; the service starts without it",
    )
    sensor_mqtt_topic: str = Field(
        "scf/sensors/+/readings", description="the topic filter the service subscribes to for readings"
    )
    sensor_oracle: str = Field(
        "",
        description="address of the participant (hosted here) as which the sensor monitor anchors readings on chain; "
        "the warehouse appoints it as its oracle (empty: readings are kept and checked, nothing is anchored)",
    )
    sensor_clock_skew_seconds: int = Field(
        60, ge=0, le=3600, description="a reading observed later than now plus this is refused as future-dated"
    )
    sensor_poll_seconds: float = Field(
        2.0, gt=0, description="how often the sensor monitor looks for periods to anchor"
    )
    events_heartbeat_seconds: float = Field(
        15.0, gt=0, description="send a comment line on an idle event stream (GET /events/stream) this often"
    )
    webhook_allow: str = Field(
        "",
        description="host names and networks (CIDR) webhooks may call although they are not public addresses "
        "(private, loopback, link-local, metadata), separated by commas; none by default",
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="longest one webhook request may take")
    webhook_max_response_bytes: int = Field(
        64 * 1024, gt=0, description="read at most this much of a webhook receiver's answer"
    )
    webhook_max_failures: int = Field(
        10, ge=1, description="pause a webhook subscription after this many failed deliveries in a row"
    )
    webhook_backoff_seconds: float = Field(
        1.0, gt=0, description="first retry of a failed webhook delivery within this many seconds (doubling)"
    )
    webhook_backoff_max_seconds: float = Field(
        300.0, gt=0, description="longest wait between retries of a failed webhook delivery"
    )

    # -- behind a reverse proxy ---------------------------------------------------------------------------
    trusted_proxies: str = Field(
        "",
        description="addresses or networks (CIDR) of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed, separated by commas; none by default",
    )
    max_request_bytes: int = Field(1024 * 1024, gt=0, description="largest request body but a document upload")
    max_document_bytes: int = Field(20 * 1024 * 1024, gt=0, description="largest document accepted")
    sign_in_requests_per_minute: int = Field(
        20, gt=0, description="sign-in challenges and token requests per client and minute (a burst as large)"
    )

    _secret_sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("report_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for name, file_setting in SECRET_FILE_SETTINGS.items():
            path: Path | None = getattr(self, file_setting)
            if path is None:
                continue
            if name in self.model_fields_set:
                raise ValueError(f"set {env_name(name)} or {env_name(file_setting)}, not both")
            setattr(self, name, SecretStr(read_secret_file(path, env_name(file_setting))))
            self._secret_sources[name] = env_name(file_setting)
        return self

    def secret_source(self, name: str) -> str:
        """Where the secret setting ``name`` came from, for messages: ``SCF_<NAME>`` or ``SCF_<NAME>_FILE``."""
        return self._secret_sources.get(name, env_name(name))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ledger.sqlite3'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
