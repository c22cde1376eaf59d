"""A warehouse receipt carries the elements of GB/T 30332-2024 (仓单要素与格式要求) and 《民法典》第九百零九条: those
that are not on chain are checked at issue and written into the receipt document, whose SHA-256 is the receipt's
document hash on chain (docs/warehouse-receipts.md). Bad elements are refused with a 422 naming the field, and
nothing is stored or signed; the document is read by the receipt's parties and nobody else."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from api.receipt_document import RIGHTS_NOTICE, STANDARD
from ledger.documents import DocumentRecord
from ledger.identifiers import synthetic_credit_code
from ledger.journal import JournalTransaction
from tests.api.conftest import Api, Participant
from tests.api.test_warehouse_api import YUAN, day_after, eventually, ok, refused
from tests.stories import receipt_elements

ESSENTIAL = {
    "depositor": {"name", "domicile", "credit_code"},
    "goods": {"variety", "specification", "quality", "packaging", "pieces", "marks"},
    "loss_standard": {"description", "tolerance_bps"},
    "storage_place": None,
    "storage_period": {"start", "end"},
    "storage_fee": {"amount", "basis"},
    "insurance": {"amount", "start", "end", "insurer"},
    "issuer": None,
    "issue_place": None,
}
"""民法典 909 (一)-(八) and the standard's essential elements, as the document names them."""


def _counts(api: Api) -> tuple[int, int]:
    with api.service.sessions() as session:
        journal = session.scalar(select(func.count()).select_from(JournalTransaction))
        documents = session.scalar(select(func.count()).select_from(DocumentRecord))
    return int(journal or 0), int(documents or 0)


def _body(api: Api, owner: Participant, lot: str, **elements: Any) -> dict[str, Any]:
    return {
        "owner": owner.id,
        "lot_number": lot,
        "goods_description": "hot-rolled coil Q235B, 40 coils, 1,000 t",
        "elements": {**receipt_elements(), **elements},
        "quantity": 1_000,
        "unit": "t",
        "valuation": 4_000_000 * YUAN,
        "expiry": day_after(api, 365),
    }


def _listed(api: Api, who: Participant, receipt_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def probe() -> bool:
        answer = api.http.get("/warehouse-receipts", headers=who.headers, params={"size": 200})
        found.update({str(item["id"]): item for item in answer.json()["items"]})
        return receipt_id in found

    eventually(probe)
    return found[receipt_id]


def test_the_receipt_document_on_chain_holds_every_essential_element(api: Api) -> None:
    warehouse = api.onboard("Elements Warehouse", "warehouse")
    steel = api.onboard("Elements Steel Trading", "supplier")
    code = synthetic_credit_code(int(time.time()) % 10**6)
    body = _body(api, steel, f"EL-{time.time_ns()}", depositor={**receipt_elements()["depositor"], "credit_code": code})
    body["document_sha256"] = "0x" + "AB" * 32
    body["elements"]["issuer"] = "  张伟  "  # trimmed
    receipt_id = str(ok(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()))["receipt_id"])
    issued_on = datetime.fromtimestamp(api.now(), UTC).date()

    on_chain = _listed(api, warehouse, receipt_id)["document_hash"]
    answer = api.http.get(f"/documents/{on_chain}", headers=warehouse.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    content = answer.content
    assert "0x" + hashlib.sha256(content).hexdigest() == on_chain  # exactly the bytes hashed
    document = json.loads(content)
    assert content == json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()

    assert document["title"] == "仓单" and document["standard"] == STANDARD
    assert document["rights_notice"] == RIGHTS_NOTICE and "提取仓储物的凭证" in document["rights_notice"]
    assert document["receipt_number"] == receipt_id and document["lot_number"] == body["lot_number"]
    assert document["on_chain"] == {
        "warehouse": warehouse.id,
        "owner": steel.id,
        "goods_description": body["goods_description"],
        "goods_hash": _listed(api, warehouse, receipt_id)["goods_hash"],
        "quantity": 1_000,
        "unit": "t",
        "valuation": 4_000_000 * YUAN,
        "expiry": body["expiry"],
    }
    assert date.fromisoformat(document["issue_date"]) in (issued_on, date.fromordinal(issued_on.toordinal() - 1))
    assert document["attachment_sha256"] == "ab" * 32  # the scan of the signed paper receipt, as an attachment
    elements = document["elements"]
    for name, fields in ESSENTIAL.items():
        assert name in elements, name
        if fields is not None:
            assert set(elements[name]) == fields, name
    assert elements["depositor"]["credit_code"] == code and elements["issuer"] == "张伟"
    assert elements["storage_period"] == {"start": "2025-12-01", "end": body["expiry"]}  # it ends at the expiry
    sent = receipt_elements()
    for name in ("goods", "loss_standard", "storage_fee", "insurance"):
        assert elements[name] == sent[name], name


def test_a_receipt_of_uninsured_goods_has_no_insurance_element(api: Api) -> None:
    warehouse = api.onboard("Uninsured Warehouse", "warehouse")
    owner = api.onboard("Uninsured Trader", "supplier")
    body = _body(api, owner, f"UN-{time.time_ns()}")
    body["elements"] = receipt_elements(insured=False)
    receipt_id = str(ok(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()))["receipt_id"])
    content = api.http.get(f"/documents/{_listed(api, owner, receipt_id)['document_hash']}", headers=owner.headers)
    assert content.status_code == 200 and "insurance" not in json.loads(content.content)["elements"]


def _with(path: str, value: Any) -> dict[str, Any]:
    """The example elements with the element at ``path`` (dotted) set to ``value`` (or removed for ``...``)."""
    elements = receipt_elements()
    *parents, last = path.split(".")
    target = elements
    for parent in parents:
        target = target[parent]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return elements


GOOD_CODE = receipt_elements()["depositor"]["credit_code"]
BAD_ELEMENTS = [
    ("depositor.credit_code", GOOD_CODE[:17] + ("0" if GOOD_CODE[17] != "0" else "1")),  # wrong check character
    ("depositor.credit_code", GOOD_CODE[:17]),  # no check character at all
    ("depositor.credit_code", GOOD_CODE.lower()),
    ("depositor.credit_code", ...),
    ("depositor.name", "   "),
    ("depositor.domicile", "x" * 501),
    ("goods.pieces", 0),
    ("goods.pieces", True),
    ("goods.pieces", "40"),
    ("goods.pieces", 40.0),
    ("goods.variety", ""),
    ("goods.marks", "line\nbreak"),
    ("loss_standard.tolerance_bps", 10_001),
    ("loss_standard.tolerance_bps", -1),
    ("storage_fee.amount", 1.5),
    ("storage_fee.amount", "15000"),
    ("storage_fee.amount", -1),
    ("storage_period.start", 20_251_201),
    ("storage_period.start", "2025-12-1"),
    ("storage_period.start", "2025-02-30"),
    ("insurance.amount", 0),
    ("insurance.end", "2025-11-30"),  # before its start
    ("insurance.insurer", ...),
    ("issuer", ...),
    ("issue_place", 7),
    ("storage_place", None),
    ("surprise", "an element nobody asked for"),
]


def test_a_receipt_with_a_bad_element_is_refused_naming_it_and_nothing_is_stored_or_sent(api: Api) -> None:
    warehouse = api.onboard("Bad Elements Warehouse", "warehouse")
    owner = api.onboard("Bad Elements Trader", "supplier")
    before = _counts(api)
    for path, value in BAD_ELEMENTS:
        body = _body(api, owner, f"BAD-{time.time_ns()}")
        body["elements"] = _with(path, value)
        answer = refused(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()), 422)
        assert answer["type"] == "urn:scf:problem:validation", (path, value)
        named = ["body", "elements", *(["insurance"] if path == "insurance.end" else path.split("."))]
        assert any(error["loc"][: len(named)] == named for error in answer["errors"]), (path, value, answer)
    assert _counts(api) == before  # no document stored, nothing signed


def test_a_receipt_without_the_depositors_credit_code_check_character_is_refused_and_nothing_is_sent(
    api: Api,
) -> None:
    warehouse = api.onboard("Check Character Warehouse", "warehouse")
    owner = api.onboard("Check Character Trader", "supplier")
    body = _body(api, owner, f"CC-{time.time_ns()}")
    code = body["elements"]["depositor"]["credit_code"]
    wrong = next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != code[17])
    body["elements"]["depositor"]["credit_code"] = code[:17] + wrong
    before = _counts(api)
    answer = refused(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()), 422)
    assert any(error["loc"][-3:] == ["elements", "depositor", "credit_code"] for error in answer["errors"]), answer
    assert "check character" in json.dumps(answer)
    assert _counts(api) == before
    body["elements"]["depositor"]["credit_code"] = code
    assert api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()).status_code == 200


def test_a_receipt_whose_storage_period_starts_after_its_expiry_is_refused_and_nothing_is_sent(api: Api) -> None:
    warehouse = api.onboard("Period Warehouse", "warehouse")
    owner = api.onboard("Period Trader", "supplier")
    body = _body(api, owner, f"PE-{time.time_ns()}")
    body["elements"]["storage_period"] = {"start": day_after(api, 366)}
    before = _counts(api)
    answer = refused(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()), 422)
    assert any(error["loc"][-3:] == ["elements", "storage_period", "start"] for error in answer["errors"]), answer
    assert _counts(api) == before
    body["elements"]["storage_period"] = {"start": body["expiry"]}  # a period of one day is a period
    assert api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()).status_code == 200


def test_a_receipt_without_elements_is_refused(api: Api) -> None:
    warehouse = api.onboard("No Elements Warehouse", "warehouse")
    owner = api.onboard("No Elements Trader", "supplier")
    body = _body(api, owner, f"NE-{time.time_ns()}")
    del body["elements"]
    before = _counts(api)
    answer = refused(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()), 422)
    assert any(error["loc"] == ["body", "elements"] for error in answer["errors"]), answer
    assert _counts(api) == before


def test_the_receipt_document_is_read_by_the_receipts_parties_and_no_one_else(api: Api) -> None:
    warehouse = api.onboard("Readers Warehouse", "warehouse")
    other_warehouse = api.onboard("Readers Other Warehouse", "warehouse")
    steel = api.onboard("Readers Steel Trading", "supplier")
    buyer = api.onboard("Readers Buyer", "supplier")
    bank = api.onboard("Readers Bank", "financier")
    stranger = api.onboard("Readers Stranger", "financier", "supplier")
    regulator = api.onboard("Readers Regulator", "regulator")
    body = _body(api, steel, f"RD-{time.time_ns()}")
    receipt_id = str(ok(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()))["receipt_id"])
    digest = _listed(api, warehouse, receipt_id)["document_hash"].removeprefix("0x")

    def reads(who: Participant | None) -> int:
        headers = api.operator_headers if who is None else who.headers
        return api.http.get(f"/documents/{digest}", headers=headers).status_code

    assert [reads(w) for w in (warehouse, steel, regulator, None)] == [200, 200, 200, 200]
    assert [reads(w) for w in (bank, stranger, other_warehouse, buyer)] == [404, 404, 404, 404]

    # the financier asked for a pledge against it reads the document (the receipt's owner asked it)
    pledge = {"receipt_id": receipt_id, "financier": bank.id, "principal": 1_000 * YUAN, "rate_bps": 500}
    pledge_id = ok(api.http.post("/pledges", json={**pledge, "due_date": day_after(api, 60)}, headers=steel.waiting()))
    eventually(lambda: reads(bank) == 200)
    assert reads(stranger) == 404
    ok(api.http.post(f"/pledges/{pledge_id['pledge_id']}/cancel", headers=steel.waiting()))

    # a later owner reads it through the receipt
    ok(api.http.post(f"/warehouse-receipts/{receipt_id}/transfers", json={"to": buyer.id}, headers=steel.waiting()))
    eventually(lambda: reads(buyer) == 200)
    assert reads(stranger) == 404
