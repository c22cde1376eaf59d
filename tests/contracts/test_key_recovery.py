"""Recovery of a lost self-custody key: the operator proposes, a regulator approves, against the key in place,
within the recovery window."""

from __future__ import annotations

from ledger.tooling.sandbox import Sandbox, identity_hash, role_id
from tests.contracts.support import assert_reverts


def _propose(sb: Sandbox, who: str, new_signer: str) -> dict:  # type: ignore[type-arg]
    registry = sb.contracts["registry"]
    receipt = sb.send(registry.functions.proposeKeyRecovery(sb.address(who), new_signer), "operator")
    return sb.events(receipt, "registry", "KeyRecoveryProposed")[0]


def test_a_recovery_needs_the_operators_proposal_and_a_regulators_approval(ledger: Sandbox) -> None:
    sb = ledger
    lost = sb.adopt_self_custody("seatmaker")
    new = sb.signing_key("seatmaker", 1)
    registry = sb.contracts["registry"]
    approve = registry.functions.approveKeyRecovery(sb.address("seatmaker"), new.address)
    assert_reverts(sb, approve, "regulator", "RegistryNoRecoveryProposed")
    proposed = _propose(sb, "seatmaker", new.address)
    assert (proposed["previousSigner"], proposed["signer"]) == (lost.address, new.address)
    assert proposed["operator"] == sb.address("operator")
    assert_reverts(sb, approve, "operator", "AccessControlUnauthorizedAccount")
    receipt = sb.send(approve, "regulator")
    recovered = sb.events(receipt, "registry", "KeyRecovered")[0]
    assert (recovered["previousSigner"], recovered["signer"]) == (lost.address, new.address)
    assert (recovered["operator"], recovered["regulator"]) == (sb.address("operator"), sb.address("regulator"))
    assert registry.functions.signerOf(sb.address("seatmaker")).call() == new.address
    # The proposal is spent: approving it again finds nothing (the key in place is the new one now).
    assert_reverts(sb, approve, "regulator", "RegistryNoRecoveryProposed")


def test_a_recovery_proposal_lapses_after_the_recovery_window(ledger: Sandbox) -> None:
    sb = ledger
    sb.adopt_self_custody("seatmaker")
    new = sb.signing_key("seatmaker", 1)
    proposed = _propose(sb, "seatmaker", new.address)
    window = sb.contracts["registry"].functions.RECOVERY_WINDOW().call()
    assert proposed["expiresAt"] == sb.now() + window
    sb.travel_to(proposed["expiresAt"])
    approve = sb.contracts["registry"].functions.approveKeyRecovery(sb.address("seatmaker"), new.address)
    assert_reverts(sb, approve, "regulator", "RegistryRecoveryExpired", expiredAt=proposed["expiresAt"])


def test_a_rotation_by_the_participant_voids_a_pending_recovery_proposal(ledger: Sandbox) -> None:
    """A proposal names the key it replaces: once the participant shows it still holds its key by rotating it,
    the operator's pending proposal can no longer be approved."""
    sb = ledger
    key = sb.adopt_self_custody("seatmaker")
    planted = sb.signing_key("seatmaker", 9)
    _propose(sb, "seatmaker", planted.address)
    rotated = sb.signing_key("seatmaker", 1)
    sb.relay(sb.act_document("RotateKey", "seatmaker", [rotated.address], nonce=1), key)
    approve = sb.contracts["registry"].functions.approveKeyRecovery(sb.address("seatmaker"), planted.address)
    assert_reverts(sb, approve, "regulator", "RegistryNoRecoveryProposed")
    assert sb.contracts["registry"].functions.signerOf(sb.address("seatmaker")).call() == rotated.address


def test_the_operator_alone_cannot_complete_a_key_recovery(ledger: Sandbox) -> None:
    """Invariant 10's two signatures are two parties': the operator proposes, then tries every way to approve
    its own proposal without the regulator (approve itself; onboard a key it holds as a regulator; grant the
    role to itself or to that key; suspend the regulator), and the key in place stays the participant's."""
    sb = ledger
    registry = sb.contracts["registry"]
    lost = sb.adopt_self_custody("seatmaker")
    planted = sb.signing_key("seatmaker", 9)
    _propose(sb, "seatmaker", planted.address)
    approve = registry.functions.approveKeyRecovery(sb.address("seatmaker"), planted.address)
    regulator = role_id("regulator")
    # Its own approval.
    assert_reverts(sb, approve, "operator", "AccessControlUnauthorizedAccount")
    # A key it holds ("outsider"), onboarded as a regulator by either onboarding path.
    for onboard in (registry.functions.register, registry.functions.registerSelfCustody):
        fn = onboard(sb.address("outsider"), identity_hash("the operator's key"), [regulator])
        assert_reverts(sb, fn, "operator", "RegistryRoleNotOperatorManaged")
    # That key registered without roles, then given the role; or the operator itself given the role.
    sb.send(registry.functions.register(sb.address("outsider"), identity_hash("the operator's key"), []), "operator")
    for account in ("outsider", "operator"):
        grant = registry.functions.grantRole(regulator, sb.address(account))
        assert_reverts(sb, grant, "operator", "AccessControlUnauthorizedAccount")
        assert_reverts(sb, approve, account, "AccessControlUnauthorizedAccount")
    # The regulator suspended out of the way.
    assert_reverts(
        sb, registry.functions.suspend(sb.address("regulator")), "operator", "RegistryParticipantNotOperatorManaged"
    )
    assert registry.functions.signerOf(sb.address("seatmaker")).call() == lost.address
    # Only the regulator's own approval completes it.
    sb.send(approve, "regulator")
    assert registry.functions.signerOf(sb.address("seatmaker")).call() == planted.address
