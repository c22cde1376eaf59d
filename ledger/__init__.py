"""Supply-chain finance ledger: compile, deploy and drive the contracts from Python."""
