"""JSON-RPC 2.0 over a pool of keep-alive HTTP connections, and how to read the node's answers: the refusals
of ``eth_sendRawTransaction``, call objects, quantities.

The pool is :class:`HttpConnections`, a minimal HTTP/1.1 client on asyncio streams (``http`` and ``https``):
one JSON-RPC call costs it some 50 µs of CPU where ``httpx.AsyncClient`` spends about a millisecond (its
connection pool, anyio's stream attributes and httpcore's look-up of ``sniffio`` on every request), and the
service makes a few calls per request. A node URL with credentials, or one an ``HTTP(S)_PROXY`` setting
applies to, goes through httpx as before.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import ssl
import threading
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3

from ledger import jsontext
from ledger.abi import checksum_address
from ledger.pipeline.exceptions import NodeUnavailable, RpcError

# ---------------------------------------------------------------------------------------------------------------
# JSON-RPC over one pooled keep-alive HTTP client


class _Transport(Protocol):
    async def post(self, body: bytes) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class _HttpxTransport:
    """httpx, for URLs :class:`HttpConnections` leaves alone (credentials in the URL, a proxy)."""

    def __init__(self, url: str, timeout: float, connections: int) -> None:
        self.url = url
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"content-type": "application/json"},
        )

    async def post(self, body: bytes) -> tuple[int, bytes]:
        try:
            response = await self._client.post(self.url, content=body)
        except httpx.TransportError as exc:
            raise NodeUnavailable(f"{self.url}: {exc!r}") from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed: nothing of the request was answered."""


class HttpConnections:
    """POSTs to one ``http``/``https`` URL over at most ``connections`` keep-alive HTTP/1.1 connections.

    ``timeout`` bounds each step (connecting, sending, each read), as httpx's timeout does. A request that finds
    its kept-alive connection closed by the server before any byte of the answer is sent again on a new
    connection (once; the other idle connections are dropped with it, as a server that closed one, restarting,
    closed them all): the server never read it. Any other failure is :class:`NodeUnavailable`."""

    def __init__(self, url: str, *, timeout: float, connections: int) -> None:
        parts = urlsplit(url)
        self.url = url
        self._host = parts.hostname or "localhost"
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc
        self._head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Accept: application/json\r\nContent-Length: "
        ).encode("ascii")
        self._timeout = timeout
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self._slots = asyncio.Semaphore(connections)
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None

    @staticmethod
    def handles(url: str) -> bool:
        """Whether ``url`` is one this client serves (else httpx does): http or https, no credentials, no proxy."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.username is not None or not parts.hostname:
            return False
        proxies = urllib.request.getproxies()
        if parts.scheme in proxies or "all" in proxies:
            return bool(urllib.request.proxy_bypass(parts.hostname))
        return True

    async def post(self, body: bytes) -> tuple[int, bytes]:
        request = self._head + str(len(body)).encode("ascii") + b"\r\n\r\n" + body
        async with self._slots:
            for _ in range(2):
                reused = bool(self._idle)
                reader, writer = self._idle.pop() if reused else await self._connect()
                try:
                    status, content, keep = await self._exchange(reader, writer, request, reused)
                except _StaleConnection:
                    writer.close()
                    # The server closed it, so it closed the other idle ones too (a restarted node closes them
                    # all): the second attempt goes on a new connection, not on the next stale one.
                    await self.aclose()
                    continue
                except BaseException:
                    writer.close()
                    raise
                if keep:
                    self._idle.append((reader, writer))
                else:
                    writer.close()
                return status, content
            raise NodeUnavailable(f"{self.url}: the connection closed before an answer")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise NodeUnavailable(f"{self.url}: {exc!r}") from exc

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, reused: bool
    ) -> tuple[int, bytes, bool]:
        """Send ``request``, read the answer: (status, body, whether the connection may be kept)."""
        try:
            try:
                writer.write(request)
                async with asyncio.timeout(self._timeout):
                    await writer.drain()
                    head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if reused and not getattr(exc, "partial", b""):
                    raise _StaleConnection from exc
                raise
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                content = await self._chunked(reader)
            elif "content-length" in headers:
                content = await self._exactly(reader, int(headers["content-length"]))
            else:  # the body runs to the end of the connection
                async with asyncio.timeout(self._timeout):
                    content = await reader.read()
                return status, content, False
            connection = headers.get("connection", "").lower()
            keep = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
            return status, content, keep
        except _StaleConnection:
            raise
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise NodeUnavailable(f"{self.url}: {exc!r}") from exc

    async def _exactly(self, reader: asyncio.StreamReader, size: int) -> bytes:
        parts: list[bytes] = []
        while size > 0:
            async with asyncio.timeout(self._timeout):
                part = await reader.read(min(size, 1 << 20))
            if not part:
                raise asyncio.IncompleteReadError(b"".join(parts), size)
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            async with asyncio.timeout(self._timeout):
                line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                async with asyncio.timeout(self._timeout):
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                        pass
                return b"".join(parts)
            parts.append(await self._exactly(reader, size))
            async with asyncio.timeout(self._timeout):
                await reader.readexactly(2)

    async def aclose(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()


class BlockingJsonRpc:
    """Blocking JSON-RPC calls over one kept-alive ``http.client`` connection per thread: the ledger client's
    reads from worker threads, without web3's request stack and ``requests`` (most of a one-object GET's CPU).
    A call that finds its kept-alive connection closed by the server is sent again once on a new connection;
    use it for calls that may be repeated (``eth_call``). Raises :class:`RpcError` for an error answer and
    :class:`NodeUnavailable` when the node does not answer. Only for URLs :meth:`HttpConnections.handles`."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._tls else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Host": parts.netloc, "Content-Type": "application/json", "Accept": "application/json"}
        self._timeout = timeout
        self._local = threading.local()
        self._ids = itertools.count(1)

    def _connection(self) -> http.client.HTTPConnection:
        if self._tls:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def call(self, method: str, *params: Any) -> Any:
        body = jsontext.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        for _ in range(2):
            connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
            reused = connection is not None
            if connection is None:
                connection = self._local.connection = self._connection()
            try:
                connection.request("POST", self._target, body, self._headers)
                response = connection.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                self._local.connection = None
                if reused and isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
                    continue  # the server had closed the kept-alive connection: it never read this call
                raise NodeUnavailable(f"{self.url}: {exc!r}") from exc
            if response.will_close:
                connection.close()
                self._local.connection = None
            break
        else:
            raise NodeUnavailable(f"{self.url}: the connection closed before an answer")
        if response.status != 200:
            raise NodeUnavailable(f"{self.url}: HTTP {response.status}")
        try:
            answer = json.loads(content)
        except ValueError as exc:
            raise NodeUnavailable(f"{self.url}: malformed JSON-RPC response") from exc
        if not isinstance(answer, Mapping):
            raise NodeUnavailable(f"{self.url}: unexpected answer to {method}")
        outcome = JsonRpcClient._outcome(answer)
        if isinstance(outcome, RpcError):
            raise outcome
        return outcome


def plain_reader(w3: Web3) -> BlockingJsonRpc | None:
    """A :class:`BlockingJsonRpc` on ``w3``'s node when it is a plain HTTP(S) URL, else None (eth-tester, IPC,
    credentials, a proxy: web3 asks). The ledger client's reads and the indexer's requests go through it."""
    provider = w3.provider
    url = getattr(provider, "endpoint_uri", None)
    if not isinstance(provider, HTTPProvider) or not url or not HttpConnections.handles(str(url)):
        return None
    timeout = dict(provider.get_request_kwargs()).get("timeout", 10.0)
    return BlockingJsonRpc(str(url), timeout=float(timeout))


class JsonRpcClient:
    """Minimal asynchronous JSON-RPC 2.0 client with batches (web3's provider stack costs more than the
    calls themselves at these rates)."""

    def __init__(self, url: str, *, timeout: float = 10.0, connections: int = 16) -> None:
        self.url = url
        self._transport: _Transport = (
            HttpConnections(url, timeout=timeout, connections=connections)
            if HttpConnections.handles(url)
            else _HttpxTransport(url, timeout, connections)
        )
        self._ids = itertools.count(1)

    async def _post(self, payload: Any) -> Any:
        status, content = await self._transport.post(jsontext.dumps(payload))
        if status != 200:
            raise NodeUnavailable(f"{self.url}: HTTP {status}")
        try:
            return json.loads(content)
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
        await self._transport.aclose()


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
        "address": checksum_address(log["address"]),
        "topics": [HexBytes(topic) for topic in log["topics"]],
        "data": HexBytes(log["data"]),
        "blockNumber": _hex_int(log["blockNumber"]),
        "blockHash": HexBytes(log["blockHash"]),
        "transactionHash": HexBytes(log["transactionHash"]),
        "transactionIndex": _hex_int(log["transactionIndex"]),
        "logIndex": _hex_int(log["logIndex"]),
        "removed": bool(log.get("removed", False)),
    }
