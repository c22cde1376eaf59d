"""The event feed (:mod:`ledger.index.feed`): the indexer appends it in the transactions that store and delete
events, so its live events are exactly the index's ``events`` table, in chain order, once each; a
reorganisation appends ``retracted`` rows, a rebuild appends nothing new, and the migration fills it from an
existing raw event log. Runs on SQLite and, when a server answers, on PostgreSQL (the fixtures of
``test_indexer``)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from ledger.index.feed import ADDED, RETRACTED, FeedPartyRow, FeedRow, kind_of, snake_case
from ledger.index.models import EventRow
from ledger.migrations import downgrade, upgrade
from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import YUAN, split
from tests.ledger import test_indexer
from tests.ledger.test_indexer import Database, Scenario, make_indexer

# the index tests' fixtures: a sandbox chain, an isolated ledger on it, index databases of each kind
sandbox = test_indexer.sandbox
ledger = test_indexer.ledger
database_kind = test_indexer.database_kind
new_database = test_indexer.new_database


def feed_rows(sessions: sessionmaker[Session]) -> list[FeedRow]:
    with sessions() as session:
        rows = list(session.scalars(select(FeedRow).order_by(FeedRow.seq)))
        session.expunge_all()
        return rows


def live_ids(rows: list[FeedRow]) -> list[str]:
    """The ids whose last row is ``added``, in the order they were added."""
    last: dict[str, FeedRow] = {}
    for row in rows:
        last[row.event_id] = row
    return [row.event_id for row in sorted(last.values(), key=lambda r: r.seq) if row.action == ADDED]


def stored_ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        query = select(EventRow.block_hash, EventRow.log_index).order_by(EventRow.block_number, EventRow.log_index)
        return [f"{block_hash}:{log_index}" for block_hash, log_index in session.execute(query)]


def test_kinds_and_field_names() -> None:
    assert kind_of("receivables", "InvoiceConfirmed") == "invoice.confirmed"
    assert kind_of("receivables", "PieceSplit") == "piece.split"
    assert kind_of("receivables", "Transfer") == "piece.transferred"
    assert kind_of("receivables", "FinancingFunded") == "financing.funded"
    assert kind_of("receivables", "ObligationRepaid") == "obligation.repaid"
    assert kind_of("receipts", "PledgeFunded") == "pledge.funded"
    assert kind_of("receipts", "PledgeMarginCalled") == "pledge.margin-called"
    assert kind_of("registry", "ParticipantFrozen") == "participant.frozen"
    assert kind_of("token", "DepositMinted") == "deposit.minted"
    assert kind_of("token", "Transfer") == "deposit.transferred"
    assert kind_of("receipts", "ReceiptGoodsStatusUpdated") == "receipt.goods-status-updated"
    assert snake_case("_tokenId") == "token_id"
    assert snake_case("maintenanceRatioBps") == "maintenance_ratio_bps"
    assert snake_case("discountRateBps") == "discount_rate_bps"


def test_every_event_of_the_story_is_in_the_feed_once_in_chain_order(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    indexer = make_indexer(ledger, db, page_size=5)
    scenario = Scenario(ledger)
    indexer.sync_once()
    for step in scenario.steps():
        step()
        indexer.sync_once()
    rows = feed_rows(db)
    stored = stored_ids(db)
    assert stored and [row.event_id for row in rows] == stored
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert all(row.action == ADDED for row in rows)
    assert [(r.block_number, r.log_index) for r in rows] == sorted((r.block_number, r.log_index) for r in rows)
    kinds = {row.kind for row in rows}
    for kind in ("invoice.confirmed", "piece.split", "financing.funded", "obligation.repaid", "participant.frozen"):
        assert kind in kinds
    seatmaker, automaker = ledger.address("seatmaker"), ledger.address("automaker")
    confirmed = next(row for row in rows if row.kind == "invoice.confirmed")
    assert confirmed.fields["amount"] == 1_000_000 * YUAN and isinstance(confirmed.fields["invoice_id"], int)
    assert {seatmaker, automaker} <= set(confirmed.parties)
    # An event that names its object only by id is seen by that object's parties.
    repaid = next(row for row in rows if row.kind == "obligation.paid")
    assert {seatmaker, automaker} <= set(repaid.parties)
    with db() as session:
        parties = {(p.party, p.seq) for p in session.scalars(select(FeedPartyRow))}
    assert parties == {(party, row.seq) for row in rows for party in row.parties}

    # A rebuild reads every event again: the feed already announced them, and announces none twice.
    assert indexer.rebuild() == len(stored)
    assert [(r.seq, r.event_id, r.action) for r in feed_rows(db)] == [(r.seq, r.event_id, r.action) for r in rows]


def test_a_reorganisation_retracts_the_dropped_events(ledger: Sandbox, new_database: Database) -> None:
    db = new_database()
    indexer = make_indexer(ledger, db, page_size=3)
    scenario = Scenario(ledger)
    scenario.first_tier()
    indexer.sync_once()
    fork = ledger.snapshot()
    before = len(feed_rows(db))
    scenario.financing()
    indexer.sync_once()
    abandoned = feed_rows(db)[before:]
    assert any(row.kind == "financing.funded" for row in abandoned)

    ledger.revert(fork)
    token = ledger.contracts["token"]
    while ledger.w3.eth.block_number < abandoned[-1].block_number + 2:
        ledger.send(token.functions.transfer(ledger.address("trader"), 1), "seatmaker")
    split(ledger, scenario.ids["root"], "trader", 1_000 * YUAN, "seatmaker")
    indexer.sync_once()
    assert indexer.last_sync.reorgs == 1

    rows = feed_rows(db)
    retracted = [row for row in rows if row.action == RETRACTED]
    assert {row.event_id for row in retracted} == {row.event_id for row in abandoned}
    assert [row.event_id for row in retracted] == [row.event_id for row in reversed(abandoned)]
    by_id = {row.event_id: row for row in abandoned}
    for row in retracted:
        added = by_id[row.event_id]
        assert (row.kind, row.fields, row.parties) == (added.kind, added.fields, added.parties)
        assert row.seq > abandoned[-1].seq
    assert live_ids(rows) == stored_ids(db)


@pytest.mark.parametrize("revision", ["0009_piece_allowances"])
def test_the_migration_fills_the_feed_from_the_raw_event_log(
    ledger: Sandbox, new_database: Database, revision: str
) -> None:
    sessions = new_database()
    indexer = make_indexer(ledger, sessions)
    scenario = Scenario(ledger)
    scenario.first_tier()
    scenario.financing()
    indexer.sync_once()
    before = feed_rows(sessions)
    bind = sessions.kw["bind"]
    url = bind.url.render_as_string(hide_password=False)
    bind.dispose()
    downgrade(url, revision)
    with sessions() as session:
        assert "event_feed" not in inspect(session.connection()).get_table_names()
    upgrade(url)

    def plain(rows: list[FeedRow]) -> list[dict[str, Any]]:
        return [{c: getattr(r, c) for c in FeedRow.__table__.columns.keys() if c != "parties"} for r in rows]  # noqa: SIM118

    after = feed_rows(sessions)
    assert plain(after) == plain(before)
    # The participants an event names are its parties either way; those of an object it names only by id are
    # the object's as the index holds it at the upgrade (a piece's holder now, not when the event was appended).
    for old, new in zip(before, after, strict=True):
        named = {v for v in old.fields.values() if isinstance(v, str) and len(v) == 42 and v != "0x" + "0" * 40}
        assert named <= set(new.parties) and named <= set(old.parties)
        assert bool(old.parties) == bool(new.parties)


def test_the_migration_creates_exactly_the_feed_model(new_database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ledger.db import Base

    sessions = new_database()
    with sessions() as session:
        context = MigrationContext.configure(session.connection())
        differences = [d for d in compare_metadata(context, Base.metadata) if "event_feed" in repr(d)]
    assert differences == []
