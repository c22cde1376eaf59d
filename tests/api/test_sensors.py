"""Collateral watched by its own sensors (docs/sensors.md), over HTTP and through the real MQTT broker.

Each refusal rule (replay, out-of-order, future-dated, bad signature, a device of another lot) has a test named
after it: the reading is answered with its problem, counted by reason (visible in the lot's view and in
``/sensors/refusals``) and never applied (the lot's readings do not change). The end-to-end test publishes
signed readings to Mosquitto at 127.0.0.1:1883 (skipped with the reason when no broker answers): a pledged lot
loses a fifth of its weight and the pledge shows the margin call within one reading period; then the sensors
go silent and the receipt shows ``unmonitored``.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.sensors import Reading, typed_data
from tests.api.conftest import Api, Participant
from tests.api.test_warehouse_api import day_after, fund_with_cash, ok
from tests.stories import receipt_elements

YUAN = 100
BROKER = ("127.0.0.1", 1883)
PERIOD = 3  # seconds: one reading period of the lots below
SILENCE = 4  # seconds without a valid reading: unmonitored


def broker_answers() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


NO_BROKER = "no MQTT broker answers at 127.0.0.1:1883 (make setup starts Mosquitto: scripts/start-mosquitto.sh)"
TOPIC_ROOT = f"scf-test-{uuid.uuid4().hex[:8]}"
SETTINGS = {
    "sensor_mqtt_url": "mqtt://127.0.0.1:1883" if broker_answers() else "",
    "sensor_mqtt_topic": f"{TOPIC_ROOT}/sensors/+/readings",
    "sensor_poll_seconds": 0.25,
    "sensor_clock_skew_seconds": 60,
}
_lots = itertools.count(int(time.time()) % 100_000)


@dataclass
class Lot:
    receipt_id: str
    pledge_id: int | None
    devices: dict[str, LocalAccount]
    seqs: dict[str, int]

    def reading(self, kind: str, *, weight: int = 0, count: int = 0, temperature: int = 0, **fields: Any) -> Reading:
        device = self.devices[kind]
        seq = fields.pop("seq", None)
        if seq is None:
            seq = self.seqs[kind] = self.seqs.get(kind, 0) + 1
        return Reading(
            device=device.address,
            receipt_id=int(fields.pop("receipt_id", self.receipt_id)),
            seq=seq,
            observed_at=fields.pop("observed_at", int(time.time())),
            weight=weight,
            count=count,
            temperature_centi=temperature,
            location=fields.pop("location", "bay 3"),
        )


@dataclass
class World:
    api: Api
    warehouse: Participant
    steel: Participant
    bank: Participant
    factor: Participant
    regulator: Participant
    oracle: Participant

    def signed(self, reading: Reading, key: LocalAccount) -> dict[str, Any]:
        """The body a device sends: the reading and its EIP-712 signature, made by eth-account's own
        ``sign_typed_data`` (not the ledger's code)."""
        service = self.api.service
        document = typed_data(reading, service.settings.chain_id, str(service.client.contracts["receipts"].address))
        signature = key.sign_typed_data(full_message=document).signature
        return {"reading": document["message"], "signature": "0x" + bytes(signature).hex()}

    def post(self, lot: Lot, reading: Reading, key: LocalAccount | None = None) -> httpx.Response:
        key = key or next(k for k in lot.devices.values() if k.address == reading.device)
        return self.api.http.post("/readings", json=self.signed(reading, key))

    def monitoring(self, lot: Lot, who: Participant | None = None) -> dict[str, Any]:
        response = self.api.http.get(
            f"/warehouse-receipts/{lot.receipt_id}/sensors", headers=(who or self.warehouse).headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def readings(self, lot: Lot) -> list[dict[str, Any]]:
        response = self.api.http.get(f"/warehouse-receipts/{lot.receipt_id}/readings", headers=self.warehouse.headers)
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    def lot(self, *, pledged: bool = False, tolerance_bps: int = 200) -> Lot:
        """A receipt of 1,000 t valued 4,000,000 yuan (pledged to the bank at 70 % when asked), watched by a
        weighbridge (kg: 1,000 to the tonne), a camera counter (bundles of 500 kg: 2 to the tonne) and a temperature
        probe."""
        api = self.api
        body = {
            "owner": self.steel.id,
            "lot_number": f"SENSOR-{next(_lots)}",
            "goods_description": "electrolytic copper cathode, 1,000 t",
            "quantity": 1_000,
            "unit": "t",
            "valuation": 4_000_000 * YUAN,
            "expiry": day_after(api, 365),
            "elements": receipt_elements(),
        }
        receipt_id = str(
            ok(api.http.post("/warehouse-receipts", json=body, headers=self.warehouse.waiting()))["receipt_id"]
        )
        pledge_id = None
        if pledged:
            terms = {
                "receipt_id": receipt_id,
                "financier": self.bank.id,
                "principal": 2_800_000 * YUAN,
                "rate_bps": 600,
                "due_date": day_after(api, 180),
            }
            pledge_id = ok(api.http.post("/pledges", json=terms, headers=self.steel.waiting()))["pledge_id"]
            ok(api.http.post(f"/pledges/{pledge_id}/fund", headers=self.bank.waiting()))
        devices = {kind: Account.create() for kind in ("weighbridge", "camera_counter", "temperature_probe")}
        registration = {
            "devices": [
                {"address": devices["weighbridge"].address, "kind": "weighbridge", "units_per_quantity": 1_000},
                {"address": devices["camera_counter"].address, "kind": "camera_counter", "units_per_quantity": 2},
                {"address": devices["temperature_probe"].address, "kind": "temperature_probe"},
            ],
            "silence_seconds": SILENCE,
            "tolerance_bps": tolerance_bps,
            "period_seconds": PERIOD,
        }
        response = api.http.put(
            f"/warehouse-receipts/{receipt_id}/sensors", json=registration, headers=self.warehouse.headers
        )
        assert response.status_code == 200, response.text
        return Lot(receipt_id, pledge_id, devices, {})


@pytest.fixture(scope="module")
def world(api: Api) -> Iterator[World]:
    agent = api.onboard("Sensor Settlement Bank", "settlement-agent")
    warehouse = api.onboard("Sensor Bonded Warehouse", "warehouse")
    steel = api.onboard("Sensor Copper Trading", "supplier")
    bank = api.onboard("Sensor Bank", "financier")
    factor = api.onboard("Sensor Factor", "financier")
    regulator = api.onboard("Sensor Regulator", "regulator")
    # The service's sensor monitor: a participant whose key the service hosts, appointed by the warehouse as its
    # oracle (a deployment names it in SCF_SENSOR_ORACLE; here it is onboarded first, so it is set afterwards).
    oracle = api.onboard("Sensor Monitor", "warehouse")
    fund_with_cash(api, agent, (bank, 20_000_000 * YUAN))
    service = api.service
    appointed = api.http.put("/oracle-appointment", json={"oracle": oracle.id}, headers=warehouse.waiting())
    assert appointed.status_code == 200 and appointed.json()["status"] == "confirmed", appointed.text
    assert service.sensor_monitor is not None
    service.sensor_monitor.oracle = oracle.id
    yield World(api, warehouse, steel, bank, factor, regulator, oracle)
    service.sensor_monitor.oracle = ""


def refused(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"urn:scf:problem:reading-{reason}", response.text


def totals(world: World) -> dict[str, int]:
    response = world.api.http.get("/sensors/refusals", headers=world.regulator.headers)
    assert response.status_code == 200, response.text
    return response.json()["totals"]  # type: ignore[no-any-return]


def counted_and_not_applied(world: World, lot: Lot, reason: str, attempt: Callable[[], httpx.Response]) -> None:
    """``attempt`` is refused for ``reason``, counted once for the lot and in the totals, and applies nothing."""
    before_lot = world.monitoring(lot)["refusals"].get(reason, 0)
    before_total = totals(world).get(reason, 0)
    readings = world.readings(lot)
    response = attempt()
    assert response.status_code >= 400, response.text
    assert response.json()["type"] == f"urn:scf:problem:reading-{reason}", response.text
    assert world.monitoring(lot)["refusals"].get(reason, 0) == before_lot + 1
    assert totals(world).get(reason, 0) == before_total + 1
    assert world.readings(lot) == readings


# -- accepted readings ------------------------------------------------------------------------------------------


def test_a_reading_signed_as_eip712_typed_data_is_accepted_and_kept(world: World) -> None:
    lot = world.lot()
    reading = lot.reading("weighbridge", weight=1_000_000)
    response = world.post(lot, reading)
    assert response.status_code == 202, response.text
    assert response.json()["struct_hash"] == "0x" + reading.struct_hash().hex()
    [kept] = world.readings(lot)
    assert (kept["device"], kept["seq"], kept["weight"], kept["via"]) == (reading.device, 1, 1_000_000, "http")
    view = world.monitoring(lot)
    assert view["status"] == "monitored" and view["last_observed_at"] == reading.observed_at


def test_a_lot_without_readings_is_unmonitored(world: World) -> None:
    lot = world.lot()
    assert world.monitoring(lot)["status"] == "unmonitored"


# -- refusals: each rule ----------------------------------------------------------------------------------------


def test_replayed_reading_is_refused_and_counted(world: World) -> None:
    lot = world.lot()
    reading = lot.reading("weighbridge", weight=1_000_000)
    body = world.signed(reading, lot.devices["weighbridge"])
    assert world.api.http.post("/readings", json=body).status_code == 202
    counted_and_not_applied(world, lot, "replay", lambda: world.api.http.post("/readings", json=body))
    refused(world.api.http.post("/readings", json=body), 409, "replay")


def test_replay_of_an_older_reading_is_refused_as_a_replay(world: World) -> None:
    lot = world.lot()
    first = world.signed(lot.reading("weighbridge", weight=1_000_000), lot.devices["weighbridge"])
    assert world.api.http.post("/readings", json=first).status_code == 202
    assert world.post(lot, lot.reading("weighbridge", weight=999_000)).status_code == 202
    counted_and_not_applied(world, lot, "replay", lambda: world.api.http.post("/readings", json=first))


def test_out_of_order_reading_is_refused_and_counted(world: World) -> None:
    lot = world.lot()
    now = int(time.time())
    assert world.post(lot, lot.reading("weighbridge", weight=1_000_000, seq=5, observed_at=now)).status_code == 202
    # a lower sequence number
    earlier_seq = lot.reading("weighbridge", weight=1_000_000, seq=4, observed_at=now)
    counted_and_not_applied(world, lot, "out-of-order", lambda: world.post(lot, earlier_seq))
    # a higher sequence number observed before the last reading
    earlier_time = lot.reading("weighbridge", weight=1_000_000, seq=6, observed_at=now - 10)
    counted_and_not_applied(world, lot, "out-of-order", lambda: world.post(lot, earlier_time))


def test_future_dated_reading_is_refused_and_counted(world: World) -> None:
    lot = world.lot()
    future = lot.reading("weighbridge", weight=1_000_000, observed_at=int(time.time()) + 3_600)
    counted_and_not_applied(world, lot, "future-dated", lambda: world.post(lot, future))
    refused(world.post(lot, future), 422, "future-dated")
    # within the clock skew it is accepted
    assert world.post(lot, lot.reading("weighbridge", weight=1, observed_at=int(time.time()) + 30)).status_code == 202


def test_wrongly_signed_reading_is_refused_and_counted(world: World) -> None:
    lot = world.lot()
    reading = lot.reading("weighbridge", weight=1_000_000)
    # signed by another key than the device it names
    counted_and_not_applied(world, lot, "bad-signature", lambda: world.post(lot, reading, Account.create()))
    # signed by the device, then altered: 800 t reported as 1,000 t
    body = world.signed(lot.reading("weighbridge", weight=800_000), lot.devices["weighbridge"])
    body["reading"]["weight"] = 1_000_000
    counted_and_not_applied(world, lot, "bad-signature", lambda: world.api.http.post("/readings", json=body))
    # a signature for another chain (another domain)
    document = typed_data(reading, 1, str(world.api.service.client.contracts["receipts"].address))
    other_chain = lot.devices["weighbridge"].sign_typed_data(full_message=document).signature
    body = {"reading": document["message"], "signature": "0x" + bytes(other_chain).hex()}
    counted_and_not_applied(world, lot, "bad-signature", lambda: world.api.http.post("/readings", json=body))
    refused(world.api.http.post("/readings", json=body), 403, "bad-signature")


def test_reading_from_a_device_of_another_lot_is_refused_and_counted(world: World) -> None:
    lot, other = world.lot(), world.lot()
    # the other lot's weighbridge, correctly signed, names this lot
    stray = other.reading("weighbridge", weight=1_000_000, receipt_id=lot.receipt_id)
    counted_and_not_applied(world, lot, "other-lot", lambda: world.post(other, stray))
    assert world.readings(other) == []


def test_reading_from_an_unregistered_device_is_refused_and_counted(world: World) -> None:
    lot = world.lot()
    stranger = Account.create()
    reading = Reading(stranger.address, int(lot.receipt_id), 1, int(time.time()), 1_000_000, 0, 0, "")
    counted_and_not_applied(
        world, lot, "unknown-device", lambda: world.api.http.post("/readings", json=world.signed(reading, stranger))
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body: body["reading"].update(weight=True),
        lambda body: body["reading"].update(seq="1"),
        lambda body: body["reading"].update(weight=1.5),
        lambda body: body["reading"].update(location="仓库"),
        lambda body: body["reading"].pop("count"),
        lambda body: body.update(signature="0x00"),
        lambda body: body.update(extra=1),
        lambda body: body["reading"].update(receiptId=-1),
        lambda body: body["reading"].update(receiptId=2**256),
        lambda body: body.update(reading=[1]),
    ],
    ids=[
        "bool",
        "string",
        "float",
        "non-ascii",
        "missing",
        "short-signature",
        "extra-field",
        "negative-lot",
        "wide-lot",
        "list",
    ],
)
def test_malformed_reading_is_refused_and_counted(world: World, mutate: Callable[[dict[str, Any]], Any]) -> None:
    lot = world.lot()
    body = world.signed(lot.reading("weighbridge", weight=1_000_000), lot.devices["weighbridge"])
    mutate(body)
    response = world.api.http.post("/readings", json=body)
    refused(response, 422, "malformed")


# -- registration and visibility --------------------------------------------------------------------------------


def test_only_the_issuing_warehouse_registers_sensors_and_a_device_watches_one_lot(world: World) -> None:
    lot = world.lot()
    device = lot.devices["weighbridge"].address
    body = {
        "devices": [{"address": device, "kind": "load_cell"}],
        "silence_seconds": 60,
        "tolerance_bps": 100,
        "period_seconds": 60,
    }
    for who in (world.steel, world.bank, world.oracle):
        response = world.api.http.put(f"/warehouse-receipts/{lot.receipt_id}/sensors", json=body, headers=who.headers)
        assert response.status_code in (403, 404), response.text
    other = world.lot()
    response = world.api.http.put(
        f"/warehouse-receipts/{other.receipt_id}/sensors", json=body, headers=world.warehouse.headers
    )
    assert response.status_code == 409 and response.json()["type"] == "urn:scf:problem:device-taken"
    # a regulator and the owner see the lot; a financier with no pledge on it does not
    world.monitoring(lot, world.regulator)
    world.monitoring(lot, world.steel)
    hidden = world.api.http.get(f"/warehouse-receipts/{lot.receipt_id}/sensors", headers=world.factor.headers)
    assert hidden.status_code == 404


def test_refusal_counts_are_the_regulators_and_the_warehouses_not_a_suppliers(world: World) -> None:
    assert world.api.http.get("/sensors/refusals", headers=world.warehouse.headers).status_code == 200
    assert world.api.http.get("/sensors/refusals", headers=world.steel.headers).status_code == 403


# -- end to end through the broker ------------------------------------------------------------------------------


def publish(readings: list[dict[str, Any]]) -> None:
    """Publish signed readings to the broker, each on its device's topic (QoS 1, acknowledged)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"scf-device-{uuid.uuid4().hex[:8]}")
    client.connect(*BROKER)
    client.loop_start()
    try:
        for body in readings:
            topic = f"{TOPIC_ROOT}/sensors/{body['reading']['device']}/readings"
            client.publish(topic, json.dumps(body), qos=1).wait_for_publish(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()


def wait_for(probe: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.1)


@pytest.mark.skipif(not broker_answers(), reason=NO_BROKER)
def test_pledged_lot_losing_a_fifth_of_its_weight_is_margin_called_and_silent_sensors_leave_it_unmonitored(
    world: World,
) -> None:
    api = world.api
    bridge = api.service.mqtt_bridge
    assert bridge is not None and bridge.connected.wait(10), "the service did not connect to the broker"
    lot = world.lot(pledged=True, tolerance_bps=200)
    weighbridge, counter = lot.devices["weighbridge"], lot.devices["camera_counter"]

    def signed(kind: str, **values: int) -> dict[str, Any]:
        return world.signed(lot.reading(kind, **values), lot.devices[kind])

    # The full lot: 1,000 t on the weighbridge, 2,000 bundles counted, 18.5 °C. One period anchored, no alert.
    publish(
        [
            signed("weighbridge", weight=1_000_000),
            signed("camera_counter", count=2_000),
            signed("temperature_probe", temperature=1_850),
        ]
    )
    wait_for(lambda: len(world.readings(lot)) == 3, 10, "three readings through the broker")
    assert {r["via"] for r in world.readings(lot)} == {"mqtt"}
    first = wait_for(lambda: world.monitoring(lot)["anchors"], PERIOD + 15, "the first period's anchor")
    assert first[0]["readings"] == 3 and first[0]["observed_quantity"] == 1_000 and not first[0]["shortfall"]
    assert world.monitoring(lot)["status"] == "monitored"

    # A fifth of the weight leaves: 800 t. The pledge shows the margin call within one reading period.
    published = time.monotonic()
    publish([signed("weighbridge", weight=800_000), signed("camera_counter", count=2_000)])

    def margin_calls(who: Participant) -> list[dict[str, Any]]:
        response = api.http.get(f"/pledges/{lot.pledge_id}/margin-calls", headers=who.headers)
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    [call] = wait_for(lambda: margin_calls(world.bank), PERIOD + 15, "the margin call")
    elapsed = time.monotonic() - published
    print(f"margin call visible {elapsed:.2f} s after the readings were published (period {PERIOD} s)")
    # Within one reading period: the period the readings fell in is the one whose anchor raised it
    # (the wall-clock bound adds the poll, the block that carries the anchor and the index, on a loaded machine).
    [low] = [r for r in world.readings(lot) if r["weight"] == 800_000]
    anchors = world.monitoring(lot)["anchors"]
    covering = [a for a in anchors if a["period_start"] <= low["received_at"] < a["period_end"]]
    assert len(covering) == 1 and covering[0]["margin_called"], anchors
    assert elapsed < PERIOD + 10, f"the margin call took {elapsed:.1f} s"
    assert call["valuation"] == 4_000_000 * YUAN * 800 // 1_000 and call["principal"] == 2_800_000 * YUAN
    assert margin_calls(world.regulator) == [call] == margin_calls(world.steel)

    # The lender and the regulator see the alert; the chain's event log holds it.
    for who in (world.bank, world.regulator):
        view = world.monitoring(lot, who)
        latest = view["anchors"][0]
        assert latest["shortfall"] and latest["margin_called"] and latest["observed_quantity"] == 800
        assert view["alerts"] == 1
    events = api.http.get("/audit/events", headers=world.regulator.headers, params={"size": 200}).json()["items"]
    shortfalls = [e for e in events if e.get("name") == "ReceiptCollateralShortfall"]
    assert any(str(e["args"]["receiptId"]) == lot.receipt_id for e in shortfalls), shortfalls[-3:]

    # A reading with a bad signature through the broker is counted, not applied.
    forged = world.signed(lot.reading("weighbridge", weight=1_000_000), counter)
    before = world.monitoring(lot)["refusals"].get("bad-signature", 0)
    publish([forged])
    wait_for(lambda: world.monitoring(lot)["refusals"].get("bad-signature", 0) == before + 1, 10, "the count")
    assert all(r["weight"] != 1_000_000 or r["seq"] == 1 for r in world.readings(lot))
    del weighbridge

    # The sensors go silent: once the silence window passes, the receipt shows unmonitored, to the lender too.
    wait_for(lambda: world.monitoring(lot, world.bank)["status"] == "unmonitored", SILENCE + 5, "unmonitored")
    listed = api.http.get("/sensors/lots", headers=world.regulator.headers, params={"status": "unmonitored"})
    assert lot.receipt_id in {str(item["receipt_id"]) for item in listed.json()["items"]}
    mine = api.http.get("/sensors/lots", headers=world.bank.headers).json()["items"]
    assert lot.receipt_id in {str(item["receipt_id"]) for item in mine}
