"""Reaching the node: the one way the ledger connects to a JSON-RPC node and checks its chain id.

:func:`connect` works against anvil locally and against a permissioned network (Hyperledger Besu with QBFT)
in production. It refuses to go on when the node's ``eth_chainId`` is not the configured one, and it decodes
proof-of-authority blocks, whose ``extraData`` (QBFT's validators, round and seals) is longer than the
32 bytes web3 otherwise accepts.

The well-known local chain is here too: its chain id and the public dev keys of the standard test mnemonic,
which the runtime refuses anywhere else (:mod:`ledger.secrets`) and uses as the operator's default on the
local chain (:func:`ledger.deployment.operator_account`). Running that local chain is development tooling
(:mod:`ledger.tooling.chain`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import requests
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from requests.adapters import HTTPAdapter
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3Exception
from web3.middleware import ExtraDataToPOAMiddleware

LOCAL_CHAIN_ID: Final = 31337
"""anvil's default chain id; the only chain on which the public dev keys may be used."""

DEV_MNEMONIC: Final = "test test test test test test test test test test test junk"
"""The standard test mnemonic (Hardhat, anvil): public, for the local chain only."""

DEV_ACCOUNTS: Final = 10
"""How many funded dev accounts anvil derives from :data:`DEV_MNEMONIC` (its default ``--accounts``)."""

HTTP_POOL_SIZE: Final = 32
"""Connections kept alive per node, so that concurrent senders do not open one per request."""


class ChainError(Exception):
    """The chain cannot be used: base of the chain errors (here and in :mod:`ledger.tooling.chain`).

    Its message is one line for the user."""


class ChainUnreachable(ChainError):
    """No JSON-RPC node answers at the configured URL."""


class ChainIdMismatch(ChainError):
    """The node serves another chain than the configured one."""

    def __init__(self, rpc_url: str, expected: int, actual: int) -> None:
        self.rpc_url = rpc_url
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"the node at {rpc_url} serves chain id {actual}, but chain id {expected} is configured "
            "(SCF_CHAIN_ID); refusing to use it"
        )


# -- connecting ------------------------------------------------------------------------------------------


def connect(rpc_url: str, expected_chain_id: int, *, timeout: float = 10.0) -> Web3:
    """A :class:`Web3` on the JSON-RPC node at ``rpc_url``, checked to serve chain ``expected_chain_id``.

    Requests go through one keep-alive HTTP session with a pool of connections, each waiting at most
    ``timeout`` seconds for an answer. The proof-of-authority middleware is injected at layer 0, so blocks
    of a Besu QBFT network (``extraData`` of ~100 bytes) decode; their ``extraData`` is then found under
    ``proofOfAuthorityData``.

    Raises :class:`ChainUnreachable` when nothing answers as a JSON-RPC node, :class:`ChainIdMismatch` when
    the node's ``eth_chainId`` is another one.
    """
    shown = redact_url(rpc_url)
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=HTTP_POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if urlsplit(rpc_url).hostname in ("127.0.0.1", "localhost", "::1"):
        session.trust_env = False  # no proxy or ~/.netrc for a node on this machine: no file lookups per request
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, session=session))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    # The validation middleware asks the node for its chain id before every eth_call and gas estimate (one more
    # round trip each); the chain id is checked once below, and transactions are signed with it locally.
    w3.middleware_onion.remove("validation")
    try:
        actual = w3.eth.chain_id
    except (OSError, Web3Exception, ValueError) as exc:
        session.close()
        raise ChainUnreachable(f"no JSON-RPC node answers at {shown}: {_describe(exc, timeout)}") from exc
    if actual != expected_chain_id:
        session.close()
        raise ChainIdMismatch(shown, expected_chain_id, actual)
    return w3


def redact_url(url: str) -> str:
    """``url`` without user, password or query string, which may hold credentials; for messages and logs."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return first_line[:200]


def dev_key(index: int = 0) -> bytes:
    """The private key of anvil's dev account ``index`` (BIP-44 path ``m/44'/60'/0'/0/<index>`` of
    :data:`DEV_MNEMONIC`). Public knowledge: for the local chain only."""
    if not 0 <= index < DEV_ACCOUNTS:
        raise ValueError(f"anvil has dev accounts 0 to {DEV_ACCOUNTS - 1}, not {index}")
    return bytes(key_from_seed(seed_from_mnemonic(DEV_MNEMONIC, ""), f"m/44'/60'/0'/0/{index}"))
