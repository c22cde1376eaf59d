"""Supply-chain finance ledger: compile, deploy and drive the contracts from Python."""

from __future__ import annotations


def _use_c_keccak() -> None:
    """Point eth-hash's shared hasher (``eth_hash.auto.keccak``, which eth-utils, eth-account and web3 call) at
    safe-pysha3's C Keccak-256. eth-hash tries pycryptodome first when both are installed, and pycryptodome
    allocates a C state through cffi on every hash: 7 to 12 µs a hash against about 1.5 µs. Setting the
    instance's hasher works whenever this runs, before or after the first hash (``ETH_HASH_BACKEND`` is only read
    once); an explicit ``ETH_HASH_BACKEND`` is left alone."""
    import os

    if os.environ.get("ETH_HASH_BACKEND"):
        return
    try:
        from eth_hash.auto import keccak
        from eth_hash.backends import pysha3
    except ImportError:  # no wheel for this platform: eth-hash's own choice stands
        return
    keccak.hasher = pysha3.keccak256  # type: ignore[assignment]
    keccak.preimage = pysha3.preimage  # type: ignore[assignment]


_use_c_keccak()
