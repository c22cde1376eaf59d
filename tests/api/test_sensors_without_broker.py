"""The service starts and serves, readings over HTTP included, while no MQTT broker answers: the bridge retries
in the background and says so in the log (docs/sensors.md)."""

from __future__ import annotations

import time

from eth_account import Account

from ledger.sensors import Reading, typed_data
from tests.api.conftest import Api, free_port

SILENT_PORT = free_port()  # nothing listens there
SETTINGS = {"sensor_mqtt_url": f"mqtt://127.0.0.1:{SILENT_PORT}", "sensor_poll_seconds": 0.25}


def test_the_service_serves_without_a_broker_and_keeps_trying(api: Api) -> None:
    bridge = api.service.mqtt_bridge
    assert bridge is not None and (bridge.host, bridge.port) == ("127.0.0.1", SILENT_PORT)
    assert not bridge.connected.is_set()
    assert api.http.get("/health").status_code == 200
    # a reading over HTTP is checked as ever: this device is registered nowhere
    device = Account.create()
    reading = Reading(device.address, 7, 1, int(time.time()), 1_000, 0, 0, "")
    service = api.service
    document = typed_data(reading, service.settings.chain_id, str(service.client.contracts["receipts"].address))
    body = {
        "reading": document["message"],
        "signature": "0x" + bytes(device.sign_typed_data(full_message=document).signature).hex(),
    }
    response = api.http.post("/readings", json=body)
    assert response.status_code == 403 and response.json()["type"] == "urn:scf:problem:reading-unknown-device"
    # the bridge's thread is alive and retrying, not crashed
    time.sleep(1.5)
    assert bridge.client._thread is not None and bridge.client._thread.is_alive()
    assert not bridge.connected.is_set()
