"""JSON-RPC 2.0 over one pooled keep-alive HTTP client, and how to read the node's answers: the refusals of
``eth_sendRawTransaction``, call objects, quantities."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from ledger.pipeline.exceptions import NodeUnavailable, RpcError

# ---------------------------------------------------------------------------------------------------------------
# JSON-RPC over one pooled keep-alive HTTP client


class JsonRpcClient:
    """Minimal asynchronous JSON-RPC 2.0 client with batches (web3's provider stack costs more than the
    calls themselves at these rates)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            headers={"content-type": "application/json"},
        )
        self._ids = itertools.count(1)

    async def _post(self, payload: Any) -> Any:
        try:
            response = await self._client.post(self.url, content=json.dumps(payload, separators=(",", ":")))
        except httpx.TransportError as exc:
            raise NodeUnavailable(f"{self.url}: {exc!r}") from exc
        if response.status_code != 200:
            raise NodeUnavailable(f"{self.url}: HTTP {response.status_code}")
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise NodeUnavailable(f"{self.url}: malformed JSON-RPC response") from exc

    @staticmethod
    def _outcome(message: Mapping[str, Any]) -> Any:
        error = message.get("error")
        if error is not None:
            return RpcError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
        return message.get("result")

    async def call(self, method: str, *params: Any) -> Any:
        """One request; raises :class:`RpcError` for an error answer."""
        answer = await self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        if not isinstance(answer, Mapping):
            raise NodeUnavailable(f"{self.url}: unexpected answer to {method}")
        outcome = self._outcome(answer)
        if isinstance(outcome, RpcError):
            raise outcome
        return outcome

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A JSON-RPC batch: one result per call, in order, an :class:`RpcError` instance where it failed."""
        if not calls:
            return []
        first = next(self._ids)
        ids = range(first, first + len(calls))
        self._ids = itertools.count(first + len(calls))
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        answer = await self._post(payload)
        if isinstance(answer, Mapping):  # a node that refuses batches answers with a single error
            outcome = self._outcome(answer)
            raise outcome if isinstance(outcome, RpcError) else NodeUnavailable("batch answered with one object")
        by_id = {message.get("id"): message for message in answer if isinstance(message, Mapping)}
        results: list[Any] = []
        for i in ids:
            message = by_id.get(i)
            results.append(RpcError(-32603, "no answer in batch") if message is None else self._outcome(message))
        return results

    async def aclose(self) -> None:
        await self._client.aclose()


# Error messages of eth_sendRawTransaction, as geth, Besu, Nethermind and anvil word them.
_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "already in pool", "alreadyknown")
_NONCE_TOO_LOW = ("nonce too low", "nonce_too_low", "oldnonce", "nonce is too low")
_TRANSIENT = (
    "insufficient funds",
    "underpriced",
    "fee cap",
    "base fee",
    "basefee",
    "pool",
    "limit reached",
    "too many",
    "timeout",
    "busy",
    "try again",
    "upfront cost",
)


def _classify_send_error(message: str) -> str:
    text = message.lower()
    if any(marker in text for marker in _ALREADY_KNOWN):
        return "known"
    if any(marker in text for marker in _NONCE_TOO_LOW):
        return "nonce-too-low"
    if any(marker in text for marker in _TRANSIENT):
        return "transient"
    return "rejected"


def _call(sender: str, to: str | None, data: bytes, value: int) -> dict[str, str]:
    """The JSON-RPC call object of ``eth_call`` and ``eth_estimateGas``."""
    call = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
    if to is not None:
        call["to"] = to
    return call


def _hex_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def web3_log(log: Mapping[str, Any]) -> dict[str, Any]:
    """A log as JSON-RPC gives it (hex strings) in the shape web3 gives ``receipt["logs"]``: topics, data and
    hashes as bytes, numbers as ``int``, the address checksummed."""
    return {
        "address": to_checksum_address(log["address"]),
        "topics": [HexBytes(topic) for topic in log["topics"]],
        "data": HexBytes(log["data"]),
        "blockNumber": _hex_int(log["blockNumber"]),
        "blockHash": HexBytes(log["blockHash"]),
        "transactionHash": HexBytes(log["transactionHash"]),
        "transactionIndex": _hex_int(log["transactionIndex"]),
        "logIndex": _hex_int(log["logIndex"]),
        "removed": bool(log.get("removed", False)),
    }
