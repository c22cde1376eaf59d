"""Deposit token: minted and burnt by the settlement agent, moving only between active participants."""

from __future__ import annotations

import pytest

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import assert_reverts, confirmed_piece


def test_token_is_in_fen_of_cny(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    assert (token.functions.decimals().call(), token.functions.currency().call()) == (2, b"CNY")


def test_mint_by_settlement_agent_credits_participant(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    supply = token.functions.totalSupply().call()
    receipt = ledger.send(token.functions.mint(ledger.address("trader"), 12_345, b"\x01" * 32), "agent")
    assert ledger.events(receipt, "token", "DepositMinted")[0]["amount"] == 12_345
    assert token.functions.totalSupply().call() == supply + 12_345


def test_burn_by_settlement_agent_debits_participant(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    before = ledger.balance("trader")
    receipt = ledger.send(token.functions.burn(ledger.address("trader"), 345, b"\x02" * 32), "agent")
    assert ledger.events(receipt, "token", "DepositBurned")[0]["from"] == ledger.address("trader")
    assert ledger.balance("trader") == before - 345


@pytest.mark.parametrize("caller", ["operator", "bank", "automaker", "regulator", "seatmaker", "outsider"])
def test_mint_and_burn_revert_when_caller_is_not_settlement_agent(ledger: Sandbox, caller: str) -> None:
    token = ledger.contracts["token"]
    assert_reverts(ledger, token.functions.mint(ledger.address(caller), 1, b"\x00" * 32), caller, "RegistryMissingRole")
    assert_reverts(ledger, token.functions.burn(ledger.address("bank"), 1, b"\x00" * 32), caller, "RegistryMissingRole")


def test_mint_reverts_for_zero_amount_or_unregistered_holder(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    assert_reverts(
        ledger, token.functions.mint(ledger.address("trader"), 0, b"\x00" * 32), "agent", "DepositZeroAmount"
    )
    assert_reverts(
        ledger, token.functions.mint(ledger.address("outsider"), 1, b"\x04" * 32), "agent", "RegistryNotRegistered"
    )


def test_transfer_between_active_participants(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    before = (ledger.balance("bank"), ledger.balance("trader"))
    ledger.send(token.functions.transfer(ledger.address("trader"), 500), "bank")
    assert (ledger.balance("bank"), ledger.balance("trader")) == (before[0] - 500, before[1] + 500)


def test_transfer_reverts_to_unregistered_suspended_or_frozen(ledger: Sandbox) -> None:
    token, registry = ledger.contracts["token"], ledger.contracts["registry"]
    assert_reverts(ledger, token.functions.transfer(ledger.address("outsider"), 1), "bank", "RegistryNotRegistered")
    ledger.send(registry.functions.suspend(ledger.address("trader")), "operator")
    assert_reverts(
        ledger, token.functions.transfer(ledger.address("trader"), 1), "bank", "RegistryParticipantNotActive"
    )
    ledger.send(registry.functions.freeze(ledger.address("chemicals"), b"\x00" * 32), "regulator")
    assert_reverts(
        ledger, token.functions.transfer(ledger.address("chemicals"), 1), "bank", "RegistryParticipantFrozen"
    )
    assert_reverts(
        ledger, token.functions.transfer(ledger.address("bank"), 1), "chemicals", "RegistryParticipantFrozen"
    )


def test_frozen_holder_cannot_be_burnt_by_agent(ledger: Sandbox) -> None:
    token, registry = ledger.contracts["token"], ledger.contracts["registry"]
    ledger.send(registry.functions.freeze(ledger.address("trader"), b"\x00" * 32), "regulator")
    assert_reverts(
        ledger, token.functions.burn(ledger.address("trader"), 1, b"\x05" * 32), "agent", "RegistryParticipantFrozen"
    )


def test_transfer_from_by_suspended_spender_reverts(ledger: Sandbox) -> None:
    token, registry = ledger.contracts["token"], ledger.contracts["registry"]
    ledger.send(token.functions.approve(ledger.address("factor"), 1_000), "bank")
    ledger.send(registry.functions.suspend(ledger.address("factor")), "operator")
    fn = token.functions.transferFrom(ledger.address("bank"), ledger.address("trader"), 10)
    assert_reverts(ledger, fn, "factor", "RegistryParticipantNotActive")


def test_burn_reverts_beyond_balance(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    fn = token.functions.burn(ledger.address("trader"), ledger.balance("trader") + 1, b"\x06" * 32)
    assert_reverts(ledger, fn, "agent", "ERC20InsufficientBalance")


def test_a_bank_reference_credits_once(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    wire = b"\x07" * 32
    ledger.send(token.functions.mint(ledger.address("trader"), 123_456, wire), "agent")
    supply = token.functions.totalSupply().call()
    assert_reverts(
        ledger, token.functions.mint(ledger.address("trader"), 100, wire), "agent", "DepositMintReferenceUsed"
    )
    assert_reverts(  # to another participant, too: the wire is spent, not the pair
        ledger, token.functions.mint(ledger.address("steel"), 100, wire), "agent", "DepositMintReferenceUsed"
    )
    assert token.functions.totalSupply().call() == supply
    assert token.functions.referenceUsed(wire).call() == [True, False]


def test_a_bank_reference_debits_once_apart_from_its_credit(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    payout = b"\x08" * 32
    ledger.send(token.functions.burn(ledger.address("trader"), 10, payout), "agent")
    assert_reverts(
        ledger, token.functions.burn(ledger.address("trader"), 10, payout), "agent", "DepositBurnReferenceUsed"
    )
    # mints and burns keep separate books: the payout's reference may still credit once
    ledger.send(token.functions.mint(ledger.address("trader"), 10, payout), "agent")
    assert token.functions.referenceUsed(payout).call() == [True, True]
    assert_reverts(
        ledger, token.functions.mint(ledger.address("trader"), 10, payout), "agent", "DepositMintReferenceUsed"
    )


def test_mint_and_burn_revert_without_a_bank_reference(ledger: Sandbox) -> None:
    token = ledger.contracts["token"]
    none = b"\x00" * 32
    assert_reverts(ledger, token.functions.mint(ledger.address("trader"), 1, none), "agent", "DepositInvalidReference")
    assert_reverts(ledger, token.functions.burn(ledger.address("trader"), 1, none), "agent", "DepositInvalidReference")


# --- the ledger's own contracts ---------------------------------------------------------------------------

LEDGER_CONTRACTS = ("token", "receivables", "receipts")


@pytest.mark.parametrize("contract", LEDGER_CONTRACTS)
def test_deposit_tokens_are_never_sent_or_minted_to_a_ledger_contract(ledger: Sandbox, contract: str) -> None:
    """A transfer, a transfer through an allowance and a mint to one of the ledger's contracts would leave the
    cash there for good: each is refused by name, and no balance moves."""
    token = ledger.contracts["token"]
    target = ledger.address(contract)
    ledger.send(token.functions.approve(ledger.address("factor"), 1_000), "bank")
    before = (
        ledger.balance("bank"),
        int(token.functions.balanceOf(target).call()),
        token.functions.totalSupply().call(),
    )
    for fn, sender in (
        (token.functions.transfer(target, 500), "bank"),
        (token.functions.transferFrom(ledger.address("bank"), target, 500), "factor"),
        (token.functions.mint(target, 500, b"\x07" * 32), "agent"),
    ):
        assert_reverts(ledger, fn, sender, "RegistryRecipientIsLedgerContract", account=target.lower())
    after = (
        ledger.balance("bank"),
        int(token.functions.balanceOf(target).call()),
        token.functions.totalSupply().call(),
    )
    assert after == before


def test_the_receivables_contract_still_takes_a_repayment_into_its_escrow(ledger: Sandbox) -> None:
    """The one legitimate leg into a ledger contract: the receivables contract pulling the payer's repayment
    into itself with ``transferFrom`` (it is both the spender and the recipient)."""
    slot, _ = confirmed_piece(ledger, amount=40_000)
    receivables = ledger.contracts["receivables"]
    before = ledger.balance("receivables")
    receipt = ledger.send(receivables.functions.repay(slot, 40_000), "automaker")
    (transfer,) = ledger.events(receipt, "token", "Transfer")
    assert (transfer["from"], transfer["to"], transfer["value"]) == (
        ledger.address("automaker"),
        receivables.address,
        40_000,
    )
    assert ledger.balance("receivables") == before + 40_000


def test_the_settlement_agent_cannot_burn_a_ledger_contracts_escrow(ledger: Sandbox) -> None:
    """Repayments wait in the receivables contract for the holders to redeem them: burning them there would
    destroy money owed to participants."""
    slot, _ = confirmed_piece(ledger, amount=40_000)
    ledger.send(ledger.contracts["receivables"].functions.repay(slot, 40_000), "automaker")
    token = ledger.contracts["token"]
    escrow = ledger.balance("receivables")
    assert escrow >= 40_000
    for contract in LEDGER_CONTRACTS:
        fn = token.functions.burn(ledger.address(contract), 1, b"\x09" * 32)
        assert_reverts(ledger, fn, "agent", "DepositEscrowNotBurnable")
    assert ledger.balance("receivables") == escrow
