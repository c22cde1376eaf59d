"""Development tooling, not part of the running service: the local anvil chain (:mod:`ledger.tooling.chain`)
and the keeper of its state dumps (:mod:`ledger.tooling.state_keeper`), and the in-process contract sandbox
on eth-tester (:mod:`ledger.tooling.sandbox`) used by the contract tests, the gas report and the benchmarks.

The runtime (``ledger`` outside this package, and ``api``) never imports from here (``tests/test_layout.py``
checks it). Compiling the contracts and deploying them stay in the runtime (:mod:`ledger.compiler`,
:mod:`ledger.deployment`): the service itself compiles changed sources and deploys to a chain that has none of
them when it starts. Reaching a node is :mod:`ledger.node`.
"""
