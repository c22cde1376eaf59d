// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @title Participant registry of the supply-chain finance ledger
/// @notice Who may hold or move anything on the ledger. The operator onboards participants with the hash of
/// their off-chain identity record and the roles they hold (OpenZeppelin AccessControl roles), suspends and
/// reinstates them; the regulator freezes and unfreezes them. The regulator role is outside the operator's power:
/// the first regulator is named at deployment, the role is its own admin (a regulator admits and removes
/// regulators), the operator's onboarding refuses it, and no account holds it together with the operator's roles.
/// Every other contract asks this registry before it moves an asset, so a suspended or frozen participant can
/// neither send nor receive. The ledger's
/// own contracts are participants too (they hold the system role, so that the receivables contract can hold
/// repayments in escrow), but no asset may be sent to one: an asset sent there would be stuck for good. A
/// ledger contract receives only what it takes into its own escrow itself (see {requireTransferBy}).
interface IParticipantRegistry is IAccessControl {
    /// @notice Lifecycle of a participant. `Unregistered` is the zero value of an unknown address.
    enum ParticipantStatus {
        Unregistered,
        Active,
        Suspended
    }

    /// @notice What the registry knows of a participant; the identity record itself stays off chain.
    struct Participant {
        bytes32 identityHash;
        ParticipantStatus status;
        bool frozen;
        uint64 registeredAt;
    }

    /// @notice A participant was onboarded with the hash of its identity record.
    event ParticipantRegistered(address indexed account, bytes32 indexed identityHash, address indexed operator);
    /// @notice `account` acts only by acts signed by `signer` (its own key, or the contract account itself when it
    /// has code), relayed through the signed-acts contract: the operator holds no key of it. Emitted when a
    /// self-custody participant is onboarded and when a hosted one switches; the hosted key is retired then.
    event SelfCustodyAdopted(address indexed account, address indexed signer, address indexed operator);
    /// @notice A self-custody participant's signing key was replaced by a signature of the old one.
    event SignerRotated(address indexed account, address indexed previousSigner, address indexed signer);
    /// @notice The operator proposed `signer` as the new key of `account`, whose key `previousSigner` is lost; it
    /// takes effect when a regulator approves it ({approveKeyRecovery}) by `expiresAt`, and while `previousSigner`
    /// is still the key in place.
    event KeyRecoveryProposed(
        address indexed account,
        address previousSigner,
        address indexed signer,
        address indexed operator,
        uint64 expiresAt
    );
    /// @notice A lost key was replaced by the operator and a regulator together: `previousSigner` can do nothing
    /// for `account` any more.
    event KeyRecovered(
        address indexed account, address previousSigner, address indexed signer, address operator, address regulator
    );
    /// @notice The contract that relays signed acts was set (once, by the operator).
    event SignedActsSet(address indexed signedActs, address indexed operator);

    /// @notice A participant's identity record hash was replaced (the record was updated off chain).
    event ParticipantIdentityUpdated(address indexed account, bytes32 indexed identityHash, address indexed operator);
    /// @notice The operator suspended a participant: it can no longer hold or move anything.
    event ParticipantSuspended(address indexed account, address indexed operator);
    /// @notice The operator reinstated a suspended participant.
    event ParticipantReinstated(address indexed account, address indexed operator);
    /// @notice The regulator froze a participant: every movement to or from it reverts.
    event ParticipantFrozen(address indexed account, address indexed regulator, bytes32 reason);
    /// @notice The regulator lifted a participant's freeze.
    event ParticipantUnfrozen(address indexed account, address indexed regulator);

    /// @notice The account is already registered.
    /// @custom:kind conflict
    error RegistryAlreadyRegistered(address account);
    /// @notice The account is not a registered participant.
    /// @custom:kind not-found
    error RegistryNotRegistered(address account);
    /// @notice The participant is registered but not active (suspended).
    /// @custom:kind conflict
    error RegistryParticipantNotActive(address account, ParticipantStatus status);
    /// @notice The participant is frozen by the regulator.
    /// @custom:kind conflict
    error RegistryParticipantFrozen(address account);
    /// @notice The participant lacks a role the action needs.
    /// @custom:kind forbidden
    error RegistryMissingRole(address account, bytes32 role);
    /// @notice An identity record hash must not be zero; an account must not be the zero address.
    /// @custom:kind invalid
    error RegistryInvalidParticipant(address account, bytes32 identityHash);
    /// @notice A role can only be granted to a registered participant.
    /// @custom:kind invalid
    error RegistryRoleForUnregistered(address account, bytes32 role);
    /// @notice The participant is already in the requested state (suspending twice, unfreezing a free one).
    /// @custom:kind conflict
    error RegistryNoChange(address account);
    /// @notice `account` is one of the ledger's own contracts (it holds the system role): no asset may be sent
    /// to it, as nothing could ever move it out again.
    /// @custom:kind invalid
    error RegistryRecipientIsLedgerContract(address account);

    /// @notice `account` is a self-custody participant: it acts only by signed acts, never by a transaction of
    /// its own address (a key the operator once held, or a lost one, must not act for it).
    /// @custom:kind forbidden
    error RegistrySignedActsOnly(address account);
    /// @notice `account` is not a self-custody participant (a key rotation or recovery applies only to one), or
    /// already is one (switching twice).
    /// @custom:kind conflict
    error RegistryCustodyMismatch(address account, bool selfCustody);
    /// @notice Only the signed-acts contract may do this (rotating a key by the old key's signature).
    /// @custom:kind forbidden
    error RegistryNotSignedActs(address caller);
    /// @notice The signed-acts contract is already set.
    /// @custom:kind conflict
    error RegistrySignedActsAlreadySet(address signedActs);
    /// @notice No recovery of `account`'s key to `signer` was proposed by an operator against the key in place
    /// now (a rotation since voids a proposal), or the approver is the proposer (a recovery needs two distinct
    /// signatures).
    /// @custom:kind conflict
    error RegistryNoRecoveryProposed(address account, address signer);
    /// @notice The proposal to recover `account`'s key to `signer` lapsed at `expiredAt` unapproved: propose again.
    /// @custom:kind conflict
    error RegistryRecoveryExpired(address account, address signer, uint64 expiredAt);
    /// @notice A signer must not be the zero address, nor the signer already in place.
    /// @custom:kind invalid
    error RegistryInvalidSigner(address account, address signer);
    /// @notice The operator's onboarding grants every role but `role`, the regulator's: a regulator admits another
    /// regulator ({IAccessControl-grantRole}; the regulator role is its own admin), so the operator can never make
    /// itself, or a key it holds, the second party of a key recovery or a freeze.
    /// @custom:kind forbidden
    error RegistryRoleNotOperatorManaged(bytes32 role);
    /// @notice `account` holds `role` (the regulator's): the operator can neither suspend it nor switch how it
    /// signs, which would silence or impersonate the party that checks the operator.
    /// @custom:kind forbidden
    error RegistryParticipantNotOperatorManaged(address account, bytes32 role);
    /// @notice `account` cannot hold `role` because it holds `heldRole`: the regulator role and the operator's roles
    /// (operator, default admin) never meet in one account, so the two parties of a key recovery are two.
    /// @custom:kind conflict
    error RegistryRolesSeparated(address account, bytes32 role, bytes32 heldRole);

    /// @notice Onboards `account` with the hash of its identity record and the given roles; never the regulator
    /// role, which only a regulator grants (a participant registered without roles, then {IAccessControl-grantRole}
    /// by a regulator).
    /// @custom:access operator
    /// @dev Emits {ParticipantRegistered} and one {IAccessControl-RoleGranted} per role.
    /// Reverts with {RegistryAlreadyRegistered}, {RegistryInvalidParticipant}, {RegistryRoleNotOperatorManaged} or
    /// {RegistryRolesSeparated}.
    function register(address account, bytes32 identityHash, bytes32[] calldata roles) external;

    /// @notice Onboards `account` as a self-custody participant that signs its own acts: `account` is its key's
    /// address, or a contract account (a Safe) whose owners sign for it (ERC-1271). The service checked the
    /// proof of possession before it asked; the operator never holds the key. Never with the regulator role
    /// ({RegistryRoleNotOperatorManaged}).
    /// @custom:access operator
    function registerSelfCustody(address account, bytes32 identityHash, bytes32[] calldata roles) external;

    /// @notice Switches a hosted participant to self-custody with `signer` as its key: from now on `account`
    /// acts only by acts `signer` signs, and the hosted key (the address itself) is retired, so `signer` must be
    /// another key ({RegistryInvalidSigner} otherwise). There is no way back but the participant's own signed act.
    /// A regulator is not switched ({RegistryParticipantNotOperatorManaged}).
    /// @custom:access operator
    function adoptSelfCustody(address account, address signer) external;

    /// @notice Sets the contract that relays signed acts; once.
    /// @custom:access operator
    function setSignedActs(address signedActs) external;

    /// @notice Replaces `account`'s signer with `signer`, as the old signer's signed act asked.
    /// @custom:access the signed-acts contract
    function rotateSigner(address account, address signer) external;

    /// @notice Proposes `signer` as the new key of self-custody `account`, whose key is lost. The proposal names
    /// the key it replaces and lapses after {RECOVERY_WINDOW}.
    /// @custom:access operator
    function proposeKeyRecovery(address account, address signer) external;

    /// @notice Approves the operator's proposal: `signer` becomes `account`'s key; the old one is void.
    /// @custom:access regulator (not the proposer)
    function approveKeyRecovery(address account, address signer) external;

    /// @notice How long a key-recovery proposal waits for a regulator's approval.
    function RECOVERY_WINDOW() external view returns (uint64);

    /// @notice The key that signs `account`'s acts: `account` itself unless it was rotated or recovered.
    function signerOf(address account) external view returns (address);

    /// @notice True when `account` acts only by signed acts.
    function isSelfCustody(address account) external view returns (bool);

    /// @notice Reverts with {RegistrySignedActsOnly} when `account` is a self-custody participant: the check
    /// of every transaction a participant sends itself.
    function requireDirect(address account) external view;

    /// @notice The signed-acts contract (zero until set).
    function signedActs() external view returns (address);

    /// @notice Replaces the identity record hash of a registered participant.
    /// @custom:access operator
    function updateIdentity(address account, bytes32 identityHash) external;

    /// @notice Suspends an active participant; never a regulator ({RegistryParticipantNotOperatorManaged}).
    /// @custom:access operator
    function suspend(address account) external;

    /// @notice Reinstates a suspended participant. @custom:access operator
    function reinstate(address account) external;

    /// @notice Freezes a participant; `reason` is a reference to the regulator's decision.
    /// @custom:access regulator
    function freeze(address account, bytes32 reason) external;

    /// @notice Lifts a participant's freeze. @custom:access regulator
    function unfreeze(address account) external;

    /// @notice The participant record of `account` (all zero when unknown).
    function participant(address account) external view returns (Participant memory);

    /// @notice True when `account` is registered, active and not frozen.
    function isActive(address account) external view returns (bool);

    /// @notice Reverts unless `account` is registered, active and not frozen.
    function requireActive(address account) external view;

    /// @notice Reverts unless `account` is active, not frozen and holds `role`.
    function requireActiveRole(bytes32 role, address account) external view;

    /// @notice Reverts unless `account` is active, not frozen and holds `role`, and `counterparty` may receive
    /// assets: {requireActiveRole} and {requireRecipient} in one call (checked in that order), for an action by
    /// a role holder in favour of another participant (a warehouse issuing a receipt to its owner).
    /// @dev Reverts with {RegistryMissingRole}, {RegistryNotRegistered}, {RegistryParticipantNotActive},
    /// {RegistryParticipantFrozen} or, for the counterparty, {RegistryRecipientIsLedgerContract}.
    function requireActiveRoleAndActive(bytes32 role, address account, address counterparty) external view;

    /// @notice {requireActiveRoleAndActive} for an `account` that sent the transaction itself: it must not be a
    /// self-custody participant either ({requireDirect}). One query where the two would be two.
    function requireDirectRoleAndActive(bytes32 role, address account, address counterparty) external view;

    /// @notice Reverts unless `account` may receive assets: registered, active, not frozen, and not one of the
    /// ledger's own contracts ({RegistryRecipientIsLedgerContract}). Asked for a mint.
    function requireRecipient(address account) external view;

    /// @notice Reverts unless `from` is active and not frozen and `to` may receive assets ({requireRecipient}):
    /// the check of every movement of an asset between two parties.
    function requireTransfer(address from, address to) external view;

    /// @notice {requireTransfer} for a movement made by `caller` (the token's `msg.sender`), with one exception:
    /// when `caller` is `to` itself, `to` takes the asset and only has to be active and not frozen. That is
    /// how a ledger contract takes deposits into its own escrow (the receivables contract pulling a repayment
    /// from the payer with `transferFrom`); no one else can send it anything.
    function requireTransferBy(address from, address to, address caller) external view;
}
