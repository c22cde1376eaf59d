"""A Safe 1.4.1 as a contract-account participant: it answers ERC-1271 ``isValidSignature(bytes32,bytes)``
with the magic value exactly when its owners' signatures reach its threshold (ledger/safe.py).

Each refusal is checked by its Safe error code, so a test fails if the Safe refuses for another reason than
the rule it names: GS020 (fewer signature bytes than the threshold needs), GS026 (a signer that is not an owner,
or owners not in strictly ascending order, which is also how a repeated owner is caught).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import Wei

from ledger.safe import (
    ERC1271_MAGIC_VALUE,
    InvalidSafeSetup,
    InvalidSafeSigners,
    SafeError,
    SafeInfrastructure,
    SafeOwners,
    create_safe,
    deploy_safe_infrastructure,
    is_valid_safe_signature,
    safe_message_hash,
    safe_owners,
    safe_signature,
)
from ledger.tooling.sandbox import Sandbox

FALLBACK_HANDLER_SLOT = keccak(text="fallback_manager.handler.address")
"""Where a Safe 1.4.1 keeps its fallback handler (``FallbackManager.FALLBACK_HANDLER_STORAGE_SLOT``)."""

DIGEST = keccak(text="scf-ledger act: assign receivable piece 7 to the bank")
OTHER_DIGEST = keccak(text="scf-ledger act: assign receivable piece 8 to the bank")


def account(name: str) -> LocalAccount:
    key: LocalAccount = Account.from_key(keccak(text=f"scf-ledger safe test {name}"))
    return key


@dataclass(frozen=True)
class SafeChain:
    w3: Web3
    infra: SafeInfrastructure
    safe: str
    owners: tuple[LocalAccount, LocalAccount, LocalAccount]
    outsider: LocalAccount


@pytest.fixture(scope="module")
def chain(sandbox: Sandbox) -> Iterator[SafeChain]:
    """The Safe contracts and one 2-of-3 Safe on the session's chain, undone when the module ends."""
    w3 = sandbox.w3
    deployer = account("deployer")
    owners = (account("owner a"), account("owner b"), account("owner c"))
    with sandbox.isolated():
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": deployer.address, "value": Wei(10**20)})
        infra = deploy_safe_infrastructure(w3, deployer, sandbox.artifacts)
        safe = create_safe(w3, infra, [owner.address for owner in owners], 2, deployer)
        yield SafeChain(w3, infra, safe, owners, account("outsider"))


def answer(chain: SafeChain, digest: bytes, signature: bytes) -> bytes | str:
    """What the Safe answers ``isValidSignature(digest, signature)``: the returned bytes4, or the revert message."""
    safe = chain.w3.eth.contract(address=Web3.to_checksum_address(chain.safe), abi=chain.infra.fallback_handler_abi)
    try:
        value: bytes = safe.get_function_by_signature("isValidSignature(bytes32,bytes)")(digest, signature).call()
    except (ContractLogicError, TransactionFailed) as exc:  # from anvil, from eth-tester
        return str(exc)
    return bytes(value)


def refusal(chain: SafeChain, digest: bytes, signature: bytes) -> str:
    result = answer(chain, digest, signature)
    assert isinstance(result, str), f"the Safe accepted the signature: {result!r}"
    assert not is_valid_safe_signature(chain.w3, chain.safe, digest, signature)
    return result


def test_the_safe_is_created_with_its_owners_threshold_and_fallback_handler(chain: SafeChain) -> None:
    safe = chain.w3.eth.contract(address=Web3.to_checksum_address(chain.safe), abi=chain.infra.singleton_abi)
    assert safe.functions.getOwners().call() == [owner.address for owner in chain.owners]
    assert safe.functions.getThreshold().call() == 2
    assert safe.functions.VERSION().call() == "1.4.1"
    handler = chain.w3.eth.get_storage_at(safe.address, FALLBACK_HANDLER_SLOT)
    assert Web3.to_checksum_address(handler[-20:]) == chain.infra.fallback_handler


def test_a_safes_owners_and_threshold_are_read_from_the_chain(chain: SafeChain) -> None:
    assert safe_owners(chain.w3, chain.safe) == SafeOwners(tuple(owner.address for owner in chain.owners), 2)


def test_an_address_that_is_not_a_safe_has_no_owners_to_read(chain: SafeChain) -> None:
    """An account without code, and a contract that is not a Safe (the proxy factory refuses the calls)."""
    with pytest.raises(SafeError, match="not a contract"):
        safe_owners(chain.w3, chain.outsider.address)
    with pytest.raises(SafeError, match="does not answer as a Safe"):
        safe_owners(chain.w3, chain.infra.proxy_factory)


def test_the_owners_sign_the_message_hash_the_fallback_handler_computes(chain: SafeChain) -> None:
    handler = chain.w3.eth.contract(address=chain.infra.fallback_handler, abi=chain.infra.fallback_handler_abi)
    on_chain = handler.functions.getMessageHashForSafe(chain.safe, encode(["bytes32"], [DIGEST])).call()
    assert safe_message_hash(chain.w3.eth.chain_id, chain.safe, DIGEST) == bytes(on_chain)


def test_two_of_three_owners_signing_make_the_safe_answer_the_magic_value(chain: SafeChain) -> None:
    a, b, c = chain.owners
    for pair in ((a, b), (b, c), (c, a)):
        signature = safe_signature(chain.w3, chain.safe, DIGEST, pair)
        assert len(signature) == 2 * 65
        assert answer(chain, DIGEST, signature) == ERC1271_MAGIC_VALUE
        assert is_valid_safe_signature(chain.w3, chain.safe, DIGEST, signature)


def test_all_three_owners_signing_are_above_the_threshold_and_accepted(chain: SafeChain) -> None:
    signature = safe_signature(chain.w3, chain.safe, DIGEST, chain.owners)
    assert answer(chain, DIGEST, signature) == ERC1271_MAGIC_VALUE


def test_one_owner_signature_is_below_the_threshold(chain: SafeChain) -> None:
    for owner in chain.owners:
        signature = safe_signature(chain.w3, chain.safe, DIGEST, [owner])
        assert "GS020" in refusal(chain, DIGEST, signature)


def test_a_non_owner_signature_does_not_count_toward_the_threshold(chain: SafeChain) -> None:
    a = chain.owners[0]
    signature = safe_signature(chain.w3, chain.safe, DIGEST, [a, chain.outsider])
    assert "GS026" in refusal(chain, DIGEST, signature)


def test_owner_signatures_of_another_digest_are_refused(chain: SafeChain) -> None:
    a, b, _ = chain.owners
    signature = safe_signature(chain.w3, chain.safe, OTHER_DIGEST, [a, b])
    assert answer(chain, OTHER_DIGEST, signature) == ERC1271_MAGIC_VALUE  # valid for the digest they signed
    assert "GS026" in refusal(chain, DIGEST, signature)


def test_one_owner_signing_twice_counts_once(chain: SafeChain) -> None:
    a = chain.owners[0]
    single = safe_signature(chain.w3, chain.safe, DIGEST, [a])
    assert "GS026" in refusal(chain, DIGEST, single + single)
    with pytest.raises(InvalidSafeSigners, match="twice"):
        safe_signature(chain.w3, chain.safe, DIGEST, [a, a])


def test_owner_signatures_must_be_in_ascending_owner_order(chain: SafeChain) -> None:
    a, b, _ = chain.owners
    low, high = sorted((a, b), key=lambda owner: int(owner.address, 16))
    ordered = safe_signature(chain.w3, chain.safe, DIGEST, [high, low])  # the order given does not matter
    assert ordered == safe_signature(chain.w3, chain.safe, DIGEST, [low]) + safe_signature(
        chain.w3, chain.safe, DIGEST, [high]
    )
    assert "GS026" in refusal(chain, DIGEST, ordered[65:] + ordered[:65])


def test_an_eth_sign_prefixed_owner_signature_is_not_a_plain_one(chain: SafeChain) -> None:
    """The owners sign the message hash itself: a signature over the ``eth_sign``-prefixed hash with v 27/28
    recovers another address, which owns nothing."""
    a, b, _ = chain.owners
    message_hash = safe_message_hash(chain.w3.eth.chain_id, chain.safe, DIGEST)
    prefixed = keccak(b"\x19Ethereum Signed Message:\n32" + message_hash)
    parts = []
    for owner in sorted((a, b), key=lambda owner: int(owner.address, 16)):
        signed = owner.unsafe_sign_hash(prefixed)
        parts.append(signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v]))
    assert "GS026" in refusal(chain, DIGEST, b"".join(parts))


def test_a_safe_with_an_impossible_threshold_is_not_created(chain: SafeChain) -> None:
    owners = [owner.address for owner in chain.owners]
    for threshold in (0, 4):
        with pytest.raises(InvalidSafeSetup, match="threshold"):
            create_safe(chain.w3, chain.infra, owners, threshold, account("deployer"))
    with pytest.raises(InvalidSafeSetup, match="distinct"):
        create_safe(chain.w3, chain.infra, [owners[0], owners[0]], 1, account("deployer"))
