"""Participant registry: onboarding, roles, suspension and the regulator's freezes."""

from __future__ import annotations

import pytest
from web3 import Web3

from ledger.tooling.sandbox import Sandbox, identity_hash, role_id
from tests.contracts.support import assert_reverts

ACTIVE, SUSPENDED = 1, 2
NEWCOMER = Web3.to_checksum_address("0x00000000000000000000000000000000000c0ffe")


def test_register_records_identity_and_grants_roles(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    receipt = ledger.send(
        registry.functions.register(NEWCOMER, identity_hash("newcomer"), [role_id("supplier"), role_id("core-firm")]),
        "operator",
    )
    (event,) = ledger.events(receipt, "registry", "ParticipantRegistered")
    assert event == {
        "account": NEWCOMER,
        "identityHash": identity_hash("newcomer"),
        "operator": ledger.address("operator"),
    }
    assert len(ledger.events(receipt, "registry", "RoleGranted")) == 2
    record = registry.functions.participant(NEWCOMER).call()
    assert (record[0], record[1], record[2]) == (identity_hash("newcomer"), ACTIVE, False)
    assert registry.functions.hasRole(role_id("core-firm"), NEWCOMER).call()
    assert registry.functions.isActive(NEWCOMER).call()


@pytest.mark.parametrize("caller", ["automaker", "seatmaker", "bank", "warehouse", "regulator", "agent", "outsider"])
def test_register_reverts_when_caller_is_not_operator(ledger: Sandbox, caller: str) -> None:
    fn = ledger.contracts["registry"].functions.register(NEWCOMER, identity_hash("x"), [])
    assert_reverts(ledger, fn, caller, "AccessControlUnauthorizedAccount")


def test_register_reverts_for_known_account_zero_address_or_empty_identity(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    assert_reverts(
        ledger,
        registry.functions.register(ledger.address("bank"), identity_hash("x"), []),
        "operator",
        "RegistryAlreadyRegistered",
    )
    assert_reverts(
        ledger,
        registry.functions.register("0x" + "00" * 20, identity_hash("x"), []),
        "operator",
        "RegistryInvalidParticipant",
    )
    assert_reverts(
        ledger, registry.functions.register(NEWCOMER, b"\x00" * 32, []), "operator", "RegistryInvalidParticipant"
    )


def test_roles_can_only_be_granted_to_registered_participants(ledger: Sandbox) -> None:
    fn = ledger.contracts["registry"].functions.grantRole(role_id("financier"), NEWCOMER)
    assert_reverts(ledger, fn, "operator", "RegistryRoleForUnregistered")


def test_regulator_cannot_grant_roles(ledger: Sandbox) -> None:
    fn = ledger.contracts["registry"].functions.grantRole(role_id("financier"), ledger.address("seatmaker"))
    assert_reverts(ledger, fn, "regulator", "AccessControlUnauthorizedAccount")


def test_suspend_and_reinstate_by_operator(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    bank = ledger.address("bank")
    receipt = ledger.send(registry.functions.suspend(bank), "operator")
    assert ledger.events(receipt, "registry", "ParticipantSuspended")[0]["account"] == bank
    assert registry.functions.participant(bank).call()[1] == SUSPENDED
    assert not registry.functions.isActive(bank).call()
    assert_reverts(ledger, registry.functions.suspend(bank), "operator", "RegistryNoChange")
    ledger.send(registry.functions.reinstate(bank), "operator")
    assert registry.functions.isActive(bank).call()
    assert_reverts(ledger, registry.functions.reinstate(bank), "operator", "RegistryNoChange")


@pytest.mark.parametrize("caller", ["regulator", "bank", "automaker", "outsider"])
def test_suspend_reverts_when_caller_is_not_operator(ledger: Sandbox, caller: str) -> None:
    fn = ledger.contracts["registry"].functions.suspend(ledger.address("seatmaker"))
    assert_reverts(ledger, fn, caller, "AccessControlUnauthorizedAccount")


def test_freeze_and_unfreeze_by_regulator(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    seatmaker = ledger.address("seatmaker")
    receipt = ledger.send(registry.functions.freeze(seatmaker, b"\x07" * 32), "regulator")
    assert ledger.events(receipt, "registry", "ParticipantFrozen")[0]["reason"] == b"\x07" * 32
    assert not registry.functions.isActive(seatmaker).call()
    with pytest.raises(Exception, match="RegistryParticipantFrozen"):
        ledger.call(registry.functions.requireActive(seatmaker))
    ledger.send(registry.functions.unfreeze(seatmaker), "regulator")
    assert registry.functions.isActive(seatmaker).call()


@pytest.mark.parametrize("caller", ["operator", "bank", "automaker", "agent", "outsider"])
def test_freeze_reverts_when_caller_is_not_regulator(ledger: Sandbox, caller: str) -> None:
    fn = ledger.contracts["registry"].functions.freeze(ledger.address("seatmaker"), b"\x00" * 32)
    assert_reverts(ledger, fn, caller, "AccessControlUnauthorizedAccount")


def test_update_identity_replaces_the_record_hash(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    ledger.send(registry.functions.updateIdentity(ledger.address("bank"), identity_hash("bank v2")), "operator")
    assert registry.functions.participant(ledger.address("bank")).call()[0] == identity_hash("bank v2")
    assert_reverts(
        ledger, registry.functions.updateIdentity(NEWCOMER, identity_hash("x")), "operator", "RegistryNotRegistered"
    )


def test_require_checks_report_the_failing_rule(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    with pytest.raises(Exception, match="RegistryNotRegistered"):
        ledger.call(registry.functions.requireActive(NEWCOMER))
    with pytest.raises(Exception, match="RegistryMissingRole"):
        ledger.call(registry.functions.requireActiveRole(role_id("financier"), ledger.address("seatmaker")))
    ledger.call(registry.functions.requireTransfer(ledger.address("seatmaker"), ledger.address("bank")))


def test_require_active_role_and_active_checks_both_parties_in_one_query(ledger: Sandbox) -> None:
    """``requireActiveRoleAndActive(role, account, counterparty)``: ``requireActiveRole(role, account)`` then
    ``requireRecipient(counterparty)``, with the same errors in the same order."""
    registry = ledger.contracts["registry"]
    warehouse, steel = ledger.address("warehouse"), ledger.address("steel")
    check = registry.functions.requireActiveRoleAndActive
    ledger.call(check(role_id("warehouse"), warehouse, steel))

    def error_of(role: str, account: str, counterparty: str) -> tuple[str, str]:
        with pytest.raises(Exception) as failure:
            ledger.call(check(role_id(role), account, counterparty))
        decoded = failure.value
        return decoded.name, decoded.arguments["account"]  # type: ignore[attr-defined]

    assert error_of("financier", warehouse, steel) == ("RegistryMissingRole", warehouse.lower())
    assert error_of("warehouse", warehouse, NEWCOMER) == ("RegistryNotRegistered", NEWCOMER.lower())
    ledger.send(registry.functions.freeze(steel, b"\x01" * 32), "regulator")
    assert error_of("warehouse", warehouse, steel) == ("RegistryParticipantFrozen", steel.lower())
    ledger.send(registry.functions.suspend(warehouse), "operator")
    # The account is checked before the counterparty; suspension before a freeze.
    assert error_of("warehouse", warehouse, steel) == ("RegistryParticipantNotActive", warehouse.lower())
    ledger.send(registry.functions.freeze(warehouse, b"\x02" * 32), "regulator")
    assert error_of("warehouse", warehouse, steel) == ("RegistryParticipantNotActive", warehouse.lower())
    ledger.send(registry.functions.reinstate(warehouse), "operator")
    assert error_of("warehouse", warehouse, steel) == ("RegistryParticipantFrozen", warehouse.lower())


# --- the ledger's own contracts ---------------------------------------------------------------------------

LEDGER_CONTRACTS = ("token", "receivables", "receipts")


@pytest.mark.parametrize("contract", LEDGER_CONTRACTS)
def test_a_ledger_contract_may_not_receive_assets_but_may_take_into_its_own_escrow(
    ledger: Sandbox, contract: str
) -> None:
    """The ledger's contracts are active participants (the receivables contract holds repayments), but no
    movement may deliver an asset to one: each check that names a recipient refuses it by name, except a
    movement the contract makes to itself (``requireTransferBy`` with the contract as caller)."""
    registry = ledger.contracts["registry"]
    target, seatmaker = ledger.address(contract), ledger.address("seatmaker")
    assert registry.functions.hasRole(role_id("system"), target).call()
    assert registry.functions.isActive(target).call()
    ledger.call(registry.functions.requireActive(target))
    refusals = [
        registry.functions.requireRecipient(target),
        registry.functions.requireTransfer(seatmaker, target),
        registry.functions.requireTransferBy(seatmaker, target, seatmaker),
        registry.functions.requireActiveRoleAndActive(role_id("warehouse"), ledger.address("warehouse"), target),
    ]
    for check in refusals:
        with pytest.raises(Exception) as refused:
            ledger.call(check)
        assert refused.value.name == "RegistryRecipientIsLedgerContract"  # type: ignore[attr-defined]
        assert refused.value.arguments == {"account": target.lower()}  # type: ignore[attr-defined]
    ledger.call(registry.functions.requireTransferBy(seatmaker, target, target))
    # Sending from a ledger contract (paying out of escrow) is a movement like any other.
    ledger.call(registry.functions.requireTransfer(target, seatmaker))


def test_requirements_on_a_recipient_keep_their_order_inactive_before_ledger_contract(ledger: Sandbox) -> None:
    """A suspended or frozen ledger contract is refused for that reason first, as any participant is; a
    suspended one may not take into its escrow either."""
    registry = ledger.contracts["registry"]
    target, seatmaker = ledger.address("receivables"), ledger.address("seatmaker")
    ledger.send(registry.functions.freeze(target, b"\x03" * 32), "regulator")
    for check in (
        registry.functions.requireRecipient(target),
        registry.functions.requireTransferBy(seatmaker, target, target),
    ):
        with pytest.raises(Exception, match="RegistryParticipantFrozen"):
            ledger.call(check)
    ledger.send(registry.functions.suspend(target), "operator")
    with pytest.raises(Exception, match="RegistryParticipantNotActive"):
        ledger.call(registry.functions.requireRecipient(target))


def test_the_system_role_marks_a_ledger_contract_and_revoking_it_unmarks(ledger: Sandbox) -> None:
    """The registry knows a ledger contract by the system role: granting it to a participant makes the
    participant a ledger contract for every recipient check, revoking (or renouncing) it ends that."""
    registry = ledger.contracts["registry"]
    trader, bank = ledger.address("trader"), ledger.address("bank")
    ledger.call(registry.functions.requireTransfer(bank, trader))
    ledger.send(registry.functions.grantRole(role_id("system"), trader), "operator")
    with pytest.raises(Exception, match="RegistryRecipientIsLedgerContract"):
        ledger.call(registry.functions.requireTransfer(bank, trader))
    ledger.send(registry.functions.revokeRole(role_id("system"), trader), "operator")
    ledger.call(registry.functions.requireTransfer(bank, trader))
    ledger.send(registry.functions.grantRole(role_id("system"), trader), "operator")
    ledger.send(registry.functions.renounceRole(role_id("system"), trader), "trader")
    ledger.call(registry.functions.requireRecipient(trader))
    # The participant record itself is unchanged by the mark.
    assert tuple(registry.functions.participant(trader).call()[1:3]) == (ACTIVE, False)


# -- the regulator is outside the operator's power ----------------------------------------------------------


def test_the_first_regulator_is_named_at_deployment_and_only_a_regulator_administers_the_role(ledger: Sandbox) -> None:
    registry = ledger.contracts["registry"]
    regulator = role_id("regulator")
    assert registry.functions.hasRole(regulator, ledger.address("regulator")).call()
    record = registry.functions.participant(ledger.address("regulator")).call()
    assert (record[0], record[1], record[2]) == (identity_hash("regulator"), ACTIVE, False)
    assert registry.functions.getRoleAdmin(regulator).call() == regulator
    assert not registry.functions.hasRole(regulator, ledger.address("operator")).call()


def test_the_registry_cannot_be_deployed_with_the_operator_as_its_regulator(ledger: Sandbox) -> None:
    operator = ledger.address("operator")
    with pytest.raises(RuntimeError, match="deploying ParticipantRegistry failed"):
        ledger.deploy(
            "ParticipantRegistry", operator, identity_hash("operator"), operator, identity_hash("x"), sender="operator"
        )


def test_the_operator_cannot_onboard_a_regulator(ledger: Sandbox) -> None:
    """Neither onboarding path grants the regulator role, alone or beside other roles; nothing is registered."""
    registry = ledger.contracts["registry"]
    for roles in ([role_id("regulator")], [role_id("supplier"), role_id("regulator")]):
        for onboard in (registry.functions.register, registry.functions.registerSelfCustody):
            assert_reverts(
                ledger,
                onboard(NEWCOMER, identity_hash("newcomer"), roles),
                "operator",
                "RegistryRoleNotOperatorManaged",
                role=role_id("regulator"),
            )
    assert registry.functions.participant(NEWCOMER).call()[1] == 0
    assert not registry.functions.hasRole(role_id("regulator"), NEWCOMER).call()


@pytest.mark.parametrize("account", ["seatmaker", "operator", "outsider-registered"])
def test_the_operator_cannot_grant_the_regulator_role_through_access_control(ledger: Sandbox, account: str) -> None:
    """OpenZeppelin's public ``grantRole`` asks for the role's admin, the regulator role itself, which the operator
    does not hold for all its default-admin role: not to a participant, not to itself, not to a key it registered."""
    registry = ledger.contracts["registry"]
    if account == "outsider-registered":
        ledger.send(
            registry.functions.register(ledger.address("outsider"), identity_hash("operator's own"), []), "operator"
        )
        account = "outsider"
    grant = registry.functions.grantRole(role_id("regulator"), ledger.address(account))
    assert_reverts(
        ledger,
        grant,
        "operator",
        "AccessControlUnauthorizedAccount",
        account=ledger.address("operator").lower(),
        neededRole=role_id("regulator"),
    )
    assert not registry.functions.hasRole(role_id("regulator"), ledger.address(account)).call()


def test_no_account_holds_the_regulator_role_and_the_operators_roles(ledger: Sandbox) -> None:
    """Whoever grants them: a regulator cannot make the operator a regulator, and the operator (admin of the
    operator and default-admin roles) cannot give them to a regulator."""
    registry = ledger.contracts["registry"]
    operator, regulator = ledger.address("operator"), ledger.address("regulator")
    assert_reverts(
        ledger,
        registry.functions.grantRole(role_id("regulator"), operator),
        "regulator",
        "RegistryRolesSeparated",
        heldRole=role_id("operator"),
    )
    for operators_role in (role_id("operator"), b"\x00" * 32):
        assert_reverts(
            ledger,
            registry.functions.grantRole(operators_role, regulator),
            "operator",
            "RegistryRolesSeparated",
            role=operators_role,
            heldRole=role_id("regulator"),
        )
    with ledger.isolated():  # a default admin the operator appointed is no regulator either
        ledger.send(registry.functions.grantRole(b"\x00" * 32, ledger.address("bank")), "operator")
        assert_reverts(
            ledger,
            registry.functions.grantRole(role_id("regulator"), ledger.address("bank")),
            "regulator",
            "RegistryRolesSeparated",
            heldRole=b"\x00" * 32,
        )


def test_the_operator_cannot_suspend_revoke_or_rekey_a_regulator(ledger: Sandbox) -> None:
    """The operator cannot silence the regulator: no suspension (which would stop its freezes of pieces and
    receipts), no revocation of its role, no switch of its key; the regulator still freezes afterwards."""
    registry = ledger.contracts["registry"]
    regulator = ledger.address("regulator")
    assert_reverts(
        ledger,
        registry.functions.suspend(regulator),
        "operator",
        "RegistryParticipantNotOperatorManaged",
        role=role_id("regulator"),
    )
    assert_reverts(
        ledger,
        registry.functions.adoptSelfCustody(regulator, ledger.signing_key("regulator").address),
        "operator",
        "RegistryParticipantNotOperatorManaged",
    )
    assert_reverts(
        ledger,
        registry.functions.revokeRole(role_id("regulator"), regulator),
        "operator",
        "AccessControlUnauthorizedAccount",
    )
    assert registry.functions.isActive(regulator).call()
    assert registry.functions.hasRole(role_id("regulator"), regulator).call()
    assert not registry.functions.isSelfCustody(regulator).call()
    ledger.send(registry.functions.freeze(ledger.address("seatmaker"), b"\x03" * 32), "regulator")


def test_a_regulator_admits_and_removes_regulators(ledger: Sandbox) -> None:
    """The operator registers the account (without the role); a regulator admits it, and a regulator removes it."""
    registry = ledger.contracts["registry"]
    outsider = ledger.address("outsider")
    ledger.send(registry.functions.register(outsider, identity_hash("second regulator"), []), "operator")
    ledger.send(registry.functions.grantRole(role_id("regulator"), outsider), "regulator")
    ledger.send(registry.functions.freeze(ledger.address("seatmaker"), b"\x04" * 32), "outsider")
    assert_reverts(ledger, registry.functions.suspend(outsider), "operator", "RegistryParticipantNotOperatorManaged")
    ledger.send(registry.functions.revokeRole(role_id("regulator"), outsider), "regulator")
    assert_reverts(
        ledger, registry.functions.unfreeze(ledger.address("seatmaker")), "outsider", "AccessControlUnauthorizedAccount"
    )
    # No longer a regulator, it is the operator's to suspend again.
    ledger.send(registry.functions.suspend(outsider), "operator")
