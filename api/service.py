"""The running ledger behind the REST service: one :class:`LedgerService` per process.

At start it checks the secret settings (:func:`ledger.secrets.check_secrets`: outside the local chain no
development default or weak value), migrates the database, connects to the chain (refusing a chain-id
mismatch), deploys the contracts if this chain has none of the current sources (``ensure_deployment``), starts
the transaction pipeline and the indexer (a thread with its own web3), and makes sure the operator exists as a
participant of the service. A new deployment names the first regulator (``SCF_REGULATOR_ADDRESS``; on the local
chain, unset, anvil's dev account 9, whose key this service then hosts as :attr:`LedgerService.regulator`, so
that onboarding a regulator works in the demo: the operator registers the account and the hosted regulator
admits it, as the registry requires). The first start creates the operator's API key and hands it back once, to be
printed. Each of these fails with an exception whose message is one line naming the setting to change
(:func:`api.server.failure_message`); the cheap checks come first, so nothing is sent to a chain by a service
that cannot serve.

Routes reach the ledger only through :attr:`LedgerService.client` (writes and single-object reads, straight
from the chain) and :attr:`LedgerService.sessions` (lists, from the index), never through web3.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from api.audit_log import AuditAnchorer, AuditLog
from api.auth_cache import KnownParticipant, NotRemembered, ParticipantCache
from api.docex_delivery import DocexDeliverer
from api.sensors import MqttBridge, SensorHub, SensorMonitor
from api.signing import NonceAllocator
from api.store import ApiKeyRecord, ParticipantRecord
from api.webhooks import Deliverer, WebhookSettings
from ledger.catalogue import CATALOGUE, Catalogue
from ledger.client import LedgerClient
from ledger.compiler import Artifact, compile_contracts
from ledger.db import DatabaseUnavailable, make_engine, make_sessionmaker
from ledger.deployment import (
    Deployment,
    FirstRegulator,
    GatewayKeyRefused,
    attach_deployment,
    bind_contracts,
    ensure_deployment,
    first_block,
    operator_account,
    regulator_account,
)
from ledger.errors import ErrorDecoder
from ledger.identifiers import salted_key_hash, synthetic_credit_code
from ledger.index import Indexer
from ledger.index.process import IndexerConfig, IndexerProcess, build_indexer
from ledger.keystore import Keystore
from ledger.migrations import ensure_sqlite_folder, upgrade
from ledger.models import Role
from ledger.node import connect
from ledger.pipeline import Pipeline
from ledger.pipeline.lease import PipelineLease, release_startup_lock, take_startup_lock
from ledger.secrets import MasterSecrets, check_secrets, master_secrets
from ledger.settings import Settings

logger = logging.getLogger("api")

API_KEY_PREFIX = "scf_"


def new_api_key() -> str:
    """A fresh API key: ``scf_`` and 43 URL-safe characters (256 random bits)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 of the key: keys are random 256-bit strings, so a slow password hash would add nothing."""
    return hashlib.sha256(key.encode()).hexdigest()


def issue_api_key(session: Session, participant: str) -> str:
    """Store a new key for ``participant`` (hashed) and return it; the plaintext exists only in the answer."""
    key = new_api_key()
    session.add(ApiKeyRecord(participant=participant, key_hash=hash_api_key(key), prefix=key[:12]))
    return key


class IndexWatch:
    """Where the index stands, for the event loop: the indexer thread reports each block it has indexed, and
    requests wait here (without a thread or a database query) until the block of their operation is indexed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.through: int | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def indexed(self, block: int) -> None:
        """From the indexer's thread: the index holds every block up to ``block``."""
        self._loop.call_soon_threadsafe(self._advance, block)

    def _advance(self, block: int) -> None:
        self.through = block  # it may go back too: a reorganisation the index followed
        still: list[tuple[int, asyncio.Future[None]]] = []
        for wanted, future in self._waiters:
            if future.done():
                continue
            if wanted <= block:
                future.set_result(None)
            else:
                still.append((wanted, future))
        self._waiters = still

    async def reached(self, block: int, timeout: float) -> bool:
        """Whether the index holds ``block``, waiting up to ``timeout`` seconds for it."""
        if self.through is not None and self.through >= block:
            return True
        if timeout <= 0:
            return False
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((block, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        return True


def reissue_api_key(session: Session, participant: str) -> tuple[str, int]:
    """Revoke every active key of ``participant`` and issue a new one: ``(new key, how many were revoked)``."""
    revoked = session.execute(
        update(ApiKeyRecord)
        .where(ApiKeyRecord.participant == participant, ApiKeyRecord.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiKeyRecord.id)
        .execution_options(synchronize_session=False)
    ).all()
    return issue_api_key(session, participant), len(revoked)


GATEWAY_ACCOUNT_NAMES: Mapping[str, str] = {
    "operator": "Platform operator",
    "member": "Gateway relayer",
    "regulator": "Regulator",
}
"""The name of the gateway's own account in its records, by the gateway's role."""


def _gateway_roles(role: str, registry: Any, account: str) -> list[str]:
    """The roles the gateway's own account holds here: the operator's on the operator's gateway, none on a
    member's (its relayer pays gas, it speaks for no one), the regulator's on the regulator's gateway, whose key
    must be a regulator's on chain (else the start fails, naming the setting)."""
    if role == "operator":
        return [Role.OPERATOR.role_name]
    if role == "regulator":
        if not registry.functions.hasRole(Role.REGULATOR.role_id, account).call():
            raise GatewayKeyRefused(
                f"SCF_OPERATOR_KEY: the regulator's gateway signs as a regulator, and {account} holds no regulator "
                "role on chain (a regulator admits it first)"
            )
        return [Role.REGULATOR.role_name]
    return []


@dataclass
class LedgerService:
    settings: Settings
    w3: Web3
    artifacts: Mapping[str, Artifact]
    deployment: Deployment
    sessions: sessionmaker[Session]
    pipeline: Pipeline
    client: LedgerClient
    keystore: Keystore
    operator: LocalAccount
    decoder: ErrorDecoder
    indexer: Indexer
    audit_log: AuditLog
    """One hash-chained record per API action (:mod:`api.audit_log`)."""
    audit_anchorer: AuditAnchorer
    """Anchors the audit log's head on chain, every so many records or seconds."""
    secrets: MasterSecrets
    """The master secrets: the current one encrypts and signs, previous ones only read (:mod:`ledger.secrets`)."""
    started_at: float = field(default_factory=time.time)
    """When this service started (Unix time): a sign-in token signed with a previous master secret is accepted
    for one token lifetime after it, no longer."""
    index_watch: IndexWatch | None = None
    """Where the index stands (set when the indexer runs in this process)."""
    deliverer: Deliverer | None = None
    """POSTs the event feed to the webhook subscriptions (:mod:`api.webhooks`)."""
    docex: DocexDeliverer | None = None
    """Sends this gateway's document outbox to its peer gateways (:mod:`api.docex_delivery`)."""
    act_nonces: NonceAllocator = field(default_factory=NonceAllocator)
    """Nonces of the acts handed out to self-custody participants to sign (:mod:`api.signing`)."""
    participants: ParticipantCache | None = None
    """API keys and participants already looked up (:mod:`api.auth_cache`); None: every look-up reads the
    database."""
    operator_api_key: str | None = None
    """Set only on the first start, when the operator's key was just created (printed once, never stored)."""
    regulator: LocalAccount | None = None
    """The key of a regulator this service hosts: only the local chain's dev regulator, named at deployment when
    ``SCF_REGULATOR_ADDRESS`` is unset (and a regulator on chain). It admits the regulators the operator onboards
    here. None elsewhere: the regulator keeps its own key, and onboarding a regulator here is refused."""
    sensors: SensorHub | None = None
    """Applies signed sensor readings (:mod:`api.sensors`)."""
    sensor_monitor: SensorMonitor | None = None
    """Anchors the readings' periods on chain (where the index runs, as ``SCF_SENSOR_ORACLE``)."""
    mqtt_bridge: MqttBridge | None = None
    """Subscribes to the readings on the MQTT broker (where the index runs; none when no broker is set)."""
    lease: PipelineLease | None = None
    """This process's hold on the pipeline where several share a PostgreSQL database (None on SQLite: one
    process, always the owner). Without it, the process runs its pipeline on standby (:mod:`ledger.pipeline.handoff`)
    and takes over, with the index and the background deliveries, when the owner goes."""
    run_indexer: bool = True
    operation_records: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    """Operation records already read, or written afresh (once committed): operation id -> (participant, kind). A
    record never changes once written, so what was read stays true (:func:`api.operations.get_operation`; bounded
    there)."""
    index_process_config: IndexerConfig | None = None
    """Set where the indexer runs in a process of its own (``SCF_INDEXER=process``)."""
    index_process: IndexerProcess | None = None
    _indexer_thread: threading.Thread | None = field(default=None, repr=False)
    _lease_task: asyncio.Task[None] | None = field(default=None, repr=False)

    # -- life cycle ---------------------------------------------------------------------------------

    @classmethod
    async def start(
        cls, settings: Settings, *, run_indexer: bool = True, catalogue: Catalogue = CATALOGUE
    ) -> LedgerService:
        for warning in check_secrets(settings):
            logger.warning("%s", warning)
        secrets = master_secrets(settings)
        operator = operator_account(settings.operator_key, settings.chain_id)
        role = settings.gateway_role
        # Only the operator's gateway deploys, and so only it names (and, on the local chain, hosts) the first one.
        first_regulator = (
            regulator_account(settings.regulator_address, settings.chain_id, operator.address)
            if role == "operator"
            else None
        )
        url = settings.resolved_database_url
        try:
            ensure_sqlite_folder(url)
            engine = make_engine(url)
            startup = await asyncio.to_thread(take_startup_lock, engine)
        except Exception as exc:  # any driver's error, a bad URL, an unwritable folder
            raise DatabaseUnavailable(url, exc) from exc
        try:
            return await cls._start(settings, engine, secrets, operator, first_regulator, run_indexer, catalogue)
        finally:
            if startup is not None:
                await asyncio.to_thread(release_startup_lock, startup)

    @classmethod
    async def _start(
        cls,
        settings: Settings,
        engine: Engine,
        secrets: MasterSecrets,
        operator: LocalAccount,
        first_regulator: FirstRegulator | None,
        run_indexer: bool,
        catalogue: Catalogue,
    ) -> LedgerService:
        """The start proper, one process at a time where several share a PostgreSQL database (they migrate,
        deploy and bootstrap in turn: the first does it, the others find it done)."""
        role = settings.gateway_role
        url = settings.resolved_database_url
        try:
            await asyncio.to_thread(functools.partial(upgrade, url, secrets=secrets))
            sessions = make_sessionmaker(engine)
        except Exception as exc:  # any driver's error, an unknown revision
            raise DatabaseUnavailable(url, exc) from exc
        w3 = connect(settings.rpc_url, settings.chain_id, timeout=settings.rpc_timeout)
        artifacts = compile_contracts()
        if first_regulator is not None:
            ensured = await asyncio.to_thread(
                ensure_deployment,
                w3,
                deployments_dir=settings.deployments_dir,
                artifacts=artifacts,
                deployer=operator,
                regulator=first_regulator.address,
            )
            if not ensured.reused:
                logger.info("deployed the ledger's contracts at block %s", ensured.deployment.block_number)
            deployment = ensured.deployment
        else:  # a member's or the regulator's gateway: the consortium's deployment or nothing
            deployment = await asyncio.to_thread(
                attach_deployment, w3, deployments_dir=settings.deployments_dir, artifacts=artifacts, role=role
            )
        decoder = ErrorDecoder.from_artifacts(artifacts)
        contracts = bind_contracts(w3, deployment, artifacts)
        own_roles = _gateway_roles(role, contracts["registry"], str(operator.address))
        keystore = Keystore(settings.data_dir / "keystore", secrets)
        regulator = first_regulator.hosted if first_regulator is not None else None
        if (
            regulator is not None
            and not contracts["registry"].functions.hasRole(Role.REGULATOR.role_id, regulator.address).call()
        ):
            regulator = None  # a deployment that named another regulator: this service hosts none

        def signer(address: str) -> LocalAccount:
            if address == operator.address:
                return operator
            if regulator is not None and address == regulator.address:
                return regulator
            return keystore.account(address)

        lease = PipelineLease(engine) if engine.dialect.name == "postgresql" else None
        pipeline = Pipeline(
            settings.rpc_url,
            settings.chain_id,
            sessions,
            decoder,
            rpc_timeout=settings.rpc_timeout,
            confirmations=settings.confirmations,
            gas_estimate_every=settings.gas_estimate_every,
            # re-signing after a restart (an operation that ran out of gas, a nonce filler), and what other
            # processes queue for the owner
            signer=signer,
            handoff=lease is not None,
        )
        if lease is None or await asyncio.to_thread(lease.try_acquire):
            await pipeline.start()
        else:
            await pipeline.start_standby()

        client = LedgerClient(
            w3, contracts, decoder, pipeline, signer, catalogue=catalogue, logs_max_range=settings.logs_max_range
        )
        index_config = IndexerConfig(
            database_url=url,
            rpc_url=settings.rpc_url,
            chain_id=settings.chain_id,
            rpc_timeout=settings.rpc_timeout,
            contracts={key: str(c.address) for key, c in contracts.items()},
            abis={key: c.abi for key, c in contracts.items()},
            start_block=await asyncio.to_thread(first_block, w3, deployment),  # a new index: the ledger's first block
            page_size=settings.logs_max_range,  # no eth_getLogs wider than the node takes (Besu: 5000 blocks)
            confirmations=settings.confirmations,  # the index shows what the pipeline reports confirmed
            log_level=_ledger_log_level(),
        )
        # This process's indexer: run in a thread, or (with the index in a process of its own) only read.
        indexer = build_indexer(index_config, sessions)
        service = cls(
            settings=settings,
            w3=w3,
            artifacts=artifacts,
            deployment=deployment,
            sessions=sessions,
            pipeline=pipeline,
            client=client,
            keystore=keystore,
            operator=operator,
            decoder=decoder,
            indexer=indexer,
            act_nonces=NonceAllocator(sessions),
            audit_log=(audit_log := AuditLog(sessions)),
            audit_anchorer=AuditAnchorer(
                audit_log,
                client,
                str(operator.address),
                # AuditAnchor takes anchors from operators only: another gateway keeps its log unanchored.
                every=settings.audit_anchor_every if role == "operator" else 0,
                seconds=settings.audit_anchor_seconds if role == "operator" else 0,
                timeout=settings.max_wait_seconds,
            ),
            secrets=secrets,
            participants=ParticipantCache(sessions.kw["bind"], settings.auth_cache_seconds),
            regulator=regulator,
            lease=lease,
            run_indexer=run_indexer,
            index_process_config=index_config if settings.indexer == "process" else None,
        )
        service.operator_api_key = service._bootstrap_operator(own_roles)
        if service.participants is not None:  # on PostgreSQL, hear the other processes' key changes
            service.participants.listen(sessions.kw["bind"])
        service.sensors = SensorHub(
            sessions, settings.chain_id, str(contracts["receipts"].address), settings.sensor_clock_skew_seconds
        )
        if pipeline.standby:
            logger.info("another process owns the pipeline: this one queues its submissions and waits for the lease")
        else:
            service._start_owner_duties()
        if lease is not None:
            service._lease_task = asyncio.create_task(service._keep_lease(), name="pipeline-lease")
        return service

    @property
    def owns_pipeline(self) -> bool:
        """Whether this process signs (always, on SQLite; on PostgreSQL, while it holds the lease)."""
        return not self.pipeline.standby

    def _start_owner_duties(self) -> None:
        """What runs once per database, in the process that owns the pipeline: the audit log's anchors, and
        (with ``run_indexer``) the index, the webhooks, the documents' outbox, the sensors' anchors and MQTT."""
        service, settings, sessions, client = self, self.settings, self.sessions, self.client
        indexer, operator = self.indexer, self.operator
        service.audit_anchorer.start()
        if self.run_indexer:
            # Webhooks are delivered where the index is written: one deliverer per database, like the indexer.
            service.deliverer = Deliverer(sessions, WebhookSettings.of(settings), self.secrets)
            service.deliverer.start()
            service.docex = DocexDeliverer(
                sessions,
                operator,
                settings.gateway_peers,
                first_backoff=settings.docex_backoff_seconds,
                longest_backoff=settings.docex_backoff_max_seconds,
            )
            service.docex.start()
            service.index_watch = IndexWatch(asyncio.get_running_loop())
            # A new block with our transactions in it: index it while the pipeline confirms them, rather than
            # once the first request answered by it asks (``indexed``).
            service.pipeline.on_block = lambda _block: service._poke_index()
            if self.index_process_config is not None:
                service.index_process = IndexerProcess(self.index_process_config, service.index_watch.indexed)
                service.index_process.start()
            else:
                indexer.on_indexed(service.index_watch.indexed)
                service._indexer_thread = threading.Thread(
                    target=indexer.run_forever, kwargs={"poll_interval": 0.25}, name="indexer", daemon=True
                )
                service._indexer_thread.start()
            # The readings' periods are anchored, and MQTT subscribed, where the index runs: once per database.
            service.sensor_monitor = SensorMonitor(
                sessions, client, settings.sensor_oracle, settings.sensor_poll_seconds, settings.max_wait_seconds
            )
            service.sensor_monitor.start()
            if settings.sensor_mqtt_url:
                assert service.sensors is not None
                service.mqtt_bridge = MqttBridge(service.sensors, settings.sensor_mqtt_url, settings.sensor_mqtt_topic)
                service.mqtt_bridge.start()

    async def _keep_lease(self) -> None:
        """On standby: try for the lease every half second and take over when it comes (the pipeline recovers
        what the previous owner left in flight). As the owner: check every second that the lease's session
        still answers, and exit at once when it does not (another process may already sign)."""
        lease = self.lease
        assert lease is not None
        while True:
            await asyncio.sleep(0.5 if self.pipeline.standby else 1.0)
            if self.pipeline.standby:
                try:
                    taken = await asyncio.to_thread(lease.try_acquire)
                except Exception as exc:
                    logger.warning("trying for the pipeline lease: %s", exc)
                    continue
                if taken:
                    await self.pipeline.promote()
                    self._start_owner_duties()
            elif not await asyncio.to_thread(lease.held):
                logger.critical("the pipeline lease was lost (its database session failed): exiting so as not to sign")
                logging.shutdown()
                os._exit(75)

    async def stop(self) -> None:
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        if self.mqtt_bridge is not None:
            await asyncio.to_thread(self.mqtt_bridge.stop)
        if self.sensor_monitor is not None:
            await self.sensor_monitor.stop()
        if self.deliverer is not None:
            await self.deliverer.stop()
        if self.docex is not None:
            await self.docex.stop()
        await self.audit_anchorer.stop()
        self.indexer.stop()
        await self.pipeline.stop()
        if self._indexer_thread is not None:
            await asyncio.to_thread(self._indexer_thread.join, 30)
        if self.index_process is not None:
            await asyncio.to_thread(self.index_process.stop)
        if self.lease is not None:
            await asyncio.to_thread(self.lease.release)
        if self.participants is not None:
            await asyncio.to_thread(self.participants.close)

    def _bootstrap_operator(self, roles: list[str]) -> str | None:
        """Create the record of this gateway's own account (the operator, a member's relayer, the regulator) and
        its first API key unless they exist; return the new key."""
        address = str(self.operator.address)
        with self.sessions() as session, session.begin():
            if session.get(ParticipantRecord, address) is not None:
                return None
            session.add(
                ParticipantRecord(
                    address=address,
                    name=GATEWAY_ACCOUNT_NAMES[self.settings.gateway_role],
                    credit_code=synthetic_credit_code(1),
                    roles=roles,
                )
            )
            session.flush()
            return issue_api_key(session, address)

    # -- helpers for routes -------------------------------------------------------------------------

    @property
    def role(self) -> str:
        """What this gateway is in the consortium: ``operator``, ``member`` or ``regulator``."""
        return self.settings.gateway_role

    def holds_key_of(self, address: str) -> bool:
        """Whether this gateway can sign as ``address``: its own account, the hosted regulator, or a key in its
        keystore. A gateway sends, and signs acts, only for such accounts."""
        if address == self.operator.address:
            return True
        if self.regulator is not None and address == self.regulator.address:
            return True
        return address in self.keystore

    def identity_key_hash(self, canonical_key: str) -> bytes:
        """The salted hash of an invoice's or lot's canonical key (:mod:`ledger.identifiers`): what goes on chain."""
        return salted_key_hash(self.settings.key_salt.get_secret_value().encode().ljust(16, b"\0"), canonical_key)

    def is_self_custody(self, address: str) -> bool:
        """Whether ``address`` is a participant of this service that signs its own acts."""
        known = self.known_participant(address)
        return known is not None and known.custody == "self"

    def known_participant(self, address: str, *, remembered_only: bool = False) -> KnownParticipant | None:
        """The participant ``address`` as authentication needs it (remembered: :mod:`api.auth_cache`); with
        ``remembered_only``, :class:`api.auth_cache.NotRemembered` rather than a database read."""
        if self.participants is None:
            if remembered_only:
                raise NotRemembered("address")
            record = self.participant_record(address)
            return None if record is None else KnownParticipant.of(record)
        read = None if remembered_only else (lambda: self.participant_record(address))
        return self.participants.get("address", address, read)

    def participant_of_key(self, key: str, *, remembered_only: bool = False) -> KnownParticipant | None:
        """The participant whose active API key ``key`` is (remembered: :mod:`api.auth_cache`); with
        ``remembered_only``, :class:`api.auth_cache.NotRemembered` rather than a database read."""
        if self.participants is None:
            if remembered_only:
                raise NotRemembered("key")
            record = self.participant_by_key(key)
            return None if record is None else KnownParticipant.of(record)
        read = None if remembered_only else (lambda: self.participant_by_key(key))
        return self.participants.get("key", hash_api_key(key), read)

    def participant_record(self, address: str) -> ParticipantRecord | None:
        with self.sessions() as session:
            return session.get(ParticipantRecord, address)

    def participant_by_key(self, key: str) -> ParticipantRecord | None:
        with self.sessions() as session:
            row = session.execute(
                select(ParticipantRecord)
                .join(ApiKeyRecord, ApiKeyRecord.participant == ParticipantRecord.address)
                .where(ApiKeyRecord.key_hash == hash_api_key(key), ApiKeyRecord.revoked_at.is_(None))
            ).scalar_one_or_none()
            return row

    async def indexed(self, block: int, timeout: float) -> bool:
        """Whether the index holds ``block`` (waiting up to ``timeout`` seconds, and waking the indexer so that it
        does not wait for its next poll). Read-your-writes: an operation is answered confirmed only once this
        holds, so the lists of the next request show it. True when no indexer runs in this process."""
        watch = self.index_watch
        if watch is None:
            if self.run_indexer and self.lease is not None:  # another process indexes: read where it stands
                return await self._index_reached(block, timeout)
            return True
        if watch.through is not None and watch.through >= block:
            return True
        self._poke_index()
        return await watch.reached(block, timeout)

    def _poke_index(self) -> None:
        """Wake the indexer (the thread, or the process of its own) to sync now."""
        if self.index_process is not None:
            self.index_process.poke()
        else:
            self.indexer.poke()

    async def _index_reached(self, block: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            through = await asyncio.to_thread(self.indexer.indexed_block)
            if through is not None and through >= block:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    def indexer_lag(self) -> dict[str, Any]:
        head = int(self.w3.eth.block_number)
        indexed = self.indexer.indexed_block()
        return {"head": head, "indexed": indexed, "lag": None if indexed is None else max(0, head - indexed)}


def _ledger_log_level() -> int | None:
    """The level of the ``ledger`` logger where it logs somewhere (``scf serve``), for the indexer's process."""
    named = logging.getLogger("ledger")
    return named.level if named.handlers else None
