"""The invoice form filled from the invoice file: the supplier chooses a 数电票 XML file
(tests/portal/einvoice-sample.xml, synthetic parties), the page reads it (number, tax-included total, seller, buyer,
issue date) and fills the form; the invoice registered carries the exact fen of the file's total and the file's
hash. A file whose seller is not the signed-in supplier, or whose credit code has a wrong check character, is
flagged in the user's language and nothing is sent."""

from __future__ import annotations

import hashlib
import itertools
import os
import zipfile
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


OFD_NS = "http://www.ofdspec.org/2016"
FP_NS = "http://www.edrm.org.cn/schema/e-invoice/2019"
OFD_FIELDS = (
    "InvoiceNo",
    "IssueDate",
    "BuyerName",
    "BuyerTaxID",
    "SellerName",
    "SellerTaxID",
    "TaxInclusiveTotalAmount",
)


def ofd_invoice(tmp_path: Path, *, seller: str, buyer: str, number: str, layout: str) -> Path:
    """An OFD invoice (a ZIP of XML parts, GB/T 33190) with these parties and this number, its fields where
    ``layout`` says: ``tags`` (custom tags pointing at the page's text objects), ``data`` (an attached invoice data
    file of the 2019 e-invoice schema) or ``einvoice`` (the 数电票 XML attached). The page shows the values as an
    invoice prints them: a date in 年月日, the total with ¥ and thousands separators."""
    shown = {
        "InvoiceNo": number,
        "IssueDate": "2026年12月01日",
        "BuyerName": "示例汽车制造有限公司",
        "BuyerTaxID": buyer,
        "SellerName": "上海示例座椅系统有限公司",
        "SellerTaxID": seller,
        "TaxInclusiveTotalAmount": "¥1,000,000.28",
    }
    ids = {name: 100 + index for index, name in enumerate(OFD_FIELDS)}
    objects = "".join(
        f'<ofd:TextObject ID="{ids[name]}" Boundary="0 {index * 8} 80 6" Font="3" Size="3.5">'
        f'<ofd:TextCode X="0" Y="3">{text[:4]}</ofd:TextCode><ofd:TextCode X="14" Y="3">{text[4:]}</ofd:TextCode>'
        "</ofd:TextObject>"
        for index, (name, text) in enumerate(shown.items())
    )
    parts = {
        "OFD.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.1" DocType="OFD">'
        f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>{number}</ofd:DocID></ofd:DocInfo>"
        "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        "Doc_0/Document.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{OFD_NS}">'
        "<ofd:CommonData><ofd:MaxUnitID>200</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 140"
        '</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData><ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/'
        'Content.xml"/></ofd:Pages><ofd:CustomTags>Tags/CustomTags.xml</ofd:CustomTags>'
        "<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments></ofd:Document>",
        "Doc_0/Pages/Page_0/Content.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{OFD_NS}">'
        f'<ofd:Content><ofd:Layer ID="2">{objects}</ofd:Layer></ofd:Content></ofd:Page>',
    }
    if layout == "tags":
        refs = {name: f'<fp:ObjectRef PageRef="1">{ids[name]}</fp:ObjectRef>' for name in OFD_FIELDS}
        parts["Doc_0/Tags/CustomTags.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:CustomTags xmlns:ofd="{OFD_NS}"><ofd:CustomTag '
            f'NameSpace="{FP_NS}"><ofd:FileLoc>CustomTag.xml</ofd:FileLoc></ofd:CustomTag></ofd:CustomTags>'
        )
        parts["Doc_0/Tags/CustomTag.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><fp:eInvoice xmlns:fp="{FP_NS}">'
            f"<fp:InvoiceNo>{refs['InvoiceNo']}</fp:InvoiceNo><fp:IssueDate>{refs['IssueDate']}</fp:IssueDate>"
            f"<fp:Buyer><fp:BuyerName>{refs['BuyerName']}</fp:BuyerName><fp:BuyerTaxID>{refs['BuyerTaxID']}"
            f"</fp:BuyerTaxID></fp:Buyer><fp:Seller><fp:SellerName>{refs['SellerName']}</fp:SellerName>"
            f"<fp:SellerTaxID>{refs['SellerTaxID']}</fp:SellerTaxID></fp:Seller>"
            f"<fp:TaxInclusiveTotalAmount>{refs['TaxInclusiveTotalAmount']}</fp:TaxInclusiveTotalAmount></fp:eInvoice>"
        )
    else:
        parts["Doc_0/Attachs/Attachments.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Attachments xmlns:ofd="{OFD_NS}"><ofd:Attachment ID="1" '
            'Name="invoice" Format="xml"><ofd:FileLoc>invoice.xml</ofd:FileLoc></ofd:Attachment></ofd:Attachments>'
        )
        if layout == "data":
            parts["Doc_0/Attachs/invoice.xml"] = (
                f'<?xml version="1.0" encoding="UTF-8"?><fp:eInvoice xmlns:fp="{FP_NS}" Version="1.0">'
                f"<fp:InvoiceNo>{number}</fp:InvoiceNo><fp:IssueDate><![CDATA[2026-12-01]]></fp:IssueDate>"
                f"<fp:Buyer><fp:BuyerName><![CDATA[示例汽车制造有限公司]]></fp:BuyerName><fp:BuyerTaxID>{buyer}"
                "</fp:BuyerTaxID></fp:Buyer><fp:Seller><fp:SellerName><![CDATA[上海示例座椅系统有限公司]]>"
                f"</fp:SellerName><fp:SellerTaxID>{seller}</fp:SellerTaxID></fp:Seller>"
                "<fp:TaxInclusiveTotalAmount>1000000.28</fp:TaxInclusiveTotalAmount></fp:eInvoice>"
            )
        else:
            attached = einvoice(tmp_path, seller=seller, buyer=buyer, number=number)
            parts["Doc_0/Attachs/invoice.xml"] = attached.read_text(encoding="utf-8")
    path = tmp_path / f"{number}.ofd"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in parts.items():
            # OFD.xml stored, the rest deflated: the page reads both kinds of ZIP entry.
            method = zipfile.ZIP_STORED if name == "OFD.xml" else zipfile.ZIP_DEFLATED
            archive.writestr(name, text.encode("utf-8"), compress_type=method)
    return path


def test_the_invoice_form_is_filled_from_an_ofd_invoice_whichever_part_holds_its_fields(
    browser: Browser, served: Served, tmp_path: Path, screenshots: Path
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        buyer, buyer_code, _ = onboard(served, http, "示例汽车制造", "core-firm")
        seller, seller_code, key = onboard(served, http, "示例座椅系统", "supplier")
    supplier = desk(browser, served, key, "zh-CN", screenshots)
    supplier.go("invoices")
    page = supplier.page
    registered: dict[str, Path] = {}
    for layout in ("tags", "data", "einvoice"):
        number = invoice_number()
        path = ofd_invoice(tmp_path, seller=seller_code, buyer=buyer_code, number=number, layout=layout)
        page.get_by_label(FILE_LABEL["zh-CN"]).set_input_files(str(path))
        expect(page.get_by_label(supplier.word("number"))).to_have_value(number)
        expect(page.get_by_label(supplier.word("amount"))).to_have_value("1000000.28")
        read = page.locator("#einvoice-read")
        expect(read.locator("[data-read=amount]")).to_have_text("¥1,000,000.28")
        expect(read.locator("[data-read=issued]")).to_have_text("2026-12-01")
        expect(read.locator("[data-read=seller]")).to_have_text(
            f"上海示例座椅系统有限公司（统一社会信用代码 {seller_code}）"
        )
        expect(read.locator("[data-read=buyer]")).to_have_text(f"示例汽车制造有限公司（统一社会信用代码 {buyer_code}）")
        expect(page.locator("#einvoice-problems")).to_have_count(0)
        page.get_by_label(supplier.word("buyer")).fill(buyer)
        page.get_by_label(supplier.word("due"), exact=True).fill(chain_day(served, 90))
        if layout == "tags":
            supplier.shot("invoice-from-ofd-supplier")
        assert supplier.act("register") == "confirmed", layout
        registered[number] = path

    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        invoices = http.get("/invoices").json()["items"]
    assert len(invoices) == 3
    hashes = {"0x" + hashlib.sha256(path.read_bytes()).hexdigest() for path in registered.values()}
    for invoice in invoices:
        assert invoice["seller"] == seller and invoice["buyer"] == buyer
        assert int(invoice["amount"]) == 100_000_028  # ¥1,000,000.28 as printed on the page, to the fen
        assert served.service.client.invoice(int(invoice["id"])).amount == 100_000_028
    assert {invoice["document_hash"] for invoice in invoices} == hashes  # each OFD file itself

    # A file named .ofd that is no ZIP archive is refused in words, and the form keeps what was typed.
    broken = tmp_path / "broken.ofd"
    broken.write_bytes(b"%PDF-1.7\nnot an archive\n")
    page.get_by_label(FILE_LABEL["zh-CN"]).set_input_files(str(broken))
    expect(page.locator("#einvoice-read")).to_contain_text("发票文件无法读取：not a ZIP archive")
    assert supplier.errors == []
