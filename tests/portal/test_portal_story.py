"""The receivable story clicked through the portal by each role in turn, in Chinese and in English, checked
against the REST API and the chain: the operator onboards everyone (and sees each new API key once), grants the
core firm a credit line; the settlement agent deposits ¥0.10 and ¥0.20 (30 fen on chain, exactly); the supplier
registers an invoice of ¥1,000,000.12, the core firm confirms it, the supplier pays its own supplier ¥0.30 by a
split and asks for financing; the financier prices and funds it, and sees the obligor and the tenor left. A
confirmation beyond the credit line is refused with the contracts' reason in the user's language. At maturity (the
chain's clock moved on, which the portal reads rather than the computer's) the core firm repays and the supplier and
the financier redeem their pieces: the fen they receive checked on chain."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from ledger.identifiers import synthetic_credit_code
from tests.api.served import Served, serve
from tests.portal.conftest import chain_day, travel, watch

_codes = itertools.count(int.from_bytes(os.urandom(2), "big") * 1000 + 500)
_invoice_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 100)

# What the user reads, in each language: the test finds controls by their labels and names, as a person would.
WORDS = {
    "zh-CN": {
        "api_key": "API 密钥",
        "sign_in": "登录",
        "welcome": "欢迎",
        "participants": "参与方",
        "name": "名称",
        "code": "统一社会信用代码",
        "role": "角色",
        "onboard": "接入",
        "financing": "融资",
        "core_firm": "核心企业账户",
        "limit": "额度（元）",
        "set_line": "设定授信额度",
        "cash": "资金存取",
        "participant": "参与方账户",
        "amount": "金额（元）",
        "reference": "银行流水号",
        "deposit": "存入",
        "invoices": "发票",
        "buyer": "买方（核心企业）账户",
        "number": "发票号码",
        "due": "到期日",
        "register": "登记",
        "confirm": "确认付款承诺",
        "receivables": "应收账款凭证",
        "actions": "操作",
        "to": "受让方账户",
        "transfer_amount": "转让金额（元）",
        "transfer": "转让/拆分",
        "financier": "资金方账户",
        "finance_amount": "融资金额（元）",
        "finance": "申请融资",
        "rate": "年化贴现率（%）",
        "fee": "手续费（元）",
        "approve": "审批报价",
        "fund": "放款",
        "submit": "提交",
        "obligations": "到期与还款",
        "portfolio": "资产组合",
        "offer": "公布融资条件",
        "offer_firm": "核心企业账户（可空）",
        "publish": "公布",
        "over_line": "超出核心企业的授信额度",
        "switch": "English",
        "home": "概览",
        "repay": "还款",
        "repay_amount": "还款金额（元）",
        "redeem": "到期兑付",
        "days_left": "天（",
        "past_due": "已到期（",
    },
    "en": {
        "api_key": "API key",
        "sign_in": "Sign in",
        "welcome": "Welcome",
        "participants": "Participants",
        "name": "Name",
        "code": "Unified social credit code",
        "role": "Role",
        "onboard": "Onboard",
        "financing": "Financing",
        "core_firm": "Core firm account",
        "limit": "Limit (yuan)",
        "set_line": "Set a credit line",
        "cash": "Cash",
        "participant": "Participant account",
        "amount": "Amount (yuan)",
        "reference": "Bank reference",
        "deposit": "Deposit",
        "invoices": "Invoices",
        "buyer": "Buyer (core firm) account",
        "number": "Invoice number",
        "due": "Due date",
        "register": "Register",
        "confirm": "Confirm the payment undertaking",
        "receivables": "Receivables",
        "actions": "Actions",
        "to": "Recipient account",
        "transfer_amount": "Amount to transfer (yuan)",
        "transfer": "Transfer / split",
        "financier": "Financier account",
        "finance_amount": "Amount to finance (yuan)",
        "finance": "Request financing",
        "rate": "Annual discount rate (%)",
        "fee": "Fee (yuan)",
        "approve": "Approve with terms",
        "fund": "Fund",
        "submit": "Submit",
        "obligations": "Maturities",
        "portfolio": "Portfolio",
        "offer": "Publish standing terms",
        "offer_firm": "Core firm account (optional)",
        "publish": "Publish",
        "over_line": "This would exceed the core firm's credit line",
        "switch": "中文",
        "home": "Overview",
        "repay": "Repay",
        "repay_amount": "Amount to repay (yuan)",
        "redeem": "Redeem at maturity",
        "days_left": "days (due",
        "past_due": "Due (",
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal"), block_time=0.25) as served:
        yield served


@dataclass
class Desk:
    """One person at the portal: a browser context of its own, signed in with one participant's credentials."""

    page: Page
    lang: str
    shots: Path
    errors: list[str] = field(default_factory=list)

    def word(self, key: str) -> str:
        return WORDS[self.lang][key]

    def go(self, key: str) -> None:
        self.page.get_by_role("link", name=self.word(key), exact=True).click()
        self.page.wait_for_selector("main h1")

    def done(self) -> str:
        """Wait for the operation the last click started to be final; answer its status (confirmed, refused)."""
        first = self.page.locator("#activity li").first
        expect(first).not_to_have_attribute("data-status", "pending", timeout=60_000)
        return first.get_attribute("data-status") or ""

    def act(self, button: str, scope: object = None) -> str:
        before = self.page.locator("#activity li").count()
        (scope or self.page).get_by_role("button", name=self.word(button), exact=True).click()  # type: ignore[attr-defined]
        expect(self.page.locator("#activity li")).to_have_count(before + 1, timeout=30_000)
        return self.done()

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.{self.lang}.png"), full_page=True)


def desk(browser: Browser, served: Served, key: str, lang: str, shots: Path) -> Desk:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
    page = context.new_page()
    errors = watch(page, served.base_url)
    page.goto(served.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    if lang == "en":
        page.get_by_role("button", name="English").click()
    me = Desk(page, lang, shots, errors)
    page.get_by_label(me.word("api_key")).fill(key)
    page.get_by_role("button", name=me.word("sign_in"), exact=True).click()
    expect(page.locator("main h1")).to_contain_text(me.word("welcome"))
    return me


def onboard(operator: Desk, name: str, role_label: str) -> tuple[str, str]:
    """Onboard through the portal; answers (API key shown once, account)."""
    page = operator.page
    page.get_by_label(operator.word("name")).fill(name)
    page.get_by_label(operator.word("code")).fill(synthetic_credit_code(next(_codes)))
    page.get_by_label(operator.word("role")).select_option(label=role_label)
    assert operator.act("onboard") == "confirmed"
    key = page.locator("#new-api-key").text_content() or ""
    account = page.locator("#new-account").text_content() or ""
    assert key.startswith("scf_") and re.fullmatch(r"0x[0-9a-fA-F]{40}", account)
    return key, account


ROLE_LABELS = {
    "zh-CN": {"core-firm": "核心企业", "supplier": "供应商", "financier": "资金方", "settlement-agent": "结算代理行"},
    "en": {
        "core-firm": "Core firm",
        "supplier": "Supplier",
        "financier": "Financier",
        "settlement-agent": "Settlement agent",
    },
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_receivable_story_is_clicked_through_the_portal_by_each_role(
    browser: Browser, served: Served, screenshots: Path, lang: str
) -> None:
    roles = ROLE_LABELS[lang]
    operator = desk(browser, served, served.keys["operator"], lang, screenshots)
    operator.shot("home-operator")
    operator.go("participants")
    keys: dict[str, str] = {}
    accounts: dict[str, str] = {}
    for who, role in [
        ("core", "core-firm"),
        ("supplier", "supplier"),
        ("tier2", "supplier"),
        ("bank", "financier"),
        ("agent", "settlement-agent"),
    ]:
        keys[who], accounts[who] = onboard(operator, f"{who} {lang}", roles[role])
    operator.shot("participants")

    # The operator grants the core firm a credit line of ¥10,000,000.00.
    operator.go("financing")
    operator.page.get_by_label(operator.word("core_firm")).fill(accounts["core"])
    operator.page.get_by_label(operator.word("limit")).fill("10,000,000.00")
    assert operator.act("set_line") == "confirmed"

    # The settlement agent deposits ¥0.10, then ¥0.20, then ¥1,000,000.00 for the bank: exact fen on chain.
    agent = desk(browser, served, keys["agent"], lang, screenshots)
    agent.go("cash")
    deposit_form = agent.page.locator("form").filter(has=agent.page.get_by_role("heading", name=agent.word("deposit")))
    for n, amount in enumerate(["¥0.10", "0.20", "1,000,000.00"]):
        deposit_form.get_by_label(agent.word("participant")).fill(accounts["bank"])
        deposit_form.get_by_label(agent.word("amount")).fill(amount)
        deposit_form.get_by_label(agent.word("reference")).fill(f"PORTAL{lang[:2].upper()}{n}{next(_codes)}")
        assert agent.act("deposit", deposit_form) == "confirmed"
    agent.shot("cash")
    assert served.service.client.balance_of(accounts["bank"]) == 10 + 20 + 100_000_000

    # The supplier registers an invoice of ¥1,000,000.12 due in 90 days.
    supplier = desk(browser, served, keys["supplier"], lang, screenshots)
    supplier.go("invoices")
    number = f"2511700{next(_invoice_numbers):013d}"
    due = chain_day(served, 90)  # by the chain's clock, which the other language's story moved on
    page = supplier.page
    page.get_by_label(supplier.word("buyer")).fill(accounts["core"])
    page.get_by_label(supplier.word("number")).fill(number)
    page.get_by_label(supplier.word("amount")).fill("1,000,000.12")
    page.get_by_label(supplier.word("due"), exact=True).fill(chain_day(served, 400))  # beyond the longest tenor
    register = page.locator("form").filter(has=page.get_by_role("button", name=supplier.word("register"), exact=True))
    register.get_by_role("button", name=supplier.word("register"), exact=True).click()
    expect(register.get_by_role("alert")).to_contain_text("365")  # the chain's maxTenor, in days
    expect(page.locator("#activity li")).to_have_count(0)  # nothing was sent
    page.get_by_label(supplier.word("due"), exact=True).fill(due)
    assert supplier.act("register") == "confirmed"
    supplier.shot("invoices-supplier")
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {keys['supplier']}"}) as http:
        [invoice] = [i for i in http.get("/invoices").json()["items"] if i["seller"] == accounts["supplier"]]
    assert int(invoice["amount"]) == 100_000_012 and invoice["state"] == "registered"

    # The core firm confirms it: its payment undertaking, on chain.
    core = desk(browser, served, keys["core"], lang, screenshots)
    core.go("invoices")
    core.shot("invoices-core-firm")
    row = core.page.locator("tr", has_text=f"#{invoice['id']}")
    assert core.act("confirm", row) == "confirmed"
    assert served.service.client.invoice(int(invoice["id"])).state.name.lower() == "confirmed"

    # The supplier pays its own supplier ¥0.10 and ¥0.20 by splits of its piece: 30 fen, exactly.
    supplier.go("receivables")
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {keys['supplier']}"}) as http:
        [piece] = [p for p in http.get("/receivables").json()["items"] if p["owner"] == accounts["supplier"]]
    for amount in ["0.10", "¥0.20"]:
        actions = page.locator(f"details[data-piece='{piece['id']}']")
        actions.locator("summary").click()
        transfer = actions.locator("form").filter(has=page.get_by_role("heading", name=supplier.word("transfer")))
        transfer.get_by_label(supplier.word("to")).fill(accounts["tier2"])
        transfer.get_by_label(supplier.word("transfer_amount")).fill(amount)
        assert supplier.act("submit", transfer) == "confirmed"
    supplier.shot("receivables")
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {keys['tier2']}"}) as http:
        tier2 = [p for p in http.get("/receivables").json()["items"] if p["owner"] == accounts["tier2"]]
    assert sorted(int(p["value"]) for p in tier2) == [10, 20]
    assert sum(served.service.client.piece(int(p["id"])).value for p in tier2) == 30

    # The bank publishes its standing terms for this core firm (3.65 %, ¥100.00 fee, 365 days) ...
    bank = desk(browser, served, keys["bank"], lang, screenshots)
    bank.go("financing")
    offer = bank.page.locator("form").filter(has=bank.page.get_by_role("heading", name=bank.word("offer")))
    offer.get_by_label(bank.word("offer_firm")).fill(accounts["core"])
    offer.get_by_label(bank.word("rate")).fill("3.65")
    offer.get_by_label(bank.word("fee")).fill("100.00")
    offer.get_by_role("button", name=bank.word("publish"), exact=True).click()
    expect(bank.page.locator("#offer-status")).to_contain_text("3.65%")

    # ... so the supplier sees the price before it asks the bank to finance ¥500,000.00 of the rest.
    actions = page.locator(f"details[data-piece='{piece['id']}']")
    actions.locator("summary").click()
    finance = actions.locator("form").filter(has=page.get_by_role("heading", name=supplier.word("finance")))
    finance.get_by_label(supplier.word("financier")).fill(accounts["bank"])
    finance.get_by_label(supplier.word("finance_amount")).fill("500,000.00")
    quote = finance.locator("[data-quote]")
    expect(quote).to_contain_text("¥100.00")
    quoted = quote.text_content() or ""
    supplier.shot("quote-supplier")
    assert supplier.act("submit", finance) == "confirmed"

    # The bank prices the request (3.65 %, ¥100.00 fee) and funds it: delivery against payment on chain.
    bank.page.reload()
    bank.go("financing")
    request_actions = bank.page.locator("details[data-request]").first
    request_actions.locator("summary").click()
    request_actions.get_by_label(bank.word("rate")).fill("3.65")
    request_actions.get_by_label(bank.word("fee")).fill("100.00")
    assert bank.act("approve", request_actions) == "confirmed"
    assert bank.act("fund") == "confirmed"
    funded_row = bank.page.locator("main tbody tr").filter(
        has=bank.page.get_by_role("cell", name=f"#{piece['id']}", exact=True)
    )
    expect(funded_row).to_contain_text(f"core {lang}")  # the obligor, by its name
    expect(funded_row).to_contain_text(re.compile(r"(89|90) " + re.escape(bank.word("days_left"))))  # tenor left
    bank.shot("financing-financier")
    bank.go("portfolio")
    expect(bank.page.locator("#portfolio-total")).to_contain_text("¥500,000.00")
    expect(bank.page.locator("main table").first).to_contain_text(f"core {lang}")  # the obligor by its name
    bank.shot("portfolio-financier")
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {keys['bank']}"}) as http:
        [funded] = [r for r in http.get("/financing-requests").json()["items"] if r["financier"] == accounts["bank"]]
    assert funded["state"] == "funded" and funded["discount_rate_bps"] == 365 and int(funded["fee"]) == 10_000
    price = int(funded["price"])
    assert f"¥{price // 100:,}.{price % 100:02d}" in quoted  # what it was shown before asking is what it got
    assert served.service.client.balance_of(accounts["supplier"]) == int(funded["price"])
    assert served.service.client.balance_of(accounts["bank"]) == 100_000_030 - int(funded["price"])

    # A confirmation beyond the credit line: refused, with the reason in the user's words.
    page.reload()
    supplier.go("invoices")
    page.get_by_label(supplier.word("buyer")).fill(accounts["core"])
    page.get_by_label(supplier.word("number")).fill(f"2511700{next(_invoice_numbers):013d}")
    page.get_by_label(supplier.word("amount")).fill("9,500,000.00")
    page.get_by_label(supplier.word("due"), exact=True).fill(due)
    assert supplier.act("register") == "confirmed"
    core.go("obligations")
    core.shot("obligations-core-firm")
    core.go("invoices")
    row = core.page.locator("tr", has_text="¥9,500,000.00")
    assert core.act("confirm", row) == "refused"
    expect(core.page.locator("#activity li").first).to_contain_text(core.word("over_line"))
    core.shot("refusal-core-firm")

    # Ninety-one days on (the chain's clock): the bank's list shows the financing due, by the chain's time.
    travel(served, 91 * 86_400)
    bank.page.reload()
    bank.go("financing")
    expect(funded_row).to_contain_text(bank.word("past_due"))

    # The core firm repays its obligation in full at maturity, with cash the settlement agent deposited.
    deposit_form.get_by_label(agent.word("participant")).fill(accounts["core"])
    deposit_form.get_by_label(agent.word("amount")).fill("1,000,000.12")
    deposit_form.get_by_label(agent.word("reference")).fill(f"PORTAL{lang[:2].upper()}R{next(_codes)}")
    assert agent.act("deposit", deposit_form) == "confirmed"
    core.page.reload()
    core.go("obligations")
    owed = core.page.locator("main tbody tr").filter(
        has=core.page.get_by_role("cell", name=f"#{invoice['id']}", exact=True)
    )
    owed.get_by_label(core.word("repay_amount")).fill("1,000,000.12")
    assert core.act("repay", owed) == "confirmed"
    core.shot("repaid-core-firm")
    assert served.service.client.invoice(int(invoice["id"])).state.name.lower() == "paid"
    assert served.service.client.balance_of(accounts["core"]) == 0

    # The holders redeem at maturity: the supplier what it kept, the bank the piece it financed.
    kept = 100_000_012 - 30 - 50_000_000
    for person, who, piece_id in ((supplier, "supplier", piece["id"]), (bank, "bank", funded["funded_piece_id"])):
        before = served.service.client.balance_of(accounts[who])
        person.page.reload()
        person.go("receivables")
        holding = person.page.locator(f"details[data-piece='{piece_id}']")
        holding.locator("summary").click()
        assert person.act("redeem", holding) == "confirmed"
        paid = served.service.client.balance_of(accounts[who]) - before
        assert paid == (kept if who == "supplier" else 50_000_000)
        assert served.service.client.piece(int(piece_id)).value == 0
    supplier.go("home")  # its balance: the price it was paid, then what it kept, redeemed
    cash = served.service.client.balance_of(accounts["supplier"])
    assert cash == int(funded["price"]) + kept
    expect(supplier.page.locator("#balance")).to_have_text(f"¥{cash // 100:,}.{cash % 100:02d}")
    supplier.shot("redeemed-supplier")

    for person in (operator, agent, supplier, core, bank):
        assert person.errors == []


PAGES = [
    "home",
    "invoices",
    "receivables",
    "financing",
    "participants",
    "portfolio",
    "reports",
    "freezes",
    "audit",
    "events",
    "receipts",
    "pledges",
]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_input_has_a_label_and_every_page_fits_the_screen(browser: Browser, served: Served, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = watch(page, served.base_url)
    page.goto(served.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    for name in ["signin", *PAGES]:
        if name != "signin":
            page.goto(f"{served.base_url}/#/{name}")
            page.wait_for_selector("main h1")
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input, select')].filter((c) => !c.labels || !c.labels.length).length"
        )
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert unlabelled == 0, f"{name}: {unlabelled} controls without a label"
        assert overflow <= 0, f"{name} is {overflow} px wider than a {width} px screen"
        if name == "signin":
            page.get_by_label("API 密钥").fill(served.keys["operator"])
            page.keyboard.press("Enter")  # the keyboard alone signs in
            expect(page.locator("main h1")).to_contain_text("欢迎")
    assert errors == []
    context.close()
