"""Sensors watching the goods of a warehouse receipt (docs/sensors.md).

The receipt's warehouse registers the lot's devices and the rules' parameters (``PUT
/warehouse-receipts/{id}/sensors``); devices send signed readings here (``POST /readings``, for those that
cannot speak MQTT: no API key, the device's signature is the credential) or to the MQTT broker; whoever sees
the receipt (its warehouse and owner, the lender of its pledge, the regulator, the operator) sees whether it is
monitored, its readings, the periods anchored on chain with their alerts, and the refused readings counted per
reason. The margin calls a shortfall raised are the pledge's (``/pledges/{id}/margin-calls``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import delete, func, select

from api.auth import Caller, CurrentCaller, Service, require_role
from api.models import WideInt
from api.problems import Problem, jsonable
from api.routes.common import (
    Address,
    Bps,
    PathId,
    QueryInt,
    as_issuer,
    json_integer,
    not_found,
    sees_everything,
    visible_receipt,
)
from api.service import LedgerService
from api.store import (
    SensorAnchorRecord,
    SensorDeviceRecord,
    SensorLotRecord,
    SensorReadingRecord,
    SensorRefusalRecord,
)
from ledger.index.models import PledgeRow
from ledger.models import PledgeState, Role
from ledger.sensors import DeviceKind, ReadingRefused, Refusal

router = APIRouter(tags=["sensors"])

#: a refused reading's HTTP status, by reason
REFUSAL_STATUS = {
    Refusal.MALFORMED: 422,
    Refusal.BAD_SIGNATURE: 403,
    Refusal.UNKNOWN_DEVICE: 403,
    Refusal.OTHER_LOT: 403,
    Refusal.REPLAY: 409,
    Refusal.OUT_OF_ORDER: 409,
    Refusal.FUTURE_DATED: 422,
}
MAX_DEVICES = 32


SilenceSeconds = Annotated[
    int,
    BeforeValidator(json_integer),
    Field(ge=1, le=604_800, description="no valid reading for this long (seconds): the receipt shows `unmonitored`"),
]
PeriodSeconds = Annotated[
    int,
    BeforeValidator(json_integer),
    Field(ge=1, le=86_400, description="the readings of each period are anchored on chain as one digest"),
]
UnitsPerQuantity = Annotated[
    int,
    BeforeValidator(json_integer),
    Field(ge=1, le=10**12, description="weight or count units per unit of the receipt (1000 for kg per tonne)"),
]


class Device(BaseModel):
    address: Address = Field(description="the device's own key's address: it signs every reading")
    kind: DeviceKind = Field(description="what it measures: weight (weighbridge, load cell), count or temperature")
    units_per_quantity: UnitsPerQuantity = 1


class SensorLot(BaseModel):
    """A lot's devices and the parameters of its rules."""

    devices: list[Device] = Field(min_length=1, max_length=MAX_DEVICES)
    silence_seconds: SilenceSeconds
    tolerance_bps: Bps = Field(description="observed quantity below the receipt's by more than this: an alert")
    period_seconds: PeriodSeconds


class DeviceView(BaseModel):
    address: str
    kind: str
    units_per_quantity: int
    last_seq: WideInt | None
    last_observed_at: int | None


class AnchorView(BaseModel):
    period_start: int
    period_end: int
    digest: str
    readings: int
    observed_quantity: WideInt | None = Field(description="in the receipt's unit; null: no weight or count read")
    shortfall: bool = Field(description="the chain raised a collateral alert (ReceiptCollateralShortfall)")
    margin_called: bool = Field(description="and a margin call on the receipt's pledge (PledgeMarginCalled)")
    operation_id: str
    tx_hash: str | None


class MonitoringView(BaseModel):
    """Whether a receipt's goods are watched, and what its sensors saw."""

    receipt_id: WideInt
    status: str = Field(description="`monitored`, or `unmonitored` when no valid reading came within the window")
    last_observed_at: int | None
    silence_seconds: int
    tolerance_bps: int
    period_seconds: int
    devices: list[DeviceView]
    anchors: list[AnchorView] = Field(description="the latest periods anchored on chain, newest first")
    alerts: int = Field(description="periods that raised a collateral alert")
    refusals: dict[str, int] = Field(description="readings refused for this lot, by reason")


class ReadingView(BaseModel):
    device: str
    receipt_id: WideInt
    seq: WideInt
    observed_at: int
    weight: WideInt
    count: WideInt
    temperature_centi: int
    location: str
    signature: str
    struct_hash: str
    received_at: int
    via: str


class ReadingList(BaseModel):
    items: list[ReadingView]


class AcceptedReading(BaseModel):
    accepted: bool
    receipt_id: WideInt
    device: str
    seq: WideInt
    struct_hash: str


class LotItem(BaseModel):
    receipt_id: WideInt
    warehouse: str
    status: str
    last_observed_at: int | None
    alerts: int


class LotList(BaseModel):
    items: list[LotItem]


class RefusalItem(BaseModel):
    receipt_id: WideInt | None = Field(description="the lot the reading named (null: none could be read)")
    reason: str
    count: int
    last_at: datetime
    last_detail: str


class RefusalList(BaseModel):
    totals: dict[str, int] = Field(description="readings refused, by reason")
    items: list[RefusalItem]


# -- helpers ----------------------------------------------------------------------------------------------------


def _refusals(session: Any, receipt_id: int) -> dict[str, int]:
    rows = session.execute(
        select(SensorRefusalRecord.reason, SensorRefusalRecord.count).where(
            SensorRefusalRecord.receipt_id == receipt_id
        )
    ).all()
    return {reason: int(count) for reason, count in rows}


def _alerts(session: Any, receipt_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(SensorAnchorRecord)
            .where(SensorAnchorRecord.receipt_id == receipt_id, SensorAnchorRecord.shortfall.is_(True))
        )
    )


def monitoring_view(service: LedgerService, receipt_id: int) -> MonitoringView:
    hub = service.sensors
    assert hub is not None
    now = int(time.time())
    with service.sessions() as session:
        lot = session.get(SensorLotRecord, receipt_id)
        if lot is None:
            raise not_found(f"sensors registered for warehouse receipt {receipt_id}")
        devices = []
        for device in session.scalars(
            select(SensorDeviceRecord)
            .where(SensorDeviceRecord.receipt_id == receipt_id)
            .order_by(SensorDeviceRecord.address)
        ):
            last_seq, last_observed = session.execute(
                select(func.max(SensorReadingRecord.seq), func.max(SensorReadingRecord.observed_at)).where(
                    SensorReadingRecord.device == device.address
                )
            ).one()
            devices.append(
                DeviceView(
                    address=device.address,
                    kind=device.kind,
                    units_per_quantity=int(device.units_per_quantity),
                    last_seq=None if last_seq is None else jsonable(int(last_seq)),
                    last_observed_at=None if last_observed is None else int(last_observed),
                )
            )
        anchors = session.scalars(
            select(SensorAnchorRecord)
            .where(SensorAnchorRecord.receipt_id == receipt_id)
            .order_by(SensorAnchorRecord.id.desc())
            .limit(20)
        ).all()
        last = hub.last_observed_at(session, receipt_id)
        return MonitoringView(
            receipt_id=jsonable(receipt_id),
            status=hub.status(lot, last, now),
            last_observed_at=last,
            silence_seconds=lot.silence_seconds,
            tolerance_bps=lot.tolerance_bps,
            period_seconds=lot.period_seconds,
            devices=devices,
            anchors=[
                AnchorView(
                    period_start=a.period_start,
                    period_end=a.period_end,
                    digest=a.digest,
                    readings=a.readings,
                    observed_quantity=None if a.observed_quantity is None else jsonable(int(a.observed_quantity)),
                    shortfall=a.shortfall,
                    margin_called=a.margin_called,
                    operation_id=a.operation_id,
                    tx_hash=a.tx_hash,
                )
                for a in anchors
            ],
            alerts=_alerts(session, receipt_id),
            refusals=_refusals(session, receipt_id),
        )


def _reading_view(r: SensorReadingRecord) -> ReadingView:
    return ReadingView(
        device=r.device,
        receipt_id=jsonable(int(r.receipt_id)),
        seq=jsonable(int(r.seq)),
        observed_at=int(r.observed_at),
        weight=jsonable(int(r.weight)),
        count=jsonable(int(r.count)),
        temperature_centi=r.temperature_centi,
        location=r.location,
        signature=r.signature,
        struct_hash=r.struct_hash,
        received_at=r.received_at,
        via=r.via,
    )


# -- routes -----------------------------------------------------------------------------------------------------


@router.put("/warehouse-receipts/{receipt_id}/sensors", response_model=MonitoringView)
def register_sensors(receipt_id: PathId, body: SensorLot, service: Service, caller: CurrentCaller) -> MonitoringView:
    """The receipt's warehouse registers the lot's devices (each with its own key) and its rules' parameters,
    replacing any earlier registration. A device watches one lot: one registered for another lot is a 409.
    Kept by the service (nothing is signed): the chain sees the anchored periods."""
    as_issuer(service, caller, receipt_id)
    addresses = [device.address for device in body.devices]
    if len(set(addresses)) != len(addresses):
        raise Problem(422, "validation", "Invalid request", "a device is listed twice")
    with service.sessions() as session, session.begin():
        taken = session.scalars(
            select(SensorDeviceRecord.address).where(
                SensorDeviceRecord.address.in_(addresses), SensorDeviceRecord.receipt_id != receipt_id
            )
        ).all()
        if taken:
            raise Problem(409, "device-taken", "Device registered elsewhere", f"{taken[0]} watches another lot")
        lot = session.get(SensorLotRecord, receipt_id)
        if lot is None:
            lot = SensorLotRecord(receipt_id=receipt_id, warehouse=caller.address, anchored_until=int(time.time()))
            session.add(lot)
        lot.silence_seconds, lot.tolerance_bps = body.silence_seconds, body.tolerance_bps
        lot.period_seconds = body.period_seconds
        session.flush()
        session.execute(
            delete(SensorDeviceRecord).where(
                SensorDeviceRecord.receipt_id == receipt_id, SensorDeviceRecord.address.not_in(addresses)
            )
        )
        for device in body.devices:
            record = session.get(SensorDeviceRecord, device.address)
            if record is None:
                record = SensorDeviceRecord(address=device.address, receipt_id=receipt_id)
                session.add(record)
            record.kind, record.units_per_quantity = device.kind.value, device.units_per_quantity
    return monitoring_view(service, receipt_id)


@router.get("/warehouse-receipts/{receipt_id}/sensors", response_model=MonitoringView)
def get_monitoring(receipt_id: PathId, service: Service, caller: CurrentCaller) -> MonitoringView:
    """Whether the receipt's goods are watched (`monitored` / `unmonitored`), its devices, the periods anchored
    on chain with their collateral alerts, and the readings refused for it by reason: to whoever sees the
    receipt (its warehouse and owner, the lender of its pledge, the regulator, the operator)."""
    visible_receipt(service, caller, receipt_id)
    return monitoring_view(service, receipt_id)


@router.get("/warehouse-receipts/{receipt_id}/readings", response_model=ReadingList)
def list_readings(
    receipt_id: PathId,
    service: Service,
    caller: CurrentCaller,
    limit: Annotated[QueryInt, Query(ge=1, le=500, description="the newest this many")] = 100,
) -> ReadingList:
    """The receipt's valid readings as signed, newest first: with each period's anchored digest, anyone who
    sees the receipt can recompute what the chain holds (docs/sensors.md)."""
    visible_receipt(service, caller, receipt_id)
    with service.sessions() as session:
        rows = session.scalars(
            select(SensorReadingRecord)
            .where(SensorReadingRecord.receipt_id == receipt_id)
            .order_by(SensorReadingRecord.id.desc())
            .limit(limit)
        ).all()
        return ReadingList(items=[_reading_view(r) for r in rows])


@router.post(
    "/readings",
    status_code=202,
    response_model=AcceptedReading,
    responses={
        403: {"description": "bad-signature, unknown-device or other-lot"},
        409: {"description": "replay or out-of-order"},
        422: {"description": "malformed or future-dated"},
    },
)
async def post_reading(body: dict[str, Any], service: Service) -> Any:
    """A device's signed reading, for devices that cannot speak MQTT (the same body as an MQTT message:
    `{"reading": {...}, "signature": "0x…"}`). No API key: the device's signature over the EIP-712 `Reading`
    is the credential. A refused reading is counted by reason and answered with the problem
    `urn:scf:problem:reading-<reason>`; it changes nothing else."""
    hub = service.sensors
    assert hub is not None
    try:
        record = await asyncio.to_thread(hub.accept, body, "http")
    except ReadingRefused as refused:
        reason = refused.reason
        raise Problem(REFUSAL_STATUS[reason], f"reading-{reason.value}", "Reading refused", refused.detail) from None
    return JSONResponse(
        status_code=202,
        content=AcceptedReading(
            accepted=True,
            receipt_id=jsonable(int(record.receipt_id)),
            device=record.device,
            seq=jsonable(int(record.seq)),
            struct_hash=record.struct_hash,
        ).model_dump(),
    )


def _lots_visible(service: LedgerService, caller: Caller) -> Any:
    query = select(SensorLotRecord).order_by(SensorLotRecord.receipt_id)
    if sees_everything(caller):
        return query
    if caller.has(Role.FINANCIER):
        pledged = select(PledgeRow.receipt_id).where(
            PledgeRow.financier == caller.address, PledgeRow.state == PledgeState.ACTIVE
        )
        return query.where((SensorLotRecord.warehouse == caller.address) | SensorLotRecord.receipt_id.in_(pledged))
    return query.where(SensorLotRecord.warehouse == caller.address)


@router.get("/sensors/lots", response_model=LotList)
def list_lots(
    service: Service,
    caller: CurrentCaller,
    status: Annotated[str | None, Query(pattern="^(monitored|unmonitored)$")] = None,
) -> LotList:
    """The lots watched by sensors, with their status and alert counts: all of them to the regulator and the
    operator, a lender's pledged lots to it, a warehouse's own to it."""
    hub = service.sensors
    assert hub is not None
    now = int(time.time())
    items = []
    with service.sessions() as session:
        for lot in session.scalars(_lots_visible(service, caller).limit(1000)):
            last = hub.last_observed_at(session, int(lot.receipt_id))
            state = hub.status(lot, last, now)
            if status is not None and state != status:
                continue
            items.append(
                LotItem(
                    receipt_id=jsonable(int(lot.receipt_id)),
                    warehouse=lot.warehouse,
                    status=state,
                    last_observed_at=last,
                    alerts=_alerts(session, int(lot.receipt_id)),
                )
            )
    return LotList(items=items)


@router.get("/sensors/refusals", response_model=RefusalList)
def list_refusals(service: Service, caller: CurrentCaller) -> RefusalList:
    """Readings refused, counted by lot and reason (replay, out-of-order, future-dated, bad-signature,
    unknown-device, other-lot, malformed): to the regulator and the operator all of them, to a warehouse those
    that named its lots."""
    if not sees_everything(caller):
        require_role(caller, Role.WAREHOUSE)
    query = select(SensorRefusalRecord).order_by(SensorRefusalRecord.receipt_id, SensorRefusalRecord.reason)
    if not sees_everything(caller):
        own = select(SensorLotRecord.receipt_id).where(SensorLotRecord.warehouse == caller.address)
        query = query.where(SensorRefusalRecord.receipt_id.in_(own))
    with service.sessions() as session:
        rows = session.scalars(query.limit(5000)).all()
        totals: dict[str, int] = {}
        for row in rows:
            totals[row.reason] = totals.get(row.reason, 0) + int(row.count)
        return RefusalList(
            totals=totals,
            items=[
                RefusalItem(
                    receipt_id=jsonable(int(row.receipt_id)) if row.receipt_id else None,
                    reason=row.reason,
                    count=int(row.count),
                    last_at=row.last_at if row.last_at.tzinfo else row.last_at.replace(tzinfo=UTC),
                    last_detail=row.last_detail,
                )
                for row in rows
            ],
        )
