"""The JSON-RPC transports of ledger/pipeline/rpc.py against a small HTTP server of the test's own: what anvil
never does (a chunked answer, a kept-alive connection closed by the server between calls, no server at all)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ledger.pipeline import BlockingJsonRpc, HttpConnections, JsonRpcClient, NodeUnavailable


class _Node:
    """Answers ``eth_blockNumber`` with ``0x2a``; ``chunked``: in chunks; ``close_after``: closes each connection
    after that many answers without saying so (as a node's idle timeout does)."""

    def __init__(self, *, chunked: bool = False, close_after: int | None = None) -> None:
        node = self
        self.calls = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.answered = 0

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.calls += 1
                body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x2a"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(body), 7):
                        part = body[start : start + 7]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                self.answered += 1
                if close_after is not None and self.answered >= close_after:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> _Node:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *args: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield int(probe.getsockname()[1])


def test_a_plain_node_url_gets_the_lean_transport_and_one_with_credentials_gets_httpx() -> None:
    assert HttpConnections.handles("http://127.0.0.1:8545")
    assert HttpConnections.handles("https://node.example:443/rpc?key=1")
    assert not HttpConnections.handles("https://user:secret@node.example/rpc")
    assert not HttpConnections.handles("ws://127.0.0.1:8546")


def test_a_chunked_answer_is_read_whole() -> None:
    async def calls(url: str) -> list[object]:
        rpc = JsonRpcClient(url, timeout=5)
        try:
            return [await rpc.call("eth_blockNumber") for _ in range(3)]
        finally:
            await rpc.aclose()

    with _Node(chunked=True) as node:
        assert asyncio.run(calls(node.url)) == ["0x2a"] * 3
        assert BlockingJsonRpc(node.url, timeout=5).call("eth_blockNumber") == "0x2a"


def test_a_kept_alive_connection_the_node_closed_is_replaced_and_the_call_answered_once() -> None:
    async def calls(url: str) -> list[object]:
        rpc = JsonRpcClient(url, timeout=5)
        try:
            answers = []
            for _ in range(4):
                answers.append(await rpc.call("eth_blockNumber"))
                await asyncio.sleep(0.05)  # the server closes its side meanwhile
            return answers
        finally:
            await rpc.aclose()

    with _Node(close_after=1) as node:
        assert asyncio.run(calls(node.url)) == ["0x2a"] * 4
        assert node.calls == 4
        reader = BlockingJsonRpc(node.url, timeout=5)
        assert [reader.call("eth_blockNumber") for _ in range(3)] == ["0x2a"] * 3
        assert node.calls == 7


def test_after_a_node_closed_every_kept_alive_connection_the_next_call_goes_on_a_new_one() -> None:
    """A restarted node has closed every idle connection: the call does not try them one by one (it would find
    two stale ones and give up); it drops them all and answers on a new connection."""

    async def calls(url: str) -> list[object]:
        rpc = JsonRpcClient(url, timeout=5)
        try:
            together = await asyncio.gather(*(rpc.call("eth_blockNumber") for _ in range(4)))  # four kept alive
            await asyncio.sleep(0.1)  # the server has closed all four meanwhile
            return [*together, await rpc.call("eth_blockNumber")]
        finally:
            await rpc.aclose()

    with _Node(close_after=1) as node:
        assert asyncio.run(calls(node.url)) == ["0x2a"] * 5
        assert node.calls == 5


def test_no_node_listening_is_node_unavailable(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"

    async def call() -> object:
        rpc = JsonRpcClient(url, timeout=2)
        try:
            return await rpc.call("eth_blockNumber")
        finally:
            await rpc.aclose()

    with pytest.raises(NodeUnavailable):
        asyncio.run(call())
    with pytest.raises(NodeUnavailable):
        BlockingJsonRpc(url, timeout=2).call("eth_blockNumber")
