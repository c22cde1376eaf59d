"""The pledge story clicked through the portal by each role in turn, in Chinese and in English, checked against
the REST API and the chain: the warehouse issues a receipt for a lot of ¥4,000,000.00 (a lot number it mistyped is
caught in the page, before anything is sent); the owner asks the bank for a loan of ¥2,800,000.00 at 6 % and reads
the loan-to-value (70.00 %) before it sends; the bank sees the request with its advance limit and funds it; the
warehouse revalues the goods to ¥3,200,000.00 and the bank finds the margin call (87.50 %); the owner repays
¥1,000,000.00, then everything owed, and the lien is released; the owner asks for the goods and the warehouse
confirms their release: the receipt is burnt. A second pledge of a receipt already pledged is refused with the
contracts' reason in the user's language, and every refusal of receipts and pledges has its words in both.

Set-up that is not the point (onboarding, the bank's and the borrower's cash) goes through the REST API."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Browser, Locator, expect

from ledger.models import GoodsStatus, PledgeState, ReceiptState
from tests.api.served import Served, serve
from tests.portal.conftest import chain_day, travel, watch
from tests.portal.test_portal_story import Desk, desk
from tests.stories import receipt_elements

YUAN = 100
WAIT = {"Prefer": "wait=30"}
_lots = itertools.count(int.from_bytes(os.urandom(2), "big") * 100)

WORDS = {
    "zh-CN": {
        "receipts": "仓单",
        "pledges": "仓单质押",
        "owner": "货主账户",
        "lot": "货物批次号",
        "goods": "货物描述",
        "quantity": "数量",
        "unit": "计量单位",
        "valuation": "估值（元）",
        "expiry": "有效期至",
        "issue_form": "开具仓单",
        "issue": "开具",
        "invalid_lot": "批次号只能包含字母、数字及 . _ / -",
        "pledge": "申请质押借款",
        "financier": "资金方账户",
        "principal": "借款本金（元）",
        "rate": "年利率（%）",
        "due": "还款到期日",
        "submit": "提交",
        "fund": "放款",
        "revalue": "重新估值",
        "new_valuation": "新估值（元）",
        "basis": "估值依据",
        "repay": "还款",
        "repay_amount": "还款金额（元）",
        "repay_all": "结清全部欠款",
        "redeem": "申请提货",
        "confirm_redemption": "确认货物已出库",
        "already_pledged": "该仓单已被质押，不能重复质押",
        "cancel": "撤回申请",
        "attest": "更新货物状态",
        "new_status": "货物状态",
        "inspection": "查验记录",
        "damaged": "损坏",
        "unmonitored": "未监控（传感器无读数）",
        "export": "导出 CSV",
        "decline": "拒绝",
        "enforce": "处置质押仓单",
        "overdue": "已逾期",
        "fallback": "账本合约拒绝了此操作",
        "depositor_name": "存货人名称",
        "depositor_domicile": "存货人住所",
        "depositor_code": "存货人统一社会信用代码",
        "variety": "品种",
        "specification": "规格",
        "quality": "质量（等级、标准）",
        "packaging": "包装",
        "pieces": "件数",
        "marks": "标记",
        "loss": "损耗标准",
        "loss_tolerance": "合理损耗率（%）",
        "storage_place": "储存场所",
        "stored_from": "储存期限起始日",
        "storage_fee": "仓储费（元）",
        "fee_basis": "仓储费计费方式",
        "insurance_amount": "保险金额（元）",
        "insured_from": "保险期间起始日",
        "insured_to": "保险期间终止日",
        "insurer": "保险人名称",
        "issuer": "填发人",
        "issue_place": "填发地",
        "invalid_credit_code": "统一社会信用代码须为 18 位，且校验码正确",
        "receipt_document": "仓单文件",
    },
    "en": {
        "receipts": "Warehouse receipts",
        "pledges": "Pledges",
        "owner": "Owner account",
        "lot": "Lot number",
        "goods": "Goods description",
        "quantity": "Quantity",
        "unit": "Unit",
        "valuation": "Valuation (yuan)",
        "expiry": "Valid until",
        "issue_form": "Issue a receipt",
        "issue": "Issue",
        "invalid_lot": "A lot number has letters, digits and . _ / -",
        "pledge": "Request a pledge loan",
        "financier": "Financier account",
        "principal": "Principal (yuan)",
        "rate": "Annual interest rate (%)",
        "due": "Repayment due date",
        "submit": "Submit",
        "fund": "Fund the loan",
        "revalue": "Revalue",
        "new_valuation": "New valuation (yuan)",
        "basis": "Basis of the valuation",
        "repay": "Repay",
        "repay_amount": "Amount to repay (yuan)",
        "repay_all": "Pay everything owed",
        "redeem": "Ask for the goods",
        "confirm_redemption": "Confirm the goods left",
        "already_pledged": "This receipt is already pledged",
        "cancel": "Withdraw the request",
        "attest": "Update the goods status",
        "new_status": "Goods status",
        "inspection": "Inspection record",
        "damaged": "damaged",
        "unmonitored": "unmonitored (no readings)",
        "export": "Export CSV",
        "decline": "Decline",
        "enforce": "Enforce: take the receipt",
        "overdue": "past due",
        "fallback": "The ledger's contracts refused this",
        "depositor_name": "Depositor's name",
        "depositor_domicile": "Depositor's domicile",
        "depositor_code": "Depositor's credit code",
        "variety": "Variety",
        "specification": "Specification",
        "quality": "Quality (grade, standard)",
        "packaging": "Packaging",
        "pieces": "Number of pieces",
        "marks": "Marks",
        "loss": "Loss standard",
        "loss_tolerance": "Tolerated loss (%)",
        "storage_place": "Storage place",
        "stored_from": "Stored from",
        "storage_fee": "Storage fee (yuan)",
        "fee_basis": "Basis of the storage fee",
        "insurance_amount": "Insured amount (yuan)",
        "insured_from": "Insured from",
        "insured_to": "Insured to",
        "insurer": "Insurer",
        "issuer": "Drawn up by",
        "issue_place": "Place of issue",
        "invalid_credit_code": "A unified social credit code has 18 characters and the right check character",
        "receipt_document": "Receipt document",
    },
}


@dataclass
class PledgeDesk(Desk):
    """A desk that also knows the words of the receipt and pledge pages."""

    def word(self, key: str) -> str:
        return WORDS[self.lang].get(key) or super().word(key)

    def revisit(self, key: str) -> None:
        """Open a page afresh (a click on the page one is on would not draw it again)."""
        self.page.reload()
        self.page.wait_for_selector("body[data-ready=true]")
        self.go(key)

    def form(self, heading: str, scope: Locator | None = None) -> Locator:
        where = scope or self.page.locator("main")
        return where.locator("form").filter(has=self.page.get_by_role("heading", name=self.word(heading), exact=True))

    def actions(self, receipt_id: str) -> Locator:
        """A receipt's actions, opened."""
        details = self.page.locator(f"details[data-receipt='{receipt_id}']")
        if details.get_attribute("open") is None:
            details.locator("summary").click()
        return details


def sit(browser: Browser, served: Served, who: str, lang: str, shots: Path) -> PledgeDesk:
    person = desk(browser, served, served.keys[who], lang, shots)
    return PledgeDesk(person.page, person.lang, person.shots, person.errors)


def fits_a_phone(person: PledgeDesk) -> None:
    """The page as it stands, at a phone's width: every control has its label, nothing is wider than the screen."""
    page = person.page
    page.set_viewport_size({"width": 390, "height": 900})
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select')].filter((c) => !c.labels || !c.labels.length).length"
    )
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert unlabelled == 0, f"{unlabelled} controls without a label"
    assert overflow <= 0, f"the page is {overflow} px wider than a 390 px screen"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal-pledges"), block_time=0.25) as served:
        yield served


def days_from_now(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def rest(served: Served, who: str) -> httpx.Client:
    return httpx.Client(base_url=served.base_url, headers=served.headers(who), timeout=60)


def cast(served: Served, lang: str, *parts: tuple[str, str]) -> dict[str, str]:
    """Onboard participants over REST (``name``, role); answers their accounts by name."""
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        return {name: served.onboard(http, f"{name} {lang}", role) for name, role in parts}


def deposit(served: Served, lang: str, *pairs: tuple[str, int]) -> None:
    """The settlement agent deposits the opening cash of each (name, fen) over REST."""
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        for name, amount in pairs:
            served.deposit(http, f"agent {lang}", f"{name} {lang}", amount)


def the_receipt(served: Served, who: str, owner: str) -> dict[str, Any]:
    with rest(served, who) as http:
        answer = http.get("/warehouse-receipts", params={"size": 200})
    assert answer.status_code == 200, answer.text
    [receipt] = [item for item in answer.json()["items"] if item["owner"] == owner and item["state"] != "redeemed"]
    return receipt  # type: ignore[no-any-return]


def fill_elements(desk: PledgeDesk, issue: Locator, elements: dict[str, Any]) -> None:
    """The receipt's elements typed into the issue form as a clerk would: amounts in yuan, the tolerance in %."""
    depositor, goods, insurance = elements["depositor"], elements["goods"], elements["insurance"]
    typed = {
        "depositor_name": depositor["name"],
        "depositor_domicile": depositor["domicile"],
        "depositor_code": depositor["credit_code"],
        "variety": goods["variety"],
        "specification": goods["specification"],
        "quality": goods["quality"],
        "packaging": goods["packaging"],
        "pieces": str(goods["pieces"]),
        "marks": goods["marks"],
        "loss": elements["loss_standard"]["description"],
        "loss_tolerance": f"{elements['loss_standard']['tolerance_bps'] / 100:.2f}",
        "storage_place": elements["storage_place"],
        "stored_from": elements["storage_period"]["start"],
        "storage_fee": f"{elements['storage_fee']['amount'] // YUAN:,}.{elements['storage_fee']['amount'] % YUAN:02d}",
        "fee_basis": elements["storage_fee"]["basis"],
        "insurance_amount": f"{insurance['amount'] // YUAN:,}.{insurance['amount'] % YUAN:02d}",
        "insured_from": insurance["start"],
        "insured_to": insurance["end"],
        "insurer": insurance["insurer"],
        "issuer": elements["issuer"],
        "issue_place": elements["issue_place"],
    }
    for key, value in typed.items():
        issue.get_by_label(desk.word(key), exact=True).fill(value)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_pledge_story_is_clicked_through_the_portal_by_each_role(
    browser: Browser, served: Served, screenshots: Path, lang: str
) -> None:
    accounts = cast(
        served,
        lang,
        ("agent", "settlement-agent"),
        ("warehouse", "warehouse"),
        ("steel", "supplier"),
        ("bank", "financier"),
    )
    deposit(served, lang, ("bank", 10_000_000 * YUAN), ("steel", 500_000 * YUAN))
    chain = served.service.client
    bank_cash = chain.balance_of(accounts["bank"])

    # The warehouse issues a receipt; a lot number it mistyped is caught in the page, and nothing is sent.
    warehouse = sit(browser, served, f"warehouse {lang}", lang, screenshots)
    warehouse.go("receipts")
    issue = warehouse.form("issue_form")
    lot = f"SH-{lang[:2].upper()}-{next(_lots)}"
    issue.get_by_label(warehouse.word("owner")).fill(accounts["steel"])
    issue.get_by_label(warehouse.word("lot")).fill("SH 2025 #1")
    issue.get_by_label(warehouse.word("goods")).fill("热轧卷板 Q235B / hot-rolled coil, 1,000 t")
    issue.get_by_label(warehouse.word("quantity")).fill("1000")
    issue.get_by_label(warehouse.word("unit")).fill("t")
    issue.get_by_label(warehouse.word("valuation")).fill("4,000,000.00")
    issue.get_by_label(warehouse.word("expiry")).fill(days_from_now(365))
    elements = receipt_elements()
    fill_elements(warehouse, issue, elements)
    issue.get_by_role("button", name=warehouse.word("issue"), exact=True).click()
    expect(issue.get_by_role("alert")).to_contain_text(warehouse.word("invalid_lot"))
    expect(warehouse.page.locator("#activity li")).to_have_count(0)
    issue.get_by_label(warehouse.word("lot")).fill(lot)
    # The depositor's credit code with a wrong check character is caught in the page too (GB 32100-2015).
    code = elements["depositor"]["credit_code"]
    wrong = next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != code[17])
    issue.get_by_label(warehouse.word("depositor_code")).fill(code[:17] + wrong)
    issue.get_by_role("button", name=warehouse.word("issue"), exact=True).click()
    expect(issue.get_by_role("alert")).to_contain_text(warehouse.word("invalid_credit_code"))
    expect(warehouse.page.locator("#activity li")).to_have_count(0)
    issue.get_by_label(warehouse.word("depositor_code")).fill(code)
    assert warehouse.act("issue", issue) == "confirmed"
    receipt = the_receipt(served, f"steel {lang}", accounts["steel"])
    # The document on chain hashes to what the API serves, and holds the elements as typed (yuan as fen).
    with rest(served, f"steel {lang}") as http:
        served_document = http.get(f"/documents/{receipt['document_hash'].removeprefix('0x')}")
    assert served_document.status_code == 200, served_document.text
    assert "0x" + hashlib.sha256(served_document.content).hexdigest() == receipt["document_hash"]
    document = json.loads(served_document.content)
    assert document["title"] == "仓单" and document["on_chain"]["owner"] == accounts["steel"]
    expiry = datetime.fromtimestamp(int(receipt["expiry"]), UTC).date().isoformat()
    assert document["elements"] == {**elements, "storage_period": {**elements["storage_period"], "end": expiry}}
    expect(warehouse.page.locator(f"[data-receipt-document='{receipt['id']}']")).to_have_count(1)  # its document
    receipt_id = str(receipt["id"])
    assert (int(receipt["valuation"]), int(receipt["quantity"]), receipt["unit"]) == (400_000_000, 1000, "t")
    onchain = chain.receipt(int(receipt_id))
    assert (onchain.warehouse, onchain.owner) == (accounts["warehouse"], accounts["steel"])
    assert onchain.valuation == 400_000_000
    assert onchain.state is ReceiptState.ACTIVE
    expect(warehouse.page.locator(f"details[data-receipt='{receipt_id}']")).to_have_count(1)
    warehouse.shot("receipts-warehouse")
    # Its receipts as a file: the API's own CSV.
    with warehouse.page.expect_download() as download:
        warehouse.page.get_by_role("button", name=warehouse.word("export"), exact=True).click()
    exported = Path(download.value.path()).read_text()
    assert receipt_id in exported and "400000000" in exported

    # The owner asks the bank for ¥2,800,000.00 at 6 %, reading the loan-to-value before it sends.
    steel = sit(browser, served, f"steel {lang}", lang, screenshots)
    steel.go("receipts")
    pledge = steel.form("pledge", steel.actions(receipt_id))
    pledge.get_by_label(steel.word("financier")).fill(accounts["bank"])
    pledge.get_by_label(steel.word("principal")).fill("2,800,000.00")
    expect(pledge.locator(".ltv")).to_contain_text("70.00%")
    pledge.get_by_label(steel.word("principal")).fill("2,800,000.01")
    expect(pledge.locator(".ltv")).to_contain_text("70.01%")  # rounded up, never down to the limit
    pledge.get_by_label(steel.word("principal")).fill("2,800,000.00")
    pledge.get_by_label(steel.word("rate")).fill("6.00")
    pledge.get_by_label(steel.word("due")).fill(days_from_now(180))
    steel.shot("pledge-request-owner")
    fits_a_phone(steel)
    assert steel.act("submit", pledge) == "confirmed"
    with rest(served, f"steel {lang}") as http:
        [asked] = http.get("/pledges").json()["items"]
    assert (asked["state"], int(asked["principal"]), asked["rate_bps"]) == ("requested", 280_000_000, 600)
    assert str(asked["receipt_id"]) == receipt_id and asked["financier"] == accounts["bank"]
    pledge_id = int(asked["id"])
    assert chain.pledge_loan(pledge_id).state is PledgeState.REQUESTED

    # The bank finds the request with its advance limit (70 % of the valuation) and funds it.
    bank = sit(browser, served, f"bank {lang}", lang, screenshots)
    bank.go("pledges")
    incoming = bank.page.locator(f"[data-pledge='{pledge_id}']").first
    row = bank.page.locator("tr").filter(has=incoming)
    expect(row).to_contain_text("¥2,800,000.00")
    expect(row).to_contain_text("70.00%")
    bank.shot("pledges-incoming-financier")
    cash = chain.balance_of(accounts["steel"])
    assert bank.act("fund", row) == "confirmed"
    assert chain.pledge_loan(pledge_id).state is PledgeState.ACTIVE
    assert chain.receipt(int(receipt_id)).state is ReceiptState.PLEDGED
    assert chain.balance_of(accounts["steel"]) == cash + 280_000_000
    assert chain.balance_of(accounts["bank"]) == bank_cash - 280_000_000

    # Coil prices fall 20 %: the warehouse revalues, and the bank finds the margin call.
    warehouse.revisit("receipts")
    revalue = warehouse.form("revalue", warehouse.actions(receipt_id))
    revalue.get_by_label(warehouse.word("new_valuation")).fill("3,200,000.00")
    revalue.get_by_label(warehouse.word("basis")).fill("上海热卷周价 / Shanghai coil price list, week 23")
    fits_a_phone(warehouse)
    assert warehouse.act("revalue", revalue) == "confirmed"
    assert chain.receipt(int(receipt_id)).valuation == 320_000_000
    # ... and attests that some of the coil is damaged.
    attest = warehouse.form("attest", warehouse.actions(receipt_id))
    attest.get_by_label(warehouse.word("new_status")).select_option(label=warehouse.word("damaged"))
    attest.get_by_label(warehouse.word("inspection")).fill("20 coils water-damaged, inspected on site")
    assert warehouse.act("attest", attest) == "confirmed"
    assert chain.receipt(int(receipt_id)).goods_status is GoodsStatus.DAMAGED
    bank.revisit("pledges")
    calls = bank.page.locator("table").last
    expect(calls).to_contain_text("¥3,200,000.00")
    expect(calls).to_contain_text("87.50%")
    expect(calls).to_contain_text("80.00%")
    bank.page.locator(f"details[data-margin-calls='{pledge_id}'] summary").click()
    expect(bank.page.locator(f"details[data-margin-calls='{pledge_id}'] table")).to_contain_text("¥3,200,000.00")
    bank.shot("pledges-financier")
    fits_a_phone(bank)
    with rest(served, f"bank {lang}") as http:
        [call] = http.get(f"/pledges/{pledge_id}/margin-calls").json()["items"]
    assert (int(call["principal"]), int(call["valuation"])) == (280_000_000, 320_000_000)

    # The warehouse puts the lot under a weighbridge (docs/sensors.md); none has read yet: the bank's page shows the
    # pledged lot unmonitored.
    sensors = {
        "devices": [{"address": Account.create().address, "kind": "weighbridge", "units_per_quantity": 1_000}],
        "silence_seconds": 600,
        "tolerance_bps": 200,
        "period_seconds": 600,
    }
    with rest(served, f"warehouse {lang}") as http:
        registered = http.put(f"/warehouse-receipts/{receipt_id}/sensors", json=sensors)
    assert registered.status_code == 200, registered.text
    bank.revisit("pledges")
    expect(bank.page.locator(f"[data-sensor-status='{receipt_id}']")).to_have_text(bank.word("unmonitored"))

    # The owner repays ¥1,000,000.00 (interest first), then everything owed: the lien is released.
    steel.revisit("pledges")
    repay = steel.form("repay", steel.page.locator(f"details[data-pledge='{pledge_id}']"))
    steel.page.locator(f"details[data-pledge='{pledge_id}'] summary").click()
    repay.get_by_label(steel.word("repay_amount")).fill("1,000,000.00")
    cash = chain.balance_of(accounts["steel"])
    assert steel.act("repay", repay) == "confirmed"
    assert chain.balance_of(accounts["steel"]) == cash - 100_000_000
    outstanding = chain.pledge_loan(pledge_id).principal
    assert 180_000_000 <= outstanding < 280_000_000 - 100_000_000 + 100_000  # interest of a few seconds at most
    steel.shot("pledges-borrower")
    fits_a_phone(steel)
    repay = steel.form("repay", steel.page.locator(f"details[data-pledge='{pledge_id}']"))
    steel.page.locator(f"details[data-pledge='{pledge_id}'] summary").click()
    repay.get_by_label(steel.word("repay_all")).check()
    assert steel.act("repay", repay) == "confirmed"
    assert chain.pledge_loan(pledge_id).state is PledgeState.RELEASED
    paid = cash - chain.balance_of(accounts["steel"])
    assert paid >= 280_000_000
    assert chain.balance_of(accounts["bank"]) == bank_cash - 280_000_000 + paid
    with rest(served, f"steel {lang}") as http:
        free = http.get(f"/warehouse-receipts/{receipt_id}").json()
        assert http.get(f"/pledges/{pledge_id}").json()["state"] == "released"
    assert free["state"] == "active" and free["pledge_id"] is None

    # The receipt, free again: the owner asks for the goods, the warehouse confirms they left; it is burnt.
    steel.revisit("receipts")
    assert steel.act("redeem", steel.actions(receipt_id)) == "confirmed"
    assert chain.receipt(int(receipt_id)).state is ReceiptState.REDEMPTION_REQUESTED
    warehouse.revisit("receipts")
    assert warehouse.act("confirm_redemption", warehouse.page.locator(f"[data-receipt-actions='{receipt_id}']")) == (
        "confirmed"
    )
    assert chain.receipt(int(receipt_id)).state is ReceiptState.REDEEMED
    with rest(served, f"warehouse {lang}") as http:
        gone = http.get(f"/warehouse-receipts/{receipt_id}").json()
    assert gone["state"] == "redeemed" and gone["owner"] is None
    warehouse.shot("receipts-redeemed-warehouse")

    for person in (warehouse, steel, bank):
        assert person.errors == []
        person.page.context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_second_pledge_of_a_pledged_receipt_is_refused_in_the_users_language(
    browser: Browser, served: Served, screenshots: Path, lang: str
) -> None:
    accounts = cast(
        served,
        lang + " twice",
        ("agent", "settlement-agent"),
        ("warehouse", "warehouse"),
        ("steel", "supplier"),
        ("bank", "financier"),
        ("factor", "financier"),
    )
    suffix = f"{lang} twice"
    deposit(served, suffix, ("bank", 5_000_000 * YUAN))
    lot = {
        "owner": accounts["steel"],
        "lot_number": f"SH-TWICE-{next(_lots)}",
        "goods_description": "copper cathode",
        "elements": receipt_elements(),
        "quantity": 25,
        "unit": "t",
        "valuation": 1_000_000 * YUAN,
        "expiry": days_from_now(120),
    }
    with rest(served, f"warehouse {suffix}") as http:
        issued = http.post("/warehouse-receipts", json=lot, headers=WAIT)
    assert issued.status_code == 200, issued.text
    receipt_id = str(issued.json()["result"]["receipt_id"])

    # The owner's page shows the receipt free to pledge; meanwhile it is pledged to the bank (over the API).
    steel = sit(browser, served, f"steel {suffix}", lang, screenshots)
    steel.go("receipts")
    pledge = steel.form("pledge", steel.actions(receipt_id))
    terms = {"receipt_id": receipt_id, "principal": 500_000 * YUAN, "rate_bps": 500, "due_date": days_from_now(60)}
    with rest(served, f"steel {suffix}") as http:
        first = http.post("/pledges", json={**terms, "financier": accounts["bank"]}, headers=WAIT).json()
    pledge_id = int(first["result"]["pledge_id"])
    with rest(served, f"bank {suffix}") as http:
        assert http.post(f"/pledges/{pledge_id}/fund", headers=WAIT).json()["status"] == "confirmed"
    cash = served.service.client.balance_of(accounts["steel"])

    # From the page, a second loan on the same goods: refused, with the contracts' reason in the user's words.
    pledge.get_by_label(steel.word("financier")).fill(accounts["factor"])
    pledge.get_by_label(steel.word("principal")).fill("100,000.00")
    pledge.get_by_label(steel.word("rate")).fill("5")
    pledge.get_by_label(steel.word("due")).fill(days_from_now(30))
    assert steel.act("submit", pledge) == "refused"
    refusal = steel.page.locator("#activity li").first
    expect(refusal).to_contain_text(steel.word("already_pledged"))
    expect(refusal).not_to_contain_text("ReceiptAlreadyPledged")
    steel.shot("refusal-second-pledge")

    # Nothing moved: one lien, to the bank; the factor was asked nothing; no cash changed hands.
    chain = served.service.client
    assert chain.pledge_of(int(receipt_id)) == pledge_id
    assert chain.receipt(int(receipt_id)).state is ReceiptState.PLEDGED
    assert chain.balance_of(accounts["steel"]) == cash
    with rest(served, f"factor {suffix}") as http:
        assert http.get("/pledges").json()["items"] == []
    assert steel.errors == []
    steel.page.context.close()


def test_every_refusal_of_receipts_and_pledges_is_explained_in_chinese_and_english(
    browser: Browser, served: Served
) -> None:
    names = sorted(name for name in served.service.client.decoder.error_names if re.match(r"(Receipt|Pledge)", name))
    assert "ReceiptAlreadyPledged" in names and "PledgeExceedsAdvanceLimit" in names
    context = browser.new_context()
    page = context.new_page()
    errors = watch(page, served.base_url)
    page.goto(served.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    words = page.evaluate(
        """async (names) => {
          await import("/portal/warehouse.js");
          const i18n = await import("/portal/i18n.js");
          const said = {};
          for (const lang of ["zh-CN", "en"]) {
            i18n.setLanguage(lang);
            said[lang] = Object.fromEntries(names.map((name) => [name, i18n.explain({ status: 409, error: name })]));
          }
          i18n.setLanguage("zh-CN");
          return said;
        }""",
        names,
    )
    for lang in ("zh-CN", "en"):
        for name in names:
            text = words[lang][name]
            assert name not in text and WORDS[lang]["fallback"] not in text, f"{name} is not worded in {lang}"
        assert len(set(words[lang].values())) == len(names), f"two refusals share their words in {lang}"
    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in words["zh-CN"].values())
    assert errors == []
    context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_requests_are_withdrawn_or_declined_and_a_loan_left_unpaid_is_enforced_after_its_due_date(
    browser: Browser, served: Served, screenshots: Path, lang: str
) -> None:
    suffix = f"{lang} enforce"
    accounts = cast(
        served,
        suffix,
        ("agent", "settlement-agent"),
        ("warehouse", "warehouse"),
        ("steel", "supplier"),
        ("bank", "financier"),
        ("factor", "financier"),
    )
    deposit(served, suffix, ("bank", 5_000_000 * YUAN))
    chain = served.service.client
    lot = {
        "owner": accounts["steel"],
        "lot_number": f"SH-ENFORCE-{next(_lots)}",
        "goods_description": "aluminium ingots",
        "elements": receipt_elements(),
        "quantity": 40,
        "unit": "t",
        "valuation": 1_000_000 * YUAN,
        "expiry": chain_day(served, 120),
    }
    with rest(served, f"warehouse {suffix}") as http:
        receipt_id = str(http.post("/warehouse-receipts", json=lot, headers=WAIT).json()["result"]["receipt_id"])
    terms = {"receipt_id": receipt_id, "principal": 300_000 * YUAN, "rate_bps": 800, "due_date": chain_day(served, 2)}

    def ask(financier: str) -> int:
        with rest(served, f"steel {suffix}") as http:
            answer = http.post("/pledges", json={**terms, "financier": accounts[financier]}, headers=WAIT)
        assert answer.json()["status"] == "confirmed", answer.text
        return int(answer.json()["result"]["pledge_id"])

    # The owner withdraws a request it sent; the factor declines the next one.
    withdrawn = ask("factor")
    steel = sit(browser, served, f"steel {suffix}", lang, screenshots)
    steel.go("pledges")
    assert steel.act("cancel", steel.page.locator(f"tr:has([data-pledge='{withdrawn}'])")) == "confirmed"
    assert chain.pledge_loan(withdrawn).state is PledgeState.CANCELLED
    declined = ask("factor")
    factor = sit(browser, served, f"factor {suffix}", lang, screenshots)
    factor.go("pledges")
    assert factor.act("decline", factor.page.locator(f"div[data-pledge='{declined}']")) == "confirmed"
    assert chain.pledge_loan(declined).state is PledgeState.DECLINED
    assert chain.receipt(int(receipt_id)).state is ReceiptState.ACTIVE

    # The bank lends until the day after tomorrow; nobody repays; three days later the bank takes the receipt.
    loan = ask("bank")
    with rest(served, f"bank {suffix}") as http:
        assert http.post(f"/pledges/{loan}/fund", headers=WAIT).json()["status"] == "confirmed"
    bank = sit(browser, served, f"bank {suffix}", lang, screenshots)
    bank.go("pledges")
    row = bank.page.locator(f"tr:has([data-pledge-id='{loan}'])")
    expect(row).not_to_contain_text(bank.word("overdue"))
    expect(row.get_by_role("button", name=bank.word("enforce"))).to_have_count(0)  # not before the due date
    travel(served, 3 * 86_400)
    # The page's clock is not moved: the portal reads the chain's time (GET /rules) to say what is overdue.
    bank.revisit("pledges")
    row = bank.page.locator(f"tr:has([data-pledge-id='{loan}'])")
    expect(row).to_contain_text(bank.word("overdue"))
    bank.shot("pledges-overdue-financier")
    assert bank.act("enforce", row) == "confirmed"
    assert chain.pledge_loan(loan).state is PledgeState.ENFORCED
    taken = chain.receipt(int(receipt_id))
    assert (taken.owner, taken.state) == (accounts["bank"], ReceiptState.ACTIVE)
    bank.go("receipts")
    expect(bank.page.locator(f"details[data-receipt='{receipt_id}']")).to_have_count(1)  # its own now
    for person in (steel, factor, bank):
        assert person.errors == []
        person.page.context.close()
