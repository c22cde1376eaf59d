"""How the paged lists page (``api.routes.common.PAGING``): by cursor (``after`` / ``next``) and by page number,
with ``total`` counted by page number or when asked. No chain: the index tables are filled directly and the app
is driven without its lifespan, with a stand-in service that holds only the database (the list routes read the
index and the callers' records, nothing else). On SQLite and, when a server answers, PostgreSQL (the
``database_url`` fixture of ``conftest.py``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, event, insert, inspect, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.routes.common import encode_cursor
from api.service import LedgerService, hash_api_key
from api.store import ApiKeyRecord, ParticipantRecord
from ledger.db import Base, make_engine, make_sessionmaker
from ledger.identifiers import synthetic_credit_code
from ledger.index.models import (
    EventRow,
    FinancingRequestRow,
    InvoiceRow,
    ParticipantRow,
    PieceRow,
    PledgeMarginCallRow,
    PledgeRow,
    WarehouseReceiptRow,
)
from ledger.migrations import downgrade, upgrade
from ledger.models import InvoiceState, ParticipantStatus, PledgeState, ReceiptState, RequestState, Role

NOW = 1_790_000_000
BIG = 2**200
"""Receipt ids are lot-key hashes: most are far wider than 64 bits."""


def address(n: int) -> str:
    return str(to_checksum_address(f"0x{n:040x}"))


REGULATOR, HOLDER, OTHER, FINANCIER, WAREHOUSE, CORE, MOVER = (address(0xA000 + i) for i in range(7))
ROLES = {
    REGULATOR: Role.REGULATOR,
    HOLDER: Role.SUPPLIER,
    OTHER: Role.SUPPLIER,
    FINANCIER: Role.FINANCIER,
    WAREHOUSE: Role.WAREHOUSE,
    CORE: Role.CORE_FIRM,
    MOVER: Role.SUPPLIER,
}


class IndexOnlyService:
    """The part of :class:`api.service.LedgerService` the list routes use: the database and the key lookup."""

    participant_by_key = LedgerService.participant_by_key
    participant_record = LedgerService.participant_record
    participant_of_key = LedgerService.participant_of_key
    known_participant = LedgerService.known_participant
    participants = None  # nothing remembered: every request reads the key (api/auth_cache.py)

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.audit_log = None
        # The gateway's own account (a member's gateway lists its participants to it): none of the callers here.
        self.operator = SimpleNamespace(address="0x" + "ee" * 20)


@dataclass
class Index:
    http: TestClient
    engine: Engine
    keys: dict[str, str]

    def get(self, path: str, who: str, **params: Any) -> Any:
        return self.http.get(path, params=params, headers={"Authorization": f"Bearer {self.keys[who]}"})

    def ok(self, path: str, who: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, who, **params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def walk(self, path: str, who: str, size: int, between: Callable[[int], None] | None = None) -> list[Any]:
        """Every item of a list, following ``next`` from the first page; ``between(n)`` after page n."""
        items, params, pages = [], {"size": size}, 0
        while True:
            body = self.ok(path, who, **params)
            assert body["page"] is None or "after" not in params
            items.extend(body["items"])
            pages += 1
            if body["next"] is None:
                assert len(body["items"]) <= size
                return items
            assert len(body["items"]) == size
            if between is not None:
                between(pages)
            params = {"size": size, "after": body["next"]}


def _invoice(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "key_hash": f"0x{i:064x}",
        # the holder sells the odd ones, is billed for 10 to 13, and both sells and is billed for 7
        "seller": HOLDER if i % 2 else OTHER,
        "buyer": HOLDER if i in (7, 10, 11, 12, 13) else CORE,
        "amount": 1_000_000,
        "currency": "CNY",
        "due_date": NOW + (60 + i) * 86_400,  # one a day
        "document_hash": f"0x{i:064x}",
        "state": InvoiceState.CONFIRMED if i % 3 else InvoiceState.REGISTERED,
        "registered_at": NOW,
        "confirmed_at": NOW if i % 3 else None,
        "first_piece_id": None,
        "rejection_reason": None,
        "repaid": 0,
        "redeemed": 0,
        "defaulted_by": None,
        "updated_block": i,
    }


def _fill(engine: Engine) -> dict[str, str]:
    rows: dict[type[Base], list[dict[str, Any]]] = {
        InvoiceRow: [_invoice(i) for i in range(1, 41)],
        PieceRow: [
            {
                "id": i,
                "slot_id": (i - 1) % 40 + 1,
                # the holder holds those not divisible by 3, and the mover 101 to 130; every tenth from 5 is burnt
                "owner": None if i % 10 == 5 else (MOVER if i > 100 else HOLDER if i % 3 else OTHER),
                "value": 1_000,
                "checkpoint": 0,
                "parent_id": None,
                "root_id": i,
                "depth": 0,
                "path": str(i),
                "frozen": False,
                "open_request_id": None,
                "burnt": i % 10 == 5,
                "created_at": NOW + i,
                "updated_block": i,
            }
            for i in (*range(1, 61), *range(101, 131))
        ],
        FinancingRequestRow: [
            {
                "id": i,
                "piece_id": i,
                "holder": HOLDER if i % 2 else OTHER,
                "financier": FINANCIER if i % 4 else OTHER,
                "amount": 500,
                "state": RequestState.REQUESTED if i % 3 else RequestState.FUNDED,
                "discount_rate_bps": None,
                "day_count_basis": None,
                "fee": None,
                "discount": None,
                "price": None,
                "funded_piece_id": None,
                "requested_at": NOW,
                "approved_at": None,
                "closed_at": None,
                "updated_block": i,
            }
            for i in range(1, 21)
        ],
        WarehouseReceiptRow: [
            {
                # wide and narrow ids, and issue times shared by three receipts each (the id breaks the tie)
                "id": BIG + i if i % 2 else i,
                "warehouse": WAREHOUSE,
                "owner": HOLDER if i % 3 else OTHER,
                "lot_key_hash": f"0x{i:064x}",
                "goods_hash": f"0x{i:064x}",
                "document_hash": f"0x{i:064x}",
                "quantity": 10,
                "unit": "t",
                "valuation": 1_000_000,
                "valued_at": NOW,
                "expiry": NOW + 365 * 86_400,
                "goods_status": 0,
                "state": ReceiptState.ACTIVE,
                "frozen": False,
                "pledge_id": None,
                "oracle": None,
                "issued_at": NOW + i // 3,
                "updated_block": i,
            }
            for i in range(1, 13)
        ],
        PledgeRow: [
            {
                "id": i,
                "receipt_id": BIG + 2 * i - 1 if i % 2 else 2 * i,
                "borrower": HOLDER if i % 2 else OTHER,
                "financier": FINANCIER,
                "state": PledgeState.REQUESTED if i % 2 else PledgeState.ACTIVE,
                "rate_bps": 600,
                "due_date": NOW + 90 * 86_400,
                "principal_requested": 500_000,
                "principal": 500_000,
                "interest_due": 0,
                "accrued_from": None,
                "funded_at": None,
                "closed_at": None,
                "margin_called_at": None,
                "requested_at": NOW,
                "updated_block": i,
            }
            for i in range(1, 6)
        ],
        PledgeMarginCallRow: [
            {
                # two calls in some blocks (the log index breaks the tie); the holder borrowed on the odd pledges
                "block_number": 100 + i // 2,
                "log_index": i % 2,
                "tx_hash": f"0x{i:064x}",
                "block_timestamp": NOW + i,
                "pledge_id": i % 5 + 1,
                "receipt_id": BIG + i,
                "borrower": HOLDER if (i % 5 + 1) % 2 else OTHER,
                "financier": FINANCIER,
                "principal": 500_000,
                "valuation": 600_000 - i,
                "maintenance_ratio_bps": 8_000,
            }
            for i in range(1, 13)
        ],
        EventRow: [
            {
                "block_number": block,
                "log_index": log,
                "block_hash": f"0x{block:064x}",
                "block_timestamp": NOW + block,
                "tx_hash": f"0x{block * 10 + log:064x}",
                "tx_index": 0,
                "contract": "receivables",
                "address": CORE,
                "name": "TransferValue",
                "args": {"_value": block * 10 + log},
            }
            for block in range(1, 11)
            for log in range(block % 3 + 1)
        ],
    }
    with engine.begin() as connection:
        for table, values in rows.items():
            connection.execute(insert(table), values)
    keys = {}
    with Session(engine) as session, session.begin():
        for n, (who, role) in enumerate(ROLES.items(), start=2):
            session.add(
                ParticipantRecord(address=who, name=who, credit_code=synthetic_credit_code(n), roles=[role.role_name])
            )
            session.flush()
            keys[who] = f"scf_list-paging-test-{n:030d}"
            session.add(ApiKeyRecord(participant=who, key_hash=hash_api_key(keys[who]), prefix=keys[who][:12]))
    return keys


def _client(engine: Engine) -> TestClient:
    app = create_app()
    app.state.ledger = IndexOnlyService(make_sessionmaker(engine))
    return TestClient(app)  # no `with`: the lifespan (chain, pipeline, indexer) does not run


@pytest.fixture(scope="module")
def index(database_url: str) -> Iterator[Index]:
    upgrade(database_url)
    engine = make_engine(database_url)
    keys = _fill(engine)
    yield Index(_client(engine), engine, keys)
    engine.dispose()


def _identity(item: dict[str, Any]) -> Any:
    return item["id"] if "id" in item else (item["block_number"], item["log_index"])


def _expected_ids(index: Index, path: str, who: str) -> list[Any]:
    """The list in one page by number (every list here is shorter than 200)."""
    body = index.ok(path, who, size=200)
    assert body["next"] is None and body["total"] == len(body["items"])
    return [_identity(item) for item in body["items"]]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# -- the rules ----------------------------------------------------------------------------------------------


def test_receivables_list_pages_with_a_cursor_that_never_repeats_or_skips(index: Index) -> None:
    """Pieces leave and enter the mover's list while it is walked: each piece it held throughout is listed once,
    in id order; one that entered further along than the cursor is listed, one that entered before is not."""
    held_before = [i for i in range(101, 131) if i % 10 != 5]
    entered: dict[str, list[int]] = {"ahead": [], "behind": []}

    def owner(piece_id: int, who: str | None) -> None:
        with index.engine.begin() as connection:
            connection.execute(update(PieceRow).where(PieceRow.id == piece_id).values(owner=who))

    def meanwhile(page: int) -> None:
        if page == 1:  # the first page ends at 106: a piece listed and one not yet listed leave
            owner(102, OTHER)
            owner(118, OTHER)
            owner(3, MOVER)  # pieces entering behind the cursor: not on this walk's pages
            owner(57, MOVER)
            entered["behind"] += [3, 57]
        if page == 3:  # a new piece: the largest id yet, so ahead of the cursor
            with index.engine.begin() as connection:
                connection.execute(insert(PieceRow), [{**_piece(200), "owner": MOVER}])
            entered["ahead"].append(200)

    try:
        seen = [item["id"] for item in index.walk("/receivables", MOVER, size=5, between=meanwhile)]
        assert seen == sorted(set(seen)), "a piece was listed twice or out of order"
        held_throughout = set(held_before) - {102, 118}
        assert held_throughout <= set(seen), f"skipped: {sorted(held_throughout - set(seen))}"
        assert 118 not in seen  # it left before the walk reached it
        assert set(entered["ahead"]) <= set(seen) and not set(entered["behind"]) & set(seen)
    finally:
        owner(102, MOVER)
        owner(118, MOVER)
        owner(3, OTHER)
        owner(57, OTHER)
        with index.engine.begin() as connection:
            connection.execute(delete(PieceRow).where(PieceRow.id == 200))


def _piece(piece_id: int) -> dict[str, Any]:
    return {
        "id": piece_id,
        "slot_id": 1,
        "owner": None,
        "value": 1_000,
        "checkpoint": 0,
        "parent_id": None,
        "root_id": piece_id,
        "depth": 0,
        "path": str(piece_id),
        "frozen": False,
        "open_request_id": None,
        "burnt": False,
        "created_at": NOW + piece_id,
        "updated_block": piece_id,
    }


#: (path, caller): every paged list, as a caller who sees everything and as a party, with a filter.
LISTS = (
    ("/receivables", HOLDER),
    ("/invoices", REGULATOR),
    ("/invoices", HOLDER),
    ("/invoices?state=confirmed", HOLDER),
    ("/financing-requests", REGULATOR),
    ("/financing-requests", FINANCIER),
    ("/financing-requests?state=requested", HOLDER),
    ("/warehouse-receipts", REGULATOR),
    ("/warehouse-receipts", HOLDER),
    ("/warehouse-receipts", FINANCIER),
    ("/pledges", REGULATOR),
    ("/pledges", HOLDER),
    ("/audit/events", REGULATOR),
    ("/participants", REGULATOR),
    ("/participants", HOLDER),
    ("/margin-calls", REGULATOR),
    ("/margin-calls", HOLDER),
    ("/margin-calls", FINANCIER),
)


@pytest.mark.parametrize(("path", "who"), LISTS)
def test_every_paged_list_by_cursor_or_by_page_number_lists_each_item_once_in_its_order(
    index: Index, path: str, who: str
) -> None:
    expected = _expected_ids(index, path, who)
    assert expected and len(set(expected)) == len(expected)
    by_cursor = [_identity(item) for item in index.walk(path, who, size=3)]
    assert by_cursor == expected
    by_number = []
    for page in range(1, len(expected) // 3 + 2):
        body = index.ok(path, who, size=3, page=page)
        assert body["page"] == page and body["total"] == len(expected)
        assert (body["next"] is None) == (page * 3 >= len(expected))
        by_number += [_identity(item) for item in body["items"]]
    assert by_number == expected


def test_margin_calls_are_listed_to_the_borrower_and_the_lender_of_their_pledge(index: Index) -> None:
    calls = {i: (100 + i // 2, i % 2) for i in range(1, 13)}
    holders = [calls[i] for i in range(1, 13) if (i % 5 + 1) % 2]
    assert _expected_ids(index, "/margin-calls", HOLDER) == sorted(holders, reverse=True)
    assert _expected_ids(index, "/margin-calls", FINANCIER) == sorted(calls.values(), reverse=True)
    assert index.ok("/margin-calls", WAREHOUSE)["items"] == []


def test_a_list_seen_as_either_party_lists_an_invoice_of_both_sides_once(index: Index) -> None:
    """Invoice 7 is sold by the holder to itself: both of the list's sides find it, the list shows it once."""
    ids = _expected_ids(index, "/invoices", HOLDER)
    sold, billed = {i for i in range(1, 41) if i % 2}, {7, 10, 11, 12, 13}
    assert ids == sorted(sold | billed, reverse=True)


def test_invoices_filter_by_counterparty_and_due_date_among_those_the_caller_may_see(index: Index) -> None:
    def day(timestamp: int) -> str:
        return datetime.fromtimestamp(timestamp, UTC).date().isoformat()

    rows = [_invoice(i) for i in range(1, 41)]
    seen = [r for r in rows if HOLDER in (r["seller"], r["buyer"])]
    due_from, due_to = day(rows[9]["due_date"]), day(rows[19]["due_date"])
    listed = index.ok("/invoices", HOLDER, counterparty=CORE, due_from=due_from, due_to=due_to, size=100)["items"]
    expected = [r["id"] for r in seen if CORE in (r["seller"], r["buyer"]) and due_from <= day(r["due_date"]) <= due_to]
    assert [item["id"] for item in listed] == sorted(expected, reverse=True) and expected
    assert index.get("/invoices", HOLDER, counterparty="0x12").status_code == 422
    assert index.get("/invoices", HOLDER, due_from="2027-02-30").status_code == 422
    requests = index.ok("/financing-requests", HOLDER, counterparty=FINANCIER, size=100)["items"]
    assert {r["id"] for r in requests} == {i for i in range(1, 21) if i % 2 and i % 4}


def test_a_list_counts_its_total_by_page_number_or_when_asked_and_never_otherwise(index: Index) -> None:
    holder_pieces = len([i for i in range(1, 61) if i % 3 and i % 10 != 5])
    first = index.ok("/receivables", HOLDER, size=4)
    assert first["total"] == holder_pieces and first["page"] == 1 and first["next"]
    assert index.ok("/receivables", HOLDER, size=4, total="false")["total"] is None
    by_cursor = index.ok("/receivables", HOLDER, size=4, after=first["next"])
    assert by_cursor["total"] is None and by_cursor["page"] is None
    assert index.ok("/receivables", HOLDER, size=4, after=first["next"], total="true")["total"] == holder_pieces
    assert [item["id"] for item in first["items"]] == [1, 2, 4, 7]
    assert [item["id"] for item in by_cursor["items"]] == [8, 10, 11, 13]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/receivables", {"page": 2, "after": encode_cursor([4])}),
        ("/receivables", {"page": 1, "after": encode_cursor([4])}),
        ("/receivables", {"after": "%%%not base64"}),
        ("/receivables", {"after": _cursor({"id": 4})}),
        ("/receivables", {"after": _cursor([])}),
        ("/receivables", {"after": _cursor([-1])}),
        ("/receivables", {"after": _cursor([True])}),
        ("/receivables", {"after": _cursor([4.5])}),
        ("/receivables", {"after": _cursor([4, 1])}),
        ("/receivables", {"after": _cursor([2**63])}),
        ("/audit/events", {"after": _cursor([4])}),
        ("/warehouse-receipts", {"after": _cursor([NOW, 2**256])}),
        ("/participants", {"after": _cursor([NOW * 10**6, 2**160])}),
        ("/participants", {"after": _cursor([2**70, 1])}),
        ("/participants", {"after": _cursor([NOW * 10**6])}),
        ("/receivables", {"after": ""}),
        ("/receivables", {"after": "A" * 257}),
    ],
)
def test_a_cursor_with_a_page_number_or_not_given_by_the_list_is_refused_as_invalid(
    index: Index, path: str, params: dict[str, Any]
) -> None:
    who = REGULATOR if path == "/audit/events" else HOLDER
    response = index.get(path, who, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:scf:problem:validation"


def test_a_receipt_cursor_holds_ids_wider_than_64_bits(index: Index) -> None:
    body = index.ok("/warehouse-receipts", REGULATOR, size=200)
    last = body["items"][3]
    wide = int(last["id"])
    assert wide > 2**64
    after = index.ok("/warehouse-receipts", REGULATOR, size=200, after=encode_cursor([last["issued_at"], wide]))
    assert [item["id"] for item in after["items"]] == [item["id"] for item in body["items"][4:]]


def test_every_paged_route_documents_its_paging_in_the_openapi_description(index: Index) -> None:
    document = index.http.get("/openapi.json").json()
    for path in (
        "/receivables",
        "/invoices",
        "/financing-requests",
        "/warehouse-receipts",
        "/pledges",
        "/audit/events",
        "/participants",
        "/margin-calls",
        "/pledges/{pledge_id}/margin-calls",
    ):
        operation = document["paths"][path]["get"]
        assert "**Paging.**" in operation["description"], path
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert {"page", "size", "after", "total"} <= names, path
        for parameter in operation["parameters"]:
            if parameter["name"] in ("page", "size", "after", "total"):
                assert parameter.get("description"), (path, parameter["name"])


def test_participants_page_in_onboarding_order_with_ties_broken_and_their_status_from_the_index(
    index: Index,
) -> None:
    """Participants onboarded later come later, four onboarded in the same microsecond are each listed once;
    status and freeze come from the index, `pending` for one not indexed yet; anyone but the operator and the
    regulator sees itself alone."""
    onboarded = datetime(2031, 1, 1, tzinfo=UTC)
    late = {address(0xB000 + i): onboarded + timedelta(seconds=10 - i) for i in range(3)}  # inserted newest first
    tied = {address(0xB100 + i): onboarded for i in range(4)}
    added = {**late, **tied}
    with Session(index.engine) as session, session.begin():
        for n, (who, at) in enumerate(added.items(), start=500):
            session.add(
                ParticipantRecord(
                    address=who, name=who, credit_code=synthetic_credit_code(n), roles=["supplier"], created_at=at
                )
            )
    with index.engine.begin() as connection:
        connection.execute(
            insert(ParticipantRow),
            [
                {
                    "account": who,
                    "identity_hash": f"0x{n:064x}",
                    "status": ParticipantStatus.SUSPENDED if n % 2 else ParticipantStatus.ACTIVE,
                    "frozen": n == 2,
                    "freeze_reason": None,
                    "registered_at": NOW,
                    "registered_by": REGULATOR,
                    "updated_block": n,
                }
                for n, who in enumerate(late)
            ],
        )
    try:
        walked = index.walk("/participants", REGULATOR, size=2)
        ids = [item["id"] for item in walked]
        assert ids == _expected_ids(index, "/participants", REGULATOR)
        assert len(ids) == len(set(ids)) == len(ROLES) + len(added)
        assert ids[: len(ROLES)] == list(ROLES), "the earlier participants come first"
        assert set(ids[len(ROLES) : len(ROLES) + len(tied)]) == set(tied)
        assert ids[len(ROLES) + len(tied) :] == sorted(late, key=late.__getitem__)
        by_id = {item["id"]: item for item in walked}
        assert [(by_id[who]["status"], by_id[who]["frozen"]) for who in late] == [
            ("active", False),
            ("suspended", False),
            ("active", True),
        ]
        assert {by_id[who]["status"] for who in tied} == {"pending"}
        mine = index.ok("/participants", HOLDER)
        assert [item["id"] for item in mine["items"]] == [HOLDER] and mine["total"] == 1 and mine["next"] is None
    finally:
        with index.engine.begin() as connection:
            connection.execute(delete(ParticipantRow).where(ParticipantRow.account.in_(list(late))))
            connection.execute(delete(ParticipantRecord).where(ParticipantRecord.address.in_(list(added))))


# -- the cost, and the index behind it (SQLite files of their own) ----------------------------------------------


def test_the_migration_indexes_pieces_by_owner_burnt_and_id_as_the_model_does(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"

    def piece_indexes() -> dict[str, list[str]]:
        engine = make_engine(url)
        found = {ix["name"]: [str(c) for c in ix["column_names"]] for ix in inspect(engine).get_indexes("pieces")}
        engine.dispose()
        return {name: columns for name, columns in found.items() if name and "owner" in columns}

    upgrade(url)
    assert piece_indexes() == {"ix_pieces_owner_burnt_id": ["owner", "burnt", "id"]}
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [d for d in differences if "pieces" in repr(d)] == []
    downgrade(url, "0004_audit_log")
    assert piece_indexes() == {"ix_pieces_owner_id": ["owner", "id"]}
    upgrade(url)
    assert piece_indexes() == {"ix_pieces_owner_burnt_id": ["owner", "burnt", "id"]}


def test_the_migration_indexes_participants_in_onboarding_order_as_the_model_does(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"

    def participant_indexes() -> dict[str, list[str]]:
        engine = make_engine(url)
        found = {
            ix["name"]: [str(c) for c in ix["column_names"]] for ix in inspect(engine).get_indexes("api_participants")
        }
        engine.dispose()
        return {str(name): columns for name, columns in found.items()}

    upgrade(url)
    assert participant_indexes() == {"ix_api_participants_created_at_address": ["created_at", "address"]}
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [d for d in differences if "api_participants" in repr(d)] == []
    downgrade(url, "0005_piece_owner_burnt_index")
    assert participant_indexes() == {}


def _work_of_requests(tmp_path: Path, pieces: int) -> dict[str, int]:
    """SQLite virtual-machine steps each request takes with ``pieces`` pieces and a fifth as many invoices, half
    of each the holder's."""
    url = f"sqlite:///{tmp_path / f'work-{pieces}.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    keys = _fill(engine)
    with engine.begin() as connection:
        for start in range(1_000, 1_000 + pieces, 5_000):
            stop = min(1_000 + pieces, start + 5_000)
            connection.execute(
                insert(PieceRow), [{**_piece(i), "owner": HOLDER} if i % 2 else _piece(i) for i in range(start, stop)]
            )
        connection.execute(insert(InvoiceRow), [_invoice(i) for i in range(1_000, 1_000 + pieces // 5)])
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    @event.listens_for(engine, "checkout")
    def _count_steps(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_progress_handler(step, 1)

    index = Index(_client(engine), engine, keys)
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "first page": ("/receivables", {"size": 50, "total": "false"}),
        "page after the middle": ("/receivables", {"size": 50, "after": encode_cursor([1_000 + pieces // 2])}),
        "first page and its count": ("/receivables", {"size": 50}),
        # the invoices the holder sold or is billed for: two sides, each read from its own index
        "first page of invoices": ("/invoices", {"size": 50, "total": "false"}),
        "invoices after the middle": ("/invoices", {"size": 50, "after": encode_cursor([1_000 + pieces // 10])}),
    }
    work = {}
    for name, (path, params) in requests.items():
        index.ok(path, HOLDER, **params)  # warm: prepared statements, the key's lookup
        steps[0] = 0
        index.ok(path, HOLDER, **params)
        work[name] = steps[0]
    engine.dispose()
    return work


def test_a_cursor_page_does_the_same_work_at_1_000_and_20_000_pieces(tmp_path: Path) -> None:
    """Work counted in SQLite's virtual-machine steps, which unlike time do not depend on the machine's load."""
    small, large = _work_of_requests(tmp_path, 1_000), _work_of_requests(tmp_path, 20_000)
    for name in ("first page", "page after the middle", "first page of invoices", "invoices after the middle"):
        assert large[name] <= small[name] * 1.05, (name, small, large)
    # and the measure sees growth where there is some: the count reads every one of the holder's pieces
    assert large["first page and its count"] > 5 * small["first page and its count"], (small, large)


def test_a_portfolio_sums_the_callers_live_pieces_by_obligor_and_by_month_of_maturity(index: Index) -> None:
    invoices = {i: _invoice(i) for i in range(1, 41)}
    held = [i for i in (*range(1, 61), *range(101, 131)) if i % 10 != 5 and i <= 100 and i % 3]
    by_firm: dict[str, list[int]] = {}
    by_month: dict[str, list[int]] = {}
    for piece in held:
        invoice = invoices[(piece - 1) % 40 + 1]
        month = datetime.fromtimestamp(invoice["due_date"], UTC).strftime("%Y-%m")
        for totals, key in ((by_firm, invoice["buyer"]), (by_month, month)):
            line = totals.setdefault(key, [0, 0])
            line[0], line[1] = line[0] + 1, line[1] + 1_000
    portfolio = index.ok("/receivables/portfolio", HOLDER)
    assert portfolio["pieces"] == len(held) and portfolio["value"] == 1_000 * len(held)
    assert {line["core_firm"]: [line["pieces"], line["value"]] for line in portfolio["by_core_firm"]} == by_firm
    assert [line["value"] for line in portfolio["by_core_firm"]] == sorted(
        (v for _, v in by_firm.values()), reverse=True
    )
    assert [(line["month"], [line["pieces"], line["value"]]) for line in portfolio["by_month"]] == sorted(
        by_month.items()
    )
    assert index.ok("/receivables/portfolio", WAREHOUSE) == {
        "holder": WAREHOUSE, "currency": "CNY", "pieces": 0, "value": 0, "by_core_firm": [], "by_month": []
    }  # fmt: skip
