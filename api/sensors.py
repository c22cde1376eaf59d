"""Sensors watching the goods of warehouse receipts: readings in, checked, kept, anchored (docs/sensors.md).

- :class:`SensorHub` applies a reading (from ``POST /readings`` or the MQTT bridge alike): the checks of
  :func:`ledger.sensors.check` against what the database holds of the device, then one row in
  ``sensor_readings`` under a unique (device, seq): a refused reading is counted per lot and reason in
  ``sensor_refusals`` and changes nothing else. It also says whether a lot is monitored.
- :class:`SensorMonitor` anchors, once per lot's period, the digest of the readings received in it and the
  quantity they observed (``WarehouseReceipts.anchorReadings``, as the hosted oracle named by
  ``SCF_SENSOR_ORACLE``): the contract raises the collateral alert and the margin call.
- :class:`MqttBridge` subscribes to the broker (paho-mqtt, in its own thread) and hands every message to the
  hub. A broker that does not answer is retried in the background, from the first connection on: the service
  starts and serves without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.store import (
    SensorAnchorRecord,
    SensorDeviceRecord,
    SensorLotRecord,
    SensorReadingRecord,
    SensorRefusalRecord,
)
from ledger.client import LedgerClient
from ledger.errors import ContractRevert
from ledger.models import ReceiptState
from ledger.sensors import (
    DeviceKind,
    DeviceState,
    Reading,
    ReadingRefused,
    Refusal,
    check,
    observed_quantity,
    parse,
    period_digest,
)

logger = logging.getLogger("api.sensors")


def _signature(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 132 or not value.startswith("0x"):
        raise ReadingRefused(Refusal.MALFORMED, "signature must be 65 bytes as 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ReadingRefused(Refusal.MALFORMED, "signature must be 65 bytes as 0x-prefixed hex") from None


@dataclass
class SensorHub:
    sessions: sessionmaker[Session]
    chain_id: int
    receipts_contract: str
    clock_skew: int

    def accept(self, body: Any, via: str, *, now: int | None = None) -> SensorReadingRecord:
        """Apply one signed reading (``{"reading": {...}, "signature": "0x…"}``); raise :class:`ReadingRefused`
        (counted) when it may not be applied."""
        now = int(time.time()) if now is None else now
        receipt_id: int | None = None
        try:
            if not isinstance(body, Mapping) or set(body) != {"reading", "signature"}:
                raise ReadingRefused(Refusal.MALFORMED, 'a signed reading is {"reading": {...}, "signature": "0x…"}')
            named = body["reading"].get("receiptId") if isinstance(body["reading"], Mapping) else None
            if type(named) is int and 0 < named < 2**256:  # the lot a malformed reading is counted against
                receipt_id = named
            signature = _signature(body["signature"])
            reading = parse(body["reading"])
            return self._apply(reading, signature, via, now)
        except ReadingRefused as refused:
            self._count(refused, refused.receipt_id if refused.receipt_id is not None else receipt_id)
            raise

    def _apply(self, reading: Reading, signature: bytes, via: str, now: int) -> SensorReadingRecord:
        struct_hash = "0x" + reading.struct_hash().hex()
        try:
            with self.sessions() as session, session.begin():
                device = session.get(SensorDeviceRecord, reading.device)
                state = None
                if device is not None:
                    last_seq, last_observed = session.execute(
                        select(func.max(SensorReadingRecord.seq), func.max(SensorReadingRecord.observed_at)).where(
                            SensorReadingRecord.device == reading.device
                        )
                    ).one()
                    applied = session.scalar(
                        select(SensorReadingRecord.id).where(SensorReadingRecord.struct_hash == struct_hash)
                    )
                    state = DeviceState(int(device.receipt_id), last_seq, last_observed, applied is not None)
                check(
                    reading,
                    signature,
                    state,
                    chain_id=self.chain_id,
                    receipts_contract=self.receipts_contract,
                    now=now,
                    clock_skew=self.clock_skew,
                )
                record = SensorReadingRecord(
                    receipt_id=reading.receipt_id,
                    device=reading.device,
                    seq=reading.seq,
                    observed_at=reading.observed_at,
                    weight=reading.weight,
                    count=reading.count,
                    temperature_centi=reading.temperature_centi,
                    location=reading.location,
                    signature="0x" + signature.hex(),
                    struct_hash=struct_hash,
                    received_at=now,
                    via=via,
                )
                session.add(record)
                session.flush()
                session.expunge(record)
                return record
        except IntegrityError:  # the same reading (or sequence number) applied meanwhile by another request
            raise ReadingRefused(
                Refusal.REPLAY, f"sequence {reading.seq} was applied already", reading.receipt_id
            ) from None

    def _count(self, refused: ReadingRefused, receipt_id: int | None) -> None:
        key = (receipt_id or 0, refused.reason.value)
        for _ in range(3):  # two first refusals of a kind racing to insert the row: the loser adds to it
            try:
                with self.sessions() as session, session.begin():
                    row = session.get(SensorRefusalRecord, key)
                    if row is None:
                        row = SensorRefusalRecord(receipt_id=key[0], reason=key[1], count=0)
                        session.add(row)
                    row.count += 1
                    row.last_at = datetime.now(UTC)
                    row.last_detail = refused.detail[:200]
                return
            except IntegrityError:
                continue
        logger.warning("could not count a refused reading (%s)", refused)

    # -- what a lot shows ------------------------------------------------------------------------------

    def last_observed_at(self, session: Session, receipt_id: int) -> int | None:
        value = session.scalar(
            select(func.max(SensorReadingRecord.observed_at)).where(SensorReadingRecord.receipt_id == receipt_id)
        )
        return None if value is None else int(value)

    @staticmethod
    def status(lot: SensorLotRecord, last_observed_at: int | None, now: int) -> str:
        """``monitored`` while a valid reading was observed within the lot's silence window (``silence_seconds``), else
        ``unmonitored``."""
        if last_observed_at is not None and last_observed_at >= now - lot.silence_seconds:
            return "monitored"
        return "unmonitored"


@dataclass
class SensorMonitor:
    """Anchors each lot's periods of readings on chain (see the module's docstring)."""

    sessions: sessionmaker[Session]
    client: LedgerClient
    oracle: str
    poll_interval: float
    timeout: float = 30.0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _retry_at: dict[int, float] = field(default_factory=dict, repr=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sensor-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.anchor_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("anchoring sensor readings failed; trying again")

    async def anchor_due(self, now: int | None = None) -> list[SensorAnchorRecord]:
        """Anchor every lot whose period has ended (the readings received since its last anchor); a period
        without readings anchors nothing (the lot shows ``unmonitored`` once its silence window passes)."""
        if not self.oracle:  # no oracle named: readings are checked and kept, nothing is anchored
            return []
        now = int(time.time()) if now is None else now
        with self.sessions() as session:
            lots = session.scalars(
                select(SensorLotRecord).where(SensorLotRecord.anchored_until + SensorLotRecord.period_seconds <= now)
            ).all()
            for lot in lots:
                session.expunge(lot)
        anchored = []
        for lot in lots:
            if self._retry_at.get(int(lot.receipt_id), 0) > time.monotonic():
                continue
            try:
                record = await self._anchor(lot, now)
            except (ContractRevert, TimeoutError) as exc:
                logger.warning(
                    "anchoring the readings of receipt %s: %s; trying again next period", lot.receipt_id, exc
                )
                self._retry_at[int(lot.receipt_id)] = time.monotonic() + lot.period_seconds
                continue
            self._retry_at.pop(int(lot.receipt_id), None)
            if record is not None:
                anchored.append(record)
        return anchored

    async def _anchor(self, lot: SensorLotRecord, now: int) -> SensorAnchorRecord | None:
        receipt_id, start = int(lot.receipt_id), int(lot.anchored_until)
        with self.sessions() as session:
            readings = session.scalars(
                select(SensorReadingRecord)
                .where(
                    SensorReadingRecord.receipt_id == receipt_id,
                    SensorReadingRecord.received_at >= start,
                    SensorReadingRecord.received_at < now,
                )
                .order_by(SensorReadingRecord.observed_at, SensorReadingRecord.device, SensorReadingRecord.seq)
            ).all()
            kinds = {
                device.address: (DeviceKind(device.kind), int(device.units_per_quantity))
                for device in session.scalars(
                    select(SensorDeviceRecord).where(SensorDeviceRecord.receipt_id == receipt_id)
                )
            }
            rows = [(bytes.fromhex(r.struct_hash[2:]), r.device, int(r.weight), int(r.count)) for r in readings]
        if not rows:
            self._advance(receipt_id, now)
            return None
        receipt = await asyncio.to_thread(self.client.receipt, receipt_id)
        if receipt.state in (ReceiptState.NONE, ReceiptState.REDEEMED):
            self._advance(receipt_id, now)  # the goods left: nothing to watch on chain
            return None
        latest: dict[str, tuple[int, int]] = {}
        for _, device, weight, count in rows:  # in time order: the last one per measuring device stays
            kind, units = kinds.get(device, (DeviceKind.TEMPERATURE_PROBE, 1))
            if kind.measure in ("weight", "count"):
                latest[device] = (weight if kind.measure == "weight" else count, units)
        observed = observed_quantity(list(latest.values()))
        digest = period_digest(h for h, *_ in rows)
        operation_id = f"sensor-anchor-{receipt_id:064x}-{now}"
        operation = await self.client.anchor_readings(
            self.oracle,
            receipt_id,
            digest,
            now,
            len(rows),
            receipt.quantity if observed is None else observed,
            int(lot.tolerance_bps),
            operation_id=operation_id,
        )
        outcome = await self.client.outcome(operation, timeout=self.timeout)
        names = {event.name for event in outcome.events}
        record = SensorAnchorRecord(
            receipt_id=receipt_id,
            period_start=start,
            period_end=now,
            digest="0x" + digest.hex(),
            readings=len(rows),
            observed_quantity=observed,
            shortfall="ReceiptCollateralShortfall" in names,
            margin_called="PledgeMarginCalled" in names,
            operation_id=operation.operation_id,
            tx_hash=outcome.operation.tx_hash,
        )
        with self.sessions() as session, session.begin():
            session.add(record)
            lot_row = session.get(SensorLotRecord, receipt_id)
            if lot_row is not None:
                lot_row.anchored_until = now
            session.flush()
            session.expunge(record)
        logger.info(
            "anchored %s readings of receipt %s (observed %s)%s",
            len(rows),
            receipt_id,
            observed,
            ": collateral shortfall" if record.shortfall else "",
        )
        return record

    def _advance(self, receipt_id: int, now: int) -> None:
        with self.sessions() as session, session.begin():
            lot_row = session.get(SensorLotRecord, receipt_id)
            if lot_row is not None:
                lot_row.anchored_until = now


class MqttBridge:
    """Subscribes to the readings' topic and hands each message to :meth:`SensorHub.accept`."""

    def __init__(self, hub: SensorHub, url: str, topic: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"SCF_SENSOR_MQTT_URL must be mqtt://host[:port], not {url!r}")
        self.hub, self.topic = hub, topic
        self.host, self.port = parts.hostname, parts.port or 1883
        self.connected = threading.Event()
        self._stopping = False
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"scf-ledger-{uuid.uuid4().hex[:12]}", clean_session=True
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        # connect_async and loop_start: the network thread retries the first connection too, so a broker that
        # does not answer yet never stops the service from starting.
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        logger.info("sensor readings: subscribing to %s on mqtt://%s:%s", self.topic, self.host, self.port)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            logger.warning("MQTT broker refused the connection: %s", reason)
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        logger.info("MQTT broker mqtt://%s:%s connected", self.host, self.port)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        if not self._stopping:
            logger.warning("MQTT broker disconnected (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = None
        try:
            self.hub.accept(body, "mqtt")
        except ReadingRefused as refused:
            logger.info("reading on %s refused: %s", message.topic, refused)
        except Exception:
            logger.exception("applying a reading from %s failed", message.topic)
