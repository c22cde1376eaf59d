"""The event index: rebuilt from the chain it equals the live index, it agrees with the contracts' views, it
follows a rollback of the chain, it reads a block twice without changing anything, and it keeps amounts
beyond 64 bits exact. Every test runs on SQLite and, when a server answers at 127.0.0.1:5432, on PostgreSQL
(one throwaway schema per database, dropped afterwards).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from sqlalchemy import Engine, create_engine, func, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_engine, make_sessionmaker
from ledger.errors import ContractRevert, abi_type
from ledger.index import Indexer, IndexMismatchError, RawLog, snapshot_tables
from ledger.index.errors import LogSourceError
from ledger.index.models import (
    INDEX_TABLES,
    CreditLineRow,
    DepositTransferRow,
    EventRow,
    FinancingRequestRow,
    IndexCheckpointRow,
    InvoiceRow,
    LedgerParameterRow,
    ParticipantRoleRow,
    ParticipantRow,
    PieceAllowanceRow,
    PieceRow,
    PledgeRow,
    WarehouseReceiptRow,
)
from ledger.index.projections import RAW_ONLY_EVENTS, projected_events
from ledger.index.source import BlockHeader, Web3LogSource
from ledger.migrations import downgrade, upgrade
from ledger.models import InvoiceState, PledgeState, RequestState
from ledger.tooling.sandbox import Sandbox, role_id
from tests.contracts.support import (
    ACCEPT_ANY,
    DAY,
    NO_REVIEW,
    YUAN,
    confirmed_piece,
    grant_credit,
    register_invoice,
    split,
)

ZERO = "0x" + "00" * 20
POSTGRES = ("127.0.0.1", 5432)
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------------------


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(POSTGRES, timeout=1):
            pass
    except OSError:
        return False
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not _postgres_answers():
        pytest.skip("no PostgreSQL answers at 127.0.0.1:5432 (database `test`, user postgres): SQLite only")
    return str(request.param)


Database = Callable[[], sessionmaker[Session]]


@pytest.fixture
def new_database(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """Makes empty index databases, migrated to head, of the kind under test: a SQLite file each, or a
    PostgreSQL schema each (dropped at the end)."""
    engines: list[Engine] = []
    schemas: list[str] = []

    def make() -> sessionmaker[Session]:
        if database_kind == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('index') / 'index.sqlite3'}"
        else:
            schema = f"scf_index_test_{uuid.uuid4().hex[:12]}"
            admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            schemas.append(schema)
            url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        upgrade(url)
        engine = make_engine(url)
        engines.append(engine)
        return make_sessionmaker(engine)

    yield make
    for engine in engines:
        engine.dispose()
    if schemas:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for schema in schemas:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# ---------------------------------------------------------------------------------------------------------
# The chain and a scenario
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox.create()


@pytest.fixture
def ledger(sandbox: Sandbox) -> Iterator[Sandbox]:
    with sandbox.isolated():
        yield sandbox


def make_indexer(sb: Sandbox, sessions: sessionmaker[Session], **options: Any) -> Indexer:
    contracts = {name: contract.address for name, contract in sb.contracts.items()}
    abis = {name: contract.abi for name, contract in sb.contracts.items()}
    return Indexer(sb.w3, contracts, abis, sessions, **options)


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[dict[str, Any]]]:
    with sessions() as session:
        return snapshot_tables(session)


def reason(decision: str) -> bytes:
    """The bytes32 reference of a regulator's or operator's decision."""
    return keccak(text=decision)


class Scenario:
    """A receivable and warehouse story in steps, with the ids it produced, for the tests to index between
    steps."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.r = sb.contracts["receivables"]
        self.token = sb.contracts["token"]
        self.registry = sb.contracts["registry"]
        self.receipts = sb.contracts.get("receipts")
        self.ids: dict[str, int] = {}

    def request(self, piece: int, amount: int, holder: str, financier: str) -> int:
        receipt = self.sb.send(
            self.r.functions.requestFinancing(piece, amount, self.sb.address(financier), *ACCEPT_ANY), holder
        )
        return int(self.sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"])

    def first_tier(self) -> None:
        """Invoices confirmed and rejected, pieces split down the tiers, cash moving."""
        sb, r = self.sb, self.r
        grant_credit(sb, "automaker", grant=50_000_000 * YUAN, grantor="bank")
        grant_credit(sb, "automaker", grant=20_000_000 * YUAN, grantor="factor")
        slot, piece = confirmed_piece(sb, seller="seatmaker", amount=1_000_000 * YUAN)
        self.ids.update(slot=slot, root=piece)
        self.ids["tier2"] = split(sb, piece, "chemicals", 300_000 * YUAN, "seatmaker")
        self.ids["tier3"] = split(sb, self.ids["tier2"], "trader", 100_000 * YUAN, "chemicals")
        rejected = register_invoice(sb, seller="chemicals", amount=5_000 * YUAN)
        sb.send(r.functions.rejectInvoice(rejected, reason("not delivered")), "automaker")
        sb.send(self.token.functions.transfer(sb.address("chemicals"), 12_345), "seatmaker")
        self.value_allowances()

    def value_allowances(self) -> None:
        """ERC-3525 value allowances given, spent and revoked. The later steps end some of them: tier 3 is
        financed whole (its allowances lapse with the transfer), tier 2 is redeemed away (they lapse with the
        burn); the root's stays."""
        sb = self.sb
        approve = self.r.get_function_by_signature("approve(uint256,address,uint256)")
        split_value = self.r.get_function_by_signature("transferFrom(uint256,address,uint256)")
        sb.send(approve(self.ids["tier3"], sb.address("bank"), 20_000 * YUAN), "trader")
        sb.send(approve(self.ids["tier3"], sb.address("steel"), 2**256 - 1), "trader")
        sb.send(approve(self.ids["tier2"], sb.address("factor"), 10_000 * YUAN), "chemicals")
        sb.send(split_value(self.ids["tier2"], sb.address("trader"), 4_000 * YUAN), "factor")
        sb.send(approve(self.ids["root"], sb.address("trader"), 5_000 * YUAN), "seatmaker")
        sb.send(approve(self.ids["root"], sb.address("trader"), 0), "seatmaker")
        sb.send(approve(self.ids["root"], sb.address("steel"), 7_000 * YUAN), "seatmaker")

    def financing(self) -> None:
        """Requests funded (split and whole), cancelled and declined; freezes, suspensions, cash issued."""
        sb, r = self.sb, self.r
        funded_split = self.request(self.ids["root"], 200_000 * YUAN, "seatmaker", "bank")
        sb.send(r.functions.approveFinancing(funded_split, 500, 1_000 * YUAN, 365, NO_REVIEW), "bank")
        sb.send(r.functions.fundFinancing(funded_split), "bank")
        funded_whole = self.request(self.ids["tier3"], 100_000 * YUAN, "trader", "factor")
        sb.send(r.functions.approveFinancing(funded_whole, 700, 0, 360, NO_REVIEW), "factor")
        sb.send(r.functions.fundFinancing(funded_whole), "factor")
        # The bank's registration, recorded after both fundings (the obligation is the bank's from now on).
        number = b"04539487000452458806".ljust(32, b"\0")
        sb.send(r.functions.recordFinancingRegistration(funded_split, number, sb.now() - DAY), "bank")
        cancelled = self.request(self.ids["tier2"], 50_000 * YUAN, "chemicals", "bank")
        sb.send(r.functions.cancelFinancing(cancelled), "chemicals")
        declined = self.request(self.ids["tier2"], 60_000 * YUAN, "chemicals", "factor")
        sb.send(r.functions.approveFinancing(declined, 300, 0, 365, NO_REVIEW), "factor")
        sb.send(r.functions.declineFinancing(declined), "factor")
        self.ids["open_request"] = self.request(self.ids["root"], 10_000 * YUAN, "seatmaker", "factor")

        sb.send(self.registry.functions.freeze(sb.address("trader"), reason("court order 7")), "regulator")
        sb.send(self.registry.functions.unfreeze(sb.address("trader")), "regulator")
        sb.send(self.registry.functions.freeze(sb.address("warehouse2"), reason("inspection")), "regulator")
        sb.send(self.registry.functions.suspend(sb.address("truckmaker")), "operator")
        sb.send(self.registry.functions.reinstate(sb.address("truckmaker")), "operator")
        sb.send(self.registry.functions.suspend(sb.address("chemicals")), "operator")
        sb.send(self.registry.functions.reinstate(sb.address("chemicals")), "operator")
        sb.send(self.registry.functions.updateIdentity(sb.address("steel"), reason("new licence")), "operator")
        sb.send(r.functions.freezePiece(self.ids["tier2"], reason("dispute")), "regulator")
        sb.send(self.token.functions.mint(sb.address("trader"), 777_777, reason("bank credit 1")), "agent")
        sb.send(self.token.functions.burn(sb.address("trader"), 111_111, reason("bank debit 1")), "agent")
        sb.send(r.functions.setParameters(400 * DAY, 20 * DAY, 100 * DAY), "operator")

    def settlement(self) -> None:
        """Value moved between pieces, whole pieces moved, partial and full repayment, pro-rata redemption."""
        sb, r = self.sb, self.r
        slot2, piece2 = confirmed_piece(sb, seller="seatmaker", amount=400_000 * YUAN)
        other = split(sb, piece2, "chemicals", 100_000 * YUAN, "seatmaker")
        value_transfer = r.get_function_by_signature("transferFrom(uint256,uint256,uint256)")
        sb.send(value_transfer(piece2, other, 50_000 * YUAN), "seatmaker")
        whole_transfer = r.get_function_by_signature("transferFrom(address,address,uint256)")
        approve = r.get_function_by_signature("approve(uint256,address,uint256)")
        sb.send(approve(other, sb.address("bank"), 1_000 * YUAN), "chemicals")
        sb.send(whole_transfer(sb.address("chemicals"), sb.address("trader"), other), "chemicals")
        sb.send(approve(piece2, sb.address("bank"), 2**256 - 1), "seatmaker")
        self.ids.update(slot2=slot2, piece2=piece2, other=other)

        sb.send(r.functions.unfreezePiece(self.ids["tier2"]), "regulator")
        sb.send(r.functions.repay(self.ids["slot"], 400_000 * YUAN), "automaker")
        sb.send(r.functions.redeem(self.ids["tier2"]), "chemicals")
        bank_piece = self.piece_of("bank", self.ids["slot"])
        sb.send(r.functions.redeem(bank_piece), "bank")
        sb.send(r.functions.repay(self.ids["slot"], 600_000 * YUAN), "automaker")
        for holder in ("bank", "chemicals", "factor"):
            for piece in self.pieces_of(holder, self.ids["slot"]):
                sb.send(r.functions.redeem(piece), holder)

    def warehouse(self) -> None:
        """Receipts issued, revalued, pledged, repaid, margin-called, released, declined, redeemed, moved."""
        if self.receipts is None:
            return
        from tests.contracts.warehouse_fixtures import fund_pledge, issue_receipt, request_pledge

        sb, w = self.sb, self.receipts
        sb.send(w.functions.appointOracle(sb.address("trader")), "warehouse")
        pledged = issue_receipt(sb)
        pledge = request_pledge(sb, pledged)
        fund_pledge(sb, pledge)
        sb.send(
            w.functions.recordPledgeRegistration(pledge, b"04539487000452458807".ljust(32, b"\0"), sb.now()), "bank"
        )
        sb.send(w.functions.repayPledge(pledge, 100_000 * YUAN), "steel")
        sb.send(w.functions.revalueReceipt(pledged, 2_000_000 * YUAN, reason("price fell")), "warehouse")
        sb.send(w.functions.repayPledge(pledge, 2**256 - 1), "steel")
        redeemed = issue_receipt(sb)
        sb.send(w.functions.requestRedemption(redeemed), "steel")
        sb.send(w.functions.withdrawRedemption(redeemed), "steel")
        sb.send(w.functions.requestRedemption(redeemed), "steel")
        sb.send(w.functions.confirmRedemption(redeemed), "warehouse")
        declined = issue_receipt(sb)
        sb.send(w.functions.declinePledge(request_pledge(sb, declined)), "bank")
        sb.send(w.functions.cancelPledge(request_pledge(sb, declined, financier="factor")), "steel")
        sb.send(w.functions.appointReceiptOracle(declined, sb.address("trader")), "warehouse")
        sb.send(w.functions.updateGoodsStatus(declined, 1, reason("water damage")), "trader")
        sb.send(w.functions.freezeReceipt(pledged, reason("audit")), "regulator")
        sb.send(w.functions.unfreezeReceipt(pledged), "regulator")
        sb.send(w.functions.transferFrom(sb.address("steel"), sb.address("trader"), pledged), "steel")
        sb.send(w.functions.setMaintenanceRatio(7_500), "operator")
        sb.send(w.functions.setFinancierAdvanceRate(sb.address("factor"), 6_000), "operator")
        sb.send(w.functions.appointOracle(ZERO), "warehouse")
        self.ids["enforced_receipt"] = issue_receipt(sb)
        self.ids["enforced_pledge"] = request_pledge(sb, self.ids["enforced_receipt"], due_in=5 * DAY)
        fund_pledge(sb, self.ids["enforced_pledge"])

    def default(self) -> None:
        """Time runs out: an obligation defaults (then is repaid) and a pledge is enforced."""
        sb, r = self.sb, self.r
        slot, _piece = confirmed_piece(sb, seller="trader", amount=70_000 * YUAN, due_in=10 * DAY)
        sb.travel_to(sb.now() + 40 * DAY)
        sb.send(r.functions.markDefaulted(slot, 0), "operator")
        sb.send(r.functions.repay(slot, 30_000 * YUAN), "automaker")
        if self.receipts is not None:
            sb.send(self.receipts.functions.enforcePledge(self.ids["enforced_pledge"]), "bank")

    def piece_of(self, owner: str, slot: int) -> int:
        return self.pieces_of(owner, slot)[0]

    def pieces_of(self, owner: str, slot: int) -> list[int]:
        address = self.sb.address(owner)
        found = []
        for piece in itertools.count(1):
            try:
                owner_, slot_, *_ = self.sb.read("receivables", "piece", piece)
            except Exception:
                break
            if owner_ == address and slot_ == slot:
                found.append(piece)
        return found

    def steps(self) -> list[Callable[[], None]]:
        return [self.first_tier, self.financing, self.settlement, self.warehouse, self.default]


# ---------------------------------------------------------------------------------------------------------
# Rebuilt equals live
# ---------------------------------------------------------------------------------------------------------


def test_every_event_of_the_contracts_is_projected_or_kept_raw_on_purpose(sandbox: Sandbox) -> None:
    handled = projected_events() | RAW_ONLY_EVENTS
    for name, contract in sandbox.contracts.items():
        events = {entry["name"] for entry in contract.abi if entry["type"] == "event"}
        assert {(name, event) for event in events} <= handled, f"{name}: an event nobody indexes"


def test_index_rebuilt_from_block_zero_equals_the_live_index(ledger: Sandbox, new_database: Database) -> None:
    live_db = new_database()
    live = make_indexer(ledger, live_db, page_size=7)
    scenario = Scenario(ledger)
    assert live.sync_once() > 0
    for step in scenario.steps():
        step()
        live.sync_once()
    live_tables = snapshot(live_db)
    for table in ("events", "participants", "invoices", "pieces", "financing_requests", "repayments"):
        assert live_tables[table], f"the scenario left {table} empty"
    if "receipts" in ledger.contracts:
        assert live_tables["pledges"] and live_tables["pledge_repayments"] and live_tables["pledge_margin_calls"]

    rebuilt_db = new_database()
    rebuilt = make_indexer(ledger, rebuilt_db)
    assert rebuilt.sync_once() == len(live_tables["events"])
    assert snapshot(rebuilt_db) == live_tables

    assert live.rebuild_projections() == len(live_tables["events"])
    assert snapshot(live_db) == live_tables
    assert live.rebuild() == len(live_tables["events"])
    assert snapshot(live_db) == live_tables


def test_index_agrees_with_the_contracts_views(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    indexer = make_indexer(ledger, db)
    scenario = Scenario(ledger)
    for step in scenario.steps():
        step()
    indexer.sync_once()
    sb = ledger
    with db() as session:
        invoices = session.scalars(select(InvoiceRow).order_by(InvoiceRow.id)).all()
        assert invoices
        for inv in invoices:
            seller, due, state, buyer, confirmed_at, amount, repaid, redeemed, document = sb.read(
                "receivables", "invoice", inv.id
            )
            assert (inv.seller, inv.due_date, inv.state, inv.buyer) == (seller, due, state, buyer)
            assert (inv.confirmed_at or 0, inv.amount, inv.repaid, inv.redeemed) == (
                confirmed_at,
                amount,
                repaid,
                redeemed,
            )
            assert inv.document_hash == "0x" + document.hex()
        assert {inv.state for inv in invoices} >= {
            InvoiceState.CONFIRMED,
            InvoiceState.REJECTED,
            InvoiceState.PAID,
            InvoiceState.DEFAULTED,
        }

        pieces = session.scalars(select(PieceRow).order_by(PieceRow.id)).all()
        assert [p.id for p in pieces] == list(range(1, len(pieces) + 1))
        with pytest.raises(ContractRevert) as missing:
            sb.call(sb.contracts["receivables"].functions.piece(len(pieces) + 1))
        assert missing.value.name == "ReceivablesNonexistentPiece"
        for p in pieces:
            owner, slot, parent, value, checkpoint, open_request, flags = sb.read("receivables", "piece", p.id)
            assert (p.owner or ZERO, p.slot_id, p.parent_id or 0, p.value) == (owner, slot, parent, value)
            assert (p.checkpoint, p.open_request_id or 0, p.frozen) == (checkpoint, open_request, bool(flags & 1))
            assert p.burnt == (owner == ZERO)
            path = [int(i) for i in p.path.split("/")]
            assert path == list(sb.read("receivables", "pathOf", p.id))
            assert (p.root_id, p.depth) == (path[0], len(path) - 1)
        assert any(p.burnt for p in pieces) and any(p.open_request_id for p in pieces)

        # ERC-3525 value allowances rebuilt from ApprovalValue events equal allowance(), every piece and every
        # member of the cast (the issue: a whole-piece transfer or a burn used to end them without an event).
        allowances = {(a.piece_id, a.operator): a.value for a in session.scalars(select(PieceAllowanceRow)).all()}
        allowance = sb.contracts["receivables"].get_function_by_signature("allowance(uint256,address)")
        for p in pieces:
            for name in sb.accounts:
                operator = sb.address(name)
                expected = 0 if p.burnt else allowance(p.id, operator).call()
                assert allowances.get((p.id, operator), 0) == expected, f"allowance of {name} on piece {p.id}"
        assert set(allowances.values()) == {7_000 * YUAN, 2**256 - 1}, "the scenario left other allowances"
        assert 0 not in allowances.values()

        requests = session.scalars(select(FinancingRequestRow)).all()
        assert {r.state for r in requests} == {
            RequestState.FUNDED,
            RequestState.CANCELLED,
            RequestState.DECLINED,
            RequestState.REQUESTED,
        }
        for r in requests:
            on_chain = sb.read("receivables", "financingRequest", r.id)
            assert on_chain == (
                r.holder,
                r.piece_id,
                r.state,
                r.discount_rate_bps or 0,
                r.day_count_basis or 0,
                r.financier,
                r.fee or 0,
                r.amount,
                r.price or 0,
                r.funded_piece_id or 0,
                r.max_discount_rate_bps,
                r.max_fee,
                bytes.fromhex(r.review[2:]) if r.review else bytes(32),
            )
            number, registered_at = sb.read("receivables", "financingRegistration", r.id)
            recorded = (r.registration_number or "").encode().ljust(32, b"\0"), r.registered_at or 0
            assert recorded == (bytes(number), registered_at)
        assert [r.registration_number for r in requests if r.registration_number] == ["04539487000452458806"]

        for name in sb.accounts:
            if name == "outsider":
                continue
            address = sb.address(name)
            row = session.get(ParticipantRow, address)
            assert row is not None
            identity, status, frozen, registered_at = sb.read("registry", "participant", address)
            assert (row.identity_hash, row.status, row.frozen, row.registered_at) == (
                "0x" + identity.hex(),
                status,
                frozen,
                registered_at,
            )
            roles = set(session.scalars(select(ParticipantRoleRow.role).where(ParticipantRoleRow.account == address)))
            for role in ("operator", "core-firm", "supplier", "financier", "warehouse", "regulator"):
                assert (role in roles) == sb.read("registry", "hasRole", role_id(role), address)

            received = session.scalar(
                select(func.coalesce(func.sum(DepositTransferRow.amount), 0)).where(
                    DepositTransferRow.recipient == address
                )
            )
            sent = session.scalar(
                select(func.coalesce(func.sum(DepositTransferRow.amount), 0)).where(
                    DepositTransferRow.sender == address
                )
            )
            assert int(received) - int(sent) == sb.balance(name), f"deposit balance of {name}"

        for core in ("automaker", "truckmaker"):
            line = sb.read("receivables", "creditLine", sb.address(core))
            credit = session.get(CreditLineRow, sb.address(core))
            indexed = (0, 0) if credit is None else (credit.credit_limit, credit.used)
            assert indexed == tuple(line), f"credit line of {core}"

        mints = session.scalars(select(DepositTransferRow).where(DepositTransferRow.sender.is_(None))).all()
        assert all(m.bank_reference and m.agent == sb.address("agent") for m in mints)

        parameters = {row.name: row.value for row in session.scalars(select(LedgerParameterRow))}
        assert parameters["receivables.max_tenor"] == sb.read("receivables", "maxTenor")
        assert parameters["receivables.grace_period"] == sb.read("receivables", "gracePeriod")

        if "receipts" in sb.contracts:
            receipts = session.scalars(select(WarehouseReceiptRow)).all()
            assert receipts
            for rc in receipts:
                warehouse, valuation, quantity, unit, valued_at, expiry, goods, state, frozen = sb.read(
                    "receipts", "receipt", rc.id
                )
                assert (rc.warehouse, rc.valuation, rc.quantity, rc.valued_at, rc.expiry) == (
                    warehouse,
                    valuation,
                    quantity,
                    valued_at,
                    expiry,
                )
                assert (rc.unit, rc.goods_status, rc.state, rc.frozen) == (
                    unit.rstrip(b"\0").decode(),
                    goods,
                    state,
                    frozen,
                )
                assert (rc.pledge_id or 0) == sb.read("receipts", "pledgeOf", rc.id)
                assert (rc.oracle or ZERO) == sb.read("receipts", "receiptOracle", rc.id)
                if rc.owner is None:
                    with pytest.raises(ContractRevert):  # burnt
                        sb.call(sb.contracts["receipts"].functions.ownerOf(rc.id))
                else:
                    assert rc.owner == sb.read("receipts", "ownerOf", rc.id)
            pledges = session.scalars(select(PledgeRow)).all()
            assert {p.state for p in pledges} == {
                PledgeState.RELEASED,
                PledgeState.DECLINED,
                PledgeState.CANCELLED,
                PledgeState.ENFORCED,
            }
            for pl in pledges:
                borrower, receipt_id, rate, state, financier, principal, interest, due, accrued = sb.read(
                    "receipts", "pledge", pl.id
                )
                assert (pl.borrower, pl.receipt_id, pl.rate_bps, pl.state, pl.financier) == (
                    borrower,
                    receipt_id,
                    rate,
                    state,
                    financier,
                )
                assert (pl.principal, pl.due_date, pl.accrued_from or 0) == (principal, due, accrued)
                if pl.state != PledgeState.ENFORCED:  # enforcement reports interest owed without storing it
                    assert pl.interest_due == interest
                number, registered_at = sb.read("receipts", "pledgeRegistration", pl.id)
                recorded = (pl.registration_number or "").encode().ljust(32, b"\0"), pl.registered_at or 0
                assert recorded == (bytes(number), registered_at)
            assert [p.registration_number for p in pledges if p.registration_number] == ["04539487000452458807"]
            assert parameters["receipts.maintenance_ratio_bps"] == sb.read("receipts", "maintenanceRatioBps")
            assert parameters["receipts.advance_rate_bps"] == sb.read("receipts", "defaultAdvanceRateBps")


# ---------------------------------------------------------------------------------------------------------
# Reorganisations and idempotency
# ---------------------------------------------------------------------------------------------------------


def test_index_follows_a_rollback_to_a_different_chain(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    indexer = make_indexer(ledger, db, page_size=3)
    scenario = Scenario(ledger)
    scenario.first_tier()
    indexer.sync_once()
    fork = ledger.snapshot()

    scenario.financing()  # the branch the chain will abandon
    indexer.sync_once()
    assert indexer.last_sync.reorgs == 0
    abandoned = snapshot(db)
    abandoned_height = ledger.w3.eth.block_number

    ledger.revert(fork)
    token = ledger.contracts["token"]
    # A different branch from the fork, longer than the abandoned one: the checkpoint's height now holds
    # another block.
    while ledger.w3.eth.block_number < abandoned_height + 2:
        ledger.send(token.functions.transfer(ledger.address("trader"), 1), "seatmaker")
    split(ledger, scenario.ids["root"], "trader", 1_000 * YUAN, "seatmaker")
    indexer.sync_once()
    assert indexer.last_sync.reorgs == 1

    fresh_db = new_database()
    make_indexer(ledger, fresh_db).sync_once()
    followed = snapshot(db)
    assert followed == snapshot(fresh_db)
    assert followed != abandoned
    with db() as session:
        assert session.scalar(select(func.count()).select_from(FinancingRequestRow)) == 0


def test_index_follows_a_chain_that_lost_its_latest_blocks(ledger: Sandbox, new_database: Database) -> None:
    """Anvil restarted from a state file older than the blocks it had mined: the index goes back with it."""
    db = new_database()
    indexer = make_indexer(ledger, db)
    scenario = Scenario(ledger)
    scenario.first_tier()
    indexer.sync_once()
    fork = ledger.snapshot()
    scenario.financing()
    indexer.sync_once()

    ledger.revert(fork)  # the chain is now shorter than the index's checkpoint
    indexer.sync_once()
    assert indexer.last_sync.reorgs == 1
    fresh_db = new_database()
    make_indexer(ledger, fresh_db).sync_once()
    assert snapshot(db) == snapshot(fresh_db)
    with db() as session:
        checkpoint = session.get(IndexCheckpointRow, 1)
        assert checkpoint is not None and checkpoint.block_number == ledger.w3.eth.block_number


def test_reading_blocks_again_changes_nothing(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    indexer = make_indexer(ledger, db)
    Scenario(ledger).first_tier()
    indexer.sync_once()
    before = snapshot(db)
    with db() as session, session.begin():
        # Wind the checkpoint back as if the last write had been lost after its events were stored.
        first = session.scalars(select(EventRow.block_number).order_by(EventRow.block_number)).first()
        assert first is not None
        header = ledger.w3.eth.get_block(first + 2)
        session.execute(
            update(IndexCheckpointRow).values(block_number=first + 2, block_hash="0x" + bytes(header["hash"]).hex())
        )
    assert indexer.sync_once() == 0
    assert snapshot(db) == before


def test_index_refuses_a_database_of_other_contracts(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    make_indexer(ledger, db).sync_once()
    contracts = {name: contract.address for name, contract in ledger.contracts.items()}
    contracts["token"] = contracts["registry"]
    abis = {name: contract.abi for name, contract in ledger.contracts.items()}
    with pytest.raises(IndexMismatchError):
        Indexer(ledger.w3, contracts, abis, db).sync_once()


class RefusingWideRanges(Web3LogSource):
    """A node that refuses ``eth_getLogs`` over more than ``limit`` blocks, as public nodes do."""

    def __init__(self, sb: Sandbox, limit: int) -> None:
        super().__init__(sb.w3)
        self.limit = limit
        self.refused = 0

    def logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        if to_block - from_block + 1 > self.limit:
            self.refused += 1
            raise LogSourceError("query exceeds the block range limit")
        return super().logs(from_block, to_block, addresses)


def test_page_size_shrinks_when_the_node_refuses_a_range(ledger: Sandbox, new_database: Database) -> None:
    Scenario(ledger).first_tier()
    source = RefusingWideRanges(ledger, limit=5)
    db = new_database()
    indexer = make_indexer(ledger, db, source=source, page_size=64)
    indexer.sync_once()
    assert source.refused > 0
    fresh_db = new_database()
    make_indexer(ledger, fresh_db).sync_once()
    assert snapshot(db) == snapshot(fresh_db)


def test_a_sync_does_not_grow_its_pages_back_into_a_range_the_node_refused(
    ledger: Sandbox, new_database: Database
) -> None:
    """A node with a range limit (Besu's --rpc-max-logs-range) is met a few times per sync, not at every page:
    after a refusal, the pages of that sync stay narrower than the refused span."""
    Scenario(ledger).first_tier()
    ledger.tester.mine_blocks(120)
    source = RefusingWideRanges(ledger, limit=5)
    db = new_database()
    indexer = make_indexer(ledger, db, source=source, page_size=64)
    indexer.sync_once()
    assert len(indexer.last_sync.per_page) >= 120 // 5
    assert 0 < source.refused < 10  # growing back to 4 times the last page would be refused at every page
    fresh_db = new_database()
    make_indexer(ledger, fresh_db).sync_once()
    assert snapshot(db) == snapshot(fresh_db)


def test_pages_follow_the_density_of_the_chain(sandbox: Sandbox, new_database: Database) -> None:
    """A dense chain is read in pages of about ``events_per_page`` logs, not ``page_size`` blocks at once."""
    abis = {name: list(contract.abi) for name, contract in sandbox.contracts.items()}
    addresses = {name: contract.address for name, contract in sandbox.contracts.items()}
    chain = SyntheticLedger(abis, addresses, events_per_block=40)
    chain.build(invoices=60)
    indexer = Indexer(None, addresses, abis, new_database(), source=chain, page_size=2_000, events_per_page=200)
    assert indexer.sync_once() == len(chain.logs_)
    pages = indexer.last_sync.per_page
    assert len(pages) >= 4  # page_size alone would read these 31 blocks in two pages
    assert max(events for _first, _last, events in pages[1:]) <= 2 * 200


class SharedChain(Web3LogSource):
    """eth-tester is not thread-safe: the indexer's thread reads it under the lock the test sends under."""

    def __init__(self, sb: Sandbox, lock: threading.Lock) -> None:
        super().__init__(sb.w3)
        self.lock = lock

    def chain_id(self) -> int:
        with self.lock:
            return super().chain_id()

    def head(self) -> int:
        with self.lock:
            return super().head()

    def logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        with self.lock:
            return super().logs(from_block, to_block, addresses)

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader]:
        with self.lock:
            return super().headers(numbers)


def test_run_forever_keeps_the_index_up_to_date_until_stopped(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    lock = threading.Lock()
    indexer = make_indexer(ledger, db, source=SharedChain(ledger, lock))
    worker = threading.Thread(target=indexer.run_forever, kwargs={"poll_interval": 0.05})
    worker.start()
    try:
        with lock:
            slot, _piece = confirmed_piece(ledger, seller="trader", amount=1_000 * YUAN)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db() as session:
                if session.get(InvoiceRow, slot) is not None:
                    break
            time.sleep(0.05)
    finally:
        indexer.stop()
        worker.join(timeout=30)
    assert not worker.is_alive()
    with db() as session:
        invoice = session.get(InvoiceRow, slot)
        assert invoice is not None and invoice.state == InvoiceState.CONFIRMED


def test_run_forever_rebuilds_an_index_found_inconsistent_instead_of_dying(
    ledger: Sandbox, new_database: Database
) -> None:
    """An event about a row the index lacks (as after a rollback the index did not follow) is an error that
    rebuilds the index from the chain; the thread lives on and the lists come right."""
    db = new_database()
    lock = threading.Lock()
    indexer = make_indexer(ledger, db, source=SharedChain(ledger, lock))
    _slot, piece = confirmed_piece(ledger, seller="trader", amount=1_000 * YUAN)
    indexer.sync_once()
    with db() as session, session.begin():  # the index loses the piece
        session.delete(session.get(PieceRow, piece))
    worker = threading.Thread(target=indexer.run_forever, kwargs={"poll_interval": 0.05})
    worker.start()
    try:
        with lock:
            child = split(ledger, piece, "factor", 100 * YUAN, "trader")  # an event about the lost piece
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db() as session:
                if session.get(PieceRow, child) is not None and session.get(PieceRow, piece) is not None:
                    break
            time.sleep(0.05)
        assert worker.is_alive()
    finally:
        indexer.stop()
        worker.join(timeout=30)
    rebuilt_db = new_database()
    make_indexer(ledger, rebuilt_db).sync_once()
    assert snapshot(db) == snapshot(rebuilt_db)


# ---------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------


def test_migration_creates_exactly_the_models_schema(new_database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ledger.db import Base

    sessions = new_database()
    index_tables = {model.__tablename__ for model in INDEX_TABLES}
    with sessions() as session:
        context = MigrationContext.configure(session.connection(), opts={"compare_type": False})
        differences = [
            d
            for d in compare_metadata(context, Base.metadata)
            if any(index_table in repr(d) for index_table in index_tables)
        ]
    assert differences == []


def test_the_margin_call_migration_fills_its_table_from_the_raw_event_log(
    ledger: Sandbox, new_database: Database
) -> None:
    """An index made before margin calls had a table of their own gets every one of them on upgrade, as a
    replay of its raw event log would give."""
    sessions = new_database()
    live = make_indexer(ledger, sessions)
    live.sync_once()
    for step in Scenario(ledger).steps():
        step()
        live.sync_once()
    margin_calls = snapshot(sessions)["pledge_margin_calls"]
    assert margin_calls, "the scenario raised no margin call"
    engine = sessions.kw["bind"]
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    downgrade(url, "0006_participants_order_index")
    upgrade(url)
    assert snapshot(sessions)["pledge_margin_calls"] == margin_calls
    assert live.rebuild_projections() > 0
    assert snapshot(sessions)["pledge_margin_calls"] == margin_calls


def test_the_allowances_migration_fills_the_table_from_the_raw_event_log(
    ledger: Sandbox, new_database: Database
) -> None:
    """Revision 0009 adds ``piece_allowances`` to an index that already holds ``ApprovalValue`` events in its
    raw log: the table it creates holds what the projection would (downgraded and upgraded again, the index is
    unchanged)."""
    sessions = new_database()
    indexer = make_indexer(ledger, sessions)
    scenario = Scenario(ledger)
    for step in scenario.steps():
        step()
    indexer.sync_once()
    before = snapshot(sessions)
    assert before["piece_allowances"]
    bind = sessions.kw["bind"]
    url = bind.url.render_as_string(hide_password=False)
    bind.dispose()
    downgrade(url, "0008_document_secret_id")
    with sessions() as session:
        assert "piece_allowances" not in inspect(session.connection()).get_table_names()
    upgrade(url)
    assert snapshot(sessions) == before


@pytest.mark.parametrize("amount", [0, 1, 2**63 - 1, 2**63, 2**96 - 1, 2**256 - 1])
def test_amounts_beyond_64_bits_are_stored_exactly(new_database: Database, amount: int) -> None:
    sessions = new_database()
    rows = [
        {
            "block_number": 1,
            "log_index": index,
            "tx_hash": "0x" + "11" * 32,
            "block_timestamp": 0,
            "sender": None,
            "recipient": None,
            "amount": value,
            "bank_reference": None,
            "agent": None,
        }
        for index, value in enumerate((amount, 5, 2**70))
    ]
    with sessions() as session, session.begin():
        session.execute(DepositTransferRow.__table__.insert(), rows)  # type: ignore[attr-defined]
    with sessions() as session:
        stored = session.scalars(select(DepositTransferRow.amount).order_by(DepositTransferRow.log_index)).all()
        assert stored == [amount, 5, 2**70]
        assert all(type(value) is int for value in stored)
        ordered = session.scalars(select(DepositTransferRow.amount).order_by(DepositTransferRow.amount)).all()
        assert ordered == sorted([amount, 5, 2**70])
        at_least = session.scalars(select(DepositTransferRow.amount).where(DepositTransferRow.amount >= amount)).all()
        assert sorted(at_least) == sorted(v for v in (amount, 5, 2**70) if v >= amount)


# ---------------------------------------------------------------------------------------------------------
# Throughput (measured and printed, never asserted)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class SyntheticLedger:
    """A chain of a plausible ledger's logs, made without a node: invoices confirmed, pieces split down the
    tiers, cash paid. Encoded with the real ABIs, so the indexer decodes and projects them for real."""

    abis: dict[str, list[dict[str, Any]]]
    addresses: dict[str, str]
    events_per_block: int = 20

    def __post_init__(self) -> None:
        self.logs_: list[RawLog] = []
        self._topics: dict[tuple[str, str], tuple[str, list[dict[str, Any]]]] = {}
        for name, abi in self.abis.items():
            for entry in abi:
                if entry["type"] == "event":
                    signature = f"{entry['name']}({','.join(abi_type(i) for i in entry['inputs'])})"
                    self._topics[(name, entry["name"])] = ("0x" + keccak(text=signature).hex(), entry["inputs"])

    def emit(self, contract: str, event: str, **args: Any) -> None:
        topic0, inputs = self._topics[(contract, event)]
        topics = [topic0]
        data_types, data_values = [], []
        for item in inputs:
            value = args[item["name"]]
            if item["indexed"]:
                topics.append("0x" + abi_encode([abi_type(item)], [value]).hex())
            else:
                data_types.append(abi_type(item))
                data_values.append(value)
        number = len(self.logs_) // self.events_per_block + 1
        self.logs_.append(
            RawLog(
                block_number=number,
                block_hash=self.block_hash(number),
                tx_hash="0x" + keccak(text=f"tx {len(self.logs_) // 4}").hex(),
                tx_index=0,
                log_index=len(self.logs_) % self.events_per_block,
                address=self.addresses[contract].lower(),
                topics=tuple(topics),
                data="0x" + abi_encode(data_types, data_values).hex(),
            )
        )

    @staticmethod
    def block_hash(number: int) -> str:
        return "0x" + keccak(text=f"block {number}").hex()

    def build(self, invoices: int) -> None:
        cast = [to_checksum_address("0x" + keccak(text=f"participant {i}").hex()[-40:]) for i in range(12)]
        core, suppliers, bank = cast[0], cast[1:11], cast[11]
        for account in cast:
            self.emit("registry", "ParticipantRegistered", account=account, identityHash=b"\1" * 32, operator=core)
        self.emit("receivables", "CreditLineSet", coreFirm=core, grantor=bank, grant=10**20, limit=10**20, used=0)
        piece = 0
        for invoice in range(1, invoices + 1):
            seller = suppliers[invoice % 10]
            amount = 1_000_000 * YUAN
            self.emit(
                "receivables",
                "InvoiceRegistered",
                invoiceId=invoice,
                keyHash=keccak(text=f"key {invoice}"),
                seller=seller,
                buyer=core,
                amount=amount,
                currency=b"CNY",
                dueDate=2_000_000_000,
                documentHash=b"\2" * 32,
            )
            piece += 1
            root = piece
            self.emit(
                "receivables",
                "InvoiceConfirmed",
                invoiceId=invoice,
                buyer=core,
                seller=seller,
                pieceId=root,
                amount=amount,
                dueDate=2_000_000_000,
            )
            self.emit("receivables", "Transfer", **{"from": ZERO, "to": seller, "tokenId": root})
            self.emit("receivables", "SlotChanged", _tokenId=root, _oldSlot=0, _newSlot=invoice)
            self.emit("receivables", "TransferValue", _fromTokenId=0, _toTokenId=root, _value=amount)
            parent = root
            for tier in range(3):
                piece += 1
                to = suppliers[(invoice + tier + 1) % 10]
                value = amount // (4 * (tier + 1))
                self.emit("receivables", "Transfer", **{"from": ZERO, "to": to, "tokenId": piece})
                self.emit("receivables", "SlotChanged", _tokenId=piece, _oldSlot=0, _newSlot=invoice)
                self.emit("receivables", "TransferValue", _fromTokenId=parent, _toTokenId=piece, _value=value)
                self.emit(
                    "receivables", "PieceSplit", parentId=parent, pieceId=piece, to=to, slotId=invoice, value=value
                )
                parent = piece
            for payment in range(3):
                self.emit("token", "Transfer", **{"from": core, "to": suppliers[payment], "value": 1_000 + payment})

    # -- LogSource ------------------------------------------------------------------------------------------

    def chain_id(self) -> int:
        return 31337

    def head(self) -> int:
        return self.logs_[-1].block_number

    def logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        first = (from_block - 1) * self.events_per_block
        last = to_block * self.events_per_block
        return self.logs_[max(first, 0) : last]

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader]:
        return {
            n: BlockHeader(n, self.block_hash(n), self.block_hash(n - 1), 1_700_000_000 + n)
            for n in numbers
            if 0 <= n <= self.head()
        }


def test_indexer_throughput_is_measured(sandbox: Sandbox, new_database: Database, database_kind: str) -> None:
    """Prints events indexed per second on a synthetic ledger of ~20,000 events (docs/design.md's target: 5,000)."""
    abis = {name: list(contract.abi) for name, contract in sandbox.contracts.items()}
    addresses = {name: contract.address for name, contract in sandbox.contracts.items()}
    chain = SyntheticLedger(abis, addresses)
    chain.build(invoices=800)
    db = new_database()
    indexer = Indexer(None, addresses, abis, db, source=chain)
    started = time.perf_counter()
    stored = indexer.sync_once()
    elapsed = time.perf_counter() - started
    assert stored == len(chain.logs_)
    with db() as session:
        assert session.scalar(select(func.count()).select_from(PieceRow)) == 800 * 4
    replay_started = time.perf_counter()
    indexer.rebuild_projections()
    replay_elapsed = time.perf_counter() - replay_started
    print(
        f"\n[indexer throughput, {database_kind}] {stored} events in {elapsed:.2f} s = {stored / elapsed:,.0f} "
        f"events/s from the log source; replay from the raw log {stored / replay_elapsed:,.0f} events/s "
        f"(target 5,000 events/s)"
    )
