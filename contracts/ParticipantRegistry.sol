// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./Roles.sol";

/// @title Participant registry
/// @notice Operator-managed participants with AccessControl roles, active/suspended status and regulator
/// freezes. Every asset contract of the ledger asks it before moving anything. The regulator role is outside the
/// operator's power: the first regulator is named at deployment, and only a regulator admits or removes another.
contract ParticipantRegistry is AccessControl, IParticipantRegistry {
    /// @dev A participant as stored: {IParticipantRegistry-Participant} and, in the word of its status, whether
    /// it is one of the ledger's own contracts (holds {Roles.SYSTEM}; kept with the role by {_grantRole} and
    /// {_revokeRole}), so that a movement's checks read one storage word per party.
    struct StoredParticipant {
        // word 0
        bytes32 identityHash;
        // word 1
        ParticipantStatus status;
        bool frozen;
        uint64 registeredAt;
        bool ledgerContract;
        bool selfCustody;
        /// @dev The key that signs the participant's acts when it is not the account itself (zero: the account).
        address signer;
    }

    bytes32 public constant OPERATOR_ROLE = Roles.OPERATOR;
    bytes32 public constant CORE_FIRM_ROLE = Roles.CORE_FIRM;
    bytes32 public constant SUPPLIER_ROLE = Roles.SUPPLIER;
    bytes32 public constant FINANCIER_ROLE = Roles.FINANCIER;
    bytes32 public constant WAREHOUSE_ROLE = Roles.WAREHOUSE;
    bytes32 public constant REGULATOR_ROLE = Roles.REGULATOR;
    bytes32 public constant SETTLEMENT_AGENT_ROLE = Roles.SETTLEMENT_AGENT;
    bytes32 public constant SYSTEM_ROLE = Roles.SYSTEM;

    /// @dev In a participant's status word ({_statusWord}): the status and frozen bytes, and with them the
    /// ledger-contract byte; `ACTIVE` is an active, unfrozen participant that is not a ledger contract.
    uint256 private constant ACTIVE_MASK = 0xffff;
    uint256 private constant RECIPIENT_MASK = 0xff << 80 | 0xffff;
    uint256 private constant ACTIVE = uint256(uint8(ParticipantStatus.Active));
    /// @dev In the status word: the self-custody byte (11).
    uint256 private constant SELF_CUSTODY_MASK = 0xff << 88;

    mapping(address account => StoredParticipant) private _participants;
    /// @dev Proposed recoveries: `keccak256(account, signer)` → the proposing operator.
    /// @dev A key-recovery proposal: who proposed it and until when a regulator may approve it. Keyed by
    /// (account, the key it replaces, the new key).
    struct Recovery {
        address operator;
        uint64 expiresAt;
    }

    /// @inheritdoc IParticipantRegistry
    uint64 public constant RECOVERY_WINDOW = 7 days;

    mapping(bytes32 proposal => Recovery) private _recoveries;

    /// @inheritdoc IParticipantRegistry
    address public signedActs;

    /// @param operator The first operator; registered with `operatorIdentityHash`, made admin of every role but the
    /// regulator's.
    /// @param regulator The first regulator; registered with `regulatorIdentityHash`. The regulator role is its own
    /// admin: a regulator admits and removes regulators, and no operator can (see {RegistryRoleNotOperatorManaged}),
    /// so a key recovery's approval is never the operator's alone. It must be another account than `operator`.
    constructor(address operator, bytes32 operatorIdentityHash, address regulator, bytes32 regulatorIdentityHash) {
        _register(operator, operatorIdentityHash, operator);
        _grantRole(DEFAULT_ADMIN_ROLE, operator);
        _grantRole(OPERATOR_ROLE, operator);
        _register(regulator, regulatorIdentityHash, operator);
        _grantRole(REGULATOR_ROLE, regulator);
        bytes32[5] memory managed =
            [CORE_FIRM_ROLE, SUPPLIER_ROLE, FINANCIER_ROLE, WAREHOUSE_ROLE, SETTLEMENT_AGENT_ROLE];
        for (uint256 i; i < managed.length; ++i) {
            _setRoleAdmin(managed[i], OPERATOR_ROLE);
        }
        _setRoleAdmin(SYSTEM_ROLE, OPERATOR_ROLE);
        _setRoleAdmin(REGULATOR_ROLE, REGULATOR_ROLE);
    }

    /// @inheritdoc IParticipantRegistry
    function register(address account, bytes32 identityHash, bytes32[] calldata roles)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _register(account, identityHash, msg.sender);
        for (uint256 i; i < roles.length; ++i) {
            _checkOperatorManaged(roles[i]);
            _grantRole(roles[i], account);
        }
    }

    /// @inheritdoc IParticipantRegistry
    function registerSelfCustody(address account, bytes32 identityHash, bytes32[] calldata roles)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _register(account, identityHash, msg.sender);
        for (uint256 i; i < roles.length; ++i) {
            _checkOperatorManaged(roles[i]);
            _grantRole(roles[i], account);
        }
        _participants[account].selfCustody = true;
        emit SelfCustodyAdopted(account, account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function adoptSelfCustody(address account, address signer) external onlyRole(OPERATOR_ROLE) {
        StoredParticipant storage p = _operatorManaged(account);
        require(!p.selfCustody, RegistryCustodyMismatch(account, true));
        require(signer != address(0) && signer != account, RegistryInvalidSigner(account, signer));
        p.selfCustody = true;
        p.signer = signer;
        emit SelfCustodyAdopted(account, signer, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function setSignedActs(address signedActs_) external onlyRole(OPERATOR_ROLE) {
        require(signedActs == address(0), RegistrySignedActsAlreadySet(signedActs));
        require(signedActs_ != address(0), RegistryNotSignedActs(signedActs_));
        signedActs = signedActs_;
        emit SignedActsSet(signedActs_, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function rotateSigner(address account, address signer) external {
        require(msg.sender == signedActs, RegistryNotSignedActs(msg.sender));
        StoredParticipant storage p = _selfCustody(account);
        address previous = _signerOf(account, p);
        _setSigner(account, p, signer, previous);
        emit SignerRotated(account, previous, signer);
    }

    /// @inheritdoc IParticipantRegistry
    function proposeKeyRecovery(address account, address signer) external onlyRole(OPERATOR_ROLE) {
        StoredParticipant storage p = _selfCustody(account);
        address previous = _signerOf(account, p);
        require(signer != address(0) && signer != previous, RegistryInvalidSigner(account, signer));
        uint64 expiresAt = uint64(block.timestamp) + RECOVERY_WINDOW;
        _recoveries[keccak256(abi.encode(account, previous, signer))] = Recovery(msg.sender, expiresAt);
        emit KeyRecoveryProposed(account, previous, signer, msg.sender, expiresAt);
    }

    /// @inheritdoc IParticipantRegistry
    function approveKeyRecovery(address account, address signer) external onlyRole(REGULATOR_ROLE) {
        StoredParticipant storage p = _selfCustody(account);
        address previous = _signerOf(account, p);
        bytes32 proposal = keccak256(abi.encode(account, previous, signer));
        Recovery memory recovery = _recoveries[proposal];
        require(
            recovery.operator != address(0) && recovery.operator != msg.sender
                && hasRole(OPERATOR_ROLE, recovery.operator),
            RegistryNoRecoveryProposed(account, signer)
        );
        require(
            block.timestamp <= recovery.expiresAt, RegistryRecoveryExpired(account, signer, recovery.expiresAt)
        );
        delete _recoveries[proposal];
        _setSigner(account, p, signer, previous);
        emit KeyRecovered(account, previous, signer, recovery.operator, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function signerOf(address account) external view returns (address) {
        return _signerOf(account, _participants[account]);
    }

    /// @inheritdoc IParticipantRegistry
    function isSelfCustody(address account) external view returns (bool) {
        return _participants[account].selfCustody;
    }

    /// @inheritdoc IParticipantRegistry
    function requireDirect(address account) external view {
        if (_statusWord(account) & SELF_CUSTODY_MASK != 0) revert RegistrySignedActsOnly(account);
    }

    /// @inheritdoc IParticipantRegistry
    function updateIdentity(address account, bytes32 identityHash) external onlyRole(OPERATOR_ROLE) {
        StoredParticipant storage p = _registered(account);
        require(identityHash != bytes32(0), RegistryInvalidParticipant(account, identityHash));
        p.identityHash = identityHash;
        emit ParticipantIdentityUpdated(account, identityHash, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function suspend(address account) external onlyRole(OPERATOR_ROLE) {
        StoredParticipant storage p = _operatorManaged(account);
        require(p.status == ParticipantStatus.Active, RegistryNoChange(account));
        p.status = ParticipantStatus.Suspended;
        emit ParticipantSuspended(account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function reinstate(address account) external onlyRole(OPERATOR_ROLE) {
        StoredParticipant storage p = _registered(account);
        require(p.status == ParticipantStatus.Suspended, RegistryNoChange(account));
        p.status = ParticipantStatus.Active;
        emit ParticipantReinstated(account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function freeze(address account, bytes32 reason) external onlyRole(REGULATOR_ROLE) {
        StoredParticipant storage p = _registered(account);
        require(!p.frozen, RegistryNoChange(account));
        p.frozen = true;
        emit ParticipantFrozen(account, msg.sender, reason);
    }

    /// @inheritdoc IParticipantRegistry
    function unfreeze(address account) external onlyRole(REGULATOR_ROLE) {
        StoredParticipant storage p = _registered(account);
        require(p.frozen, RegistryNoChange(account));
        p.frozen = false;
        emit ParticipantUnfrozen(account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function participant(address account) external view returns (Participant memory) {
        StoredParticipant storage p = _participants[account];
        return Participant({
            identityHash: p.identityHash, status: p.status, frozen: p.frozen, registeredAt: p.registeredAt
        });
    }

    /// @inheritdoc IParticipantRegistry
    function isActive(address account) external view returns (bool) {
        StoredParticipant storage p = _participants[account];
        return p.status == ParticipantStatus.Active && !p.frozen;
    }

    /// @inheritdoc IParticipantRegistry
    function requireActive(address account) external view {
        _requireActive(account);
    }

    /// @inheritdoc IParticipantRegistry
    function requireActiveRole(bytes32 role, address account) external view {
        require(hasRole(role, account), RegistryMissingRole(account, role));
        _requireActive(account);
    }

    /// @inheritdoc IParticipantRegistry
    function requireActiveRoleAndActive(bytes32 role, address account, address counterparty) external view {
        if (!hasRole(role, account)) revert RegistryMissingRole(account, role);
        _requireActive(account);
        _requireRecipient(counterparty);
    }

    /// @inheritdoc IParticipantRegistry
    function requireDirectRoleAndActive(bytes32 role, address account, address counterparty) external view {
        if (!hasRole(role, account)) revert RegistryMissingRole(account, role);
        if (_statusWord(account) & (ACTIVE_MASK | SELF_CUSTODY_MASK) != ACTIVE) {
            _revertInactive(account);
            revert RegistrySignedActsOnly(account);
        }
        _requireRecipient(counterparty);
    }

    /// @inheritdoc IParticipantRegistry
    function requireRecipient(address account) external view {
        _requireRecipient(account);
    }

    /// @inheritdoc IParticipantRegistry
    function requireTransfer(address from, address to) external view {
        _requireActive(from);
        _requireRecipient(to);
    }

    /// @inheritdoc IParticipantRegistry
    function requireTransferBy(address from, address to, address caller) external view {
        _requireActive(from);
        if (to == caller) {
            _requireActive(to);
        } else {
            _requireRecipient(to);
        }
    }

    /// @dev Roles go only to registered participants, so a role never outlives the participant's checks. The
    /// regulator role and the operator's roles (operator, default admin) never meet in one account, whoever grants
    /// them: the two signatures of a key recovery are two parties'. The system role also marks the participant as
    /// a ledger contract in its status word.
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        StoredParticipant storage p = _participants[account];
        require(p.status != ParticipantStatus.Unregistered, RegistryRoleForUnregistered(account, role));
        if (role == REGULATOR_ROLE) {
            _requireWithout(account, role, OPERATOR_ROLE);
            _requireWithout(account, role, DEFAULT_ADMIN_ROLE);
        } else if (role == OPERATOR_ROLE || role == DEFAULT_ADMIN_ROLE) {
            _requireWithout(account, role, REGULATOR_ROLE);
        }
        if (role == SYSTEM_ROLE) p.ledgerContract = true;
        return super._grantRole(role, account);
    }

    /// @dev Revoking (or renouncing) the system role clears the ledger-contract mark with it.
    function _revokeRole(bytes32 role, address account) internal override returns (bool) {
        if (role == SYSTEM_ROLE) _participants[account].ledgerContract = false;
        return super._revokeRole(role, account);
    }

    function _register(address account, bytes32 identityHash, address operator) private {
        require(account != address(0) && identityHash != bytes32(0), RegistryInvalidParticipant(account, identityHash));
        StoredParticipant storage p = _participants[account];
        require(p.status == ParticipantStatus.Unregistered, RegistryAlreadyRegistered(account));
        p.identityHash = identityHash;
        p.status = ParticipantStatus.Active;
        p.registeredAt = uint64(block.timestamp);
        emit ParticipantRegistered(account, identityHash, operator);
    }

    /// @dev {requireActive}: one read of the participant's status word (status and freeze share it).
    function _requireActive(address account) private view {
        if (_statusWord(account) & ACTIVE_MASK != ACTIVE) _revertInactive(account);
    }

    /// @dev {requireRecipient}: {_requireActive} and not a ledger contract, from the same single read.
    function _requireRecipient(address account) private view {
        if (_statusWord(account) & RECIPIENT_MASK != ACTIVE) {
            _revertInactive(account);
            revert RegistryRecipientIsLedgerContract(account);
        }
    }

    /// @dev Word 1 of the participant's record, as the compiler lays out {StoredParticipant} (each word from its
    /// lowest-order byte, in declaration order): status (byte 0), frozen (1), registeredAt (2-9), ledgerContract
    /// (10), selfCustody (11), signer (12-31). One storage read instead of one per field (the checks of every
    /// movement pass here); the tests exercise each field's refusal through the compiler's own accessors
    /// ({_revertInactive}, {participant}, {isSelfCustody}).
    function _statusWord(address account) private view returns (uint256 word) {
        StoredParticipant storage p = _participants[account];
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            word := sload(add(p.slot, 1))
        }
    }

    /// @dev Reverts with the reason `account` is not active (unregistered, suspended or frozen), if it is not.
    function _revertInactive(address account) private view {
        StoredParticipant storage p = _participants[account];
        ParticipantStatus status = p.status;
        if (status != ParticipantStatus.Active) {
            if (status == ParticipantStatus.Unregistered) revert RegistryNotRegistered(account);
            revert RegistryParticipantNotActive(account, status);
        }
        if (p.frozen) revert RegistryParticipantFrozen(account);
    }

    function _selfCustody(address account) private view returns (StoredParticipant storage p) {
        p = _registered(account);
        require(p.selfCustody, RegistryCustodyMismatch(account, false));
    }

    function _signerOf(address account, StoredParticipant storage p) private view returns (address signer) {
        signer = p.signer;
        if (signer == address(0)) signer = account;
    }

    /// @dev A new signer is neither zero nor the one in place; the account's own address is stored as zero.
    function _setSigner(address account, StoredParticipant storage p, address signer, address previous) private {
        require(signer != address(0) && signer != previous, RegistryInvalidSigner(account, signer));
        p.signer = signer == account ? address(0) : signer;
    }

    function _registered(address account) private view returns (StoredParticipant storage p) {
        p = _participants[account];
        require(p.status != ParticipantStatus.Unregistered, RegistryNotRegistered(account));
    }

    /// @dev A role the operator's onboarding grants: any whose admin the caller holds, but never the regulator
    /// role, whatever the caller holds ({RegistryRoleNotOperatorManaged}).
    function _checkOperatorManaged(bytes32 role) private view {
        require(role != REGULATOR_ROLE, RegistryRoleNotOperatorManaged(role));
        _checkRole(getRoleAdmin(role));
    }

    /// @dev A registered participant that is not a regulator: the operator neither suspends a regulator nor
    /// changes how it signs ({RegistryParticipantNotOperatorManaged}).
    function _operatorManaged(address account) private view returns (StoredParticipant storage p) {
        p = _registered(account);
        require(!hasRole(REGULATOR_ROLE, account), RegistryParticipantNotOperatorManaged(account, REGULATOR_ROLE));
    }

    function _requireWithout(address account, bytes32 role, bytes32 separated) private view {
        require(!hasRole(separated, account), RegistryRolesSeparated(account, role, separated));
    }
}
