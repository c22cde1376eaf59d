"""Following confirmations and reconciling with the node.

- **Receipts per block**: one task follows the chain block by block (checking each block's parent hash),
  matches the block's transactions with those in flight and confirms them from the block's logs (one
  ``eth_getLogs``); only those without logs have their receipts fetched, in one JSON-RPC batch.
- **A timeout means "look it up"**, never "failed". A reconciler looks up every transaction that has been in
  flight for a while: one the node does not know is sent again from the journal, in nonce order (same bytes,
  same hash, so it cannot execute twice); one whose nonce the node has already used for something else is
  ``replaced``. When the chain goes back (a reorg, or anvil restarted behind after a crash), the transactions
  of the lost blocks are put back in flight and sent again, in waves, one lost block at a time. This runs at
  start too, so a restarted service finishes what the previous one left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from eth_account.signers.local import LocalAccount

from ledger.aio import wait_event
from ledger.journal import TransactionKind, TransactionStatus
from ledger.pipeline.exceptions import NodeUnavailable, RpcError
from ledger.pipeline.rpc import _hex_int
from ledger.pipeline.state import PipelineState
from ledger.pipeline.submission import FILLER_GAS
from ledger.pipeline.tracked import _is_spent_attempt, _Outcome, _Tracked

logger = logging.getLogger("ledger.pipeline")

REPLACED_AFTER: Final = 5.0
"""Seconds a transaction's nonce must stay used by something else, with the transaction unknown to the node,
before it is given up as ``replaced``."""

GAS_FILL_BATCH: Final = 50
"""Receipts asked for in one batch when filling in gas used (:meth:`Confirmation._fill_gas_used`). The node
answers a batch as one piece of work (about 0.5 ms a receipt on anvil) before the next request it gets, the next
block's transactions and pre-flights included: 500 at a time held them up by about a quarter of a second."""


class Confirmation(PipelineState):
    """The pipeline's following and reconciling side (a part of :class:`~ledger.pipeline.Pipeline`)."""

    if TYPE_CHECKING:

        def _sign(
            self,
            account: LocalAccount | None,
            address: str,
            nonce: int,
            to: str | None,
            data: bytes,
            gas: int,
            value: int,
            operation_id: str,
            kind: TransactionKind,
        ) -> _Tracked: ...

        def _has_key(self, address: str) -> bool: ...

        async def _send(self, batch: Sequence[_Tracked]) -> None: ...

        async def _finalize_mined(self, mined: Sequence[tuple[_Tracked, Mapping[str, Any]]]) -> None: ...

    # -- following the chain ------------------------------------------------------------------------

    def _accept_header(self, header: Mapping[str, Any]) -> None:
        number = _hex_int(header["number"])
        self._block_hashes[number] = str(header["hash"])
        for old in [n for n in self._block_hashes if n <= number - self.block_window]:
            del self._block_hashes[old]
        base_fee = header.get("baseFeePerGas")
        self._base_fee = _hex_int(base_fee) if base_fee is not None else 0
        self._block_gas_limit = _hex_int(header["gasLimit"])

    async def _block_follower(self) -> None:
        failures = 0
        while True:
            try:
                await self._follow()
                failures = 0
            except (NodeUnavailable, RpcError) as exc:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning("following blocks: %s (attempt %d)", exc, failures)
            except Exception:
                logger.exception("following blocks failed")
            if self._registry.inflight:
                await asyncio.sleep(self._block_clock.delay(time.monotonic(), self.poll_interval))
            else:
                await asyncio.sleep(self.poll_interval)

    async def _follow(self) -> None:
        rpc = self._require_rpc()
        head = _hex_int(await rpc.call("eth_blockNumber"))
        self._block_clock.saw(head, time.monotonic())
        if head < self._followed:
            await self._rewind(head)
            return
        settled = head - self.confirmations
        if settled <= self._followed:
            return
        if self.on_block is not None and self._registry.inflight:
            self.on_block(settled)
        numbers = range(self._followed + 1, min(settled, self._followed + 32) + 1)
        headers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        for number, header in zip(numbers, headers, strict=True):
            if isinstance(header, RpcError) or header is None:
                return  # try again at the next poll
            expected_parent = self._block_hashes.get(number - 1)
            if expected_parent is not None and header["parentHash"] != expected_parent:
                await self._rewind(number - 1)
                return
            ours = [self._registry.by_hash[h] for h in header["transactions"] if h in self._registry.by_hash]
            if ours and not await self._collect_receipts(header, ours):
                return
            self._accept_header(header)
            self._followed = number

    async def _collect_receipts(self, header: Mapping[str, Any], ours: list[_Tracked]) -> bool:
        """Finalize our transactions mined in ``header``'s block; False when the block changed meanwhile.

        Receipts are expensive on anvil (about 0.5 ms of its time each, as much as accepting the transaction in
        the first place), logs are cheap. A transaction that emitted a log succeeded (a reverted one emits none,
        and every state change of the ledger's contracts emits an event): it is confirmed from the block's logs,
        and its gas used is filled in later, while the pipeline is idle. Only transactions without logs (reverted,
        or successful calls that emit nothing) have their receipt fetched at once.
        """
        rpc = self._require_rpc()
        block_hash = str(header["hash"])
        logs = await rpc.call("eth_getLogs", {"blockHash": block_hash})
        logged: dict[str, list[Mapping[str, Any]]] = {}  # transaction hash → its logs, kept for ``logs_of``
        for log in logs:
            if log.get("blockHash") == block_hash:
                logged.setdefault(str(log["transactionHash"]), []).append(log)
        confirmed = [t for t in ours if t.tx_hash in logged]
        unlogged = [t for t in ours if t.tx_hash not in logged]
        receipts = await rpc.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in unlogged])
        if any(not isinstance(r, Mapping) or r.get("blockHash") != block_hash for r in receipts):
            return False
        number = _hex_int(header["number"])
        await self._finalize(
            [_Outcome(t, TransactionStatus.CONFIRMED, number, block_hash, logs=logged[t.tx_hash]) for t in confirmed]
        )
        self._gas_unknown.extend(confirmed)
        await self._finalize_mined(list(zip(unlogged, receipts, strict=True)))
        return True

    async def _fill_gas_used(self) -> None:
        """Fetch the receipts of confirmed transactions whose gas used is not known yet, a batch at a time,
        while nothing is in flight (receipts compete with new transactions for the node's time)."""
        while self._gas_unknown and not self._registry.inflight:
            batch = [self._gas_unknown.popleft() for _ in range(min(GAS_FILL_BATCH, len(self._gas_unknown)))]
            batch = [t for t in batch if t.status is TransactionStatus.CONFIRMED and t.gas_used is None]
            if not batch:
                continue
            try:
                receipts = await self._require_rpc().batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in batch])
                filled = [
                    (t, _hex_int(r["gasUsed"]))
                    for t, r in zip(batch, receipts, strict=True)
                    if isinstance(r, Mapping) and r.get("blockHash") == t.block_hash
                ]
                await self._db(self._journal.write_gas_used, [(t.tx_hash, gas) for t, gas in filled])
            except BaseException:
                # Cancelled (the pipeline stops) or failed half-way: the batch goes back, so that the next fill
                # (stop()'s own, or the next start's) still writes it; writing a gas used twice is harmless.
                self._gas_unknown.extendleft(reversed(batch))
                raise
            for tracked, gas in filled:
                tracked.gas_used = gas

    async def _rewind(self, below: int) -> None:
        """The chain no longer holds the blocks we followed above some height (a reorg, or the node restarted
        behind): find the last block we share with it, put the transactions of the lost blocks back in flight
        and follow again from there."""
        rpc = self._require_rpc()
        known = sorted((n for n in self._block_hashes if n <= below), reverse=True)
        fork = (min(self._block_hashes) - 1) if self._block_hashes else -1
        if known:
            headers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in known])
            for number, header in zip(known, headers, strict=True):
                if isinstance(header, Mapping) and header.get("hash") == self._block_hashes[number]:
                    fork = number
                    break
        logger.warning("chain went back: following again from block %d (was at %d)", fork, self._followed)
        reopened = await self._neutralise_spent_attempts(await self._db(self._journal.reopen_after, fork))
        self._reopen(reopened)
        for number in [n for n in self._block_hashes if n > fork]:
            del self._block_hashes[number]
        self._followed = fork
        self._reconcile_soon.set()

    async def _neutralise_spent_attempts(self, reopened: list[_Tracked]) -> list[_Tracked]:
        """An attempt that ran out of gas and was signed again must not run a second time now that its block is
        lost: mined again it might succeed, beside its successor. Its nonce is given to a nonce filler instead (a
        zero transfer to the sender itself), so the successor, with a later nonce, is not stuck behind a gap."""
        out: list[_Tracked] = []
        for tracked in reopened:
            if not _is_spent_attempt(tracked.operation_id) or tracked.kind is not TransactionKind.OPERATION:
                out.append(tracked)
                continue
            if not self._has_key(tracked.sender):
                logger.error("%s (%s) is in flight again and cannot be neutralised: no key", tracked.tx_hash, tracked)
                out.append(tracked)
                continue
            filler = self._sign(
                None,
                tracked.sender,
                tracked.nonce,
                tracked.sender,
                b"",
                FILLER_GAS,
                0,
                tracked.operation_id,
                TransactionKind.NONCE_FILLER,
            )
            filler.status, filler.lost_block = TransactionStatus.SENT, tracked.lost_block
            assert filler.sent is not None
            filler.sent.set_result(None)
            await self._db(self._journal.replace_transaction, tracked.tx_hash, filler)
            logger.warning("%s ran out of gas in a lost block: its nonce goes to filler %s", tracked.tx_hash, filler)
            out.append(filler)
        return out

    def _reopen(self, rows: Sequence[_Tracked]) -> None:
        for row in rows:
            tracked = (
                self._registry.final.pop(row.operation_id, None) or self._registry.inflight.get(row.operation_id) or row
            )
            tracked.lost_block = row.lost_block
            self._registry.forget_logs(tracked.tx_hash)
            tracked.status = TransactionStatus.SENT
            tracked.block_number = tracked.block_hash = tracked.gas_used = None
            tracked.error_name = None
            tracked.error_args = None
            tracked.finalizing = False
            tracked.done = asyncio.Event()
            tracked.check_now = True
            self._registry.inflight[tracked.operation_id] = tracked
            self._registry.by_hash[tracked.tx_hash] = tracked
        if rows:
            logger.warning("%d transactions of lost blocks are in flight again", len(rows))

    # -- reconciling with the node ------------------------------------------------------------------

    async def _reconciler(self) -> None:
        while True:
            await wait_event(self._reconcile_soon, self.reconcile_interval)
            self._reconcile_soon.clear()
            try:
                await self._reconcile()
                await self._fill_gas_used()
            except (NodeUnavailable, RpcError) as exc:
                logger.info("reconciliation postponed: %s", exc)
            except Exception:
                logger.exception("reconciliation failed")

    async def _recover(self) -> None:
        """At start: re-check the blocks of recently finished transactions, track everything the journal holds in
        flight, and reconcile all of it with the node at once."""
        rpc = self._require_rpc()
        recent = await self._db(self._journal.recent_blocks, self._followed - self.block_window)
        lost_above: int | None = None
        if recent:
            numbers = sorted(recent)
            headers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
            for number, header in zip(numbers, headers, strict=True):
                if not isinstance(header, Mapping) or recent[number] != {header.get("hash")}:
                    lost_above = number - 1
                    break
        lost_in: dict[str, int | None] = {}
        if lost_above is not None:
            logger.warning("blocks above %d were lost while the pipeline was stopped", lost_above)
            reopened = await self._neutralise_spent_attempts(await self._db(self._journal.reopen_after, lost_above))
            lost_in = {t.operation_id: t.lost_block for t in reopened}
        for tracked in await self._db(self._journal.select_in_flight):
            tracked.lost_block = lost_in.get(tracked.operation_id)
            tracked.check_now = True
            self._registry.inflight[tracked.operation_id] = tracked
            self._registry.by_hash[tracked.tx_hash] = tracked
        if self._registry.inflight:
            logger.info("recovering %d in-flight transactions from the journal", len(self._registry.inflight))
        await self._reconcile(everything=True)

    async def _reconcile(self, *, everything: bool = False) -> None:
        """Compare in-flight transactions not seen for ``resend_after`` seconds with the node's nonces.

        Per sender, two cheap questions: how many transactions are mined (``latest`` count) and how many are
        mined or waiting in the pool (``pending`` count). A transaction whose nonce is at or above the pending
        count is neither mined nor waiting: the node lost it (or never got it), so it is sent again, in nonce
        order. One whose nonce is below the mined count was mined without the block follower seeing it (it was
        journaled by an earlier run, or its block was followed before it was tracked): it is looked up by hash
        and finalized from its receipt, or, when the node does not know its hash at two looks in a row, it is
        ``replaced``: another transaction used its nonce. Anything in between waits in the pool.
        """
        now = time.monotonic()
        due = [
            t
            for t in self._registry.inflight.values()
            if not t.finalizing
            and (t.sent is None or t.sent.done())
            and (everything or t.check_now or now - t.last_seen >= self.resend_after)
        ]
        if not due:
            return
        rpc = self._require_rpc()
        senders = sorted({t.sender for t in due})
        counts = await rpc.batch(
            [("eth_getTransactionCount", [s, tag]) for s in senders for tag in ("latest", "pending")]
        )
        mined_count: dict[str, int] = {}
        pool_count: dict[str, int] = {}
        for index, sender in enumerate(senders):
            latest, pending = counts[2 * index], counts[2 * index + 1]
            if not isinstance(latest, RpcError) and not isinstance(pending, RpcError):
                mined_count[sender] = _hex_int(latest)
                pool_count[sender] = max(_hex_int(pending), mined_count[sender])
        below: list[_Tracked] = []
        resend: list[_Tracked] = []
        newly_known: list[_Tracked] = []
        for tracked in due:
            if tracked.sender not in mined_count:
                continue
            tracked.check_now = False
            if tracked.nonce < mined_count[tracked.sender]:
                below.append(tracked)
                continue
            # Its nonce is free again (the chain went back, say): earlier looks that found it taken do not count.
            tracked.nonce_taken_rounds, tracked.nonce_taken_since = 0, None
            if tracked.nonce >= pool_count[tracked.sender]:
                resend.append(tracked)
            else:
                tracked.last_seen = now
                if tracked.status is TransactionStatus.PENDING:
                    tracked.status = TransactionStatus.SENT
                    newly_known.append(tracked)
        if newly_known:
            await self._db(self._journal.mark_sent, [t.tx_hash for t in newly_known])
        if below:
            await self._settle_mined_nonces(below, mined_count)
        resend = self._next_wave(resend)
        if resend:
            logger.info("sending again %d transactions the node does not hold", len(resend))
            for start in range(0, len(resend), self.max_batch):
                await self._send(resend[start : start + self.max_batch])

    def _next_wave(self, resend: list[_Tracked]) -> list[_Tracked]:
        """Which of the transactions the node does not hold to send again now, each sender's in nonce order.

        Transactions of lost blocks go back one lost block at a time: those of the earliest lost block still in
        flight, and the next block's only once those are mined. An operation confirmed in one block can be what
        an operation in a later block built on (an invoice confirmed after its registration was confirmed), and
        a node orders the transactions of one block as it likes, so sending two lost blocks' transactions
        together could mine them in the wrong order and fail the later one. Transactions the node simply dropped
        go once no lost block's transaction is in flight.
        """
        if not resend:
            return []  # the common round: nothing to send, no need to look through everything in flight
        lost = [
            t.lost_block for t in self._registry.inflight.values() if t.lost_block is not None and not t.status.is_final
        ]
        if not lost:
            return sorted(resend, key=lambda t: (t.sender, t.nonce))
        earliest = min(lost)
        # With a sender's transactions of the earliest lost block go the sender's lower nonces the node does not
        # hold either, whatever block they were lost from (a second crash can lose a re-sent one again, in a
        # later block): without them the wave would wait on a nonce gap for ever.
        reach: dict[str, int] = {}
        for tracked in resend:
            if tracked.lost_block == earliest:
                reach[tracked.sender] = max(reach.get(tracked.sender, -1), tracked.nonce)
        wave = [t for t in resend if t.nonce <= reach.get(t.sender, -1)]
        for tracked in resend:
            if tracked.nonce > reach.get(tracked.sender, -1):
                tracked.check_now = True  # due again at the next round
        return sorted(wave, key=lambda t: (t.sender, t.nonce))

    async def _settle_mined_nonces(self, below: list[_Tracked], mined_count: Mapping[str, int]) -> None:
        """Transactions whose nonce the node has used: finalize ours from their receipts, mark the others
        ``replaced``. The counts were read before the hashes are looked up, so a transaction mined in between is
        found by its hash and never taken for replaced."""
        rpc = self._require_rpc()
        infos: list[Any] = []
        for start in range(0, len(below), 2_000):
            chunk = below[start : start + 2_000]
            infos.extend(await rpc.batch([("eth_getTransactionByHash", [t.tx_hash]) for t in chunk]))
        mined: list[_Tracked] = []
        taken: list[_Tracked] = []
        for tracked, info in zip(below, infos, strict=True):
            if isinstance(info, RpcError) or tracked.status.is_final or tracked.finalizing:
                continue
            if info is None:
                # "Replaced" is final, so it takes two looks at least REPLACED_AFTER seconds apart: a node just
                # restarted from its state file can answer for a moment before it serves every block it loaded.
                tracked.nonce_taken_rounds += 1
                now = time.monotonic()
                if tracked.nonce_taken_since is None:
                    tracked.nonce_taken_since = now
                if tracked.nonce_taken_rounds >= 2 and now - tracked.nonce_taken_since >= REPLACED_AFTER:
                    taken.append(tracked)
                else:
                    tracked.check_now = True  # look again at the next round before giving it up
                continue
            tracked.nonce_taken_rounds, tracked.nonce_taken_since = 0, None
            block = info.get("blockNumber")
            if block is not None and _hex_int(block) <= self._followed:
                mined.append(tracked)
            # else: mined in a block the follower has not reached yet; it will collect it
        if mined:
            receipts = await rpc.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in mined])
            await self._finalize_mined([(t, r) for t, r in zip(mined, receipts, strict=True) if isinstance(r, Mapping)])
        if taken:
            for tracked in taken:
                logger.error(
                    "nonce %d of %s was used by another transaction: %s (%s) is replaced",
                    tracked.nonce,
                    tracked.sender,
                    tracked.tx_hash,
                    tracked.operation_id,
                )
            await self._finalize(
                [
                    _Outcome(
                        t,
                        TransactionStatus.REPLACED,
                        error_name="NonceTaken",
                        error_args={"nonce": t.nonce, "node_nonce": mined_count[t.sender]},
                    )
                    for t in taken
                ],
                superseded=True,
            )

    # -- finishing ----------------------------------------------------------------------------------

    async def _finalize(self, outcomes: Sequence[_Outcome], *, superseded: bool = False) -> None:
        todo = [o for o in outcomes if not o.tracked.status.is_final and not o.tracked.finalizing]
        if not todo:
            return
        for outcome in todo:
            outcome.tracked.finalizing = True
        try:
            await self._db(self._journal.write_outcomes, todo, superseded)
        except BaseException:
            for outcome in todo:
                outcome.tracked.finalizing = False
            raise
        for outcome in todo:
            tracked = outcome.tracked
            tracked.status = outcome.status
            tracked.block_number = outcome.block_number
            tracked.block_hash = outcome.block_hash
            tracked.gas_used = outcome.gas_used
            tracked.error_name = outcome.error_name
            tracked.error_args = outcome.error_args
            tracked.finalizing = False
            self._registry.inflight.pop(tracked.operation_id, None)
            self._registry.by_hash.pop(tracked.tx_hash, None)
            self._registry.keep(tracked)
            if outcome.logs is not None and outcome.status is TransactionStatus.CONFIRMED:
                self._registry.keep_logs_of(tracked.tx_hash, outcome.logs)
            tracked.done.set()
