"""Safe (Safe{Wallet} 1.4.1) multisig accounts as ledger participants, and their ERC-1271 signatures.

A participant may be a contract account: a Safe whose N-of-M owners approve the ledger's EIP-712 acts. A
verifier asks the Safe ``isValidSignature(bytes32 digest, bytes signature)`` (ERC-1271, as OpenZeppelin's
``SignatureChecker`` does for a signer with code); the Safe answers through its fallback handler,
``CompatibilityFallbackHandler``, with the magic value ``0x1626ba7e`` when ``signature`` holds at least
``threshold`` valid owner signatures of the Safe's message hash of ``digest`` (:func:`safe_message_hash`).

- :func:`deploy_safe_infrastructure` deploys the Safe singleton, the proxy factory and the fallback handler,
  compiled from the npm package ``@safe-global/safe-contracts`` with the project
  (``contracts/safe/SafeImports.sol``, :data:`ledger.compiler.PACKAGED_CONTRACTS`).
- :func:`create_safe` creates a Safe (a proxy of the singleton) with given owners and threshold, its
  fallback handler set.
- :func:`safe_signature` builds the signature bytes from owner keys; :func:`is_valid_safe_signature` asks the
  Safe as ``SignatureChecker`` does.
- :func:`safe_owners` reads who speaks for a Safe on chain: its owners and its threshold.

Transactions are signed here with local keys and sent raw, as :mod:`ledger.deployment` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, Hash32, HexStr
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from ledger.compiler import Artifact

SAFE_VERSION: Final = "1.4.1"
"""The version of the Safe contracts deployed here (the pinned npm package ``@safe-global/safe-contracts``)."""

SAFE_CONTRACTS: Final = ("Safe", "SafeL2", "SafeProxyFactory", "CompatibilityFallbackHandler")
"""The artifacts this module needs (``SafeL2`` when the singleton is the event-emitting one)."""

ERC1271_MAGIC_VALUE: Final = bytes.fromhex("1626ba7e")
"""``bytes4(keccak256("isValidSignature(bytes32,bytes)"))``: the answer to a valid ERC-1271 signature."""

DOMAIN_SEPARATOR_TYPEHASH: Final = keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)")
"""The EIP-712 domain type of a Safe 1.3.0+ (``Safe.domainSeparator()``)."""

SAFE_MSG_TYPEHASH: Final = keccak(text="SafeMessage(bytes message)")
"""The EIP-712 type under which a Safe's owners sign a message (``CompatibilityFallbackHandler``)."""

_IS_VALID_SIGNATURE: Final = keccak(text="isValidSignature(bytes32,bytes)")[:4]
_GET_OWNERS: Final = keccak(text="getOwners()")[:4]
_GET_THRESHOLD: Final = keccak(text="getThreshold()")[:4]
_ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
GAS_HEADROOM: Final = 1.2
"""Gas limit = estimate × this."""


class SafeError(Exception):
    """A Safe could not be deployed, created or signed for. Its message is one line for the user."""


class SafeTransactionFailed(SafeError):
    """A transaction deploying or creating a Safe was refused, reverted or not mined in time."""


class InvalidSafeSetup(SafeError):
    """The owners or threshold asked for cannot make a Safe (no owner, a repeated owner, a threshold of 0
    or above the number of owners)."""


class InvalidSafeSigners(SafeError):
    """The signer list cannot make a Safe signature (empty, or one owner twice), or the digest is not 32 bytes."""


@dataclass(frozen=True)
class SafeOwners:
    """Who speaks for a Safe, as the chain says now."""

    owners: tuple[ChecksumAddress, ...]
    """In the Safe's own order (its linked list: the owner added last first)."""
    threshold: int
    """How many of :attr:`owners` must sign."""


@dataclass(frozen=True)
class SafeInfrastructure:
    """The Safe contracts shared by every Safe on one chain."""

    singleton: ChecksumAddress
    """The Safe (or SafeL2) every proxy delegates to."""
    proxy_factory: ChecksumAddress
    fallback_handler: ChecksumAddress
    """The ``CompatibilityFallbackHandler``: answers ERC-1271 for the Safes that set it."""
    singleton_abi: list[dict[str, Any]]
    proxy_factory_abi: list[dict[str, Any]]
    fallback_handler_abi: list[dict[str, Any]]


def deploy_safe_infrastructure(
    w3: Web3,
    deployer: LocalAccount,
    artifacts: Mapping[str, Artifact],
    *,
    singleton: str = "Safe",
    receipt_timeout: float = 120.0,
) -> SafeInfrastructure:
    """Deploy the Safe singleton (``singleton``: ``"Safe"``, or ``"SafeL2"``, which also emits an event per
    transaction for chains without traces), the proxy factory and the fallback handler from ``deployer``.

    ``artifacts`` come from :func:`ledger.compiler.compile_contracts`. Raises :class:`SafeTransactionFailed`
    when a deployment is refused or reverts, :class:`SafeError` when an artifact is missing.
    """
    if singleton not in ("Safe", "SafeL2"):
        raise SafeError(f"the Safe singleton is Safe or SafeL2, not {singleton!r}")
    names = (singleton, "SafeProxyFactory", "CompatibilityFallbackHandler")
    missing = [name for name in names if name not in artifacts or artifacts[name].bytecode == "0x"]
    if missing:
        raise SafeError(f"no compiled artifact for {', '.join(missing)} (is contracts/safe/SafeImports.sol there?)")
    addresses: list[ChecksumAddress] = []
    for name in names:
        receipt = _transact(w3, deployer, None, HexStr(artifacts[name].bytecode), name, receipt_timeout)
        address = receipt["contractAddress"]
        if address is None:  # pragma: no cover - a successful creation has an address
            raise SafeTransactionFailed(f"{name} was deployed without an address")
        addresses.append(address)
    return SafeInfrastructure(
        singleton=addresses[0],
        proxy_factory=addresses[1],
        fallback_handler=addresses[2],
        singleton_abi=list(artifacts[singleton].abi),
        proxy_factory_abi=list(artifacts["SafeProxyFactory"].abi),
        fallback_handler_abi=list(artifacts["CompatibilityFallbackHandler"].abi),
    )


def create_safe(
    w3: Web3,
    infra: SafeInfrastructure,
    owners: Sequence[str],
    threshold: int,
    sender: LocalAccount,
    *,
    salt_nonce: int = 0,
    receipt_timeout: float = 120.0,
) -> ChecksumAddress:
    """Create a Safe with ``owners`` and ``threshold``, its fallback handler ``infra.fallback_handler``, and
    return its address. ``sender`` pays; it need not be an owner. The address depends on the owners, the
    threshold, the handler and ``salt_nonce`` (CREATE2): the same Safe cannot be created twice, another
    ``salt_nonce`` makes another.

    Raises :class:`InvalidSafeSetup` for owners or a threshold a Safe refuses, :class:`SafeTransactionFailed`
    when the creation is refused or reverts.
    """
    checked = [Web3.to_checksum_address(owner) for owner in owners]
    if not checked:
        raise InvalidSafeSetup("a Safe needs at least one owner")
    if len(set(checked)) != len(checked):
        raise InvalidSafeSetup("a Safe's owners must be distinct")
    if _ZERO_ADDRESS in checked:
        raise InvalidSafeSetup("the zero address cannot own a Safe")
    if not 1 <= threshold <= len(checked):
        raise InvalidSafeSetup(f"the threshold must be between 1 and {len(checked)}, not {threshold}")
    singleton = w3.eth.contract(abi=infra.singleton_abi)
    initializer = singleton.encode_abi(
        "setup",
        args=[checked, threshold, _ZERO_ADDRESS, b"", infra.fallback_handler, _ZERO_ADDRESS, 0, _ZERO_ADDRESS],
    )
    factory = w3.eth.contract(address=infra.proxy_factory, abi=infra.proxy_factory_abi)
    data = factory.encode_abi("createProxyWithNonce", args=[infra.singleton, HexBytes(initializer), salt_nonce])
    receipt = _transact(w3, sender, infra.proxy_factory, HexStr(data), "Safe creation", receipt_timeout)
    created = [
        event
        for event in factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
        if event["address"] == infra.proxy_factory
    ]
    if len(created) != 1:  # pragma: no cover - createProxyWithNonce emits exactly one
        raise SafeTransactionFailed(f"the Safe creation emitted {len(created)} ProxyCreation events")
    return Web3.to_checksum_address(created[0]["args"]["proxy"])


def safe_domain_separator(chain_id: int, safe_address: str) -> bytes:
    """``Safe.domainSeparator()``: EIP-712 domain of the Safe at ``safe_address`` on chain ``chain_id``."""
    return keccak(
        encode(
            ["bytes32", "uint256", "address"],
            [DOMAIN_SEPARATOR_TYPEHASH, chain_id, Web3.to_checksum_address(safe_address)],
        )
    )


def safe_message_hash(chain_id: int, safe_address: str, digest: bytes) -> bytes:
    """The hash a Safe's owners sign so that the Safe accepts ``digest`` in ``isValidSignature(bytes32,bytes)``.

    ``CompatibilityFallbackHandler`` 1.4.1 passes ``abi.encode(digest)`` (the 32 bytes themselves) on as the
    message, and checks the owners' signatures of
    ``keccak256(0x19 0x01 ‖ domainSeparator ‖ keccak256(abi.encode(SAFE_MSG_TYPEHASH, keccak256(message))))``
    (EIP-712: the struct ``SafeMessage(bytes message)`` under the Safe's domain).
    """
    _check_digest(digest)
    struct_hash = keccak(encode(["bytes32", "bytes32"], [SAFE_MSG_TYPEHASH, keccak(digest)]))
    return keccak(b"\x19\x01" + safe_domain_separator(chain_id, safe_address) + struct_hash)


def safe_signature(w3: Web3, safe_address: str, digest: bytes, signers: Sequence[LocalAccount]) -> bytes:
    """The ERC-1271 signature by which ``signers`` approve ``digest`` for the Safe at ``safe_address``.

    Each signer signs :func:`safe_message_hash` directly (ECDSA over the hash, no ``eth_sign`` prefix, ``v``
    27 or 28), and the 65-byte signatures ``r ‖ s ‖ v`` are concatenated in ascending order of the signers'
    addresses, as ``Safe.checkSignatures`` requires. Whether the signers own the Safe and reach its threshold
    is the Safe's to decide (:func:`is_valid_safe_signature`). Raises :class:`InvalidSafeSigners` for no
    signer, one signer twice, or a digest that is not 32 bytes.
    """
    if not signers:
        raise InvalidSafeSigners("a Safe signature needs at least one signer")
    ordered = sorted(signers, key=lambda signer: int(signer.address, 16))
    if len({signer.address for signer in ordered}) != len(ordered):
        raise InvalidSafeSigners("a Safe counts each owner's signature once: a signer is given twice")
    message_hash = safe_message_hash(w3.eth.chain_id, safe_address, digest)
    signature = b""
    for signer in ordered:
        signed = signer.unsafe_sign_hash(Hash32(message_hash))
        signature += signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    return signature


def is_valid_safe_signature(w3: Web3, safe_address: str, digest: bytes, signature: bytes) -> bool:
    """Whether the Safe at ``safe_address`` accepts ``signature`` for ``digest``, asked as OpenZeppelin's
    ``SignatureChecker`` asks a contract signer: ``isValidSignature(digest, signature)`` answers the magic
    value; a revert (how a Safe refuses) or any other answer is a refusal."""
    _check_digest(digest)
    call: TxParams = {
        "to": Web3.to_checksum_address(safe_address),
        "data": HexStr("0x" + (_IS_VALID_SIGNATURE + encode(["bytes32", "bytes"], [digest, signature])).hex()),
    }
    try:
        answer = bytes(w3.eth.call(call))
    except Exception as exc:
        if _is_revert(exc):
            return False
        raise  # a node that cannot be asked is no answer
    return len(answer) >= 32 and answer[:4] == ERC1271_MAGIC_VALUE and answer[4:32] == bytes(28)


def safe_owners(w3: Web3, safe_address: str) -> SafeOwners:
    """The owners and threshold of the Safe at ``safe_address``, read from the chain (``getOwners()``,
    ``getThreshold()``). Raises :class:`SafeError` when the address has no code, or its code does not answer
    those two calls as a Safe does (a refusal, an answer that does not decode, a threshold of 0)."""
    address = Web3.to_checksum_address(safe_address)
    if not w3.eth.get_code(address):
        raise SafeError(f"{address} is not a contract: no Safe there")
    try:
        (owners,) = decode(["address[]"], _view(w3, address, _GET_OWNERS))
        (threshold,) = decode(["uint256"], _view(w3, address, _GET_THRESHOLD))
    except (DecodingError, SafeError) as exc:
        raise SafeError(f"{address} does not answer as a Safe: {_first_line(exc)}") from exc
    if not owners or not 1 <= threshold <= len(owners):
        raise SafeError(f"{address} does not answer as a Safe: {len(owners)} owners, threshold {threshold}")
    return SafeOwners(tuple(Web3.to_checksum_address(owner) for owner in owners), int(threshold))


def _view(w3: Web3, address: ChecksumAddress, selector: bytes) -> bytes:
    """The answer of a view of no arguments; :class:`SafeError` when the contract refuses it."""
    try:
        return bytes(w3.eth.call({"to": address, "data": HexStr("0x" + selector.hex())}))
    except Exception as exc:
        if _is_revert(exc):
            raise SafeError(f"it refused the call 0x{selector.hex()}") from exc
        raise  # a node that cannot be asked is no answer


def _is_revert(exc: Exception) -> bool:
    """Whether a call failed because the contract reverted: web3's ``ContractLogicError`` from a JSON-RPC node,
    or eth-tester's ``TransactionFailed`` (``"execution reverted: ..."``) from the in-process chain."""
    return isinstance(exc, ContractLogicError) or "execution reverted" in str(exc)


def _check_digest(digest: bytes) -> None:
    if len(digest) != 32:
        raise InvalidSafeSigners(f"the digest must be 32 bytes, not {len(digest)}")


def _transact(
    w3: Web3, account: LocalAccount, to: ChecksumAddress | None, data: HexStr, label: str, timeout: float
) -> TxReceipt:
    """Sign ``data`` (to ``to``, or a creation) as ``account``, send it raw and wait for a successful receipt."""
    call: TxParams = {"from": account.address, "data": data}
    if to is not None:
        call["to"] = to
    try:
        estimate = w3.eth.estimate_gas(call)
    except (Web3Exception, ValueError) as exc:
        raise SafeTransactionFailed(f"{label} would revert: {_first_line(exc)}") from exc
    transaction: dict[str, Any] = {
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gas": int(estimate * GAS_HEADROOM),
        "data": data,
        "value": 0,
        **_fees(w3),
    }
    if to is not None:
        transaction["to"] = to
    signed = account.sign_transaction(transaction)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
    except TimeExhausted as exc:
        raise SafeTransactionFailed(f"{label} was not mined within {timeout:g} s") from exc
    except (Web3Exception, ValueError) as exc:
        raise SafeTransactionFailed(f"{label} was refused by the node: {_first_line(exc)}") from exc
    if receipt["status"] != 1:
        raise SafeTransactionFailed(f"{label} reverted in block {receipt['blockNumber']}")
    return receipt


def _fees(w3: Web3) -> dict[str, int]:
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:
        return {"gasPrice": w3.eth.gas_price}
    tip = w3.eth.max_priority_fee
    return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
