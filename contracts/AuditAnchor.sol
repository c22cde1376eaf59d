// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAuditAnchor} from "./interfaces/IAuditAnchor.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./Roles.sol";

/// @title Audit-log anchor
/// @notice Append-only anchors of the service's hash-chained audit log; see {IAuditAnchor}. It holds no
/// assets: the registry only decides who is an active operator.
contract AuditAnchor is IAuditAnchor {
    IParticipantRegistry public immutable registry;

    uint64 private _latestSequence;
    uint64 private _latestAnchoredAt;
    mapping(uint64 sequence => bytes32 head) private _heads;

    constructor(IParticipantRegistry registry_) {
        registry = registry_;
    }

    /// @inheritdoc IAuditAnchor
    function anchor(uint64 sequence, bytes32 head) external {
        registry.requireActiveRole(Roles.OPERATOR, msg.sender);
        require(sequence != 0 && head != bytes32(0), AuditAnchorInvalidHead(sequence, head));
        uint64 latestSequence = _latestSequence;
        require(sequence > latestSequence, AuditAnchorNotAdvancing(sequence, latestSequence));
        (_latestSequence, _latestAnchoredAt) = (sequence, uint64(block.timestamp));
        _heads[sequence] = head;
        emit AuditLogAnchored(sequence, head, msg.sender);
    }

    /// @inheritdoc IAuditAnchor
    function latest() external view returns (Anchor memory) {
        return Anchor({head: _heads[_latestSequence], sequence: _latestSequence, anchoredAt: _latestAnchoredAt});
    }

    /// @inheritdoc IAuditAnchor
    function headAt(uint64 sequence) external view returns (bytes32) {
        return _heads[sequence];
    }
}
