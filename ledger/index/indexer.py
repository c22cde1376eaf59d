"""The event indexer: reads the ledger contracts' logs into SQL, block range by block range.

How it works
------------
- One ``eth_getLogs`` per page of blocks for every ledger contract at once. Pages are sized from the
  density of the previous page (about 10,000 logs a page, at most 2,000 blocks) and halved when the node
  refuses a range. Logs are decoded straight from their hex with the ABIs (a ``(contract, topic0) → event``
  map built once; fixed-size arguments are read word by word, anything else goes through ``eth_abi``),
  which is many times faster than web3's contract event processing.
- Block times come from the logs where the node puts them there (anvil, reth, recent geth); otherwise the
  headers of the blocks that hold events are fetched, in JSON-RPC batches. The page's first and last
  headers are always read: the first must follow the checkpoint, the last is read before and after the
  logs to pin the chain the logs came from.
- Each page is written in one database transaction: the raw events (``events``), the blocks they came
  from, every projection they change, and the checkpoint (last block number and hash). Projections are
  worked out in memory: the rows a page touches are loaded with one ``SELECT … IN`` per table, the events
  are applied to them in block and log order by one function per event, and the results are written back
  with one bulk ``INSERT`` and one bulk ``UPDATE`` per table.
- Idempotent: ``(block_hash, log_index)`` is unique, and a page skips the events already stored, so reading
  a block twice changes nothing.
- Reorganisations (a competing chain, or anvil restarted behind what it had mined): before reading, the
  checkpoint's hash is compared with the chain's block at that height. On a mismatch the indexer walks back
  over the blocks it stored until one is still on the chain, deletes the raw events above it, rebuilds the
  projections by replaying the raw event log that remains (no chain access; reorgs are rare, and a replay
  is exactly the rebuild the index must support anyway) and reads forward again. All of that is one
  transaction, so a reader sees the index before the reorg or after it, never in between.

The raw event log is the source of truth of the index: :meth:`Indexer.rebuild_projections` replays it,
:meth:`Indexer.rebuild` reads it again from the chain, and :func:`snapshot_tables` compares two indexes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from sqlalchemy import Table, and_, bindparam, delete, select, tuple_
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.providers import JSONBaseProvider

from ledger.db import Base
from ledger.errors import abi_type
from ledger.index.models import (
    INDEX_TABLES,
    PROJECTIONS,
    BlockRow,
    CreditGrantRow,
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
    PledgeMarginCallRow,
    PledgeRepaymentRow,
    PledgeRow,
    RedemptionRow,
    RepaymentRow,
    WarehouseOracleRow,
    WarehouseReceiptRow,
)
from ledger.models import GoodsStatus, InvoiceState, ParticipantStatus, PledgeState, ReceiptState, RequestState, Role

logger = logging.getLogger(__name__)

#: The ledger's name of each contract the index reads → its artifact (contract) name.
CONTRACT_ARTIFACTS: Mapping[str, str] = {
    "registry": "ParticipantRegistry",
    "token": "DepositToken",
    "receivables": "Receivables",
    "receipts": "WarehouseReceipts",
    "anchor": "AuditAnchor",
}
_NAME_OF_ARTIFACT = {artifact: name for name, artifact in CONTRACT_ARTIFACTS.items()}

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_ZERO_WORD = "0" * 64
_CHECKPOINT_ID = 1
_SELECT_CHUNK = 500
_FIRST_PAGE_BLOCKS = 16
_REPLAY_CHUNK = 5_000

#: AccessControl role id (hex) → role name; ``admin`` is OpenZeppelin's ``DEFAULT_ADMIN_ROLE``.
ROLE_NAMES: Mapping[str, str] = {
    "0x" + "00" * 32: "admin",
    **{"0x" + role.role_id.hex(): role.role_name for role in Role},
}


class IndexerError(Exception):
    """Base of the indexer's errors."""


class IndexMismatchError(IndexerError):
    """The database holds an index of another chain or other contracts; rebuild it (:meth:`Indexer.rebuild`)."""


class IndexInconsistencyError(IndexerError):
    """An event refers to something the index does not hold (an event the contracts failed to emit, or a
    projection bug). The page is not written; the indexer stops rather than serve a wrong index."""


class LogSourceError(IndexerError):
    """The node refused or failed a request (too many results, a timeout, an error answer)."""


class ChainMovedError(IndexerError):
    """The chain changed under a page while it was being read (a reorganisation in progress)."""


# ---------------------------------------------------------------------------------------------------------
# Reading the chain
# ---------------------------------------------------------------------------------------------------------


class RawLog(NamedTuple):
    """A log as the node sent it: hashes and data as ``0x`` hex (lower case), numbers as ints."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    topics: tuple[str, ...]
    data: str
    block_timestamp: int | None = None
    """The block's time when the node puts it in the log (anvil, reth, recent geth do); else None."""


class BlockHeader(NamedTuple):
    number: int
    hash: str
    parent_hash: str
    timestamp: int


class LogSource(Protocol):
    """Where the indexer reads the chain: a JSON-RPC node, eth-tester, or a synthetic chain in a benchmark."""

    def chain_id(self) -> int: ...

    def head(self) -> int:
        """The number of the latest block."""
        ...

    def logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        """Every log of ``addresses`` in blocks ``from_block``..``to_block``, in chain order. Raises
        :class:`LogSourceError` when the node cannot answer for the range."""
        ...

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader]:
        """The headers of the blocks ``numbers`` that exist (a number beyond the head is left out)."""
        ...


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    return "0x" + bytes(value).hex()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class Web3LogSource:
    """Reads through a :class:`Web3` connection.

    With a JSON-RPC provider (HTTP, IPC) it sends raw requests, batched where it can, and parses the answers
    itself: no web3 result formatting (slow at thousands of logs) and no block formatter (which rejects the
    long ``extraData`` of proof-of-authority blocks such as Besu QBFT's). Other providers (eth-tester) go
    through ``w3.eth``.
    """

    def __init__(self, w3: Web3, *, batch_size: int = 200) -> None:
        self.w3 = w3
        self._raw = isinstance(w3.provider, JSONBaseProvider)
        self._batch_size = batch_size
        self._batches_work = True

    def chain_id(self) -> int:
        if self._raw:
            return _int(self._request("eth_chainId", []))
        return int(self.w3.eth.chain_id)

    def head(self) -> int:
        if self._raw:
            return _int(self._request("eth_blockNumber", []))
        return int(self.w3.eth.block_number)

    def logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        if self._raw:
            params = {"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": list(addresses)}
            entries = self._request("eth_getLogs", [params])
            if not isinstance(entries, list):
                raise LogSourceError(f"eth_getLogs {from_block}..{to_block} answered {entries!r}")
        else:
            try:
                entries = self.w3.eth.get_logs(
                    {
                        "fromBlock": from_block,
                        "toBlock": to_block,
                        "address": [Web3.to_checksum_address(a) for a in addresses],
                    }
                )
            except Exception as exc:  # eth-tester and web3 raise many kinds; all mean "not this range"
                raise LogSourceError(f"eth_getLogs {from_block}..{to_block} failed: {exc}") from exc
        return [
            RawLog(
                block_number=_int(entry["blockNumber"]),
                block_hash=_hex(entry["blockHash"]),
                tx_hash=_hex(entry["transactionHash"]),
                tx_index=_int(entry["transactionIndex"]),
                log_index=_int(entry["logIndex"]),
                address=_hex(entry["address"]),
                topics=tuple(_hex(t) for t in entry["topics"]),
                data=_hex(entry["data"]),
                block_timestamp=None if entry.get("blockTimestamp") is None else _int(entry["blockTimestamp"]),
            )
            for entry in entries
            if not entry.get("removed", False)
        ]

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader]:
        wanted = sorted(set(numbers))
        found: dict[int, BlockHeader] = {}
        if not self._raw:
            for number in wanted:
                try:
                    block = self.w3.eth.get_block(number)
                except BlockNotFound:
                    continue
                except Exception as exc:
                    raise LogSourceError(f"eth_getBlockByNumber {number} failed: {exc}") from exc
                header = _header_of(block)
                if header is not None:
                    found[number] = header
            return found
        for start in range(0, len(wanted), self._batch_size):
            chunk = wanted[start : start + self._batch_size]
            for block in self._blocks(chunk):
                header = _header_of(block)
                if header is not None:
                    found[header.number] = header
        return found

    def _blocks(self, numbers: Sequence[int]) -> list[Any]:
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        if self._batches_work and len(calls) > 1:
            try:
                responses = self.w3.provider.make_batch_request(calls)  # type: ignore[attr-defined]
            except Exception as exc:
                logger.info("the node does not take batch requests (%s); sending them one by one", exc)
                self._batches_work = False
            else:
                if isinstance(responses, list):
                    results = []
                    for response in responses:
                        if "error" in response:
                            raise LogSourceError(f"eth_getBlockByNumber failed: {response['error']}")
                        results.append(response.get("result"))
                    return results
                self._batches_work = False
        return [self._request(method, params) for method, params in calls]

    def _request(self, method: str, params: list[Any]) -> Any:
        try:
            response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        except Exception as exc:
            raise LogSourceError(f"{method} failed: {exc}") from exc
        if "error" in response:
            raise LogSourceError(f"{method} failed: {response['error']}")
        return response.get("result")


def _header_of(block: Any) -> BlockHeader | None:
    if block is None:
        return None
    return BlockHeader(
        number=_int(block["number"]),
        hash=_hex(block["hash"]),
        parent_hash=_hex(block["parentHash"]),
        timestamp=_int(block["timestamp"]),
    )


# ---------------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _address(word_or_address: str) -> str:
    """EIP-55 form of an address given as a 32-byte word or a 20-byte hex string (cached: the cast repeats)."""
    return to_checksum_address("0x" + word_or_address[-40:])


def _word_reader(kind: str) -> Callable[[str], Any] | None:
    """A reader of one 64-hex-digit ABI word of static type ``kind``, or None when ``kind`` is not a
    single-word type."""
    if kind == "address":
        return _address
    if kind == "bool":
        return lambda word: word != _ZERO_WORD
    if kind.startswith("uint"):
        return lambda word: int(word, 16)
    if kind.startswith("int"):
        return _signed
    if kind.startswith("bytes") and kind != "bytes" and "[" not in kind:
        size = int(kind[5:])
        return lambda word: "0x" + word[: 2 * size]
    return None


def _signed(word: str) -> int:
    """A two's-complement ``intN`` (sign-extended to 256 bits by the ABI encoding)."""
    value = int(word, 16)
    return value - (1 << 256) if value >> 255 else value


def _to_json(value: Any) -> Any:
    """An ``eth_abi`` value as JSON: bytes as hex, addresses checksummed, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return _address(value)
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    return value


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event of one contract."""

    contract: str
    name: str
    indexed: tuple[tuple[str, Callable[[str], Any]], ...]
    """Name and word reader of each indexed argument (a hashed dynamic one is kept as its topic)."""
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    data_readers: tuple[Callable[[str], Any], ...] | None
    """Word readers of the data arguments when all are single words; None: decode with ``eth_abi``."""

    @classmethod
    def from_abi(cls, contract: str, entry: Mapping[str, Any]) -> EventSpec:
        indexed: list[tuple[str, Callable[[str], Any]]] = []
        data_names: list[str] = []
        data_types: list[str] = []
        for position, item in enumerate(entry["inputs"]):
            name = item["name"] or f"arg{position}"
            kind = abi_type(item)
            if item.get("indexed"):
                indexed.append((name, _word_reader(kind) or (lambda word: "0x" + word)))
            else:
                data_names.append(name)
                data_types.append(kind)
        readers = [_word_reader(kind) for kind in data_types]
        return cls(
            contract=contract,
            name=str(entry["name"]),
            indexed=tuple(indexed),
            data_names=tuple(data_names),
            data_types=tuple(data_types),
            data_readers=None if any(r is None for r in readers) else tuple(r for r in readers if r is not None),
        )

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, read), topic in zip(self.indexed, topics[1:], strict=True):
            args[name] = read(topic[2:])
        if self.data_readers is not None:
            body = data[2:]
            for position, (name, read) in enumerate(zip(self.data_names, self.data_readers, strict=True)):
                args[name] = read(body[64 * position : 64 * position + 64])
        elif self.data_names:
            values = abi_decode(list(self.data_types), bytes.fromhex(data[2:]))
            for name, value in zip(self.data_names, values, strict=True):
                args[name] = _to_json(value)
        return args


@dataclass(slots=True)
class ChainEvent:
    """A decoded event with its position on the chain: what projections are computed from."""

    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    tx_index: int
    log_index: int
    contract: str
    address: str
    name: str
    args: dict[str, Any]

    def as_row(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "log_index": self.log_index,
            "block_hash": self.block_hash,
            "block_timestamp": self.block_timestamp,
            "tx_hash": self.tx_hash,
            "tx_index": self.tx_index,
            "contract": self.contract,
            "address": self.address,
            "name": self.name,
            "args": self.args,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ChainEvent:
        return cls(
            block_number=row["block_number"],
            block_hash=row["block_hash"],
            block_timestamp=row["block_timestamp"],
            tx_hash=row["tx_hash"],
            tx_index=row["tx_index"],
            log_index=row["log_index"],
            contract=row["contract"],
            address=row["address"],
            name=row["name"],
            args=dict(row["args"]),
        )


class EventDecoder:
    """Decodes the logs of the ledger's contracts: ``(address, topic0) → EventSpec``, built once."""

    def __init__(self, contracts: Mapping[str, str], abis: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self._specs: dict[tuple[str, str], EventSpec] = {}
        self._names: dict[str, tuple[str, str]] = {}
        for name, address in contracts.items():
            checksummed = to_checksum_address(address)
            self._names[checksummed.lower()] = (name, checksummed)
            for entry in abis[name]:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                signature = f"{entry['name']}({','.join(abi_type(item) for item in entry['inputs'])})"
                topic = "0x" + keccak(text=signature).hex()
                self._specs[(checksummed.lower(), topic)] = EventSpec.from_abi(name, entry)

    @property
    def addresses(self) -> list[str]:
        return [checksummed for _, checksummed in self._names.values()]

    def decode(self, log: RawLog, timestamp: int) -> ChainEvent | None:
        """The event of ``log``, or None for a log no ABI describes (an anonymous or unknown event)."""
        if not log.topics:
            return None
        spec = self._specs.get((log.address, log.topics[0]))
        if spec is None:
            return None
        return ChainEvent(
            block_number=log.block_number,
            block_hash=log.block_hash,
            block_timestamp=timestamp,
            tx_hash=log.tx_hash,
            tx_index=log.tx_index,
            log_index=log.log_index,
            contract=spec.contract,
            address=self._names[log.address][1],
            name=spec.name,
            args=spec.decode(log.topics, log.data),
        )


# ---------------------------------------------------------------------------------------------------------
# Projections
# ---------------------------------------------------------------------------------------------------------

Key = Any


class _Rows:
    """The rows of one table that a batch of events touches, in memory, keyed by primary key; written
    back with one bulk statement per kind of change."""

    __slots__ = ("deleted", "dirty", "in_db", "key_names", "new", "rows", "session", "table")

    def __init__(self, model: type[Base], session: Session) -> None:
        self.table = _table(model)
        self.key_names = tuple(column.name for column in self.table.primary_key.columns)
        self.session = session
        self.rows: dict[Key, dict[str, Any] | None] = {}
        self.in_db: set[Key] = set()
        self.new: set[Key] = set()
        self.dirty: set[Key] = set()
        self.deleted: set[Key] = set()

    def key_of(self, row: Mapping[Any, Any]) -> Key:
        if len(self.key_names) == 1:
            return row[self.key_names[0]]
        return tuple(row[name] for name in self.key_names)

    def prefetch(self, keys: Iterable[Key]) -> None:
        missing = [key for key in set(keys) if key not in self.rows]
        columns = [self.table.c[name] for name in self.key_names]
        for start in range(0, len(missing), _SELECT_CHUNK):
            chunk = missing[start : start + _SELECT_CHUNK]
            condition = columns[0].in_(chunk) if len(columns) == 1 else tuple_(*columns).in_(chunk)
            for row in self.session.execute(select(self.table).where(condition)).mappings():
                key = self.key_of(row)
                self.rows[key] = dict(row)
                self.in_db.add(key)
        for key in missing:
            self.rows.setdefault(key, None)

    def get(self, key: Key) -> dict[str, Any] | None:
        if key not in self.rows:
            self.prefetch((key,))
        return self.rows[key]

    def require(self, key: Key, event: ChainEvent) -> dict[str, Any]:
        row = self.get(key)
        if row is None:
            raise IndexInconsistencyError(
                f"{event.contract}.{event.name} at block {event.block_number} log {event.log_index} "
                f"refers to {self.table.name} {key!r}, which the index does not hold"
            )
        return row

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        key = self.key_of(row)
        self.rows[key] = row
        self.deleted.discard(key)
        if key in self.in_db:
            self.dirty.add(key)
        else:
            self.new.add(key)
        return row

    def changed(self, key: Key) -> None:
        if key not in self.new:
            self.dirty.add(key)

    def remove(self, key: Key) -> None:
        self.rows[key] = None
        self.new.discard(key)
        self.dirty.discard(key)
        if key in self.in_db:
            self.deleted.add(key)

    def write_deletes(self) -> None:
        if self.deleted:
            where = and_(*(self.table.c[name] == bindparam(f"key_{name}") for name in self.key_names))
            keys = [self._key_params(key) for key in sorted(self.deleted)]
            self.session.execute(self.table.delete().where(where), keys)

    def write_inserts(self) -> None:
        if self.new:
            rows = [self.rows[key] for key in sorted(self.new)]
            _insert_many(self.session, self.table, [row for row in rows if row is not None])

    def write_updates(self) -> None:
        if self.dirty:
            where = and_(*(self.table.c[name] == bindparam(f"key_{name}") for name in self.key_names))
            params = []
            for key in sorted(self.dirty):
                row = self.rows[key]
                assert row is not None
                values = {name: value for name, value in row.items() if name not in self.key_names}
                params.append({**values, **self._key_params(key)})
            self.session.execute(self.table.update().where(where), params)

    def _key_params(self, key: Key) -> dict[str, Any]:
        values = (key,) if len(self.key_names) == 1 else key
        return {f"key_{name}": value for name, value in zip(self.key_names, values, strict=True)}


#: Event arguments that name a row, by (contract, argument name) → table, loaded in bulk before a batch.
_ROW_ARGUMENTS: Mapping[tuple[str, str], type[Base]] = {
    ("registry", "account"): ParticipantRow,
    ("receivables", "invoiceId"): InvoiceRow,
    ("receivables", "slotId"): InvoiceRow,
    ("receivables", "pieceId"): PieceRow,
    ("receivables", "parentId"): PieceRow,
    ("receivables", "tokenId"): PieceRow,
    ("receivables", "_tokenId"): PieceRow,
    ("receivables", "_fromTokenId"): PieceRow,
    ("receivables", "_toTokenId"): PieceRow,
    ("receivables", "requestId"): FinancingRequestRow,
    ("receivables", "coreFirm"): CreditLineRow,
    ("receivables", "buyer"): CreditLineRow,
    ("receivables", "payer"): CreditLineRow,
    ("receipts", "receiptId"): WarehouseReceiptRow,
    ("receipts", "tokenId"): WarehouseReceiptRow,
    ("receipts", "pledgeId"): PledgeRow,
}


def _address_or_none(address: str) -> str | None:
    return None if address == ZERO_ADDRESS else address


def _ascii(hex_bytes: str) -> str:
    """A left-aligned, zero-padded ASCII ``bytesN`` (``0x434e59`` → ``CNY``)."""
    return bytes.fromhex(hex_bytes[2:]).rstrip(b"\0").decode("ascii", errors="replace")


Projection = Callable[["_Projector", ChainEvent], None]
_PROJECTIONS: dict[tuple[str, str], Projection] = {}


def _projection(contract: str, *events: str) -> Callable[[Projection], Projection]:
    """Registers the function that applies ``events`` of ``contract`` to the projections."""

    def register(function: Projection) -> Projection:
        for event in events:
            _PROJECTIONS[(contract, event)] = function
        return function

    return register


class _Projector:
    """Applies a batch of events, in order, to the projection tables of one transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.tables: dict[type[Base], _Rows] = {model: _Rows(model, session) for model in PROJECTIONS}
        self.participants = self.tables[ParticipantRow]
        self.roles = self.tables[ParticipantRoleRow]
        self.invoices = self.tables[InvoiceRow]
        self.pieces = self.tables[PieceRow]
        self.allowances = self.tables[PieceAllowanceRow]
        self.requests = self.tables[FinancingRequestRow]
        self.repayments = self.tables[RepaymentRow]
        self.redemptions = self.tables[RedemptionRow]
        self.credit_lines = self.tables[CreditLineRow]
        self.credit_grants = self.tables[CreditGrantRow]
        self.deposit_transfers = self.tables[DepositTransferRow]
        self.receipts = self.tables[WarehouseReceiptRow]
        self.pledges = self.tables[PledgeRow]
        self.pledge_repayments = self.tables[PledgeRepaymentRow]
        self.margin_calls = self.tables[PledgeMarginCallRow]
        self.oracles = self.tables[WarehouseOracleRow]
        self.parameters = self.tables[LedgerParameterRow]

    def apply(self, events: Sequence[ChainEvent]) -> int:
        """Apply ``events`` (in chain order); returns how many changed a projection."""
        self._prefetch(events)
        applied = 0
        for event in events:
            projection = _PROJECTIONS.get((event.contract, event.name))
            if projection is not None:
                projection(self, event)
                applied += 1
        return applied

    def write(self) -> None:
        """Write every change back: deletes, then inserts (parents first), then updates."""
        for rows in reversed(self.tables.values()):
            rows.write_deletes()
        for rows in self.tables.values():
            rows.write_inserts()
        for rows in self.tables.values():
            rows.write_updates()

    def _prefetch(self, events: Sequence[ChainEvent]) -> None:
        wanted: dict[type[Base], set[Any]] = {}
        for event in events:
            for name, value in event.args.items():
                model = _ROW_ARGUMENTS.get((event.contract, name))
                if model is not None and value != 0 and value != ZERO_ADDRESS:
                    wanted.setdefault(model, set()).add(value)
        for model, keys in wanted.items():
            self.tables[model].prefetch(keys)
        self.allowances.prefetch(
            (event.args["_tokenId"], event.args["_operator"])
            for event in events
            if event.name == "ApprovalValue" and event.contract == "receivables"
        )
        # Second hop: a request names its piece, a pledge its receipt.
        self.pieces.prefetch(row["piece_id"] for row in self.requests.rows.values() if row is not None)
        self.receipts.prefetch(row["receipt_id"] for row in self.pledges.rows.values() if row is not None)

    # -- helpers shared by the projections ----------------------------------------------------------------

    def set_parameter(self, name: str, value: int, event: ChainEvent) -> None:
        row = self.parameters.get(name)
        if row is None:
            self.parameters.add({"name": name, "value": value, "updated_block": event.block_number})
        else:
            row["value"] = value
            row["updated_block"] = event.block_number
            self.parameters.changed(name)

    def change(self, rows: _Rows, key: Key, event: ChainEvent, **values: Any) -> dict[str, Any]:
        row = rows.require(key, event)
        row.update(values)
        row["updated_block"] = event.block_number
        rows.changed(key)
        return row


# -- participant registry -----------------------------------------------------------------------------------


@_projection("registry", "ParticipantRegistered")
def _participant_registered(p: _Projector, e: ChainEvent) -> None:
    p.participants.add(
        {
            "account": e.args["account"],
            "identity_hash": e.args["identityHash"],
            "status": ParticipantStatus.ACTIVE,
            "frozen": False,
            "freeze_reason": None,
            "registered_at": e.block_timestamp,
            "registered_by": e.args["operator"],
            "updated_block": e.block_number,
        }
    )


@_projection("registry", "ParticipantIdentityUpdated")
def _participant_identity_updated(p: _Projector, e: ChainEvent) -> None:
    p.change(p.participants, e.args["account"], e, identity_hash=e.args["identityHash"])


@_projection("registry", "ParticipantSuspended", "ParticipantReinstated")
def _participant_status_changed(p: _Projector, e: ChainEvent) -> None:
    status = ParticipantStatus.SUSPENDED if e.name == "ParticipantSuspended" else ParticipantStatus.ACTIVE
    p.change(p.participants, e.args["account"], e, status=status)


@_projection("registry", "ParticipantFrozen")
def _participant_frozen(p: _Projector, e: ChainEvent) -> None:
    p.change(p.participants, e.args["account"], e, frozen=True, freeze_reason=e.args["reason"])


@_projection("registry", "ParticipantUnfrozen")
def _participant_unfrozen(p: _Projector, e: ChainEvent) -> None:
    p.change(p.participants, e.args["account"], e, frozen=False, freeze_reason=None)


@_projection("registry", "RoleGranted")
def _role_granted(p: _Projector, e: ChainEvent) -> None:
    account, role = e.args["account"], ROLE_NAMES.get(e.args["role"], e.args["role"])
    if p.roles.get((account, role)) is None:
        p.roles.add({"account": account, "role": role, "granted_by": e.args["sender"], "updated_block": e.block_number})
    else:
        p.change(p.roles, (account, role), e, granted_by=e.args["sender"])


@_projection("registry", "RoleRevoked")
def _role_revoked(p: _Projector, e: ChainEvent) -> None:
    p.roles.remove((e.args["account"], ROLE_NAMES.get(e.args["role"], e.args["role"])))


# -- deposit token ------------------------------------------------------------------------------------------


@_projection("token", "Transfer")
def _deposit_transferred(p: _Projector, e: ChainEvent) -> None:
    p.deposit_transfers.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "sender": _address_or_none(e.args["from"]),
            "recipient": _address_or_none(e.args["to"]),
            "amount": e.args["value"],
            "bank_reference": None,
            "agent": None,
        }
    )


@_projection("token", "DepositMinted", "DepositBurned")
def _deposit_settled(p: _Projector, e: ChainEvent) -> None:
    """Issues and redemptions carry the bank's reference; the ERC-20 ``Transfer`` just before says the rest."""
    key = (e.block_number, e.log_index - 1)
    transfer = p.deposit_transfers.require(key, e)
    transfer["bank_reference"] = e.args["bankReference"]
    transfer["agent"] = e.args["agent"]
    p.deposit_transfers.changed(key)


# -- receivables: invoices and obligations ------------------------------------------------------------------


@_projection("receivables", "InvoiceRegistered")
def _invoice_registered(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.invoices.add(
        {
            "id": a["invoiceId"],
            "key_hash": a["keyHash"],
            "seller": a["seller"],
            "buyer": a["buyer"],
            "amount": a["amount"],
            "currency": _ascii(a["currency"]),
            "due_date": a["dueDate"],
            "document_hash": a["documentHash"],
            "state": InvoiceState.REGISTERED,
            "registered_at": e.block_timestamp,
            "confirmed_at": None,
            "first_piece_id": None,
            "rejection_reason": None,
            "repaid": 0,
            "redeemed": 0,
            "defaulted_by": None,
            "updated_block": e.block_number,
        }
    )


@_projection("receivables", "InvoiceConfirmed")
def _invoice_confirmed(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.invoices,
        a["invoiceId"],
        e,
        state=InvoiceState.CONFIRMED,
        confirmed_at=e.block_timestamp,
        first_piece_id=a["pieceId"],
    )
    line = p.credit_lines.require(a["buyer"], e)
    p.change(p.credit_lines, a["buyer"], e, used=line["used"] + a["amount"])


@_projection("receivables", "InvoiceRejected")
def _invoice_rejected(p: _Projector, e: ChainEvent) -> None:
    p.change(p.invoices, e.args["invoiceId"], e, state=InvoiceState.REJECTED, rejection_reason=e.args["reason"])


@_projection("receivables", "CreditLineSet")
def _credit_line_set(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    line = {"core_firm": a["coreFirm"], "credit_limit": a["limit"], "used": a["used"], "updated_block": e.block_number}
    if p.credit_lines.get(a["coreFirm"]) is None:
        p.credit_lines.add(line)
    else:
        p.change(p.credit_lines, a["coreFirm"], e, credit_limit=a["limit"], used=a["used"])
    key = (a["grantor"], a["coreFirm"])
    if p.credit_grants.get(key) is None:
        p.credit_grants.add(
            {"grantor": a["grantor"], "core_firm": a["coreFirm"], "amount": a["grant"], "updated_block": e.block_number}
        )
    else:
        p.change(p.credit_grants, key, e, amount=a["grant"])


@_projection("receivables", "ObligationRepaid")
def _obligation_repaid(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(p.invoices, a["slotId"], e, repaid=a["repaid"])
    line = p.credit_lines.require(a["payer"], e)
    p.change(p.credit_lines, a["payer"], e, used=line["used"] - a["amount"])
    p.repayments.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "slot_id": a["slotId"],
            "payer": a["payer"],
            "amount": a["amount"],
            "repaid": a["repaid"],
            "outstanding": a["outstanding"],
        }
    )


@_projection("receivables", "ObligationPaid")
def _obligation_paid(p: _Projector, e: ChainEvent) -> None:
    p.change(p.invoices, e.args["slotId"], e, state=InvoiceState.PAID)


@_projection("receivables", "ObligationDefaulted")
def _obligation_defaulted(p: _Projector, e: ChainEvent) -> None:
    p.change(p.invoices, e.args["slotId"], e, state=InvoiceState.DEFAULTED, defaulted_by=e.args["declaredBy"])


@_projection("receivables", "ParametersUpdated")
def _receivables_parameters_updated(p: _Projector, e: ChainEvent) -> None:
    p.set_parameter("receivables.max_tenor", e.args["maxTenor"], e)
    p.set_parameter("receivables.grace_period", e.args["gracePeriod"], e)


# -- receivables: pieces (ERC-721 identity, ERC-3525 slot and value, the tree of splits) ----------------------


@_projection("receivables", "Transfer")
def _piece_transferred(p: _Projector, e: ChainEvent) -> None:
    piece_id, sender, recipient = e.args["tokenId"], e.args["from"], e.args["to"]
    if sender == ZERO_ADDRESS:
        # A new piece: its slot follows in SlotChanged, its value in TransferValue, its parent in PieceSplit.
        p.pieces.add(
            {
                "id": piece_id,
                "slot_id": None,
                "owner": recipient,
                "value": 0,
                "checkpoint": 0,
                "parent_id": None,
                "root_id": piece_id,
                "depth": 0,
                "path": str(piece_id),
                "frozen": False,
                "open_request_id": None,
                "burnt": False,
                "created_at": e.block_timestamp,
                "updated_block": e.block_number,
            }
        )
    elif recipient == ZERO_ADDRESS:
        p.change(p.pieces, piece_id, e, owner=None, burnt=True)
    else:
        p.change(p.pieces, piece_id, e, owner=recipient)


@_projection("receivables", "SlotChanged")
def _piece_slot_changed(p: _Projector, e: ChainEvent) -> None:
    p.change(p.pieces, e.args["_tokenId"], e, slot_id=e.args["_newSlot"])


@_projection("receivables", "TransferValue")
def _piece_value_moved(p: _Projector, e: ChainEvent) -> None:
    source, target, value = e.args["_fromTokenId"], e.args["_toTokenId"], e.args["_value"]
    if source != 0:
        row = p.pieces.require(source, e)
        p.change(p.pieces, source, e, value=row["value"] - value)
    if target != 0:
        row = p.pieces.require(target, e)
        p.change(p.pieces, target, e, value=row["value"] + value)


@_projection("receivables", "PieceSplit")
def _piece_split(p: _Projector, e: ChainEvent) -> None:
    parent = p.pieces.require(e.args["parentId"], e)
    piece_id = e.args["pieceId"]
    p.change(
        p.pieces,
        piece_id,
        e,
        parent_id=parent["id"],
        root_id=parent["root_id"],
        depth=parent["depth"] + 1,
        path=f"{parent['path']}/{piece_id}",
        checkpoint=parent["checkpoint"],
    )


@_projection("receivables", "ApprovalValue")
def _piece_allowance_set(p: _Projector, e: ChainEvent) -> None:
    """An allowance set, spent, or ended (0: by the holder, used up, or the piece changed hands or was burnt)."""
    key = (e.args["_tokenId"], e.args["_operator"])
    value = e.args["_value"]
    if value == 0:
        if p.allowances.get(key) is not None:
            p.allowances.remove(key)
    elif p.allowances.get(key) is None:
        p.allowances.add({"piece_id": key[0], "operator": key[1], "value": value, "updated_block": e.block_number})
    else:
        p.change(p.allowances, key, e, value=value)


@_projection("receivables", "PieceFrozen", "PieceUnfrozen")
def _piece_freeze_changed(p: _Projector, e: ChainEvent) -> None:
    p.change(p.pieces, e.args["pieceId"], e, frozen=e.name == "PieceFrozen")


@_projection("receivables", "PieceRedeemed")
def _piece_redeemed(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    invoice = p.invoices.require(a["slotId"], e)
    p.change(p.pieces, a["pieceId"], e, checkpoint=invoice["repaid"])
    p.change(p.invoices, a["slotId"], e, redeemed=invoice["redeemed"] + a["payout"])
    p.redemptions.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "piece_id": a["pieceId"],
            "slot_id": a["slotId"],
            "holder": a["holder"],
            "payout": a["payout"],
            "remaining": a["remaining"],
        }
    )


# -- receivables: financing ---------------------------------------------------------------------------------


@_projection("receivables", "FinancingRequested")
def _financing_requested(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.requests.add(
        {
            "id": a["requestId"],
            "piece_id": a["pieceId"],
            "holder": a["holder"],
            "financier": a["financier"],
            "amount": a["amount"],
            "state": RequestState.REQUESTED,
            "discount_rate_bps": None,
            "day_count_basis": None,
            "fee": None,
            "discount": None,
            "price": None,
            "funded_piece_id": None,
            "requested_at": e.block_timestamp,
            "approved_at": None,
            "closed_at": None,
            "updated_block": e.block_number,
        }
    )
    p.change(p.pieces, a["pieceId"], e, open_request_id=a["requestId"])


@_projection("receivables", "FinancingApproved")
def _financing_approved(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.requests,
        a["requestId"],
        e,
        state=RequestState.APPROVED,
        discount_rate_bps=a["discountRateBps"],
        fee=a["fee"],
        day_count_basis=a["dayCountBasis"],
        approved_at=e.block_timestamp,
    )


@_projection("receivables", "FinancingFunded")
def _financing_funded(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    request = p.change(
        p.requests,
        a["requestId"],
        e,
        state=RequestState.FUNDED,
        discount=a["discount"],
        fee=a["fee"],
        price=a["price"],
        funded_piece_id=a["pieceId"],
        closed_at=e.block_timestamp,
    )
    p.change(p.pieces, request["piece_id"], e, open_request_id=None)


@_projection("receivables", "FinancingDeclined", "FinancingCancelled")
def _financing_closed(p: _Projector, e: ChainEvent) -> None:
    state = RequestState.DECLINED if e.name == "FinancingDeclined" else RequestState.CANCELLED
    request = p.change(p.requests, e.args["requestId"], e, state=state, closed_at=e.block_timestamp)
    p.change(p.pieces, request["piece_id"], e, open_request_id=None)


# -- warehouse receipts -------------------------------------------------------------------------------------


def _receipt_shell(receipt_id: int, e: ChainEvent) -> dict[str, Any]:
    """A receipt row before its ``ReceiptIssued`` fills it (the mint's ``Transfer`` comes first)."""
    return {
        "id": receipt_id,
        "warehouse": None,
        "owner": None,
        "lot_key_hash": None,
        "goods_hash": None,
        "document_hash": None,
        "quantity": None,
        "unit": None,
        "valuation": None,
        "valued_at": None,
        "expiry": None,
        "goods_status": GoodsStatus.SOUND,
        "state": ReceiptState.ACTIVE,
        "frozen": False,
        "pledge_id": None,
        "oracle": None,
        "issued_at": e.block_timestamp,
        "updated_block": e.block_number,
    }


@_projection("receipts", "Transfer")
def _receipt_transferred(p: _Projector, e: ChainEvent) -> None:
    receipt_id, sender, recipient = e.args["tokenId"], e.args["from"], e.args["to"]
    if sender == ZERO_ADDRESS and p.receipts.get(receipt_id) is None:
        p.receipts.add(_receipt_shell(receipt_id, e))
    p.change(p.receipts, receipt_id, e, owner=_address_or_none(recipient))


@_projection("receipts", "ReceiptIssued")
def _receipt_issued(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    if p.receipts.get(a["receiptId"]) is None:
        p.receipts.add(_receipt_shell(a["receiptId"], e))
    p.change(
        p.receipts,
        a["receiptId"],
        e,
        warehouse=a["warehouse"],
        owner=a["owner"],
        lot_key_hash=a["lotKeyHash"],
        goods_hash=a["goodsHash"],
        document_hash=a["documentHash"],
        quantity=a["quantity"],
        unit=_ascii(a["unit"]),
        valuation=a["valuation"],
        valued_at=a["valuedAt"],
        expiry=a["expiry"],
        issued_at=e.block_timestamp,
    )


@_projection("receipts", "ReceiptRevalued")
def _receipt_revalued(p: _Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, valuation=e.args["valuation"], valued_at=e.args["valuedAt"])


@_projection("receipts", "ReceiptGoodsStatusUpdated")
def _receipt_goods_status_updated(p: _Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, goods_status=GoodsStatus(e.args["status"]))


@_projection("receipts", "OracleAppointed")
def _oracle_appointed(p: _Projector, e: ChainEvent) -> None:
    warehouse, receipt_id, oracle = e.args["warehouse"], e.args["receiptId"], e.args["oracle"]
    if receipt_id != 0:
        p.change(p.receipts, receipt_id, e, oracle=_address_or_none(oracle))
    elif oracle == ZERO_ADDRESS:
        if p.oracles.get(warehouse) is not None:
            p.oracles.remove(warehouse)
    elif p.oracles.get(warehouse) is None:
        p.oracles.add({"warehouse": warehouse, "oracle": oracle, "updated_block": e.block_number})
    else:
        p.change(p.oracles, warehouse, e, oracle=oracle)


@_projection("receipts", "ReceiptFrozen", "ReceiptUnfrozen")
def _receipt_freeze_changed(p: _Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, frozen=e.name == "ReceiptFrozen")


_RECEIPT_STATE_AFTER: Mapping[str, ReceiptState] = {
    "ReceiptRedemptionRequested": ReceiptState.REDEMPTION_REQUESTED,
    "ReceiptRedemptionWithdrawn": ReceiptState.ACTIVE,
    "ReceiptRedeemed": ReceiptState.REDEEMED,
}


@_projection("receipts", *_RECEIPT_STATE_AFTER)
def _receipt_redemption_moved(p: _Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, state=_RECEIPT_STATE_AFTER[e.name])


@_projection("receipts", "PledgeRequested")
def _pledge_requested(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.pledges.add(
        {
            "id": a["pledgeId"],
            "receipt_id": a["receiptId"],
            "borrower": a["borrower"],
            "financier": a["financier"],
            "state": PledgeState.REQUESTED,
            "rate_bps": a["rateBps"],
            "due_date": a["dueDate"],
            "principal_requested": a["principal"],
            "principal": a["principal"],
            "interest_due": 0,
            "accrued_from": None,
            "funded_at": None,
            "closed_at": None,
            "margin_called_at": None,
            "requested_at": e.block_timestamp,
            "updated_block": e.block_number,
        }
    )
    p.change(p.receipts, a["receiptId"], e, state=ReceiptState.PLEDGE_REQUESTED, pledge_id=a["pledgeId"])


_PLEDGE_CLOSED: Mapping[str, PledgeState] = {
    "PledgeCancelled": PledgeState.CANCELLED,
    "PledgeDeclined": PledgeState.DECLINED,
    "PledgeReleased": PledgeState.RELEASED,
}


@_projection("receipts", *_PLEDGE_CLOSED)
def _pledge_closed(p: _Projector, e: ChainEvent) -> None:
    p.change(p.pledges, e.args["pledgeId"], e, state=_PLEDGE_CLOSED[e.name], closed_at=e.block_timestamp)
    p.change(p.receipts, e.args["receiptId"], e, state=ReceiptState.ACTIVE)


@_projection("receipts", "PledgeFunded")
def _pledge_funded(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        state=PledgeState.ACTIVE,
        principal=a["principal"],
        funded_at=a["fundedAt"],
        accrued_from=a["fundedAt"],
    )
    p.change(p.receipts, a["receiptId"], e, state=ReceiptState.PLEDGED)


@_projection("receipts", "PledgeRepaid")
def _pledge_repaid(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    previous = p.pledges.require(a["pledgeId"], e)["accrued_from"] or 0
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        principal=a["principalOutstanding"],
        interest_due=a["interestOutstanding"],
        accrued_from=max(previous, a["paidAt"]),  # as the contract: the accrual mark never moves back
    )
    p.pledge_repayments.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "pledge_id": a["pledgeId"],
            "amount": a["amount"],
            "interest_paid": a["interestPaid"],
            "principal_paid": a["principalPaid"],
            "principal_outstanding": a["principalOutstanding"],
            "interest_outstanding": a["interestOutstanding"],
        }
    )


@_projection("receipts", "PledgeEnforced")
def _pledge_enforced(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        state=PledgeState.ENFORCED,
        principal=a["principalOutstanding"],
        interest_due=a["interestOutstanding"],
        closed_at=e.block_timestamp,
    )
    p.change(p.receipts, a["receiptId"], e, state=ReceiptState.ACTIVE)


@_projection("receipts", "PledgeMarginCalled")
def _pledge_margin_called(p: _Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(p.pledges, a["pledgeId"], e, margin_called_at=e.block_timestamp)
    p.margin_calls.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "pledge_id": a["pledgeId"],
            "receipt_id": a["receiptId"],
            "borrower": a["borrower"],
            "financier": a["financier"],
            "principal": a["principal"],
            "valuation": a["valuation"],
            "maintenance_ratio_bps": a["maintenanceRatioBps"],
        }
    )


@_projection("receipts", "AdvanceRateSet")
def _advance_rate_set(p: _Projector, e: ChainEvent) -> None:
    financier = e.args["financier"]
    name = "receipts.advance_rate_bps" if financier == ZERO_ADDRESS else f"receipts.advance_rate_bps.{financier}"
    p.set_parameter(name, e.args["advanceRateBps"], e)


@_projection("receipts", "MaintenanceRatioSet")
def _maintenance_ratio_set(p: _Projector, e: ChainEvent) -> None:
    p.set_parameter("receipts.maintenance_ratio_bps", e.args["maintenanceRatioBps"], e)


#: Events kept in the raw log only: ERC-721 approvals (the service reads them from the chain when it needs
#: them; ERC-3525 value allowances are projected) and role administration.
RAW_ONLY_EVENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("registry", "RoleAdminChanged"),
        ("token", "Approval"),
        ("receivables", "Approval"),
        ("receivables", "ApprovalForAll"),
        ("receipts", "Approval"),
        ("receipts", "ApprovalForAll"),
        ("anchor", "AuditLogAnchored"),  # the service's audit log verifies against the chain, not the index
    }
)


def projected_events() -> set[tuple[str, str]]:
    """The ``(contract, event)`` pairs that change a projection; every other event is kept in the raw log only."""
    return set(_PROJECTIONS)


# ---------------------------------------------------------------------------------------------------------
# The indexer
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Page:
    first: int
    last: int
    last_header: BlockHeader
    events: list[ChainEvent]
    blocks: list[BlockHeader]
    log_count: int


@dataclass
class SyncStats:
    """What a sync did, for logs and benchmarks."""

    events: int = 0
    pages: int = 0
    blocks: int = 0
    reorgs: int = 0
    seconds: float = 0.0
    per_page: list[tuple[int, int, int]] = field(default_factory=list)
    """(first block, last block, events) of each page."""


class Indexer:
    """Keeps the event index of the ledger's contracts up to date with the chain.

    ``contracts`` maps the ledger's names (``registry``, ``token``, ``receivables``, ``receipts``; the
    artifact names ``ParticipantRegistry`` … are accepted too) to addresses; ``abis`` maps the same names to
    ABIs. A contract absent from ``contracts`` is simply not read. ``session_factory`` makes sessions on the
    index database (whose schema :func:`ledger.migrations.upgrade` creates).

    Pages: ``eth_getLogs`` covers at most ``page_size`` blocks. A sync starts with a few blocks and sizes
    each next page from the density of the last one, aiming at ``events_per_page`` logs (one database
    transaction each), so a chain mined at the node's ceiling (thousands of logs a block) is read in bounded
    pieces while a quiet chain is read 2,000 blocks at a time; a range the node refuses is halved.
    ``start_block`` is where a new index starts (the deployment's block); ``confirmations`` keeps that many
    of the newest blocks unread (0 on a chain with immediate finality, such as Besu QBFT).
    """

    def __init__(
        self,
        w3: Web3 | None,
        contracts: Mapping[str, str],
        abis: Mapping[str, Sequence[Mapping[str, Any]]],
        session_factory: Callable[[], Session],
        *,
        source: LogSource | None = None,
        start_block: int = 0,
        page_size: int = 2_000,
        events_per_page: int = 10_000,
        confirmations: int = 0,
    ) -> None:
        if source is None:
            if w3 is None:
                raise ValueError("give a Web3 connection or a log source")
            source = Web3LogSource(w3)
        self.source = source
        self.contracts = {_ledger_name(name): to_checksum_address(address) for name, address in contracts.items()}
        named_abis = {_ledger_name(name): abi for name, abi in abis.items()}
        missing = sorted(set(self.contracts) - set(named_abis))
        if missing:
            raise ValueError(f"no ABI for {', '.join(missing)}")
        self.decoder = EventDecoder(self.contracts, named_abis)
        self.session_factory = session_factory
        self.start_block = start_block
        self.page_size = page_size
        self.events_per_page = events_per_page
        self.confirmations = confirmations
        self.last_sync = SyncStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._listeners: list[Callable[[int], None]] = []
        self.indexed_through: int | None = None
        """The last block the index holds, as this indexer last wrote or found it (None before its first sync)."""
        self._chain_id: int | None = None

    # -- public operations ------------------------------------------------------------------------------------

    def on_indexed(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(block)`` (from the indexing thread) each time the index holds the blocks up to ``block``:
        after every page written, and after every sync. The service uses it to answer an operation confirmed
        only once its block is indexed, so that the next read shows it."""
        self._listeners.append(listener)

    def poke(self) -> None:
        """Sync now instead of at the next poll (an operation was just confirmed: its block is there to index)."""
        self._wake.set()

    def _indexed(self, block: int | None) -> None:
        self.indexed_through = block
        if block is None:
            return
        for listener in self._listeners:
            try:
                listener(block)
            except Exception:  # a listener's failure must not stop the indexer
                logger.exception("index listener failed")

    def sync_once(self, *, to_block: int | None = None) -> int:
        """Read every block from the checkpoint up to the chain's head (less ``confirmations``, or up to
        ``to_block``), following a reorganisation first if there was one. Returns how many events were
        stored."""
        return self._sync(to_block, interruptible=False)

    def _sync(self, to_block: int | None, *, interruptible: bool) -> int:
        started = time.perf_counter()
        stats = SyncStats()
        target = self.source.head() - self.confirmations
        if to_block is not None:
            target = min(target, to_block)
        for _attempt in range(5):
            checkpoint = self._reconcile(stats)
            try:
                self._read_forward(checkpoint, target, stats, interruptible=interruptible)
            except ChainMovedError as exc:
                logger.warning("the chain moved while reading (%s); reconciling again", exc)
                continue
            break
        stats.seconds = time.perf_counter() - started
        self.last_sync = stats
        self._indexed(self.indexed_block())
        return stats.events

    def run_forever(self, poll_interval: float = 1.0) -> None:
        """Sync, then sync again every ``poll_interval`` seconds until :meth:`stop` (which also ends a long
        sync between two pages). Errors of the node or the database are logged and retried with a growing
        pause. An inconsistent index (an event about a row the index does not hold: the chain moved under it in
        a way its rollback did not follow) is logged as an error and the index is rebuilt from the chain, so
        that the lists never stay wrong and the thread never dies."""
        pause = poll_interval
        while not self._stop.is_set():
            try:
                self._sync(None, interruptible=True)
                pause = poll_interval
            except (LogSourceError, OSError, OperationalError) as exc:
                pause = min(pause * 2, 60.0)
                logger.warning("indexer sync failed (%s); retrying in %.1f s", exc, pause)
            except IndexInconsistencyError as exc:
                logger.error("the index is inconsistent with the chain (%s); rebuilding it from the chain", exc)
                try:
                    self.rebuild()
                except (LogSourceError, OSError, OperationalError, IndexInconsistencyError) as again:
                    pause = min(pause * 2, 60.0)
                    logger.warning("index rebuild failed (%s); retrying in %.1f s", again, pause)
            self._wake.wait(pause)
            self._wake.clear()

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after its current sync."""
        self._stop.set()
        self._wake.set()

    def indexed_block(self) -> int | None:
        """The last block the index holds (None before the first sync)."""
        with self.session_factory() as session:
            checkpoint = session.get(IndexCheckpointRow, _CHECKPOINT_ID)
            return None if checkpoint is None else checkpoint.block_number

    def rebuild(self) -> int:
        """Forget everything indexed (raw events and projections) and read the chain again from the start
        block. Returns how many events were stored."""
        with self.session_factory() as session, session.begin():
            _clear(session, (*reversed(PROJECTIONS), EventRow, BlockRow, IndexCheckpointRow))
        return self.sync_once()

    def rebuild_projections(self) -> int:
        """Rebuild every projection from the raw event log alone (no chain access), in one transaction.
        Returns how many events were replayed."""
        with self.session_factory() as session, session.begin():
            return _replay(session)

    # -- reconciling with the chain ---------------------------------------------------------------------------

    def _reconcile(self, stats: SyncStats) -> IndexCheckpointRow:
        """The checkpoint, after rolling the index back to the chain if the chain no longer holds the block
        the checkpoint names."""
        with self.session_factory() as session, session.begin():
            checkpoint = self._checkpoint(session)
            if checkpoint.block_number is None:
                return _detached(checkpoint)
            header = self.source.headers([checkpoint.block_number]).get(checkpoint.block_number)
            if header is not None and header.hash == checkpoint.block_hash:
                return _detached(checkpoint)
            base = self._common_block(session)
            logger.warning(
                "reorganisation: block %s is no longer %s; rolling the index back to %s",
                checkpoint.block_number,
                checkpoint.block_hash,
                "the start" if base is None else f"block {base.number}",
            )
            _roll_back(session, base)
            checkpoint.block_number = None if base is None else base.number
            checkpoint.block_hash = None if base is None else base.hash
            stats.reorgs += 1
            return _detached(checkpoint)

    def _checkpoint(self, session: Session) -> IndexCheckpointRow:
        checkpoint = session.get(IndexCheckpointRow, _CHECKPOINT_ID)
        if self._chain_id is None:
            self._chain_id = self.source.chain_id()
        if checkpoint is None:
            checkpoint = IndexCheckpointRow(
                id=_CHECKPOINT_ID,
                chain_id=self._chain_id,
                contracts=dict(self.contracts),
                block_number=None,
                block_hash=None,
            )
            session.add(checkpoint)
            session.flush()
            return checkpoint
        if checkpoint.chain_id != self._chain_id or checkpoint.contracts != self.contracts:
            raise IndexMismatchError(
                f"the index holds chain {checkpoint.chain_id} contracts {checkpoint.contracts}, not chain "
                f"{self._chain_id} contracts {self.contracts}; rebuild it"
            )
        return checkpoint

    def _common_block(self, session: Session) -> BlockHeader | None:
        """The highest stored block the chain still holds, walking back from the newest."""
        below: int | None = None
        while True:
            query = select(BlockRow.number, BlockRow.hash, BlockRow.timestamp).order_by(BlockRow.number.desc())
            if below is not None:
                query = query.where(BlockRow.number < below)
            stored = session.execute(query.limit(64)).all()
            if not stored:
                return None
            chain = self.source.headers(number for number, _, _ in stored)
            for number, block_hash, _timestamp in stored:
                header = chain.get(number)
                if header is not None and header.hash == block_hash:
                    return header
            below = stored[-1][0]

    # -- reading forward --------------------------------------------------------------------------------------

    def _read_forward(
        self, checkpoint: IndexCheckpointRow, target: int, stats: SyncStats, *, interruptible: bool
    ) -> None:
        previous = (checkpoint.block_number, checkpoint.block_hash)
        first = self.start_block if previous[0] is None else previous[0] + 1
        addresses = self.decoder.addresses
        size = min(self.page_size, _FIRST_PAGE_BLOCKS)
        while first <= target and not (interruptible and self._stop.is_set()):
            last = min(first + size - 1, target)
            try:
                page = self._read_page(first, last, addresses, previous[1] if previous[0] is not None else None)
            except LogSourceError as exc:
                if size == 1:
                    raise
                size = max(1, size // 2)
                logger.info("eth_getLogs %s..%s failed (%s); page size now %s", first, last, exc, size)
                continue
            stored = self._write_page(page, previous)
            self._indexed(last)
            stats.events += stored
            stats.pages += 1
            stats.blocks += last - first + 1
            stats.per_page.append((first, last, len(page.events)))
            previous = (last, page.last_header.hash)
            size = self._next_page_size(last - first + 1, page.log_count)
            first = last + 1

    def _next_page_size(self, blocks: int, logs: int) -> int:
        """Up to four times the last page, less if its density says the next would exceed
        ``events_per_page`` logs."""
        size = min(self.page_size, blocks * 4)
        if logs:
            size = min(size, blocks * self.events_per_page // logs)
        return max(1, size)

    def _read_page(self, first: int, last: int, addresses: Sequence[str], previous_hash: str | None) -> _Page:
        """Read blocks ``first``..``last``. The last block's header is read before and after the logs: if it
        is the same both times, the logs are of that chain (a reorganisation below it would have changed its
        hash). Block times come from the logs when the node includes them, else from headers, fetched in
        one batch only for blocks that hold events."""
        pinned = self.source.headers([last]).get(last)
        if pinned is None:
            raise ChainMovedError(f"block {last} is gone")
        logs = self.source.logs(first, last, addresses) if addresses else []
        untimed = {log.block_number for log in logs if log.block_timestamp is None}
        headers = self.source.headers(untimed | {first, last})
        if headers.get(last) != pinned:
            raise ChainMovedError(f"block {last} changed while its logs were read")
        first_header = headers.get(first)
        if previous_hash is not None and (first_header is None or first_header.parent_hash != previous_hash):
            raise ChainMovedError(f"block {first} no longer follows the checkpoint")
        events: list[ChainEvent] = []
        blocks: dict[int, BlockHeader] = {}
        for log in sorted(logs, key=lambda entry: (entry.block_number, entry.log_index)):
            block = blocks.get(log.block_number)
            if block is None:
                header = headers.get(log.block_number)
                if header is None:
                    if log.block_timestamp is None:
                        raise ChainMovedError(f"block {log.block_number} is gone")
                    header = BlockHeader(log.block_number, log.block_hash, "", log.block_timestamp)
                block = blocks[log.block_number] = header
            if block.hash != log.block_hash:
                raise ChainMovedError(f"block {log.block_number} changed while its logs were read")
            event = self.decoder.decode(log, block.timestamp)
            if event is not None:
                events.append(event)
        event_blocks = {event.block_number for event in events}
        return _Page(
            first=first,
            last=last,
            last_header=pinned,
            events=events,
            blocks=[block for number, block in sorted(blocks.items()) if number in event_blocks],
            log_count=len(logs),
        )

    def _write_page(self, page: _Page, previous: tuple[int | None, str | None]) -> int:
        with self.session_factory() as session, session.begin():
            checkpoint = session.get(IndexCheckpointRow, _CHECKPOINT_ID)
            if checkpoint is None or (checkpoint.block_number, checkpoint.block_hash) != previous:
                raise ChainMovedError("the checkpoint moved under the indexer (another indexer on this database?)")
            events = page.events
            if events:
                stored = {
                    (block_hash, log_index)
                    for block_hash, log_index in session.execute(
                        select(EventRow.block_hash, EventRow.log_index).where(
                            EventRow.block_number.between(page.first, page.last)
                        )
                    )
                }
                if stored:
                    events = [e for e in events if (e.block_hash, e.log_index) not in stored]
            if events:
                _insert_many(session, _table(EventRow), [event.as_row() for event in events])
                known = set(
                    session.scalars(select(BlockRow.number).where(BlockRow.number.in_([b.number for b in page.blocks])))
                )
                new_blocks = [
                    {"number": b.number, "hash": b.hash, "timestamp": b.timestamp}
                    for b in page.blocks
                    if b.number not in known
                ]
                if new_blocks:
                    _insert_many(session, _table(BlockRow), new_blocks)
                projector = _Projector(session)
                projector.apply(events)
                projector.write()
            checkpoint.block_number = page.last
            checkpoint.block_hash = page.last_header.hash
        if events:
            logger.debug("indexed %d events of blocks %d..%d", len(events), page.first, page.last)
        return len(events)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` with one ``executemany``: a tight loop in C on SQLite, a pipeline on psycopg.

    (Measured here: psycopg's pipelined ``executemany`` beats SQLAlchemy's multi-row "insertmanyvalues"
    batches by about three times, because psycopg re-parses every long multi-row statement.)"""
    session.execute(table.insert(), rows)


def _ledger_name(name: str) -> str:
    return _NAME_OF_ARTIFACT.get(name, name)


def _detached(checkpoint: IndexCheckpointRow) -> IndexCheckpointRow:
    """A copy of the checkpoint that outlives its session."""
    return IndexCheckpointRow(
        id=checkpoint.id,
        chain_id=checkpoint.chain_id,
        contracts=dict(checkpoint.contracts),
        block_number=checkpoint.block_number,
        block_hash=checkpoint.block_hash,
    )


def _clear(session: Session, models: Iterable[type[Base]]) -> None:
    for model in models:
        session.execute(delete(_table(model)))


def _roll_back(session: Session, base: BlockHeader | None) -> None:
    """Delete what the index holds above ``base`` (everything when None) and rebuild the projections from
    the raw events that remain."""
    first_gone = 0 if base is None else base.number + 1
    removed = session.execute(delete(EventRow).where(EventRow.block_number >= first_gone)).rowcount  # type: ignore[attr-defined]
    session.execute(delete(BlockRow).where(BlockRow.number >= first_gone))
    if removed:
        _replay(session)


def _replay(session: Session) -> int:
    """Rebuild every projection from the raw event log, in chain order, in chunks."""
    _clear(session, reversed(PROJECTIONS))
    replayed = 0
    after: tuple[int, int] | None = None
    table = _table(EventRow)
    while True:
        query = select(table).order_by(table.c.block_number, table.c.log_index).limit(_REPLAY_CHUNK)
        if after is not None:
            query = query.where(tuple_(table.c.block_number, table.c.log_index) > tuple_(*after))
        chunk = [ChainEvent.from_row(row) for row in session.execute(query).mappings()]
        if not chunk:
            return replayed
        projector = _Projector(session)
        projector.apply(chunk)
        projector.write()
        replayed += len(chunk)
        after = (chunk[-1].block_number, chunk[-1].log_index)


# ---------------------------------------------------------------------------------------------------------
# Comparing indexes
# ---------------------------------------------------------------------------------------------------------


def snapshot_tables(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every row of the raw event log, its blocks and every projection, by table, in primary-key order, as
    plain Python values: two indexes of the same chain compare equal exactly when their snapshots do. (The
    checkpoint is left out: it says how far each has read, not what it holds.)"""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for model in INDEX_TABLES:
        if model is IndexCheckpointRow:
            continue
        table = _table(model)
        query = select(table).order_by(*table.primary_key.columns)
        snapshot[table.name] = [
            {name: _plain(value) for name, value in row.items()} for row in session.execute(query).mappings()
        ]
    return snapshot


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value
