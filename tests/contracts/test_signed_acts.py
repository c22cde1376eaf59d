"""Signed acts (contracts/SignedActs.sol): a participant's act as an EIP-712 typed message it signs itself.

Each test is named after a rule and fails without the check that makes it: the act performs exactly what the
participant's own transaction would, whoever relays it; nobody but the key the registry holds for the account
can produce it, the operator with every hosted key included; a signature binds one act of one type with all its
fields, once (its nonce), until its deadline, on one chain and one deployment, in its low-s form only, and only
while its key is the account's key; restated terms must be the chain's; a self-custody account never acts by
its own transaction; a lost key is replaced only by two distinct parties. The hashing of ``ledger.acts`` is
checked against eth-account's and the contract's. A Safe's own ERC-1271 rules (threshold, owners, order) are
proven in tests/contracts/test_safe.py; here a Safe is a participant whose acts need two of its three owners.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_utils import keccak
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt, Wei

from ledger import acts
from ledger.safe import create_safe, deploy_safe_infrastructure, safe_signature
from ledger.tooling.sandbox import CAST, Sandbox, _key_of, identity_hash, role_id
from tests.contracts.support import (
    ACCEPT_ANY,
    DAY,
    NO_REVIEW,
    assert_reverts,
    confirmed_piece,
    grant_credit,
    invoice_key,
    register_invoice,
)
from tests.contracts.warehouse_fixtures import issue_receipt, request_pledge

REASON = b"\x52" * 32
SIGNER = "signer"
"""The name under which a test relays from the signing key itself (see :func:`relaying_key`)."""


def registry(sb: Sandbox) -> Any:
    return sb.contracts["registry"]


def signed_acts(sb: Sandbox) -> Any:
    return sb.contracts["acts"]


def hosted_key(name: str) -> LocalAccount:
    """The key the sandbox (standing in for the operator's keystore) holds for cast member ``name``."""
    key: LocalAccount = Account.from_key(_key_of(name))
    return key


def signed(sb: Sandbox, document: dict[str, Any], key: LocalAccount) -> ContractFunction:
    """The ``SignedActs`` call of ``document`` signed by ``key``."""
    return sb.act_function(document, acts.sign(document, key))


def with_message(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A copy of ``document`` with some of its message's fields replaced."""
    other = copy.deepcopy(document)
    other["message"].update(fields)
    return other


def with_domain(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    other = copy.deepcopy(document)
    other["domain"].update(fields)
    return other


@contextmanager
def relaying_key(sb: Sandbox, key: LocalAccount, name: str = SIGNER) -> Iterator[str]:
    """Lets ``key`` send transactions of its own (funded, known to eth-tester), under the name ``name`` for the
    length of the block."""
    if key.address not in sb.w3.eth.accounts:
        sb.tester.add_account("0x" + bytes(key.key).hex())
    sb.w3.eth.send_transaction({"from": sb.w3.eth.accounts[0], "to": key.address, "value": Wei(10**18), "gas": 21_000})
    sb.accounts[name] = key.address
    try:
        yield name
    finally:
        del sb.accounts[name]


def confirmable_invoice(sb: Sandbox, buyer: str = "automaker") -> int:
    grant_credit(sb, buyer)
    return register_invoice(sb, buyer=buyer)


def effects(sb: Sandbox, receipt: TxReceipt) -> list[tuple[str, tuple[bytes, ...], bytes]]:
    """Every log of a transaction but the signed-acts contract's own: what the act did on the ledger."""
    relay = signed_acts(sb).address
    return [
        (log["address"], tuple(bytes(t) for t in log["topics"]), bytes(log["data"]))
        for log in receipt["logs"]
        if log["address"] != relay
    ]


def cash(sb: Sandbox) -> dict[str, int]:
    return {name: sb.balance(name) for name in CAST} | {c: sb.balance(c) for c in ("receivables", "receipts")}


# ---------------------------------------------------------------------------------------------------------
# A signed act performs exactly as the direct call would, whoever relays it
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """An act and the chain it is performed on: ``prepare`` builds the chain and returns the act's call
    arguments, the participant's direct call and a reader of the state the act changes."""

    act: str
    who: str
    prepare: Callable[[Sandbox], tuple[list[Any], ContractFunction, Callable[[], Any]]]


def _confirm(sb: Sandbox) -> tuple[list[Any], ContractFunction, Callable[[], Any]]:
    r = sb.contracts["receivables"]
    invoice_id = confirmable_invoice(sb)

    def state() -> Any:
        return r.functions.invoice(invoice_id).call(), r.functions.creditLine(sb.address("automaker")).call()

    return [invoice_id], r.functions.confirmInvoice(invoice_id), state


def _split(sb: Sandbox) -> tuple[list[Any], ContractFunction, Callable[[], Any]]:
    r = sb.contracts["receivables"]
    _, piece_id = confirmed_piece(sb)
    direct = r.get_function_by_signature("transferFrom(uint256,address,uint256)")(
        piece_id, sb.address("chemicals"), 400_000
    )

    def state() -> Any:
        return [r.functions.piece(p).call() for p in (piece_id, piece_id + 1)], r.functions.pathOf(piece_id + 1).call()

    return [piece_id, sb.address("chemicals"), 400_000], direct, state


def _fund(sb: Sandbox) -> tuple[list[Any], ContractFunction, Callable[[], Any]]:
    r = sb.contracts["receivables"]
    _, piece_id = confirmed_piece(sb)
    tx = sb.send(r.functions.requestFinancing(piece_id, 300_000, sb.address("bank"), *ACCEPT_ANY), "seatmaker")
    request_id = sb.events(tx, "receivables", "FinancingRequested")[0]["requestId"]
    sb.send(r.functions.approveFinancing(request_id, 450, 1_000, 365, NO_REVIEW), "bank")

    def state() -> Any:
        pieces = [r.functions.piece(p).call() for p in (piece_id, piece_id + 1)]
        return pieces, r.functions.financingRequest(request_id).call(), cash(sb)

    return [request_id], r.functions.fundFinancing(request_id), state


def _fund_pledge(sb: Sandbox) -> tuple[list[Any], ContractFunction, Callable[[], Any]]:
    w = sb.contracts["receipts"]
    receipt_id = issue_receipt(sb)
    pledge_id = request_pledge(sb, receipt_id)

    def state() -> Any:
        return w.functions.pledge(pledge_id).call(), w.functions.receipt(receipt_id).call(), cash(sb)

    return [pledge_id], w.functions.fundPledge(pledge_id), state


@contextmanager
def _as(name: str) -> Iterator[str]:
    yield name


SCENES = {
    "confirm an invoice": Scene("ConfirmInvoice", "automaker", _confirm),
    "split a piece": Scene("AssignPiece", "seatmaker", _split),
    "fund a financing": Scene("FundFinancing", "bank", _fund),
    "fund a pledge loan": Scene("FundPledge", "bank", _fund_pledge),
}


@pytest.mark.parametrize("relayer", ["operator", "outsider", SIGNER])
@pytest.mark.parametrize("scene", sorted(SCENES))
def test_a_signed_act_performs_exactly_as_the_participants_own_transaction_whoever_relays_it(
    ledger: Sandbox, scene: str, relayer: str
) -> None:
    """The same act from the same chain state at the same time, once sent by the (hosted) participant itself
    and once signed by it after it took its own key and relayed by the operator, a stranger or the signing key
    itself: the ledger's contracts emit the same events, byte for byte (the account, never the relayer, as the
    actor), and end in the same state; the relay adds only its evidence, ``ActPerformed``."""
    sb = ledger
    s = SCENES[scene]
    call_args, direct, state = s.prepare(sb)
    moment = sb.now() + 600
    with sb.isolated():
        sb.travel_to(moment)
        expected = effects(sb, sb.send(direct, s.who)), state()

    key = sb.adopt_self_custody(s.who)
    document = sb.act_document(s.act, s.who, call_args, nonce=9)
    with relaying_key(sb, key) if relayer == SIGNER else _as(relayer) as sender:
        sb.travel_to(moment)
        receipt = sb.send(signed(sb, document, key), sender)
    assert (effects(sb, receipt), state()) == expected
    assert sb.events(receipt, "acts", "ActPerformed") == [
        {
            "account": sb.address(s.who),
            "typeHash": acts.ACT_TYPES[s.act].type_hash,
            "signer": key.address,
            "nonce": 9,
            "digest": acts.digest(document),
        }
    ]


# ---------------------------------------------------------------------------------------------------------
# Only the account's own key
# ---------------------------------------------------------------------------------------------------------


def test_the_operator_holding_every_hosted_key_cannot_produce_an_act_of_a_self_custody_participant(
    ledger: Sandbox,
) -> None:
    """The operator's keystore holds every hosted key of the cast, the switched participant's own retired
    key among them: none of them signs an act of a self-custody participant, whoever relays it; nor does a
    signature that recovers to no one. Only the participant's own key does."""
    sb = ledger
    invoice_id = confirmable_invoice(sb)
    key = sb.adopt_self_custody("automaker")
    document = sb.act_document("ConfirmInvoice", "automaker", [invoice_id], nonce=1)
    account = sb.address("automaker")
    for name in CAST:
        forged = signed(sb, document, hosted_key(name))
        assert_reverts(
            sb, forged, "operator", "SignedActsInvalidSignature", account=account.lower(), signer=key.address.lower()
        )
    assert_reverts(
        sb, sb.act_function(document, b"\x00" * 65), "automaker", "SignedActsInvalidSignature", account=account.lower()
    )
    assert_reverts(
        sb, sb.act_function(document, b""), "outsider", "SignedActsInvalidSignature", account=account.lower()
    )
    assert sb.call(sb.contracts["receivables"].functions.invoice(invoice_id))[2] == 1  # still Registered
    sb.relay(document, key)


def test_a_participant_onboarded_with_its_own_key_acts_by_that_key_and_no_hosted_one(ledger: Sandbox) -> None:
    """A participant registered in self-custody from the start (its address is its key, which the operator
    never had): its act signed by any hosted key is refused, signed by its own key performed; its key's own
    transaction is refused too (it acts only by signed acts, which it may relay itself)."""
    sb = ledger
    own = Account.from_key(keccak(text="a supplier's own key, never in the keystore"))
    sb.send(
        registry(sb).functions.registerSelfCustody(own.address, identity_hash("own"), [role_id("supplier")]), "operator"
    )
    assert registry(sb).functions.signerOf(own.address).call() == own.address
    grant_credit(sb)
    register = [invoice_key(), sb.address("automaker"), 10_000, b"CNY", sb.now() + 30 * DAY, REASON]
    with relaying_key(sb, own, "own") as sender:
        document = sb.act_document("RegisterInvoice", sender, register, nonce=1)
        for name in ("operator", "seatmaker", "automaker"):
            assert_reverts(sb, signed(sb, document, hosted_key(name)), "operator", "SignedActsInvalidSignature")
        direct = sb.contracts["receivables"].functions.registerInvoice(*register)
        assert_reverts(sb, direct, sender, "RegistrySignedActsOnly", account=own.address.lower())
        receipt = sb.send(signed(sb, document, own), sender)
    assert sb.events(receipt, "receivables", "InvoiceRegistered")[0]["seller"] == own.address


def test_a_self_custody_accounts_own_transaction_is_refused(ledger: Sandbox) -> None:
    """A switched participant's address is a key the operator once held: a transaction sent with it is refused
    with ``RegistrySignedActsOnly`` by every contract that takes signed acts, before anything else is looked
    at; the same participant's signed act is performed."""
    sb = ledger
    r, token = sb.contracts["receivables"], sb.contracts["token"]
    invoice_id = confirmable_invoice(sb)
    key = sb.adopt_self_custody("automaker")
    account = sb.address("automaker")
    for fn in (
        r.functions.confirmInvoice(invoice_id),
        r.functions.setApprovalForAll(sb.address("bank"), True),
        token.functions.approve(sb.address("bank"), 1),
        token.functions.transfer(sb.address("bank"), 1),
        sb.contracts["receipts"].functions.setApprovalForAll(sb.address("bank"), True),
    ):
        assert_reverts(sb, fn, "automaker", "RegistrySignedActsOnly", account=account.lower())
    sb.relay(sb.act_document("ConfirmInvoice", "automaker", [invoice_id], nonce=1), key)


# ---------------------------------------------------------------------------------------------------------
# What a signature binds
# ---------------------------------------------------------------------------------------------------------


def _split_document(sb: Sandbox, nonce: int, to: str = "chemicals") -> tuple[dict[str, Any], LocalAccount]:
    _, piece_id = confirmed_piece(sb)
    key = sb.adopt_self_custody("seatmaker")
    return sb.act_document("AssignPiece", "seatmaker", [piece_id, sb.address(to), 1_000], nonce=nonce), key


def test_a_signed_act_is_refused_when_replayed(ledger: Sandbox) -> None:
    """A split that could be made again (the piece still holds enough) is made once: its replay, by any
    relayer, is refused with ``SignedActsNonceUsed``, and so is another act signed under the same nonce."""
    sb = ledger
    document, key = _split_document(sb, nonce=3)
    act = signed(sb, document, key)
    sb.send(act, "operator")
    seatmaker = sb.address("seatmaker")
    assert signed_acts(sb).functions.nonceUsed(seatmaker, 3).call()
    for relayer in ("operator", "outsider", "chemicals", "seatmaker"):
        assert_reverts(sb, act, relayer, "SignedActsNonceUsed", account=seatmaker.lower(), nonce=3)
    other = with_message(document, to=sb.address("trader"))
    assert_reverts(sb, signed(sb, other, key), "operator", "SignedActsNonceUsed", account=seatmaker.lower(), nonce=3)


def test_a_signed_act_is_refused_after_its_deadline(ledger: Sandbox) -> None:
    """The deadline is the last second the act may be performed: at that second it is, a second later it is
    refused with ``SignedActsExpired``."""
    sb = ledger
    document, key = _split_document(sb, nonce=1)
    deadline = sb.now() + 100
    document = with_message(document, deadline=deadline)
    act = signed(sb, document, key)
    with sb.isolated():
        sb.travel_to(deadline - 1)
        receipt = sb.send(act, "operator")
        assert sb.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == deadline
    sb.travel_to(deadline)
    refused = assert_reverts(sb, act, "operator", "SignedActsExpired", deadline=deadline)
    assert refused.arguments["timestamp"] > deadline


def test_a_signature_for_another_chain_is_refused(ledger: Sandbox) -> None:
    """The chain id is part of the domain: the same act signed for another chain does not verify here."""
    sb = ledger
    document, key = _split_document(sb, nonce=1)
    elsewhere = with_domain(document, chainId=sb.w3.eth.chain_id + 1)
    assert acts.digest(elsewhere) != acts.digest(document)
    act = sb.act_function(document, acts.sign(elsewhere, key))
    assert_reverts(sb, act, "operator", "SignedActsInvalidSignature", account=sb.address("seatmaker").lower())
    sb.relay(document, key)


def test_after_a_fork_the_domain_follows_the_new_chain_id(anvil_sandbox: Sandbox) -> None:
    """On a chain whose id changed after the deployment (a fork; anvil can change its chain id), the domain
    separator is computed again with the new id: an act signed for the chain id of the deployment is refused
    there, the same act signed for the new id is performed."""
    sb = anvil_sandbox
    a = signed_acts(sb)
    with sb.isolated():
        document, key = _split_document(sb, nonce=1)
        before = sb.w3.eth.chain_id
        sb.tester._rpc("anvil_setChainId", [before + 1])
        try:
            assert sb.w3.eth.chain_id == before + 1
            assert a.functions.eip712Domain().call()[3] == before + 1
            assert bytes(a.functions.DOMAIN_SEPARATOR().call()) == acts.domain_separator(before + 1, a.address)
            assert_reverts(sb, signed(sb, document, key), "operator", "SignedActsInvalidSignature")
            sb.relay(with_domain(document, chainId=before + 1), key)
        finally:
            sb.tester._rpc("anvil_setChainId", [before])


def test_a_signature_for_another_deployment_is_refused(ledger: Sandbox) -> None:
    """The verifying contract is part of the domain: an act signed for a second deployment of the contract
    (same registry, same chain) does not verify on this one, nor this one's on the other. The other, which the
    ledger's contracts do not trust as their forwarder, performs nothing for the account even with a
    signature of its own: the contracts see it as a caller of its own."""
    sb = ledger
    document, key = _split_document(sb, nonce=1)
    a = signed_acts(sb)
    b = sb.deploy(
        "SignedActs",
        registry(sb).address,
        sb.contracts["token"].address,
        sb.contracts["receivables"].address,
        sb.contracts["receipts"].address,
        sender="operator",
    )
    for_b = with_domain(document, verifyingContract=b.address)
    seatmaker = sb.address("seatmaker")
    arguments = acts.call_arguments(acts.ACT_TYPES["AssignPiece"], document["message"], acts.sign(for_b, key))
    assert_reverts(
        sb, a.functions.assignPiece(*arguments), "operator", "SignedActsInvalidSignature", account=seatmaker.lower()
    )
    ours = acts.call_arguments(acts.ACT_TYPES["AssignPiece"], document["message"], acts.sign(document, key))
    assert_reverts(
        sb, b.functions.assignPiece(*ours), "operator", "SignedActsInvalidSignature", account=seatmaker.lower()
    )
    assert_reverts(
        sb,
        b.functions.assignPiece(*arguments),
        "operator",
        "ReceivablesInsufficientAllowance",
        operator=b.address.lower(),
    )
    sb.send(a.functions.assignPiece(*ours), "operator")


def test_a_signature_of_one_act_type_is_refused_as_another(ledger: Sandbox) -> None:
    """The act's type is part of what is signed: ``DeclineFinancing`` and ``CancelFinancing`` have the same
    fields, so their ABI encodings are equal; a signature of one, submitted as the other, is refused."""
    sb = ledger
    r = sb.contracts["receivables"]
    _, piece_id = confirmed_piece(sb)
    tx = sb.send(r.functions.requestFinancing(piece_id, 1_000, sb.address("bank"), *ACCEPT_ANY), "seatmaker")
    request_id = sb.events(tx, "receivables", "FinancingRequested")[0]["requestId"]
    key = sb.adopt_self_custody("seatmaker")
    cancel = sb.act_document("CancelFinancing", "seatmaker", [request_id], nonce=1)
    decline = sb.act_document("DeclineFinancing", "seatmaker", [request_id], nonce=1)
    decline["message"]["deadline"] = cancel["message"]["deadline"]
    assert decline["message"] == cancel["message"]
    as_cancel = sb.act_function(cancel, acts.sign(decline, key))
    assert_reverts(sb, as_cancel, "operator", "SignedActsInvalidSignature", account=sb.address("seatmaker").lower())
    sb.relay(cancel, key)
    assert r.functions.financingRequest(request_id).call()[2] == 5  # Cancelled


def _changed(kind: str, value: Any, sb: Sandbox) -> Any:
    if kind == "address":
        return sb.address("trader") if value != sb.address("trader") else sb.address("bank")
    if kind.startswith("bytes"):
        raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
        return bytes([raw[0] ^ 1]) + raw[1:]
    return value + 1


def test_a_signature_is_refused_for_an_act_with_any_field_changed(ledger: Sandbox) -> None:
    """Every field is signed: the invoice registration a supplier signed, with any one of its fields changed
    (the account, each term, the nonce, the deadline), is refused; as signed it is performed."""
    sb = ledger
    grant_credit(sb)
    key = sb.adopt_self_custody("seatmaker")
    register = [invoice_key(), sb.address("automaker"), 10_000, b"CNY", sb.now() + 30 * DAY, REASON]
    document = sb.act_document("RegisterInvoice", "seatmaker", register, nonce=1)
    signature = acts.sign(document, key)
    for name, kind in acts.ACT_TYPES["RegisterInvoice"].all_fields:
        changed = with_message(document, **{name: _changed(kind, document["message"][name], sb)})
        refused = assert_reverts(sb, sb.act_function(changed, signature), "operator", "SignedActsInvalidSignature")
        assert refused.arguments["account"] == changed["message"]["account"].lower(), name
    sb.send(sb.act_function(document, signature), "operator")


def test_the_malleable_high_s_form_of_a_signature_is_refused(ledger: Sandbox) -> None:
    """(r, n − s, v flipped) is the same key's signature of the same act (it recovers to the signer), but
    only the low-s form is accepted: the other is refused, and the low-s one is then performed."""
    sb = ledger
    document, key = _split_document(sb, nonce=1)
    signature = acts.sign(document, key)
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    high_s = signature[:32] + (acts.SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    twin = keys.Signature(vrs=(28 - v, r, acts.SECP256K1_N - s))
    assert twin.recover_public_key_from_msg_hash(acts.digest(document)).to_checksum_address() == key.address
    assert acts.recover(document, high_s) is None
    assert_reverts(sb, sb.act_function(document, high_s), "operator", "SignedActsInvalidSignature")
    sb.send(sb.act_function(document, signature), "operator")


# ---------------------------------------------------------------------------------------------------------
# Keys change: rotation and recovery
# ---------------------------------------------------------------------------------------------------------


def test_a_rotated_out_key_signs_nothing_after_the_rotation(ledger: Sandbox) -> None:
    """``RotateKey`` signed by the key in place replaces it (``SignerRotated``); from then on the old key's
    acts are refused and the new key's performed. A rotation signed by any other key is refused, and the
    registry takes a rotation from the signed-acts contract only."""
    sb = ledger
    old = sb.adopt_self_custody("seatmaker")
    new = sb.signing_key("seatmaker", 1)
    seatmaker = sb.address("seatmaker")
    rotation = sb.act_document("RotateKey", "seatmaker", [new.address], nonce=1)
    assert_reverts(sb, signed(sb, rotation, hosted_key("seatmaker")), "operator", "SignedActsInvalidSignature")
    assert_reverts(sb, registry(sb).functions.rotateSigner(seatmaker, new.address), "operator", "RegistryNotSignedActs")
    receipt = sb.relay(rotation, old)
    assert sb.events(receipt, "registry", "SignerRotated") == [
        {"account": seatmaker, "previousSigner": old.address, "signer": new.address}
    ]
    assert registry(sb).functions.signerOf(seatmaker).call() == new.address
    _, piece_id = confirmed_piece(sb, seller="chemicals")
    sb.send(
        sb.contracts["receivables"].functions.transferFrom(sb.address("chemicals"), seatmaker, piece_id), "chemicals"
    )
    document = sb.act_document("AssignPiece", "seatmaker", [piece_id, sb.address("trader"), 1_000], nonce=2)
    assert_reverts(
        sb,
        signed(sb, document, old),
        "operator",
        "SignedActsInvalidSignature",
        account=seatmaker.lower(),
        signer=new.address.lower(),
    )
    sb.relay(document, new)


def test_a_lost_key_replaced_by_recovery_signs_nothing_after(ledger: Sandbox) -> None:
    """The operator proposes a new key and a regulator approves it: the lost key's acts are refused from then
    on, even acts it signed before the recovery; the new key's are performed."""
    sb = ledger
    lost = sb.adopt_self_custody("seatmaker")
    new = sb.signing_key("seatmaker", 1)
    seatmaker = sb.address("seatmaker")
    _, piece_id = confirmed_piece(sb, seller="chemicals")
    sb.send(
        sb.contracts["receivables"].functions.transferFrom(sb.address("chemicals"), seatmaker, piece_id), "chemicals"
    )
    document = sb.act_document("AssignPiece", "seatmaker", [piece_id, sb.address("trader"), 1_000], nonce=5)
    signed_before = signed(sb, document, lost)
    sb.send(registry(sb).functions.proposeKeyRecovery(seatmaker, new.address), "operator")
    sb.send(registry(sb).functions.approveKeyRecovery(seatmaker, new.address), "regulator")
    assert_reverts(
        sb,
        signed_before,
        "operator",
        "SignedActsInvalidSignature",
        account=seatmaker.lower(),
        signer=new.address.lower(),
    )
    sb.relay(document, new)


def test_key_recovery_needs_an_operator_to_propose_and_another_party_a_regulator_to_approve(ledger: Sandbox) -> None:
    """Two distinct parties replace a lost key: only an operator proposes, only a regulator approves, the operator
    can never hold the regulator role, and a proposer cannot approve its own proposal even after it gave up the
    operator role and was admitted as a regulator; an approval must match
    a standing proposal (same account, same key) of someone who is still an operator, and a proposal is used
    once. The events name both parties."""
    sb = ledger
    reg = registry(sb)
    sb.adopt_self_custody("seatmaker")
    seatmaker = sb.address("seatmaker")
    new = sb.signing_key("seatmaker", 1).address
    other = sb.signing_key("seatmaker", 2).address
    assert_reverts(
        sb, reg.functions.proposeKeyRecovery(seatmaker, new), "regulator", "AccessControlUnauthorizedAccount"
    )
    assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, new), "regulator", "RegistryNoRecoveryProposed")
    assert_reverts(
        sb, reg.functions.proposeKeyRecovery(sb.address("chemicals"), new), "operator", "RegistryCustodyMismatch"
    )

    proposed = sb.send(reg.functions.proposeKeyRecovery(seatmaker, new), "operator")
    proposed_at = sb.w3.eth.get_block(proposed["blockNumber"])["timestamp"]
    assert sb.events(proposed, "registry", "KeyRecoveryProposed") == [
        {
            "account": seatmaker,
            "previousSigner": sb.signing_key("seatmaker").address,
            "signer": new,
            "operator": sb.address("operator"),
            "expiresAt": proposed_at + reg.functions.RECOVERY_WINDOW().call(),
        }
    ]
    assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, new), "operator", "AccessControlUnauthorizedAccount")
    # The operator cannot become a regulator to approve its own proposal: not by its own grant, not by a regulator's.
    make_operator_regulator = reg.functions.grantRole(role_id("regulator"), sb.address("operator"))
    assert_reverts(sb, make_operator_regulator, "operator", "AccessControlUnauthorizedAccount")
    assert_reverts(sb, make_operator_regulator, "regulator", "RegistryRolesSeparated")
    with sb.isolated():  # nor can a proposer that gave up the operator role and was admitted as a regulator
        sb.send(reg.functions.grantRole(role_id("operator"), sb.address("agent")), "operator")
        sb.send(reg.functions.proposeKeyRecovery(seatmaker, other), "agent")
        sb.send(reg.functions.renounceRole(role_id("operator"), sb.address("agent")), "agent")
        sb.send(reg.functions.grantRole(role_id("regulator"), sb.address("agent")), "regulator")
        assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, other), "agent", "RegistryNoRecoveryProposed")
    assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, other), "regulator", "RegistryNoRecoveryProposed")
    assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, new), "bank", "AccessControlUnauthorizedAccount")

    with sb.isolated():  # a proposal dies with its proposer's operator role
        sb.send(reg.functions.grantRole(role_id("operator"), sb.address("agent")), "operator")
        sb.send(reg.functions.proposeKeyRecovery(seatmaker, other), "agent")
        sb.send(reg.functions.revokeRole(role_id("operator"), sb.address("agent")), "operator")
        assert_reverts(
            sb, reg.functions.approveKeyRecovery(seatmaker, other), "regulator", "RegistryNoRecoveryProposed"
        )

    approved = sb.send(reg.functions.approveKeyRecovery(seatmaker, new), "regulator")
    assert sb.events(approved, "registry", "KeyRecovered") == [
        {
            "account": seatmaker,
            "previousSigner": sb.signing_key("seatmaker").address,
            "signer": new,
            "operator": sb.address("operator"),
            "regulator": sb.address("regulator"),
        }
    ]
    assert reg.functions.signerOf(seatmaker).call() == new
    assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, new), "regulator", "RegistryNoRecoveryProposed")
    # Used once, even when the key it replaced is back in place (the new key rotated back to it).
    back = sb.act_document("RotateKey", "seatmaker", [sb.signing_key("seatmaker").address], nonce=1)
    sb.relay(back, sb.signing_key("seatmaker", 1))
    assert_reverts(sb, reg.functions.approveKeyRecovery(seatmaker, new), "regulator", "RegistryNoRecoveryProposed")


def test_adopting_self_custody_needs_a_key_other_than_the_hosted_one(ledger: Sandbox) -> None:
    """Switching to self-custody retires the hosted key, so the account's own address (the key the operator
    holds) is refused as its signer, as is the zero address; a participant switches once, and the signed-acts
    contract is set once."""
    sb = ledger
    reg = registry(sb)
    seatmaker = sb.address("seatmaker")
    zero = "0x" + "00" * 20
    assert_reverts(
        sb,
        reg.functions.adoptSelfCustody(seatmaker, seatmaker),
        "operator",
        "RegistryInvalidSigner",
        signer=seatmaker.lower(),
    )
    assert_reverts(sb, reg.functions.adoptSelfCustody(seatmaker, zero), "operator", "RegistryInvalidSigner")
    key = sb.signing_key("seatmaker")
    receipt = sb.send(reg.functions.adoptSelfCustody(seatmaker, key.address), "operator")
    assert sb.events(receipt, "registry", "SelfCustodyAdopted") == [
        {"account": seatmaker, "signer": key.address, "operator": sb.address("operator")}
    ]
    assert reg.functions.isSelfCustody(seatmaker).call() and reg.functions.signerOf(seatmaker).call() == key.address
    again = reg.functions.adoptSelfCustody(seatmaker, sb.signing_key("seatmaker", 1).address)
    assert_reverts(sb, again, "operator", "RegistryCustodyMismatch", account=seatmaker.lower(), selfCustody=True)
    other = reg.functions.setSignedActs(sb.address("outsider"))
    assert_reverts(sb, other, "operator", "RegistrySignedActsAlreadySet", signedActs=signed_acts(sb).address.lower())


# ---------------------------------------------------------------------------------------------------------
# The participant's standing and the chain's terms
# ---------------------------------------------------------------------------------------------------------


def test_a_suspended_participants_signed_act_is_refused_by_the_contract_it_acts_on(ledger: Sandbox) -> None:
    """A signature does not lift a suspension: the confirmation of a suspended self-custody core firm is
    refused with the registry's ``RegistryParticipantNotActive``, as its own transaction would have been, and
    its nonce is not spent: once reinstated, the same signed act is performed."""
    sb = ledger
    invoice_id = confirmable_invoice(sb)
    key = sb.adopt_self_custody("automaker")
    automaker = sb.address("automaker")
    act = signed(sb, sb.act_document("ConfirmInvoice", "automaker", [invoice_id], nonce=1), key)
    sb.send(registry(sb).functions.suspend(automaker), "operator")
    assert_reverts(sb, act, "operator", "RegistryParticipantNotActive", account=automaker.lower())
    assert not signed_acts(sb).functions.nonceUsed(automaker, 1).call()
    sb.send(registry(sb).functions.reinstate(automaker), "operator")
    sb.send(act, "operator")


def _restating(sb: Sandbox, act: str) -> tuple[str, list[Any]]:
    """A chain on which ``act`` can be performed: (who performs it, its call arguments)."""
    r = sb.contracts["receivables"]
    if act == "ConfirmInvoice":
        return "automaker", [confirmable_invoice(sb)]
    if act == "FundFinancing":
        _, piece_id = confirmed_piece(sb)
        tx = sb.send(r.functions.requestFinancing(piece_id, 300_000, sb.address("bank"), *ACCEPT_ANY), "seatmaker")
        request_id = sb.events(tx, "receivables", "FinancingRequested")[0]["requestId"]
        sb.send(r.functions.approveFinancing(request_id, 450, 1_000, 365, NO_REVIEW), "bank")
        return "bank", [request_id]
    return "bank", [request_pledge(sb, issue_receipt(sb))]


@pytest.mark.parametrize("act", ["ConfirmInvoice", "FundFinancing", "FundPledge"])
def test_restated_terms_that_differ_from_the_chain_are_refused(ledger: Sandbox, act: str) -> None:
    """A confirmation or a funding restates the terms the signer agrees to (the invoice's seller, amount,
    currency and due date; the request's holder, amount and pricing; the pledge's receipt, borrower, principal,
    rate and due date): an act properly signed whose restated terms differ from the chain's in any one field is
    refused with ``SignedActsTermsChanged``; with the chain's terms it is performed."""
    sb = ledger
    who, call_args = _restating(sb, act)
    key = sb.adopt_self_custody(who)
    act_type = acts.ACT_TYPES[act]
    document = sb.act_document(act, who, call_args, nonce=1)
    for name, kind in act_type.fields[len(act_type.fields) - act_type.restated :]:
        changed = with_message(document, **{name: _changed(kind, document["message"][name], sb)})
        refused = assert_reverts(sb, signed(sb, changed, key), "operator", "SignedActsTermsChanged", id=call_args[0])
        assert refused.arguments["typeHash"] == act_type.type_hash, name
    sb.relay(document, key)


# ---------------------------------------------------------------------------------------------------------
# Nonces
# ---------------------------------------------------------------------------------------------------------


def test_nonces_are_unordered_each_usable_once_in_any_order(ledger: Sandbox) -> None:
    """Nonce 5 then nonce 2 both work, and a nonce in a far word; the bitmap shows exactly those."""
    sb = ledger
    _, piece_id = confirmed_piece(sb)
    key = sb.adopt_self_custody("seatmaker")
    seatmaker = sb.address("seatmaker")
    far = (3 << 8) | 7
    for nonce in (5, 2, far):
        sb.relay(sb.act_document("AssignPiece", "seatmaker", [piece_id, sb.address("chemicals"), 10], nonce=nonce), key)
    a = signed_acts(sb).functions
    assert a.nonceBitmap(seatmaker, 0).call() == (1 << 5) | (1 << 2)
    assert a.nonceBitmap(seatmaker, 3).call() == 1 << 7
    assert [a.nonceUsed(seatmaker, n).call() for n in (1, 2, 3, 4, 5, far)] == [False, True, False, False, True, True]


def test_the_signer_voids_an_unused_nonce_and_no_one_else_can(ledger: Sandbox) -> None:
    """``invalidateNonces`` sent by the account's signer voids the nonces of its mask
    (``NoncesInvalidated``): an act signed under one is refused; other nonces still work. Sent by anyone
    else (the operator, the account's own retired address, a stranger) it is refused."""
    sb = ledger
    _, piece_id = confirmed_piece(sb)
    key = sb.adopt_self_custody("seatmaker")
    seatmaker = sb.address("seatmaker")
    void = signed_acts(sb).functions.invalidateNonces(seatmaker, 0, 1 << 4)
    for other in ("operator", "seatmaker", "outsider"):
        assert_reverts(
            sb, void, other, "SignedActsInvalidSignature", account=seatmaker.lower(), signer=key.address.lower()
        )
    with relaying_key(sb, key) as sender:
        receipt = sb.send(void, sender)
    assert sb.events(receipt, "acts", "NoncesInvalidated") == [{"account": seatmaker, "word": 0, "mask": 1 << 4}]
    voided = sb.act_document("AssignPiece", "seatmaker", [piece_id, sb.address("chemicals"), 10], nonce=4)
    assert_reverts(sb, signed(sb, voided, key), "operator", "SignedActsNonceUsed", account=seatmaker.lower(), nonce=4)
    sb.relay(with_message(voided, nonce=6), key)


# ---------------------------------------------------------------------------------------------------------
# The domain and the hashing
# ---------------------------------------------------------------------------------------------------------


def test_the_eip712_domain_and_separator_are_the_ones_ledger_acts_computes(sandbox: Sandbox) -> None:
    """EIP-5267: ``eip712Domain()`` names the fields in use (name, version, chain id, verifying contract) and
    their values; ``DOMAIN_SEPARATOR()`` is :func:`ledger.acts.domain_separator` of this chain and contract."""
    a = signed_acts(sandbox)
    chain_id = sandbox.w3.eth.chain_id
    assert tuple(a.functions.eip712Domain().call()) == (
        b"\x0f",
        acts.DOMAIN_NAME,
        acts.DOMAIN_VERSION,
        chain_id,
        a.address,
        b"\x00" * 32,
        [],
    )
    assert bytes(a.functions.DOMAIN_SEPARATOR().call()) == acts.domain_separator(chain_id, a.address)


def _example_value(kind: str, index: int) -> Any:
    if kind == "address":
        return Web3.to_checksum_address(keccak(text=f"address {index}")[:20])
    if kind.startswith("bytes"):
        return keccak(text=f"bytes {index}")[: int(kind[5:])]
    bits = int(kind[4:])
    return (int.from_bytes(keccak(text=f"uint {index}"), "big") % (2**bits - 1)) + 1


@pytest.mark.parametrize("act_name", sorted(acts.ACT_TYPES))
def test_ledger_acts_digest_agrees_with_eth_account_and_the_contract_for_every_act_type(
    sandbox: Sandbox, act_name: str
) -> None:
    """:func:`ledger.acts.digest` (our own encoding over eth-abi) equals eth-account's ``encode_typed_data``
    hash of the same document (a second implementation) and the contract's ``hashTypedDataV4`` of our struct
    hash; the act's type hash is the contract's ``*_TYPEHASH`` constant for it."""
    a = signed_acts(sandbox)
    act = acts.ACT_TYPES[act_name]
    message = {name: _example_value(kind, i) for i, (name, kind) in enumerate(act.all_fields)}
    document = acts.typed_data(act, message, sandbox.w3.eth.chain_id, a.address)
    signable = encode_typed_data(full_message=document)
    theirs = keccak(b"\x19" + signable.version + signable.header + signable.body)
    ours = acts.digest(document)
    assert ours == theirs
    assert bytes(a.functions.hashTypedDataV4(acts.struct_hash(act, document["message"])).call()) == ours
    constant = "".join(f"_{c}" if c.isupper() else c.upper() for c in act.name).lstrip("_") + "_TYPEHASH"
    assert bytes(getattr(a.functions, constant)().call()) == act.type_hash


def test_every_act_type_of_the_contract_is_declared_in_ledger_acts(sandbox: Sandbox) -> None:
    """The contract's ``*_TYPEHASH`` constants are exactly the type hashes of :data:`ledger.acts.ACT_TYPES`."""
    a = signed_acts(sandbox)
    constants = [f["name"] for f in a.abi if f["type"] == "function" and f["name"].endswith("_TYPEHASH")]
    on_chain = {bytes(getattr(a.functions, name)().call()) for name in constants}
    assert len(constants) == len(acts.ACT_TYPES)
    assert on_chain == {act.type_hash for act in acts.ACT_TYPES.values()}


# ---------------------------------------------------------------------------------------------------------
# A contract account: a 2-of-3 Safe
# ---------------------------------------------------------------------------------------------------------


def test_a_two_of_three_safe_participant_acts_with_two_owners_signatures_and_not_one(ledger: Sandbox) -> None:
    """A core firm that is a Safe (2 of 3 owners; registered in self-custody, so the Safe is its own signer,
    answering ERC-1271): its confirmation signed by one owner is refused, and so is one signed by the owner's
    key as a plain key; signed by two owners it is performed, whoever relays it."""
    sb = ledger
    w3 = sb.w3
    deployer = Account.from_key(keccak(text="scf-ledger signed-acts test safe deployer"))
    owners = [Account.from_key(keccak(text=f"scf-ledger signed-acts test safe owner {i}")) for i in range(3)]
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": deployer.address, "value": Wei(10**20)})
    infra = deploy_safe_infrastructure(w3, deployer, sb.artifacts)
    safe = create_safe(w3, infra, [o.address for o in owners], 2, deployer)
    sb.send(registry(sb).functions.registerSelfCustody(safe, identity_hash("safe"), [role_id("core-firm")]), "operator")
    sb.accounts["safe"] = safe
    try:
        invoice_id = confirmable_invoice(sb, buyer="safe")
        document = sb.act_document("ConfirmInvoice", "safe", [invoice_id], nonce=1)
        digest = acts.digest(document)
        for one in owners:
            act = sb.act_function(document, safe_signature(w3, safe, digest, [one]))
            assert_reverts(sb, act, "operator", "SignedActsInvalidSignature", account=safe.lower(), signer=safe.lower())
            assert_reverts(
                sb, signed(sb, document, one), "operator", "SignedActsInvalidSignature", account=safe.lower()
            )
        receipt = sb.send(sb.act_function(document, safe_signature(w3, safe, digest, owners[1:])), "outsider")
    finally:
        del sb.accounts["safe"]
    (confirmed,) = sb.events(receipt, "receivables", "InvoiceConfirmed")
    assert confirmed["buyer"] == safe
    assert sb.events(receipt, "acts", "ActPerformed")[0]["signer"] == safe
