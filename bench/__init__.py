"""``scf bench``: the ledger's benchmarks, every figure measured beside its reference in the same run.

One run starts its own anvil (interval mining, a high gas limit) in a scratch folder, deploys fresh and
measures, in order:

1. gas per operation (:mod:`bench.gas`): the gas report's figures beside the same action in the
   reference implementations (OpenZeppelin ERC-20 and ERC-721, an ERC-3525 reference), on eth-tester;
2. the node ceiling, the pipeline and the naive baseline (:mod:`bench.load`): one representative
   operation, a receivable piece split-transfer, pre-signed and sent in JSON-RPC batches, through
   :class:`ledger.pipeline.Pipeline`, and one call at a time the usual web3 way;
3. the REST service end to end (:mod:`bench.rest`): the real service in its own process, driven by a
   bounded asyncio + httpx load generator doing the whole receivable story; sustained confirmed operations
   per second, then latency at half that load, and the latency of the list routes;
4. scaling: operation cost and list-route latency as the ledger grows to 1,000, 10,000 and 100,000 pieces;
5. the indexer rebuilding its database from block 0.

:func:`bench.runner.run_benchmarks` runs them and :mod:`bench.report` writes
``bench/results/<date>.json``, ``docs/benchmarks.md`` and ``docs/benchmarks.png`` from the figures.

``scf bench-webhooks`` (:mod:`bench.webhooks`) is a run of its own: webhook delivery latency to healthy
receivers, and the ledger's confirmation latency, alone and beside a receiver that answers after 5 s and one
that answers 500.
"""
