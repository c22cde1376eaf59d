"""The transaction pipeline: the one place that signs and sends the ledger's transactions.

Built for throughput and for never losing or duplicating an operation:

- **Nonces** are assigned per sender by the pipeline itself: read once from the node (``pending`` count, or one
  past the journal's highest nonce, whichever is higher), then incremented locally. Never
  ``eth_getTransactionCount`` under concurrency.
- **Signing** is local (EIP-1559, type 2) with an explicit gas limit (the caller's, or ``eth_estimateGas`` of
  that very call with a margin: never an estimate of another call of the same function, whose cost can differ,
  e.g. by a balance written from zero), ``maxFeePerGas`` from the base fee of the last block seen. The
  transaction hash is computed before anything is sent.
- **Out of gas is not a refusal**: a transaction that ran out of gas (its trace says so, or, where the node does
  not trace, it reverted without data having used all but the 1/64 EIP-150 keeps back) is not the contract's
  answer. Its operation is signed again with a fresh estimate, at least twice the gas, under a new nonce, and
  the spent attempt is kept in the journal as ``<operation id>~oog<n>``; only when the gas cannot grow any more
  does the operation fail, with ``OutOfGas``.
- **Journal first**: every signed transaction is committed to the journal (``ledger.journal``) before it is
  sent. Submissions that arrive together are journaled in one database transaction and sent in one JSON-RPC
  batch; many operations are in flight at once.
- **Receipts per block**: one task follows the chain block by block (checking each block's parent hash),
  matches the block's transactions with those in flight and confirms them from the block's logs (one
  ``eth_getLogs`` by block hash); only those without logs have their receipts fetched, in one JSON-RPC batch
  (``eth_getTransactionReceipt``). A reverted transaction is traced (``debug_traceTransaction``, or failing that
  replayed with ``eth_call`` at the parent block) and its custom error decoded by name. The logs of confirmed
  transactions are kept (the most recent ``keep_logs``): :meth:`Pipeline.logs_of` gives an operation's events
  without fetching its receipt again. While transactions are in flight on a chain mined at a regular interval,
  the follower asks for the head every few milliseconds around the moment the next block is due
  (:class:`~ledger.pipeline.block_clock.BlockClock`) and every ``poll_interval`` otherwise; a new block found
  then is announced (:attr:`Pipeline.on_block`) before its operations are confirmed.
- **A timeout means "look it up"**, never "failed". A reconciler looks up every transaction that has been in
  flight for a while: one the node does not know is sent again from the journal, in nonce order (same bytes,
  same hash, so it cannot execute twice); one whose nonce the node has already used for something else is
  ``replaced``. When the chain goes back (a reorg, or anvil restarted behind after a crash), the transactions
  of the lost blocks are put back in flight and sent again. This runs at start too, so a restarted service
  finishes what the previous one left.

The pipeline must be the only signer of its senders' accounts: a transaction signed elsewhere with the same
account takes a nonce the pipeline already assigned, and the pipeline's transaction is then ``replaced``.

The benchmarks' naive baseline (sign, send, wait for the receipt, one at a time) is ``bench.naive``.

The package, one module per concern: ``submission`` (nonces, gas, signing, journaling and sending), ``reverts``
(how a mined transaction finished: its decoded error, or out of gas and signed again), ``confirmation``
(following blocks, reconciling with the node, lost blocks sent again in waves), over ``rpc`` (the JSON-RPC
client), ``signing`` (RLP and local signing), ``tracked`` (the records of operations), ``registry`` (the
operations held in memory) and ``journal_store`` (the journal's SQL, behind the ``JournalStore`` protocol);
``pipeline`` holds the :class:`Pipeline` facade that composes them. ``submission``, ``reverts`` and
``confirmation`` are parts of that one class (mixins over the state ``state`` declares, since they share the
registry, the nonces, the queues and the chain head); the JSON-RPC client, the registry and the journal's store
are objects it holds.
"""

from ledger.pipeline.confirmation import REPLACED_AFTER
from ledger.pipeline.exceptions import (
    JournalWriteError,
    NodeUnavailable,
    PipelineError,
    PipelineNotRunning,
    RpcError,
    UnknownOperation,
)
from ledger.pipeline.journal_store import JournalStore, SqlJournalStore
from ledger.pipeline.pipeline import Pipeline
from ledger.pipeline.reverts import MAX_GAS_RETRIES, _jsonable, _looks_out_of_gas, _trace_ran_out_of_gas
from ledger.pipeline.rpc import BlockingJsonRpc, HttpConnections, JsonRpcClient, _classify_send_error, web3_log
from ledger.pipeline.signing import decode_dynamic_fee_transaction, sign_dynamic_fee_transaction
from ledger.pipeline.submission import DEFAULT_FALLBACK_GAS, FILLER_GAS, INTRINSIC_GAS
from ledger.pipeline.tracked import OUT_OF_GAS, Operation, _Outcome, _Supersession, _Tracked

__all__ = [
    "DEFAULT_FALLBACK_GAS",
    "FILLER_GAS",
    "INTRINSIC_GAS",
    "MAX_GAS_RETRIES",
    "OUT_OF_GAS",
    "REPLACED_AFTER",
    "BlockingJsonRpc",
    "HttpConnections",
    "JournalStore",
    "JournalWriteError",
    "JsonRpcClient",
    "NodeUnavailable",
    "Operation",
    "Pipeline",
    "PipelineError",
    "PipelineNotRunning",
    "RpcError",
    "SqlJournalStore",
    "UnknownOperation",
    "_Outcome",
    "_Supersession",
    "_Tracked",
    "_classify_send_error",
    "_jsonable",
    "_looks_out_of_gas",
    "_trace_ran_out_of_gas",
    "decode_dynamic_fee_transaction",
    "sign_dynamic_fee_transaction",
    "web3_log",
]
