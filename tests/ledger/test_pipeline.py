"""The pipeline's pure parts and its journal, without a node: local signing byte-equal to eth_account, the
classification of the node's refusals, and the journal table (constraints, migration) on SQLite and, when a
server answers at 127.0.0.1:5432, on PostgreSQL. The pipeline against a real node is in
``tests/e2e/test_pipeline_anvil.py``."""

from __future__ import annotations

import importlib.util
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import coincurve
import pytest
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, create_engine, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from ledger.db import make_engine, make_sessionmaker
from ledger.errors import ErrorDecoder
from ledger.journal import JournalTransaction, TransactionKind, TransactionStatus
from ledger.pipeline import (
    Pipeline,
    _classify_send_error,
    _jsonable,
    _Tracked,
    decode_dynamic_fee_transaction,
    sign_dynamic_fee_transaction,
)
from ledger.pipeline.block_clock import HEAD_LATE, HEAD_LEAD, HEAD_POLL, BlockClock

MIGRATION = Path(__file__).resolve().parents[2] / "ledger" / "migrations" / "versions" / "0002_journal.py"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# -- signing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nonce", "to", "value", "data", "gas", "max_fee", "tip"),
    [
        (0, "0x" + "11" * 20, 0, b"", 21_000, 1, 0),
        (7, "0x" + "ab" * 20, 10**18, b"\x00", 150_000, 2_000_000_000, 1),
        (127, "0x" + "00" * 20, 1, b"\x7f", 30_000_000, 10**12, 10**9),
        (128, None, 0, b"\x60\x80" * 700, 5_000_000, 875_000_000, 0),
        (2**40, "0x" + "fe" * 20, 2**200, bytes(range(256)) * 3, 2**32, 2**100, 2**64),
    ],
)
def test_local_signing_is_byte_equal_to_eth_account(
    nonce: int, to: str | None, value: int, data: bytes, gas: int, max_fee: int, tip: int
) -> None:
    key = keccak(text=f"signer {nonce}")
    raw, tx_hash = sign_dynamic_fee_transaction(
        coincurve.PrivateKey(key),
        chain_id=31337,
        nonce=nonce,
        max_priority_fee_per_gas=tip,
        max_fee_per_gas=max_fee,
        gas=gas,
        to=bytes.fromhex(to[2:]) if to else None,
        value=value,
        data=data,
    )
    transaction = {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "value": value,
        "data": data,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
        "accessList": [],
    }
    if to is not None:
        transaction["to"] = to_checksum_address(to)
    expected = Account.sign_transaction(transaction, key)
    assert raw == bytes(expected.raw_transaction)
    assert tx_hash == bytes(expected.hash) == keccak(raw)
    assert Account.recover_transaction(raw) == Account.from_key(key).address
    decoded = decode_dynamic_fee_transaction(raw)
    assert (decoded["nonce"], decoded["gas"], decoded["value"], decoded["data"]) == (nonce, gas, value, data)
    assert decoded["to"] == (None if to is None else to_checksum_address(to))


def test_keccak_runs_in_c_once_the_ledger_is_imported() -> None:
    """eth-hash would pick pycryptodome (several times slower a hash); ledger/__init__.py points it at
    safe-pysha3, which hashes the same (the standard vectors)."""
    import eth_hash.auto
    from eth_hash.backends import pysha3

    import ledger  # noqa: F401  (the package's import makes the switch)

    assert eth_hash.auto.keccak.hasher == pysha3.keccak256
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


def test_signing_refuses_negative_integers() -> None:
    with pytest.raises(ValueError):
        sign_dynamic_fee_transaction(
            coincurve.PrivateKey(keccak(text="k")),
            chain_id=1,
            nonce=-1,
            max_priority_fee_per_gas=0,
            max_fee_per_gas=1,
            gas=21_000,
            to=None,
            value=0,
            data=b"",
        )


@pytest.mark.parametrize(
    ("message", "verdict"),
    [
        ("transaction already imported", "known"),  # anvil
        ("already known", "known"),  # geth, Besu
        ("Known transaction", "known"),
        ("nonce too low", "nonce-too-low"),
        ("Nonce too low: next nonce 5, tx nonce 3", "nonce-too-low"),
        ("Insufficient funds for gas * price + value", "transient"),
        ("replacement transaction underpriced", "transient"),
        ("max fee per gas less than block base fee", "transient"),
        ("txpool is full", "transient"),
        ("intrinsic gas too high -- tx.gas_limit > env.block.gas_limit", "rejected"),
        ("invalid chain id for signer", "rejected"),
    ],
)
def test_refusals_of_the_node_are_classified(message: str, verdict: str) -> None:
    assert _classify_send_error(message) == verdict


def test_error_arguments_become_json_with_checksummed_addresses() -> None:
    address = "0x6ab133ce3481a06313b4e0b1bb810bcd670853a4"
    assert _jsonable({"account": address, "role": b"\x01\x02", "pair": (1, b"\xff"), "n": 2**255}) == {
        "account": "0x6AB133Ce3481A06313b4e0B1bb810BCD670853a4",
        "role": "0x0102",
        "pair": [1, "0xff"],
        "n": 2**255,
    }


def test_statuses_split_into_in_flight_and_final() -> None:
    assert {s for s in TransactionStatus if s.in_flight} == {TransactionStatus.PENDING, TransactionStatus.SENT}
    assert {s for s in TransactionStatus if s.is_final} == {
        TransactionStatus.CONFIRMED,
        TransactionStatus.FAILED,
        TransactionStatus.REPLACED,
    }


# -- the journal on SQLite and PostgreSQL --------------------------------------------------------------------


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a SQLite file, or a throw-away schema of the local PostgreSQL server."""
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
        yield sqlite
        sqlite.dispose()
        return
    if not _postgres_answers():
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432")
    schema = f"journal_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    postgres = create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield postgres
    finally:
        postgres.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _load_migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("journal_migration_0002", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _migrate(engine: Engine, direction: str = "upgrade") -> None:
    migration = _load_migration()
    with engine.begin() as connection:
        context = MigrationContext.configure(connection)
        with Operations.context(context):
            getattr(migration, direction)()


def _row(sender: str, nonce: int, **overrides: object) -> dict[str, object]:
    tx_hash = "0x" + keccak(text=f"{sender} {nonce} {overrides.get('operation_id', '')}").hex()
    row: dict[str, object] = {
        "operation_id": str(uuid.uuid4()),
        "sender": sender,
        "nonce": nonce,
        "tx_hash": tx_hash,
        "raw_tx": b"\x02" + bytes(100),
        "to": "0x" + "11" * 20,
        "selector": "0x40c10f19",
        "gas_limit": 150_000,
    }
    row.update(overrides)
    return row


def test_migration_creates_exactly_the_journal_model(engine: Engine) -> None:
    assert _load_migration().down_revision == "0001_index"
    _migrate(engine)
    journal_only = MetaData(naming_convention=JournalTransaction.metadata.naming_convention)
    JournalTransaction.__table__.to_metadata(journal_only)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), journal_only)
    assert differences == []
    indexes = {i["name"]: i for i in inspect(engine).get_indexes("journal_transactions")}
    assert indexes["uq_journal_transactions_sender_nonce"]["unique"]
    _migrate(engine, "downgrade")
    assert "journal_transactions" not in inspect(engine).get_table_names()


def test_journal_round_trips_a_transaction_with_its_decoded_error(engine: Engine) -> None:
    _migrate(engine)
    sessions = make_sessionmaker(engine)
    sender = "0x" + "aa" * 20
    with sessions.begin() as session:
        session.add(JournalTransaction(**_row(sender, 0, operation_id="op-1")))
    with sessions.begin() as session:
        stored = session.scalars(select(JournalTransaction)).one()
        assert stored.status is TransactionStatus.PENDING
        assert stored.kind is TransactionKind.OPERATION
        assert stored.superseded is False
        assert stored.created_at is not None and stored.updated_at is not None
        stored.status = TransactionStatus.FAILED
        stored.block_number = 12
        stored.error_name = "ReceivablesPieceLocked"
        stored.error_args = {"pieceId": 2**200, "holder": "0x" + "bb" * 20, "ref": "0x0102"}
    with sessions() as session:
        tracked = _Tracked.from_row(session.scalars(select(JournalTransaction)).one())
    assert tracked.status is TransactionStatus.FAILED
    assert tracked.error_args == {"pieceId": 2**200, "holder": "0x" + "bb" * 20, "ref": "0x0102"}
    assert tracked.raw_tx == b"\x02" + bytes(100)


@pytest.mark.parametrize("column", ["operation_id", "tx_hash"])
def test_operation_ids_and_transaction_hashes_are_unique(engine: Engine, column: str) -> None:
    _migrate(engine)
    sessions = make_sessionmaker(engine)
    first = _row("0x" + "aa" * 20, 0)
    second = _row("0x" + "aa" * 20, 1)
    second[column] = first[column]
    with sessions.begin() as session:
        session.add(JournalTransaction(**first))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(JournalTransaction(**second))


def test_a_nonce_is_held_by_one_live_transaction_and_may_be_taken_over_once_superseded(engine: Engine) -> None:
    _migrate(engine)
    sessions = make_sessionmaker(engine)
    sender = "0x" + "cc" * 20
    with sessions.begin() as session:
        session.add(JournalTransaction(**_row(sender, 5, operation_id="rejected")))
        session.add(JournalTransaction(**_row("0x" + "dd" * 20, 5)))  # another sender's nonce 5 is fine
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(JournalTransaction(**_row(sender, 5, operation_id="twin")))
    with sessions.begin() as session:
        session.execute(
            update(JournalTransaction)
            .where(JournalTransaction.operation_id == "rejected")
            .values(status=TransactionStatus.FAILED, superseded=True)
        )
        session.add(JournalTransaction(**_row(sender, 5, operation_id="filler", kind=TransactionKind.NONCE_FILLER)))
    with sessions() as session:
        holders = session.scalars(
            select(JournalTransaction.operation_id).where(
                JournalTransaction.sender == sender, JournalTransaction.superseded.is_(False)
            )
        ).all()
    assert holders == ["filler"]


# -- sending lost blocks again ----------------------------------------------------------------------------


def _lost(sender: str, nonce: int, lost_block: int | None) -> _Tracked:
    return _Tracked(
        operation_id=f"{sender}-{nonce}",
        kind=TransactionKind.OPERATION,
        sender=sender,
        nonce=nonce,
        tx_hash=f"0x{sender}{nonce:062x}"[:66],
        raw_tx=b"",
        to=None,
        selector=None,
        gas_limit=21_000,
        status=TransactionStatus.SENT,
        lost_block=lost_block,
    )


def _waves_of(pipeline: Pipeline, resend: list[_Tracked]) -> list[list[tuple[str, int]]]:
    """The waves in which the pipeline sends ``resend`` again, each mined before the next is chosen."""
    for tracked in resend:
        pipeline._registry.inflight[tracked.operation_id] = tracked
    waves = []
    while resend:
        wave = pipeline._next_wave(resend)
        assert wave, "a wave is empty while transactions wait: they would wait for ever"
        waves.append([(t.sender, t.nonce) for t in wave])
        for tracked in wave:  # mined and confirmed
            tracked.status = TransactionStatus.CONFIRMED
            del pipeline._registry.inflight[tracked.operation_id]
        resend = [t for t in resend if t not in wave]
    return waves


def test_lost_transactions_go_back_one_lost_block_at_a_time_then_the_dropped_ones() -> None:
    pipeline = Pipeline("http://127.0.0.1:1", 31337, make_sessionmaker(make_engine("sqlite://")), ErrorDecoder([]))
    resend = [_lost("b", 7, None), _lost("a", 3, 11), _lost("b", 5, 10), _lost("a", 2, 10), _lost("b", 6, 11)]
    assert _waves_of(pipeline, resend) == [[("a", 2), ("b", 5)], [("a", 3), ("b", 6)], [("b", 7)]]


def test_a_wave_takes_the_senders_lower_nonces_lost_later_so_no_nonce_gap_stalls_it() -> None:
    """A second crash lost nonce 4 again (now from block 20) while nonces 5 and 6 of block 12 wait to go back:
    sending 5 and 6 without 4 would leave them waiting on the gap for ever."""
    pipeline = Pipeline("http://127.0.0.1:1", 31337, make_sessionmaker(make_engine("sqlite://")), ErrorDecoder([]))
    resend = [_lost("a", 4, 20), _lost("a", 5, 12), _lost("a", 6, 12), _lost("c", 1, 20)]
    assert _waves_of(pipeline, resend) == [[("a", 4), ("a", 5), ("a", 6)], [("c", 1)]]


def _clock_of(seen: list[tuple[int, float]]) -> BlockClock:
    clock = BlockClock()
    for number, at in seen:
        clock.saw(number, at)
    return clock


def test_the_block_clock_expects_the_next_head_one_interval_after_the_last() -> None:
    clock = _clock_of([(10, 100.0), (11, 101.02), (12, 101.99), (13, 103.0), (13, 103.04)])
    expected = clock.expected()
    assert expected is not None
    assert expected == pytest.approx(104.0, abs=0.02)  # the median gap after the first sight of head 13
    # Far from it the follower polls as usual; within the lead, fast; long after it, as usual again.
    assert clock.delay(103.1, 0.05) == 0.05
    assert clock.delay(expected - 0.04, 0.05) == pytest.approx(0.04 - HEAD_LEAD)
    assert clock.delay(expected - HEAD_LEAD / 2, 0.05) == HEAD_POLL
    assert clock.delay(expected + HEAD_LATE / 2, 0.05) == HEAD_POLL
    assert clock.delay(expected + HEAD_LATE * 2, 0.05) == 0.05


def test_the_block_clock_counts_skipped_heads_as_several_intervals() -> None:
    clock = _clock_of([(1, 0.0), (2, 2.0), (4, 6.0), (5, 8.0)])
    assert clock.expected() == pytest.approx(10.0)


def test_a_chain_without_a_regular_interval_is_polled_as_before() -> None:
    # Mined on demand (tests, automine): gaps of any length; the follower never polls fast.
    irregular = _clock_of([(1, 0.0), (2, 0.1), (3, 2.5), (4, 2.6), (5, 7.0)])
    assert irregular.expected() is None
    assert irregular.delay(7.0, 0.05) == 0.05
    assert _clock_of([(1, 0.0), (2, 1.0), (3, 2.0)]).expected() is None  # two gaps are not enough to judge


def test_the_block_clock_starts_over_when_the_chain_goes_back() -> None:
    clock = _clock_of([(10, 0.0), (11, 1.0), (12, 2.0), (13, 3.0)])
    assert clock.expected() == pytest.approx(4.0)
    clock.saw(5, 3.5)  # a restarted node behind us
    assert clock.expected() is None


@given(
    steps=st.lists(st.tuples(st.integers(-2, 3), st.floats(0.0, 3.0)), min_size=1, max_size=30),
    now_after=st.floats(-1.0, 5.0),
    poll_interval=st.floats(0.01, 1.0),
)
def test_the_block_clock_never_makes_the_follower_wait_longer_than_its_poll_interval(
    steps: list[tuple[int, float]], now_after: float, poll_interval: float
) -> None:
    # Whatever the chain does (heads repeating, skipping, going back; at any pace), the clock only ever shortens
    # the follower's sleep: following is never slower than polling every ``poll_interval``.
    clock, number, at = BlockClock(), 100, 1_000.0
    for advance, pause in steps:
        number, at = max(0, number + advance), at + pause
        clock.saw(number, at)
    delay = clock.delay(at + now_after, poll_interval)
    assert 0 < delay <= poll_interval
