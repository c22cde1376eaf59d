// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IDepositToken} from "./interfaces/IDepositToken.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./Roles.sol";
import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {SignedActsRecipient} from "./SignedActsRecipient.sol";

/// @title Deposit token
/// @notice Permissioned ERC-20 cash in minor units; see {IDepositToken}.
contract DepositToken is ERC20, SignedActsRecipient, IDepositToken {
    IParticipantRegistry public immutable registry;
    bytes3 private immutable _currency;

    uint256 private constant MINTED = 1;
    uint256 private constant BURNT = 2;
    /// @dev Which of mint and burn used each bank reference (bits MINTED and BURNT): one word per reference.
    mapping(bytes32 bankReference => uint256 uses) private _referenceUses;

    /// @param signedActs_ The {SignedActs} contract that relays participants' signed acts (ERC-2771): a
    /// self-custody participant's approvals come that way, never by a transaction of its own address.
    constructor(
        IParticipantRegistry registry_,
        string memory name_,
        string memory symbol_,
        bytes3 currency_,
        address signedActs_
    ) ERC20(name_, symbol_) SignedActsRecipient(signedActs_) {
        registry = registry_;
        _currency = currency_;
    }

    /// @notice Minor units: 2 decimals (1 yuan = 100 fen).
    function decimals() public pure override returns (uint8) {
        return 2;
    }

    /// @inheritdoc IDepositToken
    function currency() external view returns (bytes3) {
        return _currency;
    }

    /// @inheritdoc IDepositToken
    function referenceUsed(bytes32 bankReference) external view returns (bool minted, bool burnt) {
        uint256 uses = _referenceUses[bankReference];
        return (uses & MINTED != 0, uses & BURNT != 0);
    }

    /// @inheritdoc IDepositToken
    function mint(address to, uint256 amount, bytes32 bankReference) external {
        registry.requireActiveRole(Roles.SETTLEMENT_AGENT, msg.sender);
        require(amount != 0, DepositZeroAmount());
        _useReference(bankReference, MINTED);
        _mint(to, amount);
        emit DepositMinted(to, amount, bankReference, msg.sender);
    }

    /// @inheritdoc IDepositToken
    function burn(address from, uint256 amount, bytes32 bankReference) external {
        registry.requireActiveRole(Roles.SETTLEMENT_AGENT, msg.sender);
        require(amount != 0, DepositZeroAmount());
        require(!registry.hasRole(Roles.SYSTEM, from), DepositEscrowNotBurnable(from));
        _useReference(bankReference, BURNT);
        _burn(from, amount);
        emit DepositBurned(from, amount, bankReference, msg.sender);
    }

    /// @dev Marks `bankReference` used by a mint or a burn (`use`), reverting when it already was.
    function _useReference(bytes32 bankReference, uint256 use) private {
        require(bankReference != bytes32(0), DepositInvalidReference());
        uint256 uses = _referenceUses[bankReference];
        if (uses & use != 0) {
            if (use == MINTED) revert DepositMintReferenceUsed(bankReference);
            revert DepositBurnReferenceUsed(bankReference);
        }
        _referenceUses[bankReference] = uses | use;
    }

    /// @dev Every movement, mint and burn included, involves only active, unfrozen participants. A spender
    /// using an allowance must itself be active: an allowance does not outlive its holder's suspension. No
    /// token is minted or sent to one of the ledger's own contracts ({IParticipantRegistry-requireRecipient}),
    /// except what such a contract takes into its own escrow itself with `transferFrom` (the receivables
    /// contract pulling a repayment): {IParticipantRegistry-requireTransferBy}.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0)) {
            registry.requireRecipient(to);
        } else if (to == address(0)) {
            registry.requireActive(from);
        } else {
            registry.requireTransferBy(from, to, msg.sender);
        }
        super._update(from, to, value);
    }

    /// @dev `transferFrom` by a spender other than the holder requires the spender to be active too.
    function _spendAllowance(address owner, address spender, uint256 value) internal override {
        if (spender != owner) registry.requireActive(spender);
        super._spendAllowance(owner, spender, value);
    }

    /// @dev {SignedActsRecipient}: the registry that says who acts only by signed acts.
    function _participants() internal view override returns (IParticipantRegistry) {
        return registry;
    }

    function _msgSender() internal view override(Context, SignedActsRecipient) returns (address) {
        return SignedActsRecipient._msgSender();
    }
}
