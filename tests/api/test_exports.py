"""Reports to take away (``format=csv|xlsx`` on the lists and the regulator's reports; the daily statement)
against a real anvil, after the receivable story and one more invoice left open: the files hold every item the
caller may see, their totals reconcile with the chain, the XLSX holds what the CSV holds, and a statement's
``opening + movements = closing`` equals the balances the chain reports at the day's last block."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import func, select

from api.app import create_app
from api.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Column, Table, csv_chunks, xlsx_chunks
from api.routes.common import SortKey, all_rows
from ledger.index.models import EventRow, PieceRow
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.api.test_events import all_events, chain_event_ids, ok, problem, receivable_story

YUAN = 100
TOTAL = re.compile(r"total: (\d+) items")
CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def story(api: Api) -> dict[str, Any]:
    """The receivable story (all of it repaid and redeemed), then an invoice confirmed and split but not repaid,
    so that pieces are still held."""
    told = receivable_story(api)
    people = told["people"]
    due = (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=90)).isoformat()
    body = {
        "buyer": people["automaker"].id,
        "amount": 200_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000) + 7:020d}",
        "due_date": due,
    }
    http = api.http
    invoice_id = ok(http.post("/invoices", json=body, headers=people["seatmaker"].waiting()))["result"]["invoice_id"]
    confirmed = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=people["automaker"].waiting()))
    body = {"to": people["foammaker"].id, "amount": 50_000 * YUAN}
    piece = confirmed["result"]["piece_id"]
    ok(http.post(f"/receivables/{piece}/transfers", json=body, headers=people["seatmaker"].waiting()))
    # a minute into the next day (China Standard Time), a deposit: two days in a row with movements
    now = api.now()
    midnight = datetime.combine(datetime.fromtimestamp(now, CST).date() + timedelta(days=1), dt_time(0), tzinfo=CST)
    api.travel(int(midnight.timestamp()) - now + 60)
    body = {"participant": people["foammaker"].id, "amount": 1_000 * YUAN, "bank_reference": "next day foam"}
    ok(http.post("/deposits", json=body, headers=people["agent"].waiting()))
    head = api.service.w3.eth.block_number
    deadline = time.monotonic() + 30
    while (api.service.indexer.indexed_block() or 0) < head:
        assert time.monotonic() < deadline, "the index did not catch up"
        time.sleep(0.1)
    return {**told, "open_invoice_id": invoice_id}


def csv_rows(response: Any) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The data rows and the totals row of a CSV answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(CSV_MEDIA_TYPE)
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    totals = rows.pop()
    first = next(iter(totals))
    found = TOTAL.fullmatch(totals[first])
    assert found is not None, totals
    assert int(found.group(1)) == len(rows)
    return rows, totals


def xlsx_rows(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_MEDIA_TYPE
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    width = max(len(row) for row in rows)
    return [row + [None] * (width - len(row)) for row in rows]  # a row's empty cells at its end are not stored


def test_an_export_holds_every_item_not_one_page_and_its_totals_reconcile_with_the_chain(
    api: Api, story: dict[str, Any]
) -> None:
    regulator = story["people"]["regulator"].headers
    client = api.service.client
    # every invoice, its amount summed: the chain's invoices, not one page of them
    rows, totals = csv_rows(api.http.get("/invoices", params={"format": "csv", "size": 1}, headers=regulator))
    assert {int(r["id"]) for r in rows} == {story["invoice_id"], story["open_invoice_id"]}
    assert int(totals["amount"]) == sum(client.invoice(int(r["id"])).amount for r in rows)
    assert int(totals["repaid"]) == sum(client.invoice(int(r["id"])).repaid for r in rows)
    # the funded financing's price as the chain has it
    rows, totals = csv_rows(api.http.get("/financing-requests", params={"format": "csv"}, headers=regulator))
    assert int(totals["price"]) == sum(client.financing_request(int(r["id"])).price for r in rows) > 0
    # every log of the ledger's contracts up to the indexed block, once each
    rows, _ = csv_rows(api.http.get("/audit/events", params={"format": "csv"}, headers=regulator))
    chain = chain_event_ids(api)
    assert sorted(f"{r['block_hash']}:{r['log_index']}" for r in rows) == sorted(chain)
    # the pieces held, over all holders, add up to what the open invoice's holders hold on chain
    held = 0
    for person in story["people"].values():
        rows, totals = csv_rows(api.http.get("/receivables", params={"format": "csv"}, headers=person.headers))
        assert all(r["owner"] == person.id for r in rows)
        assert int(totals["value"]) == sum(client.piece(int(r["id"])).value for r in rows)
        held += int(totals["value"])
    invoice = client.invoice(story["open_invoice_id"])
    assert held == invoice.amount - invoice.redeemed == 200_000 * YUAN


def test_the_event_feed_and_the_audit_log_export_every_record(api: Api, story: dict[str, Any]) -> None:
    people = story["people"]
    regulator = people["regulator"].headers
    rows, _ = csv_rows(api.http.get("/events", params={"format": "csv", "limit": 1}, headers=regulator))
    assert [r["id"] for r in rows] == chain_event_ids(api)
    foam = people["foammaker"].headers
    rows, _ = csv_rows(api.http.get("/events", params={"format": "csv"}, headers=foam))
    assert [int(r["seq"]) for r in rows] == [event["seq"] for event in all_events(api, foam)]
    recorded = api.service.audit_log.count()
    rows, _ = csv_rows(api.http.get("/audit/log", params={"format": "csv", "size": 1}, headers=regulator))
    sequences = [int(r["sequence"]) for r in rows]
    assert sequences == list(range(1, len(sequences) + 1)) and len(sequences) >= recorded > 1


def test_an_export_shows_only_what_the_caller_may_see(api: Api, story: dict[str, Any]) -> None:
    people = story["people"]
    rows, totals = csv_rows(api.http.get("/invoices", params={"format": "csv"}, headers=people["stranger"].headers))
    assert rows == [] and int(totals["amount"]) == 0
    rows, _ = csv_rows(api.http.get("/participants", params={"format": "csv"}, headers=people["foammaker"].headers))
    assert [r["id"] for r in rows] == [people["foammaker"].id]
    forbidden = api.http.get("/audit/events", params={"format": "csv"}, headers=people["foammaker"].headers)
    assert forbidden.status_code == 403


def test_the_xlsx_holds_what_the_csv_holds(api: Api, story: dict[str, Any]) -> None:
    regulator = story["people"]["regulator"].headers
    for path in ("/invoices", "/participants", "/freezes"):
        rows, totals = csv_rows(api.http.get(path, params={"format": "csv"}, headers=regulator))
        sheet = xlsx_rows(api.http.get(path, params={"format": "xlsx"}, headers=regulator))
        header = list(rows[0]) if rows else list(totals)
        assert sheet[0] == header
        as_text = [["" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in r] for r in sheet]
        assert as_text[1:] == [[row[k] for k in header] for row in [*rows, totals]]


def test_the_large_transaction_report_exports_each_table(api: Api, story: dict[str, Any]) -> None:
    regulator = story["people"]["regulator"].headers
    params = {"single_threshold": 1, "daily_threshold": 1}

    def report(**extra: str) -> Any:
        return api.http.get("/reports/large-transactions", params={**params, **extra}, headers=regulator)

    answer = ok(report())
    single, totals = csv_rows(report(format="csv"))
    assert len(single) == len(answer["single"])
    assert int(totals["amount"]) == sum(int(item["amount"]) for item in answer["single"])
    daily, totals = csv_rows(report(format="csv", part="daily"))
    assert int(totals["total"]) == sum(int(day["total"]) for day in answer["daily"]) > 0
    # with thresholds of 1 fen, the daily table holds every movement: its totals are the chain's transfers
    client = api.service.client
    logs = api.service.w3.eth.get_logs(
        {"fromBlock": 0, "toBlock": api.service.indexer.indexed_block(), "address": client.address_of("token")}
    )
    transfers = [e.args for e in client.decode_logs(logs) if e.name == "Transfer"]
    assert int(totals["sent"]) == sum(t["value"] for t in transfers if int(t["from"], 16) != 0)
    assert int(totals["received"]) == sum(t["value"] for t in transfers if int(t["to"], 16) != 0)
    workbook = load_workbook(io.BytesIO(report(format="xlsx").content))
    assert workbook.sheetnames == ["single", "daily"]
    assert workbook["daily"].max_row == len(daily) + 2  # header, rows, totals


def test_all_rows_reads_every_row_once_in_order_across_batches(api: Api, story: dict[str, Any]) -> None:
    keys = (SortKey(EventRow.block_number, descending=True), SortKey(EventRow.log_index, descending=True))
    with api.service.sessions() as session:
        ordered = select(EventRow).order_by(*(key.order() for key in keys))
        expected = [(e.block_number, e.log_index) for e in session.scalars(ordered)]
        batches = list(all_rows(session, select(EventRow), keys, batch=7))
    assert all(0 < len(batch) <= 7 for batch in batches) and len(batches) > 1
    assert [(e.block_number, e.log_index) for batch in batches for e in batch] == expected


# -- daily statements ----------------------------------------------------------------------------------------------


def last_block_before(api: Api, moment: int) -> int:
    """The last block whose time is before ``moment`` (unix seconds)."""
    w3 = api.service.w3
    low, high = 0, w3.eth.block_number
    if w3.eth.get_block(high)["timestamp"] < moment:
        return high
    while low + 1 < high:
        middle = (low + high) // 2
        if w3.eth.get_block(middle)["timestamp"] < moment:
            low = middle
        else:
            high = middle
    return low


def chain_holdings(api: Api, account: str, block: int) -> tuple[int, int]:
    """The deposit-token balance of ``account`` and the value of the pieces it holds, as the chain says at
    ``block`` (every piece the chain had then, asked one by one)."""
    contracts = api.service.client.contracts
    balance = contracts["token"].functions.balanceOf(account).call(block_identifier=block)
    with api.service.sessions() as session:
        last = int(session.scalar(select(func.max(PieceRow.id))) or 0)
    held = 0
    for piece_id in range(1, last + 3):
        try:
            owner, _, _, value, *_ = contracts["receivables"].functions.piece(piece_id).call(block_identifier=block)
        except Exception:  # no such piece (yet)
            continue
        if owner == account:
            held += value
    return int(balance), held


def test_a_statement_reconciles_to_the_fen_with_the_chain_at_the_days_last_block(
    api: Api, story: dict[str, Any]
) -> None:
    people = story["people"]
    with api.service.sessions() as session:
        times = set(session.scalars(select(EventRow.block_timestamp).distinct()))
    # every day with a ledger event, and the chain's today: the days between have no movement
    days = sorted({datetime.fromtimestamp(t, CST).date() for t in (*times, api.now())})
    assert len(days) >= 3  # the story travels 91 days; then to the next day
    for name in ("automaker", "seatmaker", "foammaker", "factor"):
        person = people[name]
        previous_closing = (0, 0)
        for day in days:
            statement = ok(
                api.http.get(
                    f"/participants/{person.id}/statement", params={"date": day.isoformat()}, headers=person.headers
                )
            )
            assert statement["time_zone"] == "Asia/Shanghai"
            assert statement["from_time"] == int(datetime.combine(day, dt_time(0), tzinfo=CST).timestamp())
            assert statement["to_time"] - statement["from_time"] == 86_400
            for account in ("deposits", "receivables"):
                book = statement[account]
                balance = book["opening"]
                for movement in book["movements"]:
                    assert statement["from_time"] <= movement["time"] < statement["to_time"]
                    balance += movement["amount"]
                    assert movement["balance"] == balance
                assert balance == book["closing"], (name, day, account)
            closing = (statement["deposits"]["closing"], statement["receivables"]["closing"])
            opening = (statement["deposits"]["opening"], statement["receivables"]["opening"])
            assert opening == previous_closing, (name, day)
            block = min(last_block_before(api, statement["to_time"]), statement["indexed_block"])
            assert closing == chain_holdings(api, person.id, block), (name, day, block)
            previous_closing = closing


def test_the_statements_of_every_participant_add_up_to_the_tokens_total_supply(api: Api, story: dict[str, Any]) -> None:
    regulator = story["people"]["regulator"].headers
    participants, _ = csv_rows(api.http.get("/participants", params={"format": "csv"}, headers=regulator))
    day = {"date": datetime.fromtimestamp(api.now(), CST).date().isoformat()}
    closings = [
        ok(api.http.get(f"/participants/{p['id']}/statement", params=day, headers=regulator))["deposits"]["closing"]
        for p in participants
    ]
    client = api.service.client
    held_by_contracts = sum(client.balance_of(client.address_of(name)) for name in ("receivables", "receipts"))
    supply = client.contracts["token"].functions.totalSupply().call()
    assert sum(closings) + held_by_contracts == supply > 0


def test_a_statement_as_a_file_holds_the_json_statement(api: Api, story: dict[str, Any]) -> None:
    person = story["people"]["foammaker"]
    day = datetime.fromtimestamp(api.now(), CST).date().isoformat()
    path = f"/participants/{person.id}/statement"
    statement = ok(api.http.get(path, params={"date": day}, headers=person.headers))
    response = api.http.get(path, params={"date": day, "format": "csv"}, headers=person.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith(CSV_MEDIA_TYPE)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    for account in ("deposits", "receivables"):
        lines = [r for r in rows if r["account"] == account]
        assert lines[0]["kind"] == "opening" and int(lines[0]["balance"]) == statement[account]["opening"]
        assert lines[-1]["kind"] == "closing" and int(lines[-1]["balance"]) == statement[account]["closing"]
        movements = lines[1:-1]
        assert [int(m["amount"]) for m in movements] == [m["amount"] for m in statement[account]["movements"]]
        assert int(lines[0]["balance"]) + sum(int(m["amount"]) for m in movements) == int(lines[-1]["balance"])
        assert int(lines[-1]["amount"]) == sum(int(m["amount"]) for m in movements)
    sheet = xlsx_rows(api.http.get(path, params={"date": day, "format": "xlsx"}, headers=person.headers))
    assert len(sheet) == len(rows) + 1


def test_a_statement_is_the_participants_the_regulators_and_the_operators_only(api: Api, story: dict[str, Any]) -> None:
    people = story["people"]
    path = f"/participants/{people['seatmaker'].id}/statement"
    day = {"date": datetime.fromtimestamp(api.now(), CST).date().isoformat()}
    for allowed in (people["seatmaker"].headers, people["regulator"].headers, api.operator_headers):
        ok(api.http.get(path, params=day, headers=allowed))
    problem(api.http.get(path, params=day, headers=people["stranger"].headers), 404)
    problem(api.http.get(path, params={**day, "format": "xlsx"}, headers=people["stranger"].headers), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"date": "2026-02-30"},
        {"date": "20261205"},
        {"date": "1700000000"},
        {"date": "9999-12-31"},
        {},
        {"date": "2026-12-05", "format": "pdf"},
        {"date": "2026-12-05", "format": "CSV"},
    ],
)
def test_a_bad_date_or_format_is_a_422_problem(api: Api, story: dict[str, Any], params: dict[str, str]) -> None:
    person = story["people"]["seatmaker"]
    problem(api.http.get(f"/participants/{person.id}/statement", params=params, headers=person.headers), 422)
    if "format" in params:
        problem(api.http.get("/invoices", params={"format": params["format"]}, headers=person.headers), 422)


def test_the_document_declares_the_files_beside_the_json() -> None:
    document = create_app().openapi()
    lists = ("/invoices", "/audit/events", "/freezes", "/reports/large-transactions", "/reports/payment-discipline")
    for path in (*lists, "/participants/{participant_id}/statement"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert {"application/json", CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE} <= set(content), path
    assert CSV_MEDIA_TYPE not in document["paths"]["/invoices/{invoice_id}"]["get"]["responses"]["200"]["content"]
    assert document["components"]["schemas"]["InvoiceItem"]["properties"]["amount"]["x-unit"] == "fen"


def test_a_file_keeps_every_fen_beyond_2_53_and_never_a_formula() -> None:
    """A spreadsheet's numbers hold integers exactly only below 2^53: beyond, the amount is written as its
    digits; a text a spreadsheet would run as a formula gets a leading quote, in the CSV and in the XLSX."""
    huge = 2**96 - 1  # the largest amount the contracts store (uint96), fen
    columns = [Column("name"), Column("amount", fen=True)]

    def table() -> Table:
        return Table("t", columns, iter([{"name": "=HYPERLINK(1)", "amount": huge}, {"name": "-x", "amount": 1}]))

    text = b"".join(csv_chunks(table())).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["name", "amount"],
        ["'=HYPERLINK(1)", str(huge)],
        ["'-x", "1"],
        ["total: 2 items", str(huge + 1)],
    ]
    workbook = load_workbook(io.BytesIO(b"".join(xlsx_chunks([table()]))))
    cells = [[cell.value for cell in row] for row in workbook["t"].iter_rows()]
    assert cells == [
        ["name", "amount"],
        ["'=HYPERLINK(1)", str(huge)],
        ["'-x", 1],
        ["total: 2 items", str(huge + 1)],
    ]
    assert all(cell.data_type != "f" for row in workbook["t"].iter_rows() for cell in row)


def test_the_report_time_zone_must_be_an_iana_time_zone() -> None:
    assert Settings(report_time_zone="Asia/Urumqi").report_time_zone == "Asia/Urumqi"
    for bad in ("Mars/Olympus_Mons", "+08:00", "../etc/passwd", ""):
        with pytest.raises(ValidationError, match="IANA time zone"):
            Settings(report_time_zone=bad)


def test_a_workbook_writes_a_control_character_as_its_escape_rather_than_breaking_off() -> None:
    """A workbook's XML cannot hold most control characters (openpyxl refuses them): a text with one, such as an
    audit record of a request whose path had one (found by the schemathesis run: the XLSX of /audit/log broke off
    mid-stream), is written with ``\\xNN`` in its place; a tab stays a tab, and the CSV keeps the text as it is."""
    columns = [Column("path")]

    def table() -> Table:
        return Table("t", columns, iter([{"path": "/participants/h\x1f/keys"}, {"path": "a\tb"}]))

    workbook = load_workbook(io.BytesIO(b"".join(xlsx_chunks([table()]))))
    cells = [[cell.value for cell in row] for row in workbook["t"].iter_rows()]
    assert cells[1:3] == [["/participants/h\\x1f/keys"], ["a\tb"]]
    rows = list(csv.reader(io.StringIO(b"".join(csv_chunks(table())).decode("utf-8-sig"))))
    assert rows[1] == ["/participants/h\x1f/keys"]
