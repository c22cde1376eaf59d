#!/usr/bin/env bash
# Debian's chromium and a Chinese font, for the portal's browser tests (`make test` runs this first). Playwright
# drives /usr/bin/chromium; Playwright's own browser download is never used (it cannot work offline).
# Where apt-get is not there (not Debian or Ubuntu), it says so and the browser tests skip with that reason.
set -euo pipefail

if [ -x /usr/bin/chromium ] && fc-list ':lang=zh' 2>/dev/null | grep -q .; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install Chromium and a Chinese font yourself (the portal's browser" \
        "tests skip without /usr/bin/chromium, or set SCF_CHROMIUM to a Chromium binary)" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install-browser: apt-get install chromium fonts-wqy-microhei (for the portal's browser tests)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
/usr/bin/chromium --version
