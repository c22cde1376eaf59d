"""Registration in 中登网 at the portal, in Chinese and in English: the financier records the registration number
and date of its funded financing (a wrong number is refused on the page), sees it once recorded, and the chain
holds it; the regulator's reports page shows the unregistered report with its grace period.

Set-up over REST (not the point here): participants onboarded, credit line and cash, an invoice confirmed, and
the bank's financing of part of it requested, approved and funded."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.api.served import Served, serve
from tests.portal.test_portal_regulator import person
from tests.portal.test_portal_story import desk

_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 100)
NUMBER = "04539487000452458806"
WORDS = {
    "zh-CN": {
        "number": "初始登记编号（20 位数字）",
        "date": "登记日期",
        "wrong": "登记编号为 20 位数字",
        "recorded": "中登网登记",
        "unregistered": "未办理中登网登记的融资与质押",
        "grace": "放款后 30 天",
    },
    "en": {
        "number": "Initial registration number (20 digits)",
        "date": "Registration date",
        "wrong": "A registration number is 20 digits",
        "recorded": "中登网 registration",
        "unregistered": "Financings and pledges not registered in 中登网",
        "grace": "30 days after funding",
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal-registration"), block_time=0.25) as served:
        yield served


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "confirmed", body
    return body


def funded_financing(served: Served, http: httpx.Client, lang: str) -> tuple[dict[str, str], int]:
    names = {role: f"{role} reg {lang}" for role in ("regulator", "agent", "core", "supplier", "bank")}
    for who, role in (
        ("regulator", "regulator"),
        ("agent", "settlement-agent"),
        ("core", "core-firm"),
        ("supplier", "supplier"),
        ("bank", "financier"),
    ):
        served.onboard(http, names[who], role)
    wait = {"Prefer": "wait=30"}
    line = {"core_firm": served.addresses[names["core"]], "limit": 10_000_000 * 100}
    ok(http.post("/credit-lines", json=line, headers=served.headers("operator", **wait)))
    served.deposit(http, names["agent"], names["bank"], 100_000_000)
    invoice = {
        "buyer": served.addresses[names["core"]],
        "amount": 1_000_000 * 100,
        "invoice_number": f"2511800{next(_numbers):013d}",
        "due_date": (datetime.now(UTC).date() + timedelta(days=90)).isoformat(),
    }
    invoice_id = ok(http.post("/invoices", json=invoice, headers=served.headers(names["supplier"], **wait)))["result"][
        "invoice_id"
    ]
    piece = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=served.headers(names["core"], **wait)))["result"][
        "piece_id"
    ]
    asking = {
        "piece_id": piece,
        "amount": 400_000 * 100,
        "financier": served.addresses[names["bank"]],
        "max_discount_rate_bps": 600,
        "max_fee": 0,
    }
    request_id = int(
        ok(http.post("/financing-requests", json=asking, headers=served.headers(names["supplier"], **wait)))["result"][
            "request_id"
        ]
    )
    bank = served.headers(names["bank"], **wait)
    ok(http.post(f"/financing-requests/{request_id}/approve", json={"discount_rate_bps": 500}, headers=bank))
    ok(http.post(f"/financing-requests/{request_id}/fund", headers=bank))
    return names, request_id


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_financier_records_the_registration_and_the_regulator_sees_the_report(
    browser: Browser, served: Served, screenshots: Path, lang: str
) -> None:
    words = WORDS[lang]
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        names, request_id = funded_financing(served, http, lang)
        bank = desk(browser, served, served.keys[names["bank"]], lang, screenshots)
        bank.go("financing")
        record = bank.page.locator(f"details[data-registration='{request_id}']")
        record.locator("summary").click()
        record.get_by_label(words["number"]).fill("0453948700045245880")  # 19 digits
        record.get_by_label(words["date"]).fill(datetime.now(UTC).date().isoformat())
        record.locator("form button").click()
        expect(record.get_by_role("alert")).to_contain_text(words["wrong"])
        record.get_by_label(words["number"]).fill(NUMBER)
        record.locator("form button").click()
        assert bank.done() == "confirmed"
        registration = served.service.client.financing_registration(request_id)
        assert registration is not None and registration.number == NUMBER
        shown = bank.page.locator(f"span[data-registration='{request_id}']")
        expect(shown).to_contain_text(f"{words['recorded']} {NUMBER}", timeout=30_000)
        bank.shot("registration-financier")

        regulator = person(browser, served, served.keys[names["regulator"]], lang, screenshots)
        regulator.go("reports")
        section = regulator.page.locator("#unregistered-report")
        expect(section.get_by_role("heading", name=words["unregistered"])).to_be_visible()
        expect(regulator.page.locator("#unregistered-terms")).to_contain_text(words["grace"])
        expect(regulator.page.locator("#unregistered-exports button")).to_have_count(2)
