"""The invoice form filled from the invoice file: the supplier chooses a 数电票 XML file
(tests/portal/einvoice-sample.xml, synthetic parties), the page reads it (number, tax-included total, seller, buyer,
issue date) and fills the form; the invoice registered carries the exact fen of the file's total and the file's
hash. A file whose seller is not the signed-in supplier, or whose credit code has a wrong check character, is
flagged in the user's language and nothing is sent."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect

from ledger.identifiers import CREDIT_CODE_ALPHABET, synthetic_credit_code
from tests.api.served import Served, serve
from tests.portal.conftest import chain_day
from tests.portal.test_portal_story import desk

SAMPLE = Path(__file__).with_name("einvoice-sample.xml")
SAMPLE_SELLER, SAMPLE_BUYER = "91311201MTGKRA100Q", "9131120243RKRA100E"
SAMPLE_NUMBER = "26312000000001234567"
FILE_LABEL = {"zh-CN": "发票文件（数电票 XML、PDF 或 OFD）", "en": "Invoice file (e-invoice XML, PDF or OFD)"}
_seeds = itertools.count(int.from_bytes(os.urandom(2), "big") * 1000 + 300)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal-einvoice"), block_time=0.25) as served:
        yield served


def onboard(served: Served, http: httpx.Client, name: str, role: str) -> tuple[str, str, str]:
    """A participant with a credit code of our choosing: (account, credit code, API key)."""
    code = synthetic_credit_code(next(_seeds))
    body = {"name": name, "credit_code": code, "roles": [role]}
    answer = http.post("/participants", json=body, headers=served.headers("operator", Prefer="wait=30"))
    assert answer.status_code == 201, answer.text
    return answer.json()["participant"]["id"], code, answer.json()["api_key"]


def einvoice(tmp_path: Path, *, seller: str, buyer: str, number: str, encoding: str = "UTF-8") -> Path:
    """The sample invoice with these parties and this number (the rest as in the sample), in ``encoding``."""
    text = SAMPLE.read_text(encoding="utf-8")
    text = text.replace(SAMPLE_SELLER, seller).replace(SAMPLE_BUYER, buyer).replace(SAMPLE_NUMBER, number)
    text = text.replace('encoding="UTF-8"', f'encoding="{encoding}"')
    path = tmp_path / f"{number}.xml"
    path.write_bytes(text.encode(encoding))
    return path


def invoice_number() -> str:
    return f"2631200{next(_seeds):013d}"


@pytest.mark.parametrize("encoding", ["UTF-8", "GB18030"])  # the file is decoded as its XML declaration says
def test_the_invoice_form_is_filled_from_the_einvoice_file_and_the_file_total_is_registered_to_the_fen(
    browser: Browser, served: Served, tmp_path: Path, screenshots: Path, encoding: str
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        buyer, buyer_code, _ = onboard(served, http, "示例汽车制造", "core-firm")
        seller, seller_code, key = onboard(served, http, "示例座椅系统", "supplier")
    number = invoice_number()
    path = einvoice(tmp_path, seller=seller_code, buyer=buyer_code, number=number, encoding=encoding)

    supplier = desk(browser, served, key, "zh-CN", screenshots)
    supplier.go("invoices")
    page = supplier.page
    page.get_by_label(FILE_LABEL["zh-CN"]).set_input_files(str(path))
    # The number and the tax-included total fill the form; the parties and the issue date are shown as read.
    expect(page.get_by_label(supplier.word("number"))).to_have_value(number)
    expect(page.get_by_label(supplier.word("amount"))).to_have_value("1000000.28")
    read = page.locator("#einvoice-read")
    expect(read.locator("[data-read=amount]")).to_have_text("¥1,000,000.28")
    expect(read.locator("[data-read=issued]")).to_have_text("2026-12-01")
    expect(read.locator("[data-read=seller]")).to_have_text(
        f"上海示例座椅系统有限公司（统一社会信用代码 {seller_code}）"
    )
    expect(read.locator("[data-read=buyer]")).to_have_text(f"示例汽车制造有限公司（统一社会信用代码 {buyer_code}）")
    expect(page.locator("#einvoice-buyer")).to_contain_text(f"示例汽车制造有限公司，统一社会信用代码 {buyer_code}")
    expect(page.locator("#einvoice-problems")).to_have_count(0)
    page.get_by_label(supplier.word("buyer")).fill(buyer)
    due = chain_day(served, 90)
    page.get_by_label(supplier.word("due"), exact=True).fill(due)
    supplier.shot("invoice-from-file-supplier")
    assert supplier.act("register") == "confirmed"

    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        [invoice] = http.get("/invoices").json()["items"]
    assert invoice["seller"] == seller and invoice["buyer"] == buyer
    assert int(invoice["amount"]) == 100_000_028  # the file's 1000000.28, to the fen
    assert invoice["document_hash"] == "0x" + hashlib.sha256(path.read_bytes()).hexdigest()  # the file itself
    assert served.service.client.invoice(int(invoice["id"])).amount == 100_000_028
    assert supplier.errors == []


def test_an_einvoice_file_of_another_seller_or_with_a_wrong_check_character_is_flagged_and_nothing_is_sent(
    browser: Browser, served: Served, tmp_path: Path, screenshots: Path
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        buyer, buyer_code, _ = onboard(served, http, "Example Motors", "core-firm")
        _, seller_code, key = onboard(served, http, "Example Seats", "supplier")
    someone_else = synthetic_credit_code(next(_seeds))
    wrong = seller_code[:17] + next(c for c in CREDIT_CODE_ALPHABET if c != seller_code[17])
    cases = [
        (someone_else, f"The invoice's seller ({someone_else}) is not you ({seller_code})"),
        (wrong, f"The seller's unified social credit code {wrong} has a wrong check character"),
    ]

    supplier = desk(browser, served, key, "en", screenshots)
    supplier.go("invoices")
    page = supplier.page
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method != "GET":
            sent.append(f"{request.method} {request.url}")

    page.on("request", record)
    for code, message in cases:
        page.get_by_label(FILE_LABEL["en"]).set_input_files(
            str(einvoice(tmp_path, seller=code, buyer=buyer_code, number=invoice_number()))
        )
        expect(page.locator("#einvoice-problems")).to_contain_text(message)
        page.get_by_label(supplier.word("buyer")).fill(buyer)
        page.get_by_label(supplier.word("due"), exact=True).fill(chain_day(served, 60))
        page.get_by_role("button", name=supplier.word("register"), exact=True).click()
        expect(page.locator("form.card > p.error[role=alert]")).to_contain_text(message)
    supplier.shot("invoice-file-refused-supplier")

    # A PDF is uploaded as the document only: nothing is read from it, and the form is as typed.
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    page.get_by_label(FILE_LABEL["en"]).set_input_files(str(pdf))
    expect(page.locator("#einvoice-read")).to_contain_text("no field is read from them")

    assert sent == []  # neither the document nor the invoice went anywhere
    expect(page.locator("#activity li")).to_have_count(0)
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        assert http.get("/invoices").json()["items"] == []
    assert supplier.errors == []
