#!/usr/bin/env bash
# Mosquitto at 127.0.0.1:1883, the broker sensors publish signed readings to (docs/sensors.md): `make test` and
# `make run` run this first. Nothing to do when a broker already answers there; otherwise Debian's mosquitto is
# installed where it is missing (apt-get) and started as a daemon with scripts/mosquitto.conf. Where it cannot be
# installed, it says so and the tests that need the broker skip with that reason (the service starts without it).
set -euo pipefail
cd "$(dirname "$0")/.."

answers() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }

if answers; then
    exit 0
fi
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "start-mosquitto: no apt-get here; install Mosquitto yourself (the broker tests skip without a broker" \
            "at 127.0.0.1:1883)" >&2
        exit 0
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "start-mosquitto: apt-get install mosquitto (the MQTT broker of the sensors' readings)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto >/dev/null
fi
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
"$mosquitto_bin" -d -c scripts/mosquitto.conf
for _ in $(seq 50); do
    if answers; then
        echo "start-mosquitto: Mosquitto answers at 127.0.0.1:1883"
        exit 0
    fi
    sleep 0.1
done
echo "start-mosquitto: Mosquitto did not start; the broker tests will skip" >&2
