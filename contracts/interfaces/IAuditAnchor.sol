// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Audit-log anchor
/// @notice The service keeps a hash-chained log of every API action off chain (record n's hash covers its
/// content and record n-1's hash). The operator anchors the log's head here from time to time: the number of
/// records and the hash of the last one. Anchors only move forward and are never overwritten, so whoever
/// can rewrite the database still cannot rewrite an anchored prefix of the log unnoticed: a verifier
/// recomputes the chain of hashes and compares it with every anchor.
interface IAuditAnchor {
    /// @notice The latest anchor: the log had `sequence` records and the last one hashed to `head`.
    struct Anchor {
        bytes32 head;
        uint64 sequence;
        uint64 anchoredAt;
    }

    /// @notice The operator anchored the audit log's head: record `sequence` hashed to `head`.
    event AuditLogAnchored(uint64 indexed sequence, bytes32 indexed head, address indexed operator);

    /// @notice An anchor must move the log forward: `sequence` must exceed the latest anchored one.
    /// @custom:kind invalid
    error AuditAnchorNotAdvancing(uint64 sequence, uint64 latestSequence);
    /// @notice A head must be a hash (not zero) and a sequence at least 1.
    /// @custom:kind invalid
    error AuditAnchorInvalidHead(uint64 sequence, bytes32 head);

    /// @notice Anchors the audit log's head: the log holds `sequence` records and the last one hashes to
    /// `head`.
    /// @custom:access operator (active, not frozen)
    /// @dev Emits {AuditLogAnchored}. Reverts with {AuditAnchorInvalidHead}, {AuditAnchorNotAdvancing} or a
    /// registry error ({IParticipantRegistry-RegistryMissingRole} when the caller is not an operator).
    function anchor(uint64 sequence, bytes32 head) external;

    /// @notice The latest anchor (all zero before the first).
    function latest() external view returns (Anchor memory);

    /// @notice The head anchored for record `sequence`, zero when that sequence was not anchored.
    function headAt(uint64 sequence) external view returns (bytes32);
}
