"""The worker of this gateway's document outbox (:mod:`ledger.docex`): it sends the due envelopes to their peer
gateways over HTTP, signed by this gateway's account, and retries with a doubling backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

import httpx
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from ledger import docex
from ledger.aio import wait_event

logger = logging.getLogger("api.docex")


def http_post(client: httpx.Client) -> docex.Post:
    def post(url: str, body: bytes, headers: Mapping[str, str]) -> docex.Answer:
        answer = client.post(url, content=body, headers=dict(headers))
        return docex.Answer(answer.status_code, answer.headers, answer.content)

    return post


class DocexDeliverer:
    """Sends the outbox's due envelopes to their peers, at least every second and at once when poked."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        account: LocalAccount,
        gateway_peers: str,
        *,
        first_backoff: float,
        longest_backoff: float,
        timeout: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.account = account
        self.peers = docex.parse_peers(gateway_peers)
        self.first_backoff = first_backoff
        self.longest_backoff = longest_backoff
        self.timeout = timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="docex-deliverer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def poke(self) -> None:
        self._wake.set()

    def deliver_due(self) -> int:
        if not self.peers:  # a gateway without peers has nothing to send (nor reads its outbox every second)
            return 0
        with httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as client:
            return docex.deliver_due(
                self.sessions,
                self.account,
                self.peers,
                http_post(client),
                first_backoff=self.first_backoff,
                longest_backoff=self.longest_backoff,
            )

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.deliver_due)
            except Exception:  # a database hiccup: the rows stay pending and are tried again
                logger.exception("docex: delivering the outbox failed")
            await wait_event(self._wake, min(1.0, self.first_backoff))
            self._wake.clear()
