// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./Roles.sol";

/// @title Participant registry
/// @notice Operator-managed participants with AccessControl roles, active/suspended status and regulator
/// freezes. Every asset contract of the ledger asks it before moving anything.
contract ParticipantRegistry is AccessControl, IParticipantRegistry {
    bytes32 public constant OPERATOR_ROLE = Roles.OPERATOR;
    bytes32 public constant CORE_FIRM_ROLE = Roles.CORE_FIRM;
    bytes32 public constant SUPPLIER_ROLE = Roles.SUPPLIER;
    bytes32 public constant FINANCIER_ROLE = Roles.FINANCIER;
    bytes32 public constant WAREHOUSE_ROLE = Roles.WAREHOUSE;
    bytes32 public constant REGULATOR_ROLE = Roles.REGULATOR;
    bytes32 public constant SETTLEMENT_AGENT_ROLE = Roles.SETTLEMENT_AGENT;
    bytes32 public constant SYSTEM_ROLE = Roles.SYSTEM;

    mapping(address account => Participant) private _participants;

    /// @param operator The first operator; registered with `operatorIdentityHash` and made admin of all roles.
    constructor(address operator, bytes32 operatorIdentityHash) {
        _register(operator, operatorIdentityHash, operator);
        _grantRole(DEFAULT_ADMIN_ROLE, operator);
        _grantRole(OPERATOR_ROLE, operator);
        bytes32[7] memory managed = [
            OPERATOR_ROLE, CORE_FIRM_ROLE, SUPPLIER_ROLE, FINANCIER_ROLE, WAREHOUSE_ROLE, REGULATOR_ROLE,
            SETTLEMENT_AGENT_ROLE
        ];
        for (uint256 i; i < managed.length; ++i) {
            if (managed[i] != OPERATOR_ROLE) _setRoleAdmin(managed[i], OPERATOR_ROLE);
        }
        _setRoleAdmin(SYSTEM_ROLE, OPERATOR_ROLE);
    }

    /// @inheritdoc IParticipantRegistry
    function register(address account, bytes32 identityHash, bytes32[] calldata roles)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _register(account, identityHash, msg.sender);
        for (uint256 i; i < roles.length; ++i) {
            _checkRoleAdmin(roles[i]);
            _grantRole(roles[i], account);
        }
    }

    /// @inheritdoc IParticipantRegistry
    function updateIdentity(address account, bytes32 identityHash) external onlyRole(OPERATOR_ROLE) {
        Participant storage p = _registered(account);
        require(identityHash != bytes32(0), RegistryInvalidParticipant(account, identityHash));
        p.identityHash = identityHash;
        emit ParticipantIdentityUpdated(account, identityHash, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function suspend(address account) external onlyRole(OPERATOR_ROLE) {
        Participant storage p = _registered(account);
        require(p.status == ParticipantStatus.Active, RegistryNoChange(account));
        p.status = ParticipantStatus.Suspended;
        emit ParticipantSuspended(account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function reinstate(address account) external onlyRole(OPERATOR_ROLE) {
        Participant storage p = _registered(account);
        require(p.status == ParticipantStatus.Suspended, RegistryNoChange(account));
        p.status = ParticipantStatus.Active;
        emit ParticipantReinstated(account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function freeze(address account, bytes32 reason) external onlyRole(REGULATOR_ROLE) {
        Participant storage p = _registered(account);
        require(!p.frozen, RegistryNoChange(account));
        p.frozen = true;
        emit ParticipantFrozen(account, msg.sender, reason);
    }

    /// @inheritdoc IParticipantRegistry
    function unfreeze(address account) external onlyRole(REGULATOR_ROLE) {
        Participant storage p = _registered(account);
        require(p.frozen, RegistryNoChange(account));
        p.frozen = false;
        emit ParticipantUnfrozen(account, msg.sender);
    }

    /// @inheritdoc IParticipantRegistry
    function participant(address account) external view returns (Participant memory) {
        return _participants[account];
    }

    /// @inheritdoc IParticipantRegistry
    function isActive(address account) external view returns (bool) {
        Participant storage p = _participants[account];
        return p.status == ParticipantStatus.Active && !p.frozen;
    }

    /// @inheritdoc IParticipantRegistry
    function requireActive(address account) public view {
        Participant storage p = _participants[account];
        if (p.status != ParticipantStatus.Active) {
            if (p.status == ParticipantStatus.Unregistered) revert RegistryNotRegistered(account);
            revert RegistryParticipantNotActive(account, p.status);
        }
        require(!p.frozen, RegistryParticipantFrozen(account));
    }

    /// @inheritdoc IParticipantRegistry
    function requireActiveRole(bytes32 role, address account) external view {
        require(hasRole(role, account), RegistryMissingRole(account, role));
        requireActive(account);
    }

    /// @inheritdoc IParticipantRegistry
    function requireActiveRoleAndActive(bytes32 role, address account, address counterparty) external view {
        if (!hasRole(role, account)) revert RegistryMissingRole(account, role);
        _requireActive(account);
        _requireActive(counterparty);
    }

    /// @inheritdoc IParticipantRegistry
    function requireTransfer(address from, address to) external view {
        requireActive(from);
        requireActive(to);
    }

    /// @dev Roles go only to registered participants, so a role never outlives the participant's checks.
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        require(
            _participants[account].status != ParticipantStatus.Unregistered, RegistryRoleForUnregistered(account, role)
        );
        return super._grantRole(role, account);
    }

    function _register(address account, bytes32 identityHash, address operator) private {
        require(account != address(0) && identityHash != bytes32(0), RegistryInvalidParticipant(account, identityHash));
        Participant storage p = _participants[account];
        require(p.status == ParticipantStatus.Unregistered, RegistryAlreadyRegistered(account));
        p.identityHash = identityHash;
        p.status = ParticipantStatus.Active;
        p.registeredAt = uint64(block.timestamp);
        emit ParticipantRegistered(account, identityHash, operator);
    }

    /// @dev {requireActive}, reading the participant's status word once (status and freeze share it).
    function _requireActive(address account) private view {
        Participant storage p = _participants[account];
        (ParticipantStatus status, bool frozen) = (p.status, p.frozen);
        if (status != ParticipantStatus.Active) {
            if (status == ParticipantStatus.Unregistered) revert RegistryNotRegistered(account);
            revert RegistryParticipantNotActive(account, status);
        }
        if (frozen) revert RegistryParticipantFrozen(account);
    }

    function _registered(address account) private view returns (Participant storage p) {
        p = _participants[account];
        require(p.status != ParticipantStatus.Unregistered, RegistryNotRegistered(account));
    }

    function _checkRoleAdmin(bytes32 role) private view {
        _checkRole(getRoleAdmin(role));
    }
}
