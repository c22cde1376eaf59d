// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Role identifiers of the ledger's participants
/// @notice The roles of docs/design.md, as OpenZeppelin AccessControl role ids held in the participant registry.
/// One participant may hold several roles (a tier-1 supplier is also the buyer of its tier-2 suppliers).
library Roles {
    /// @notice Onboards and suspends participants, sets rule parameters; admin of every other role but the
    /// regulator's.
    bytes32 internal constant OPERATOR = keccak256("scf.role.operator");
    /// @notice Confirms or rejects invoices addressed to it, within its credit line; repays at maturity.
    bytes32 internal constant CORE_FIRM = keccak256("scf.role.core-firm");
    /// @notice Registers invoices, holds, splits and finances receivables; owns and pledges receipts.
    bytes32 internal constant SUPPLIER = keccak256("scf.role.supplier");
    /// @notice Grants credit lines, approves and funds financing, lends against pledged receipts.
    bytes32 internal constant FINANCIER = keccak256("scf.role.financier");
    /// @notice Issues receipts for lots it holds, attests valuations and goods status, releases goods.
    bytes32 internal constant WAREHOUSE = keccak256("scf.role.warehouse");
    /// @notice Reads everything, freezes and unfreezes participants and assets, approves key recoveries; moves
    /// nothing. Its own admin: named at deployment, then admitted and removed only by a regulator.
    bytes32 internal constant REGULATOR = keccak256("scf.role.regulator");
    /// @notice Mints and burns the deposit token against money held off chain.
    bytes32 internal constant SETTLEMENT_AGENT = keccak256("scf.role.settlement-agent");
    /// @notice A contract of the ledger itself (it holds deposit tokens between repayment and redemption).
    bytes32 internal constant SYSTEM = keccak256("scf.role.system");
}
