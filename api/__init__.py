"""HTTP service of the supply-chain finance ledger: FastAPI routers over the `ledger` package."""
