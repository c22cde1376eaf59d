"""Deploy the ledger's contracts: the same as ``scf deploy``, for those who run scripts.

    .venv/bin/python scripts/deploy.py [--rpc-url URL] [--fresh]

compiles the contracts if they changed, deploys every contract and wires roles (or reuses the live deployment
recorded for the chain), and writes ``deployments/chain-<chainId>/deployed_addresses.json`` (Hardhat Ignition's
shape), ``abi/<ContractName>.json`` and ``deployment.json``. Settings come from ``SCF_*`` variables and ``.env``
(see ``.env.example``); start a local chain first with ``scf chain start``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import typer  # noqa: E402

from scf.cli import deploy_command  # noqa: E402

script = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
script.command()(deploy_command)

if __name__ == "__main__":
    script(prog_name="scripts/deploy.py")
