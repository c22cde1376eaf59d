// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {SignedActsRecipient} from "./SignedActsRecipient.sol";
import {ERC721Utils} from "@openzeppelin/contracts/token/ERC721/utils/ERC721Utils.sol";

/// @title Packed ERC-721 base
/// @notice The ERC-721 surface shared by {Receivables} (pieces) and {WarehouseReceipts} (receipts): balances,
/// owners, approvals and operators, `transferFrom` / `safeTransferFrom` with the ERC-721 receiver check, and the
/// ERC-165 answer for ERC-721 and its metadata extension.
/// @dev Packed the way Solady's `ERC721` packs (the owner shares a storage word with the token's own data), but
/// the token's record stays the inheriting contract's: it keeps the owner in its own record and tells this base
/// where through {_ownerOf} and {_writeOwner}, and it keeps a "has a token approval" flag in a word that a
/// transfer reads anyway, so that a transfer reads `_tokenApprovals` only when an approval was given.
///
/// Every change of a token's owner passes one gate, {_update} (the shape of OpenZeppelin 5's `ERC721._update`):
/// a mint (`from` zero), a transfer and a burn (`to` zero). An inheriting contract overrides it to apply its own
/// rules (liens, freezes, registry checks, the lapse of its own allowances) and then calls `super._update`, which
/// authorises `auth`, records the owner, drops the token approval, keeps the balances and emits {Transfer}.
///
/// The errors are the inheriting contract's (each contract keeps its ABI): the base reverts through the
/// `_revert*` hooks, named after ERC-6093's ERC-721 errors, which each contract implements with its own error.
abstract contract PackedERC721 is IERC721Metadata, SignedActsRecipient {
    mapping(address owner => uint256) private _balances;
    mapping(uint256 tokenId => address) private _tokenApprovals;
    mapping(address owner => mapping(address operator => bool)) private _operatorApprovals;

    // ---------------------------------------------------------------------------------------------------
    // ERC-721
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc IERC721
    function balanceOf(address owner) public view virtual returns (uint256) {
        if (owner == address(0)) _revertInvalidOwner(owner);
        return _balances[owner];
    }

    /// @inheritdoc IERC721
    function ownerOf(uint256 tokenId) public view virtual returns (address) {
        return _requireOwned(tokenId);
    }

    /// @inheritdoc IERC721
    function approve(address to, uint256 tokenId) public virtual {
        address sender = _msgSender();
        address owner = _requireOwned(tokenId);
        if (sender != owner && !_operatorApprovals[owner][sender]) _revertInvalidApprover(sender, tokenId);
        _tokenApprovals[tokenId] = to;
        _setApprovalFlag(tokenId, to != address(0));
        emit Approval(owner, to, tokenId);
    }

    /// @inheritdoc IERC721
    function getApproved(uint256 tokenId) public view virtual returns (address) {
        _requireOwned(tokenId);
        return _tokenApprovals[tokenId];
    }

    /// @inheritdoc IERC721
    function setApprovalForAll(address operator, bool approved) public virtual {
        address sender = _msgSender();
        if (operator == address(0)) _revertInvalidOperator(operator);
        _operatorApprovals[sender][operator] = approved;
        emit ApprovalForAll(sender, operator, approved);
    }

    /// @inheritdoc IERC721
    function isApprovedForAll(address owner, address operator) public view virtual returns (bool) {
        return _operatorApprovals[owner][operator];
    }

    /// @inheritdoc IERC721
    /// @dev The receiver is checked first (a move to zero would be a burn), then that `from` owns the token; the
    /// rest, the caller's authorisation included, is the gate's ({_update}).
    function transferFrom(address from, address to, uint256 tokenId) public virtual {
        address sender = _msgSender();
        if (to == address(0)) _revertInvalidReceiver(to);
        address owner = _requireOwned(tokenId);
        if (owner != from) _revertIncorrectOwner(from, tokenId, owner);
        _update(from, to, tokenId, sender);
    }

    /// @inheritdoc IERC721
    function safeTransferFrom(address from, address to, uint256 tokenId) public virtual {
        safeTransferFrom(from, to, tokenId, "");
    }

    /// @inheritdoc IERC721
    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data) public virtual {
        address sender = _msgSender();
        transferFrom(from, to, tokenId);
        ERC721Utils.checkOnERC721Received(sender, from, to, tokenId, data);
    }

    /// @inheritdoc IERC165
    /// @dev ERC-721, ERC-721 metadata and ERC-165; an inheriting contract adds its own interfaces.
    function supportsInterface(bytes4 interfaceId) public pure virtual returns (bool) {
        return interfaceId == type(IERC721).interfaceId || interfaceId == type(IERC721Metadata).interfaceId
            || interfaceId == type(IERC165).interfaceId;
    }

    // ---------------------------------------------------------------------------------------------------
    // The gate
    // ---------------------------------------------------------------------------------------------------

    /// @dev The one gate of every change of a token's owner: `from` → `to`, where `from` is the current owner
    /// (checked by the caller) or zero for a mint, and `to` is zero for a burn. Unless `auth` is zero, `auth` must
    /// be the owner, an operator of the owner or the token's approved address ({_revertInsufficientApproval}
    /// otherwise); a zero `auth` is a move the inheriting contract authorised itself (a lien, a funded request, a
    /// redemption). An override applies the contract's rules, then calls `super._update`.
    ///
    /// A mint's record is written by the inheriting contract, owner included, before the gate (a fresh record
    /// is written whole: one write per word), so for a mint the gate only counts the token and announces it.
    /// For an existing token it records the new owner with {_writeOwner} (approvals of the previous owner lapse)
    /// and deletes the token approval when one was given (no {Approval} event: the lapse is not an approval).
    function _update(address from, address to, uint256 tokenId, address auth) internal virtual {
        if (auth != address(0)) _checkAuthorized(from, auth, tokenId);
        if (from != address(0)) {
            if (_writeOwner(tokenId, to)) delete _tokenApprovals[tokenId];
            unchecked {
                --_balances[from]; // `from` owned the token
            }
        }
        if (to != address(0)) {
            unchecked {
                ++_balances[to]; // bounded by the number of tokens
            }
        }
        emit Transfer(from, to, tokenId);
    }

    /// @dev Reverts through {_revertInsufficientApproval} unless `spender` may move `owner`'s token.
    function _checkAuthorized(address owner, address spender, uint256 tokenId) internal view {
        if (!_isAuthorized(owner, spender, tokenId)) _revertInsufficientApproval(spender, tokenId);
    }

    /// @dev Whether `spender` is `owner`, an operator of `owner` or the token's approved address (read only when
    /// the token's approval flag is set).
    function _isAuthorized(address owner, address spender, uint256 tokenId) internal view returns (bool) {
        return spender == owner || _operatorApprovals[owner][spender]
            || (_hasApprovalFlag(tokenId) && _tokenApprovals[tokenId] == spender);
    }

    /// @dev The owner of an existing token; reverts through {_revertNonexistentToken} for one never minted or burnt.
    function _requireOwned(uint256 tokenId) internal view returns (address owner) {
        owner = _ownerOf(tokenId);
        if (owner == address(0)) _revertNonexistentToken(tokenId);
    }

    // ---------------------------------------------------------------------------------------------------
    // What the inheriting contract supplies: where the owner and the approval flag live, and its errors
    // ---------------------------------------------------------------------------------------------------

    /// @dev The token's owner as stored in its record; zero for a token never minted or burnt.
    function _ownerOf(uint256 tokenId) internal view virtual returns (address);

    /// @dev Records `to` (zero: burnt) as the owner of an existing token and clears its approval flag, with
    /// whatever else of the previous owner's lapses with the token; returns whether the flag was set.
    function _writeOwner(uint256 tokenId, address to) internal virtual returns (bool hadApproval);

    /// @dev Whether an approval may be recorded for the token (a flag that may stay set after the approval is
    /// withdrawn: it only spares a transfer reading `_tokenApprovals`).
    function _hasApprovalFlag(uint256 tokenId) internal view virtual returns (bool);

    /// @dev Records that `approve` gave (`approved`) or withdrew the token's approval.
    function _setApprovalFlag(uint256 tokenId, bool approved) internal virtual;

    /// @dev ERC-6093's `ERC721InvalidOwner`: `balanceOf` of the zero address.
    function _revertInvalidOwner(address owner) internal pure virtual;

    /// @dev ERC-6093's `ERC721NonexistentToken`.
    function _revertNonexistentToken(uint256 tokenId) internal pure virtual;

    /// @dev ERC-6093's `ERC721IncorrectOwner`: `from` is not the token's owner.
    function _revertIncorrectOwner(address from, uint256 tokenId, address owner) internal pure virtual;

    /// @dev ERC-6093's `ERC721InsufficientApproval`: `spender` may not move the token.
    function _revertInsufficientApproval(address spender, uint256 tokenId) internal pure virtual;

    /// @dev ERC-6093's `ERC721InvalidApprover`: `approver` is neither the owner nor an operator of the owner.
    function _revertInvalidApprover(address approver, uint256 tokenId) internal pure virtual;

    /// @dev ERC-6093's `ERC721InvalidOperator`.
    function _revertInvalidOperator(address operator) internal pure virtual;

    /// @dev ERC-6093's `ERC721InvalidReceiver`: a transfer to the zero address.
    function _revertInvalidReceiver(address receiver) internal pure virtual;
}
