"""The naive baseline the benchmarks measure the pipeline against (not used by the ledger itself)."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import TxReceipt


def naive_send(w3: Web3, account: LocalAccount, to: str, data: bytes) -> TxReceipt:
    """Send one call the way most web3.py services do: read the nonce, estimate gas, sign, send, and wait for
    the receipt before doing anything else. Only the benchmarks use it, as the baseline the pipeline is
    measured against."""
    transaction: dict[str, Any] = {
        "from": account.address,
        "to": to_checksum_address(to),
        "data": data,
        "value": 0,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    transaction["gas"] = w3.eth.estimate_gas(transaction)  # type: ignore[arg-type]
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    transaction["maxPriorityFeePerGas"] = 0
    transaction["maxFeePerGas"] = 2 * base_fee
    signed = account.sign_transaction(transaction)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.1)
