"""The regulator at the portal, in Chinese and in English, checked against the REST API and the chain.

Set-up over REST (not the point here): participants onboarded, a deposit of ¥60,000.00 (above the single
threshold of ¥50,000.00, docs/reports.md), an invoice confirmed so that the supplier holds a piece. Then in the
portal: the regulator filters the large-transaction report and takes its files (the CSV holds what the API's
CSV holds); reads the core firm's line of the payment-discipline report with another threshold and takes its CSV;
freezes the supplier's piece, and the supplier's transfer of it is refused with the contracts' reason
in the supplier's language; lifts it, and the transfer goes through; verifies the audit log; the operator (alone
allowed to) anchors it on chain, and the regulator's next verification shows the anchor; the event log filtered.
The regulator's other pages offer no act that the API would refuse it."""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, expect

from tests.api.served import Served, serve
from tests.portal.test_portal_story import WORDS, Desk, desk

_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 100)

REGULATOR_WORDS = {
    "zh-CN": {
        "reports": "监管报告",
        "freezes": "冻结",
        "audit": "审计日志",
        "events": "链上事件",
        "date_from": "起始日（UTC）",
        "date_to": "截止日（UTC）",
        "single": "单笔大额标准（元）",
        "daily": "单日累计标准（元）",
        "make_report": "生成报告",
        "export_single": "导出 CSV（单笔）",
        "export_xlsx": "导出 XLSX",
        "confirmation_days": "确权迟延标准（天）",
        "update_discipline": "更新",
        "export_discipline": "导出 CSV（付款纪律）",
        "kind": "对象类型",
        "target": "对象（账户或编号）",
        "reason": "冻结理由",
        "freeze": "冻结",
        "lift": "解除冻结",
        "piece_kind": "应收账款凭证",
        "frozen_refusal": "该凭证已被监管冻结",
        "frozen": "已冻结",
        "verify": "核验审计日志",
        "intact": "完整有效",
        "anchor": "立即锚定到链上",
        "event_name": "事件名称",
        "contract": "合约",
        "filter_events": "筛选",
    },
    "en": {
        "reports": "Reports",
        "freezes": "Freezes",
        "audit": "Audit log",
        "events": "Event log",
        "date_from": "From (UTC day)",
        "date_to": "To (UTC day)",
        "single": "Single-transaction threshold (yuan)",
        "daily": "Daily-total threshold (yuan)",
        "make_report": "Make the report",
        "export_single": "Export CSV (single)",
        "export_xlsx": "Export XLSX",
        "confirmation_days": "Confirmation threshold (days)",
        "update_discipline": "Update",
        "export_discipline": "Export CSV (payment discipline)",
        "kind": "What",
        "target": "Which (account or id)",
        "reason": "Reason",
        "freeze": "Freeze",
        "lift": "Lift the freeze",
        "piece_kind": "receivable piece",
        "frozen_refusal": "The piece is frozen by the regulator",
        "frozen": "frozen",
        "verify": "Verify the audit log",
        "intact": "intact",
        "anchor": "Anchor on chain now",
        "event_name": "Event name",
        "contract": "Contract",
        "filter_events": "Filter",
    },
}


class Person(Desk):
    """A desk that also knows the regulator's pages' words."""

    def word(self, key: str) -> str:
        return REGULATOR_WORDS[self.lang].get(key) or WORDS[self.lang][key]


def person(browser: Browser, served: Served, key: str, lang: str, shots: Path) -> Person:
    signed_in = desk(browser, served, key, lang, shots)
    return Person(signed_in.page, signed_in.lang, signed_in.shots, signed_in.errors)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal-regulator"), block_time=0.25) as served:
        yield served


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "confirmed", body
    return body


def story(served: Served, http: httpx.Client, lang: str) -> dict[str, Any]:
    """Over REST: everyone onboarded, ¥60,000.00 deposited for the supplier, an invoice of ¥1,000,000.00
    confirmed (the supplier holds its piece). Answers the names under which served keeps keys and accounts."""
    names = {role: f"{role} {lang}" for role in ("regulator", "agent", "core", "supplier", "tier2")}
    for who, role in [
        ("regulator", "regulator"),
        ("agent", "settlement-agent"),
        ("core", "core-firm"),
        ("supplier", "supplier"),
        ("tier2", "supplier"),
    ]:
        served.onboard(http, names[who], role)
    wait = {"Prefer": "wait=30"}
    line = {"core_firm": served.addresses[names["core"]], "limit": 10_000_000 * 100}
    ok(http.post("/credit-lines", json=line, headers=served.headers("operator", **wait)))
    served.deposit(http, names["agent"], names["supplier"], 6_000_000)
    due = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    invoice = {
        "buyer": served.addresses[names["core"]],
        "amount": 1_000_000 * 100,
        "invoice_number": f"2511700{next(_numbers):013d}",
        "due_date": due,
    }
    registered = ok(http.post("/invoices", json=invoice, headers=served.headers(names["supplier"], **wait)))
    invoice_id = registered["result"]["invoice_id"]
    confirmed = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=served.headers(names["core"], **wait)))
    return {"names": names, "piece": int(confirmed["result"]["piece_id"])}


def csv_table(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_regulator_reports_freezes_and_verifies_through_the_portal_and_nothing_else(
    browser: Browser, served: Served, screenshots: Path, lang: str
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        told = story(served, http, lang)
        names, piece = told["names"], told["piece"]
        supplier_account = served.addresses[names["supplier"]]
        tier2_account = served.addresses[names["tier2"]]
        regulator_headers = served.headers(names["regulator"])

        regulator = person(browser, served, served.keys[names["regulator"]], lang, screenshots)
        page = regulator.page

        # The other pages are read-only for the regulator: no form but the filters, no act on any row.
        for key in ("invoices", "receivables", "financing", "participants"):
            regulator.go(key)
            main = page.locator("main")
            assert main.locator("form:not(.bar)").count() == 0, key
            assert (
                main.locator("details.actions, button.primary, button[data-invoice], button[data-request]").count() == 0
            )

        # The large-transaction report of today, single threshold ¥50,000.00, daily ¥60,000.00.
        today = datetime.now(UTC).date().isoformat()
        regulator.go("reports")
        page.get_by_label(regulator.word("date_from")).fill(today)
        page.get_by_label(regulator.word("date_to")).fill(today)
        page.get_by_label(regulator.word("single")).fill("50,000.00")
        page.get_by_label(regulator.word("daily")).fill("60,000.00")
        page.get_by_role("button", name=regulator.word("make_report"), exact=True).click()
        expect(page).to_have_url(re.compile(r"single_threshold=5000000"))
        single_row = (
            page.locator("#report-single tr")
            .filter(has_text="¥60,000.00")
            .filter(has=page.locator(f"[title='{supplier_account}']"))
        )
        expect(single_row).to_have_count(1)
        daily_row = page.locator("#report-daily tr").filter(has=page.locator(f"[title='{supplier_account}']"))
        expect(daily_row).to_contain_text("¥60,000.00")
        regulator.shot("reports-regulator")

        params = {"date_from": today, "date_to": today, "single_threshold": 5_000_000, "daily_threshold": 6_000_000}
        with page.expect_download() as downloading:
            page.get_by_role("button", name=regulator.word("export_single"), exact=True).click()
        download = downloading.value
        assert download.suggested_filename.startswith("large-transactions-")
        assert download.suggested_filename.endswith(".csv")
        taken = csv_table(Path(download.path()).read_bytes())
        answer = http.get(
            "/reports/large-transactions",
            params={**params, "format": "csv", "part": "single"},
            headers=regulator_headers,
        )
        assert answer.status_code == 200, answer.text
        assert taken == csv_table(answer.content)
        mine = [row for row in taken if row["recipient"] == supplier_account]
        assert [(row["kind"], row["amount"], row["sender"]) for row in mine] == [("deposit", "6000000", "")]
        assert taken[-1]["kind"] == f"total: {len(taken) - 1} items"

        with page.expect_download() as downloading:
            page.get_by_role("button", name=regulator.word("export_xlsx"), exact=True).click()
        assert downloading.value.suggested_filename.endswith(".xlsx")
        workbook = load_workbook(io.BytesIO(Path(downloading.value.path()).read_bytes()), read_only=True)
        assert workbook.sheetnames == ["single", "daily"]
        amounts = [row for row in workbook["single"].iter_rows(values_only=True) if supplier_account in row]
        assert len(amounts) == 1 and 6_000_000 in amounts[0]

        # The core firms' payment discipline: the core firm confirmed its supplier's invoice at once, due in 90 days.
        core_account = served.addresses[names["core"]]
        discipline_row = page.locator("#discipline tr").filter(has=page.locator(f"[title='{core_account}']"))
        expect(discipline_row).to_contain_text("¥1,000,000.00")
        page.get_by_label(regulator.word("confirmation_days")).fill("45")
        page.get_by_role("button", name=regulator.word("update_discipline"), exact=True).click()
        expect(page).to_have_url(re.compile(r"confirmation_days=45"))
        expect(page).to_have_url(re.compile(r"single_threshold=5000000"))  # the other report's filters stay
        expect(page.locator("#discipline-terms")).to_contain_text("45")
        with page.expect_download() as downloading:
            page.get_by_role("button", name=regulator.word("export_discipline"), exact=True).click()
        assert downloading.value.suggested_filename.startswith("payment-discipline-")
        taken = csv_table(Path(downloading.value.path()).read_bytes())
        answer = http.get(
            "/reports/payment-discipline",
            params={"format": "csv", "confirmation_days": 45},
            headers=regulator_headers,
        )
        assert answer.status_code == 200, answer.text
        assert taken == csv_table(answer.content)
        (line,) = [row for row in taken if row["core_firm"] == core_account]
        assert (line["outstanding_amount"], line["overdue"], line["registered"], line["late_share_bps"]) == (
            "100000000",
            "0",
            "1",
            "0",
        )

        # The supplier opens its piece to pay tier 2 ¥100.00; meanwhile the regulator freezes the piece.
        supplier = person(browser, served, served.keys[names["supplier"]], lang, screenshots)
        supplier.go("receivables")
        actions = supplier.page.locator(f"details[data-piece='{piece}']")
        actions.locator("summary").click()
        transfer = actions.locator("form").filter(
            has=supplier.page.get_by_role("heading", name=supplier.word("transfer"))
        )
        transfer.get_by_label(supplier.word("to")).fill(tier2_account)
        transfer.get_by_label(supplier.word("transfer_amount")).fill("100.00")

        regulator.go("freezes")
        page.get_by_label(regulator.word("kind"), exact=True).select_option(label=regulator.word("piece_kind"))
        page.get_by_label(regulator.word("target")).fill(str(piece))
        page.get_by_label(regulator.word("reason")).fill(f"case {lang} 2026-031: suspected double financing")
        assert regulator.act("freeze") == "confirmed"
        assert served.service.client.piece(piece).frozen
        listed = http.get("/freezes", params={"kind": "piece"}, headers=regulator_headers).json()
        assert f"piece:{piece}" in {item["id"] for item in listed["items"]}
        frozen_row = page.locator("tr").filter(has_text=f"#{piece}")
        expect(frozen_row).to_have_count(1)
        regulator.shot("freezes-regulator")

        assert supplier.act("submit", transfer) == "refused"
        expect(supplier.page.locator("#activity li").first).to_contain_text(supplier.word("frozen_refusal"))
        supplier.shot("refusal-frozen-supplier")
        assert served.service.client.piece(piece).owner == supplier_account
        supplier.page.reload()
        supplier.go("receivables")
        held_row = supplier.page.locator("tr").filter(has_text=f"#{piece}")
        expect(held_row).to_contain_text(supplier.word("frozen"))
        assert held_row.locator("details.actions").count() == 0

        assert regulator.act("lift", frozen_row) == "confirmed"
        assert not served.service.client.piece(piece).frozen
        expect(page.locator("tr").filter(has_text=f"#{piece}")).to_have_count(0)

        supplier.page.reload()
        supplier.go("receivables")
        expect(held_row).not_to_contain_text(supplier.word("frozen"))
        actions = supplier.page.locator(f"details[data-piece='{piece}']")
        actions.locator("summary").click()
        transfer = actions.locator("form").filter(
            has=supplier.page.get_by_role("heading", name=supplier.word("transfer"))
        )
        transfer.get_by_label(supplier.word("to")).fill(tier2_account)
        transfer.get_by_label(supplier.word("transfer_amount")).fill("100.00")
        assert supplier.act("submit", transfer) == "confirmed"
        held = http.get("/receivables", headers=served.headers(names["tier2"])).json()["items"]
        assert [int(p["value"]) for p in held if p["owner"] == tier2_account] == [10_000]

        # The audit log: the regulator verifies it, and may not anchor it (the operator's act).
        regulator.go("audit")
        assert page.get_by_role("button", name=regulator.word("anchor")).count() == 0
        assert http.post("/audit/log/anchors", headers=regulator_headers).status_code == 403
        page.get_by_role("button", name=regulator.word("verify"), exact=True).click()
        result = page.locator("#audit-verification")
        expect(result).to_have_attribute("data-valid", "true")
        expect(result).to_contain_text(regulator.word("intact"))
        checked = int(result.locator("[data-field=records]").text_content() or "0")
        rest = http.get("/audit/log/verify", headers=regulator_headers).json()
        assert rest["valid"] is True and 0 < checked <= rest["records"]
        assert result.locator("[data-field=first-invalid]").text_content() != ""

        operator = person(browser, served, served.keys["operator"], lang, screenshots)
        operator.go("audit")
        assert operator.act("anchor") == "confirmed"
        expect(operator.page.locator("#audit-anchored")).not_to_be_empty()
        anchored, _ = served.service.client.latest_audit_anchor()
        assert anchored > 0
        operator.shot("audit-operator")
        operator.go("freezes")  # the operator reads the freezes; freezing and lifting are the regulator's
        assert operator.page.locator("main form").count() == 0
        assert operator.page.get_by_role("button", name=operator.word("lift")).count() == 0

        page.reload()
        page.wait_for_selector("main h1")
        page.get_by_role("button", name=regulator.word("verify"), exact=True).click()
        expect(result).to_have_attribute("data-valid", "true")
        latest = re.search(r"\d+", result.locator("[data-field=latest-anchor]").text_content() or "")
        assert latest is not None and int(latest.group()) >= anchored
        expect(page.locator("#audit-anchors tr").filter(has_text=f"#{anchored}")).to_have_count(1)
        regulator.shot("audit-regulator")

        # The event log, filtered: the piece's freeze, as the index holds it.
        regulator.go("events")
        page.get_by_label(regulator.word("contract")).select_option("receivables")
        page.get_by_label(regulator.word("event_name")).fill("PieceFrozen")
        page.get_by_role("button", name=regulator.word("filter_events"), exact=True).click()
        expect(page).to_have_url(re.compile(r"name=PieceFrozen"))
        rows = page.locator("#events tbody tr")
        events = http.get(
            "/audit/events", params={"contract": "receivables", "name": "PieceFrozen"}, headers=regulator_headers
        ).json()
        expect(rows).to_have_count(events["total"])
        regulator.shot("events-regulator")
        expect(rows.filter(has_text=re.compile(rf"pieceId {piece}(?!\d)"))).to_have_count(1)

        # The pages with their rows fit a phone's width, every input labelled.
        page.set_viewport_size({"width": 390, "height": 844})
        for name in ("reports", "freezes", "audit", "events"):
            regulator.go(name)
            unlabelled = page.evaluate(
                "[...document.querySelectorAll('input, select')].filter((c) => !c.labels || !c.labels.length).length"
            )
            assert unlabelled == 0, name
            assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0, name

        for someone in (regulator, supplier, operator):
            assert someone.errors == []
