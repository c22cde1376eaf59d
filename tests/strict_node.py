"""A strict node for the tests: a JSON-RPC proxy in front of anvil that answers as a production Besu QBFT node
would where the ledger could otherwise lean on anvil's leniency (docs/deploy-besu.md).

- Methods of the development nodes (``anvil_*``, ``evm_*``, ``hardhat_*``) are not served: each is recorded in
  :attr:`StrictNode.forbidden` and answered ``-32601 Method not found``, as Besu answers a method it does not have.
  Tests that move the chain's clock talk to anvil directly, never through the proxy, so whatever the proxy
  records was sent by the production code.
- ``eth_getLogs`` over a block range wider than ``logs_max_range`` is refused as Besu refuses it beyond its
  ``--rpc-max-logs-range`` (``EthGetLogs``: ``toBlock - fromBlock > maxLogRange`` answers
  ``RpcErrorType.EXCEEDS_RPC_MAX_BLOCK_RANGE``, ``-32005 Requested range exceeds maximum RPC range limit``).
  Every range asked for is recorded in :attr:`StrictNode.log_ranges`.
- ``free_gas``: ``eth_gasPrice`` and ``eth_maxPriorityFeePerGas`` answer 0, as on a network without gas fees
  (start anvil with ``base_fee=0, gas_price=0`` so that the blocks agree).
- ``debug=False``: ``debug_*`` methods are answered ``-32604 Method not enabled``, as Besu answers a method of an
  API left out of ``--rpc-http-api`` (the production profile of docs/deploy-besu.md enables no DEBUG); the
  pipeline then replays a reverted transaction with ``eth_call`` instead of tracing it.

Everything else is forwarded to the node behind it, one call at a time (a batch is answered as a batch).
:attr:`StrictNode.methods` counts every method called.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FORBIDDEN_PREFIXES = ("anvil_", "evm_", "hardhat_")
METHOD_NOT_FOUND = {"code": -32601, "message": "Method not found"}
METHOD_NOT_ENABLED = {"code": -32604, "message": "Method not enabled"}
RANGE_TOO_WIDE = {"code": -32005, "message": "Requested range exceeds maximum RPC range limit"}


class StrictNode:
    """The proxy; :func:`strict_node` runs one in a thread. ``url`` is what the service is given as SCF_RPC_URL."""

    def __init__(self, upstream: str, *, logs_max_range: int, free_gas: bool = True, debug: bool = False) -> None:
        self.upstream = upstream
        self.logs_max_range = logs_max_range
        self.free_gas = free_gas
        self.debug = debug
        self.forbidden: list[str] = []
        """Development-node methods that were called (and refused), in order."""
        self.log_ranges: list[tuple[int, int, bool]] = []
        """(fromBlock, toBlock, refused) of every eth_getLogs by block range."""
        self.methods: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, call: Any) -> dict[str, Any]:
        """The answer to one JSON-RPC call."""
        if not isinstance(call, dict):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        method = str(call.get("method"))
        request_id = call.get("id")
        with self._lock:
            self.methods[method] += 1
        if method.startswith(FORBIDDEN_PREFIXES):
            with self._lock:
                self.forbidden.append(method)
            return {"jsonrpc": "2.0", "id": request_id, "error": METHOD_NOT_FOUND}
        if not self.debug and method.startswith("debug_"):
            return {"jsonrpc": "2.0", "id": request_id, "error": METHOD_NOT_ENABLED}
        if self.free_gas and method in ("eth_gasPrice", "eth_maxPriorityFeePerGas"):
            return {"jsonrpc": "2.0", "id": request_id, "result": "0x0"}
        if method == "eth_getLogs":
            refusal = self._log_range_refusal(call.get("params") or [])
            if refusal is not None:
                return {"jsonrpc": "2.0", "id": request_id, "error": refusal}
        return self._forward(call)

    def _log_range_refusal(self, params: list[Any]) -> dict[str, Any] | None:
        query = params[0] if params and isinstance(params[0], dict) else {}
        if "blockHash" in query:
            return None
        head: int | None = None

        def number(tag: Any) -> int:
            nonlocal head
            if isinstance(tag, str) and tag.startswith("0x"):
                return int(tag, 16)
            if isinstance(tag, int):
                return tag
            if tag == "earliest":
                return 0
            if head is None:  # latest, pending, safe, finalized, or absent: the head
                head = int(self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber"})["result"], 16)
            return head

        first, last = number(query.get("fromBlock")), number(query.get("toBlock"))
        refused = last - first > self.logs_max_range
        with self._lock:
            self.log_ranges.append((first, last, refused))
        return RANGE_TOO_WIDE if refused else None

    def _forward(self, call: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.upstream, data=json.dumps(call).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(node: StrictNode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                payload = json.loads(body)
            except ValueError:
                answer: Any = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
            else:
                answer = [node.answer(c) for c in payload] if isinstance(payload, list) else node.answer(payload)
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def strict_node(
    upstream: str, *, logs_max_range: int, free_gas: bool = True, debug: bool = False
) -> Iterator[StrictNode]:
    """A :class:`StrictNode` in front of ``upstream``, serving in a thread until the block ends."""
    node = StrictNode(upstream, logs_max_range=logs_max_range, free_gas=free_gas, debug=debug)
    thread = threading.Thread(target=node.serve_forever, name="strict-node", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        node.close()
        thread.join(timeout=10)
