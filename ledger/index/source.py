"""Reading the chain: the logs and block headers the indexer needs, from a node or a stand-in.

:class:`LogSource` is what :class:`ledger.index.indexer.Indexer` reads through; :class:`Web3LogSource` is the
one for a web3 connection (raw, batched JSON-RPC on HTTP and IPC; ``w3.eth`` on eth-tester). A benchmark can
give its own source of a synthetic chain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.providers import JSONBaseProvider

from ledger.index.errors import LogSourceError
from ledger.pipeline.exceptions import NodeUnavailable, RpcError
from ledger.pipeline.rpc import plain_reader

logger = logging.getLogger(__name__)


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
        self._plain = plain_reader(w3)
        """One-call requests over a kept-alive ``http.client`` connection, without web3's request stack and
        ``requests`` (most of the idle service's CPU was this thread's polls through them); None where the
        node is not a plain HTTP(S) URL."""

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
        if self._plain is not None:
            try:
                return self._plain.call(method, *params)
            except (RpcError, NodeUnavailable):
                pass  # asked again through web3, which answers, retries or fails as it always did
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
