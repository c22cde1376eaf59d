// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Deposit token: the ledger's cash
/// @notice A permissioned ERC-20 in minor currency units (fen for CNY; `decimals()` is 2). The settlement
/// agent mints it against money received off chain and burns it when money is paid out off chain. It moves
/// only between active, unfrozen participants (the participant registry decides), so every cash leg of the
/// ledger settles in it, delivery-versus-payment. It is never minted or sent to one of the ledger's own
/// contracts ({IParticipantRegistry-RegistryRecipientIsLedgerContract}); the receivables contract holds
/// repayments only by pulling them from the payer itself.
interface IDepositToken is IERC20 {
    /// @notice The settlement agent issued `amount` to `to` against money received off chain.
    event DepositMinted(address indexed to, uint256 amount, bytes32 indexed bankReference, address indexed agent);
    /// @notice The settlement agent redeemed `amount` of `from`'s tokens for money paid out off chain.
    event DepositBurned(address indexed from, uint256 amount, bytes32 indexed bankReference, address indexed agent);

    /// @notice Amounts must be positive.
    /// @custom:kind invalid
    error DepositZeroAmount();
    /// @notice A bank reference must be given (the zero hash is no reference).
    /// @custom:kind invalid
    error DepositInvalidReference();
    /// @notice A bank transfer is credited once: `bankReference` was already used by a mint.
    /// @custom:kind conflict
    error DepositMintReferenceUsed(bytes32 bankReference);
    /// @notice A payout is debited once: `bankReference` was already used by a burn.
    /// @custom:kind conflict
    error DepositBurnReferenceUsed(bytes32 bankReference);
    /// @notice `from` is one of the ledger's own contracts: what it holds is escrow owed to participants
    /// (repayments waiting for holders), never paid out off chain.
    /// @custom:kind invalid
    error DepositEscrowNotBurnable(address from);

    /// @notice ISO 4217 code of the currency the token's minor units are in (e.g. "CNY").
    function currency() external view returns (bytes3);

    /// @notice Whether `bankReference` was used by a mint and by a burn. Each is used at most once (a wire is
    /// credited once, a payout debited once); one reference may serve one mint and one burn.
    function referenceUsed(bytes32 bankReference) external view returns (bool minted, bool burnt);

    /// @notice Issues `amount` minor units to active participant `to`; `bankReference` ties it to the bank record
    /// and is used once for mints.
    /// @custom:access settlement agent
    /// @dev Emits {DepositMinted} and {IERC20-Transfer}. Reverts with {DepositZeroAmount},
    /// {DepositInvalidReference}, {DepositMintReferenceUsed} or a registry error.
    function mint(address to, uint256 amount, bytes32 bankReference) external;

    /// @notice Burns `amount` minor units held by active participant `from` when the money is paid out off
    /// chain under `bankReference`, which is used once for burns.
    /// @custom:access settlement agent
    /// @dev Emits {DepositBurned} and {IERC20-Transfer}. Reverts with {DepositZeroAmount},
    /// {DepositInvalidReference}, {DepositBurnReferenceUsed}, {DepositEscrowNotBurnable}, a registry error or
    /// {IERC20Errors-ERC20InsufficientBalance}.
    function burn(address from, uint256 amount, bytes32 bankReference) external;
}
