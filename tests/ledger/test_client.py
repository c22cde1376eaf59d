"""The typed client on eth-tester: every domain method through the two stories, decoded errors at pre-flight
and on chain, events decoded into outcomes, reads into the dataclasses and enums of ``ledger.models``.

Writes go through :class:`ledger.client.Web3Sender` (sign, send, wait: one at a time), since the pipeline
speaks JSON-RPC to a node; the same stories run through the pipeline on anvil in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from ledger import acts
from ledger.client import LedgerClient, Web3Sender
from ledger.errors import ContractRevert, ErrorDecoder, OutOfGas
from ledger.journal import TransactionStatus
from ledger.models import InvoiceState, Participant, ParticipantStatus, Role
from ledger.pipeline import OUT_OF_GAS, Operation, RpcError
from ledger.tooling.sandbox import Sandbox, identity_hash
from tests.stories import Cast, Chain, Signers, done, every_domain_method, onboard, receivable_story, warehouse_story

DOMAIN_METHODS = every_domain_method()
EXERCISED: set[str] = set()


class RecordingClient(LedgerClient):
    """Notes which domain methods the tests call, so the last test can insist that every one was."""

    def __getattribute__(self, name: str) -> Any:
        if name in DOMAIN_METHODS:
            EXERCISED.add(name)
        return super().__getattribute__(name)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox.create()


class Env:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.signers = Signers()
        self.operator = self.signers.add(Account.from_key(sandbox_key("operator")))
        self.regulator = Account.from_key(sandbox_key("regulator"))  # the sandbox's first regulator
        self.client = RecordingClient(
            sandbox.w3, sandbox.contracts, sandbox.decoder, Web3Sender(sandbox.w3, sandbox.decoder), self.signers
        )
        self.chain = Chain(now=sandbox.now, travel_to=self._travel_to, fund_gas=self._fund_gas)

    async def _travel_to(self, timestamp: int) -> None:
        self.sandbox.travel_to(timestamp)

    async def _fund_gas(self, address: str) -> None:
        await done(self.client, self.client.send_ether(self.operator.address, address, 10**19))


def sandbox_key(name: str) -> bytes:
    return keccak(text=f"scf-ledger sandbox participant {name}")


@pytest.fixture
def env(sandbox: Sandbox) -> Iterator[Env]:
    with sandbox.isolated():
        yield Env(sandbox)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_receivable_story_settles_every_cash_leg_through_the_client(env: Env) -> None:
    async def story() -> None:
        cast = await onboard(env.client, env.chain, env.operator, env.signers, "receivables", env.regulator)
        result = await receivable_story(env.client, env.chain, cast)
        assert env.client.invoice(result.invoice_id).state is InvoiceState.PAID

    run(story())


def test_warehouse_story_refuses_the_second_pledge_and_enforces_the_unpaid_loan(env: Env) -> None:
    async def story() -> None:
        cast = await onboard(env.client, env.chain, env.operator, env.signers, "warehouse", env.regulator)
        await warehouse_story(env.client, env.chain, cast)

    run(story())


def test_participant_lifecycle_reads_back_as_dataclasses_with_enums(env: Env) -> None:
    async def story() -> None:
        client, sandbox = env.client, env.sandbox
        cast = await onboard(client, env.chain, env.operator, env.signers, "participants", env.regulator)
        supplier, regulator, operator = cast["seatmaker"], cast["regulator"], env.operator.address
        participant = client.participant(supplier)
        assert isinstance(participant, Participant) and participant.status is ParticipantStatus.ACTIVE
        assert client.has_role(supplier, Role.SUPPLIER) and not client.has_role(supplier, Role.FINANCIER)
        await done(client, client.grant_role(operator, supplier, Role.FINANCIER))
        assert client.has_role(supplier, Role.FINANCIER)
        await done(client, client.suspend_participant(operator, supplier))
        assert client.participant(supplier).status is ParticipantStatus.SUSPENDED
        await done(client, client.reinstate_participant(operator, supplier))
        await done(client, client.freeze_participant(regulator, supplier, keccak(text="court order")))
        assert client.participant(supplier).frozen
        with pytest.raises(ContractRevert) as frozen:
            await client.burn_deposit(cast["agent"], supplier, 1, keccak(text="withdrawal"))
        assert frozen.value.name == "RegistryParticipantFrozen"
        await done(client, client.unfreeze_participant(regulator, supplier))
        before = client.balance_of(supplier)
        await done(client, client.burn_deposit(cast["agent"], supplier, 100, keccak(text="withdrawal")))
        assert client.balance_of(supplier) == before - 100
        assert sandbox.read("token", "balanceOf", supplier) == before - 100

    run(story())


async def _confirmed_invoice(env: Env, cast: Cast, key: str) -> tuple[int, int, int]:
    """The seat maker's invoice of 10**8 fen to the automaker (given a credit line), due in 30 days, confirmed:
    (invoice id, the seat maker's piece, due date)."""
    client, automaker = env.client, cast["automaker"]
    await done(client, client.set_credit_line(env.operator.address, automaker, 10**12))
    due = env.chain.now() + 30 * 86_400
    registered = await done(
        client,
        client.register_invoice(cast["seatmaker"], keccak(text=key), automaker, 10**8, "CNY", due, keccak(text="d")),
    )
    invoice_id = int(registered.event("InvoiceRegistered")["invoiceId"])
    confirmed = await done(client, client.confirm_invoice(automaker, invoice_id))
    return invoice_id, int(confirmed.event("InvoiceConfirmed")["pieceId"]), due


def test_receivable_admin_methods_freeze_default_and_grant_roles(env: Env) -> None:
    async def story() -> None:
        client, chain = env.client, env.chain
        cast = await onboard(client, chain, env.operator, env.signers, "admin", env.regulator)
        seatmaker, regulator = cast["seatmaker"], cast["regulator"]
        invoice_id, piece_id, due = await _confirmed_invoice(env, cast, "admin invoice key")
        await done(client, client.freeze_piece(regulator, piece_id, keccak(text="dispute")))
        assert client.piece(piece_id).frozen
        with pytest.raises(ContractRevert) as frozen:
            await client.transfer_piece(seatmaker, piece_id, cast["foammaker"], 10)
        assert frozen.value.name == "ReceivablesPieceFrozen"
        await done(client, client.unfreeze_piece(regulator, piece_id))
        # The whole piece moves as an ERC-721 transfer.
        await done(client, client.transfer_piece(seatmaker, piece_id, cast["foammaker"], 10**8))
        assert client.piece(piece_id).owner == cast["foammaker"]
        assert (await client.piece_async(piece_id)).value == 10**8  # the piece itself, all of its value
        with pytest.raises(ContractRevert) as early:
            await client.mark_defaulted(cast["foammaker"], invoice_id, piece_id)
        assert early.value.name == "ReceivablesNotOverdue"
        await chain.travel_to(due + 31 * 86_400)
        await done(client, client.mark_defaulted(cast["foammaker"], invoice_id, piece_id))
        assert client.obligation_state(invoice_id) is InvoiceState.DEFAULTED
        await done(client, client.appoint_oracle(cast["warehouse"], cast["regulator"]))
        await done(client, client.set_advance_rate(env.operator.address, cast["bank"], 5_000))

    run(story())


def test_a_transaction_that_reverts_on_chain_fails_with_the_error_preflight_would_raise(env: Env) -> None:
    """Pre-flight is skipped here (sent straight to the sender), as when another transaction got in first:
    the operation is mined, fails, and its outcome raises the same exception class pre-flight raises."""

    async def story() -> None:
        client, sandbox = env.client, env.sandbox
        receivables = sandbox.contracts["receivables"]
        data = bytes.fromhex(receivables.encode_abi("confirmInvoice", [424242])[2:])
        with pytest.raises(ContractRevert) as at_preflight:
            client.preflight(env.operator.address, receivables.address, data)
        operation = await Web3Sender(sandbox.w3, sandbox.decoder).submit(
            env.operator, receivables.address, data, gas=200_000
        )
        assert operation.status is TransactionStatus.FAILED and operation.block_number is not None
        assert operation.error_name == at_preflight.value.name == "ReceivablesUnknownInvoice"
        assert operation.error_args == {"invoiceId": 424242}
        with pytest.raises(ErrorDecoder.exception_class("ReceivablesUnknownInvoice")) as on_chain:
            await client.outcome(operation)
        assert type(on_chain.value) is type(at_preflight.value)

    run(story())


def test_preflight_refusal_signs_and_sends_nothing(env: Env) -> None:
    async def story() -> None:
        client, sandbox = env.client, env.sandbox
        nonce = sandbox.w3.eth.get_transaction_count(env.operator.address)
        block = sandbox.w3.eth.block_number
        with pytest.raises(ContractRevert) as refused:
            await client.register_participant(env.operator.address, env.operator.address, identity_hash("x"), [])
        assert refused.value.name == "RegistryAlreadyRegistered"
        assert sandbox.w3.eth.get_transaction_count(env.operator.address) == nonce
        assert sandbox.w3.eth.block_number == block

    run(story())


def test_an_operation_id_submitted_twice_runs_once(env: Env) -> None:
    async def story() -> None:
        client = env.client
        cast = await onboard(client, env.chain, env.operator, env.signers, "idempotent", env.regulator)
        first = await client.mint_deposit(cast["agent"], cast["steel"], 5, keccak(text="ref"), operation_id="mint-1")
        again = await client.mint_deposit(cast["agent"], cast["steel"], 5, keccak(text="ref"), operation_id="mint-1")
        assert again == first
        assert client.balance_of(cast["steel"]) == 1_000_000 * 100 + 5
        # From the event loop: without the pipeline's connection (an in-process chain) it reads in a thread.
        assert await client.balance_of_async(cast["steel"]) == 1_000_000 * 100 + 5
        assert await client.read_async("token", "balanceOf", cast["steel"]) == 1_000_000 * 100 + 5

    run(story())


def test_audit_log_anchors_read_back_and_only_move_forward(env: Env) -> None:
    async def story() -> None:
        client, operator = env.client, env.operator.address
        start = env.sandbox.w3.eth.block_number
        assert client.latest_audit_anchor() == (0, b"\x00" * 32)
        for sequence in (3, 10):
            await done(client, client.anchor_audit_log(operator, sequence, keccak(text=f"head {sequence}")))
        assert client.latest_audit_anchor() == (10, keccak(text="head 10"))
        assert client.audit_anchor_head(3) == keccak(text="head 3")
        assert client.audit_anchor_head(4) == b"\x00" * 32
        anchors = client.audit_anchors(start)
        assert [(a.sequence, a.head, a.operator) for a in anchors] == [
            (3, keccak(text="head 3"), operator),
            (10, keccak(text="head 10"), operator),
        ]
        with pytest.raises(ContractRevert) as refused:
            await client.anchor_audit_log(operator, 10, keccak(text="another head 10"))
        assert refused.value.name == "AuditAnchorNotAdvancing"

    run(story())


def test_a_self_custody_participant_acts_only_by_its_signature_and_a_lost_key_is_replaced_by_two(env: Env) -> None:
    """Self-custody through the client: a participant registered with its own key acts by signed acts relayed by
    anyone; a hosted one switched to self-custody can no longer send its own transactions; a lost key replaced by
    the operator and a regulator together can sign nothing after; each act's evidence reads back from the chain."""

    async def story() -> None:
        client, operator = env.client, env.operator.address
        cast = await onboard(client, env.chain, env.operator, env.signers, "self-custody", env.regulator)
        own_key = Account.create()
        await done(client, client.register_self_custody(operator, own_key.address, keccak(text="sc"), [Role.SUPPLIER]))
        assert client.is_self_custody(own_key.address) and client.signer_of(own_key.address) == own_key.address

        async def signed(key: Any, account: str, spender: str) -> Any:
            word = 0
            nonce = acts.next_nonce(client.nonce_bitmap(account, word), word)
            assert nonce is not None
            document = client.act_document(
                "settlement.approve", account, {"spender_contract": spender}, nonce=nonce, deadline=2**40
            )
            return await client.submit_act(document, acts.sign(document, key), cast["seatmaker"])

        outcome = await done(client, signed(own_key, own_key.address, "receivables"))
        evidence = client.act_evidence(outcome.operation.tx_hash)
        assert (evidence.account, evidence.signer, evidence.act) == (
            own_key.address,
            own_key.address,
            "ApproveSettlement",
        )
        assert acts.digest(evidence.typed_data) == evidence.digest

        hosted = cast["foammaker"]
        await done(client, client.adopt_self_custody(operator, hosted, Account.create().address))
        with pytest.raises(ContractRevert) as direct:
            await client.approve_settlement(hosted, "receivables")
        assert direct.value.name == "RegistrySignedActsOnly"

        new_key = Account.create()
        await done(client, client.propose_key_recovery(operator, own_key.address, new_key.address))
        await done(client, client.approve_key_recovery(cast["regulator"], own_key.address, new_key.address))
        with pytest.raises(ContractRevert) as lost:
            await signed(own_key, own_key.address, "receipts")
        assert lost.value.name == "SignedActsInvalidSignature"
        await done(client, signed(new_key, own_key.address, "receipts"))

    run(story())


def test_every_domain_method_of_the_client_is_exercised() -> None:
    if not EXERCISED:
        pytest.skip("run with the rest of this module: it checks what the other tests called")
    missing = DOMAIN_METHODS - EXERCISED
    assert not missing, f"client methods no test calls: {sorted(missing)}"


def test_an_operation_out_of_gas_is_not_reported_as_the_contracts_refusal(env: Env) -> None:
    spent = Operation(
        operation_id="out-of-gas",
        sender=env.operator.address,
        nonce=0,
        tx_hash="0x" + "00" * 32,
        status=TransactionStatus.FAILED,
        to=None,
        selector=None,
        gas_limit=30_000_000,
        error_name=OUT_OF_GAS,
        error_args={"gas_limit": 30_000_000, "gas_used": 29_999_000},
    )
    with pytest.raises(OutOfGas) as raised:
        run(env.client.outcome(spent))
    assert not isinstance(raised.value, ContractRevert)
    assert raised.value.arguments["gas_used"] == 29_999_000


class _FlakyPreflight:
    """A pipeline whose pre-flight answers ``errors`` (in turn) before the gas."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def preflight(self, sender: str, to: str, data: bytes) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return 60_000


def _pruned_block() -> Exception:
    return RpcError(-32602, "BlockOutOfRangeError: block height is 69 but requested was 68")


def test_a_preflight_the_node_fails_while_replacing_its_latest_block_is_asked_once_more() -> None:
    client = LedgerClient.__new__(LedgerClient)  # only the pre-flight's own logic: no chain needed
    pipeline = _FlakyPreflight(_pruned_block())
    gas = asyncio.run(client._preflight_async(pipeline, "0x" + "11" * 20, "0x" + "22" * 20, b"\x01"))  # type: ignore[arg-type]
    assert (gas, pipeline.calls) == (60_000, 2)


def test_a_node_error_twice_in_a_row_is_raised_for_a_retryable_answer() -> None:
    client = LedgerClient.__new__(LedgerClient)
    pipeline = _FlakyPreflight(_pruned_block(), _pruned_block())
    with pytest.raises(RpcError, match="BlockOutOfRange"):
        asyncio.run(client._preflight_async(pipeline, "0x" + "11" * 20, "0x" + "22" * 20, b"\x01"))  # type: ignore[arg-type]
    assert pipeline.calls == 2
