// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title ERC-3525 semi-fungible token (the interface of the final EIP; interface id 0xd5358140)
/// @notice A token has an ERC-721 identity, a slot and a value; value moves between tokens of one slot.
/// @dev The EIP marks the approve/transfer functions `payable`; this ledger takes no ether, so they are
/// non-payable here. Mutability is not part of a selector, so the interface id is unchanged.
interface IERC3525 is IERC721 {
    /// @notice Value moved from one token to another (0 for mint or burn of value).
    event TransferValue(uint256 indexed _fromTokenId, uint256 indexed _toTokenId, uint256 _value);
    /// @notice `_operator` may move up to `_value` out of `_tokenId`.
    event ApprovalValue(uint256 indexed _tokenId, address indexed _operator, uint256 _value);
    /// @notice A token's slot changed (from 0 at mint).
    event SlotChanged(uint256 indexed _tokenId, uint256 indexed _oldSlot, uint256 indexed _newSlot);

    /// @notice Decimals of a token's value.
    function valueDecimals() external view returns (uint8);
    /// @notice The value of a token.
    function balanceOf(uint256 _tokenId) external view returns (uint256);
    /// @notice The slot of a token.
    function slotOf(uint256 _tokenId) external view returns (uint256);
    /// @notice Lets `_operator` move up to `_value` out of `_tokenId`.
    function approve(uint256 _tokenId, address _operator, uint256 _value) external;
    /// @notice The value `_operator` may still move out of `_tokenId`.
    function allowance(uint256 _tokenId, address _operator) external view returns (uint256);
    /// @notice Moves `_value` from one token to another token of the same slot.
    function transferFrom(uint256 _fromTokenId, uint256 _toTokenId, uint256 _value) external;
    /// @notice Moves `_value` from a token into a new token of the same slot owned by `_to`.
    function transferFrom(uint256 _fromTokenId, address _to, uint256 _value) external returns (uint256);
}

/// @title Receiver of ERC-3525 value (interface id 0x009ce20b)
interface IERC3525Receiver {
    function onERC3525Received(address _operator, uint256 _fromTokenId, uint256 _toTokenId, uint256 _value, bytes calldata _data)
        external
        returns (bytes4);
}
