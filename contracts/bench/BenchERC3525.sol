// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Reference ERC-3525 for the benchmarks only (never deployed by the ledger)
/// @notice The storage layout and value-transfer path of the ERC-3525 reference implementation (Solv's
/// `ERC3525.sol`): every token a `TokenData` struct in one enumerable array, an owner enumeration per address,
/// a fresh token minted by `transferFrom(uint256,address,uint256)`. `scf bench` measures its mint and its
/// split-transfer beside the ledger's `Receivables` in the same run; metadata and receiver hooks are left out
/// (the receiver in the benchmark is an account, for which the reference skips the hook as well).
contract BenchERC3525 {
    struct TokenData {
        uint256 id;
        uint256 slot;
        uint256 balance;
        address owner;
        address approved;
        address[] valueApprovals;
    }

    struct AddressData {
        uint256[] ownedTokens;
        mapping(uint256 => uint256) ownedTokensIndex;
        mapping(address => bool) approvals;
    }

    /// @notice ERC-721 transfer of ownership.
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    /// @notice ERC-3525 transfer of value between tokens.
    event TransferValue(uint256 indexed fromTokenId, uint256 indexed toTokenId, uint256 value);
    /// @notice ERC-3525 slot of a token set.
    event SlotChanged(uint256 indexed tokenId, uint256 indexed oldSlot, uint256 indexed newSlot);

    /// @notice The token does not exist.
    /// @custom:kind invalid
    error BenchNonexistentToken(uint256 tokenId);
    /// @notice The caller may not move the token's value.
    /// @custom:kind forbidden
    error BenchNotAuthorized(uint256 tokenId, address operator);
    /// @notice The token holds less value than asked.
    /// @custom:kind invalid
    error BenchInsufficientBalance(uint256 tokenId, uint256 balance, uint256 value);
    /// @notice Minting to the zero address.
    /// @custom:kind invalid
    error BenchZeroAddress();

    TokenData[] private _allTokens;
    mapping(uint256 => uint256) private _allTokensIndex;
    mapping(address => AddressData) private _addressData;
    mapping(uint256 => mapping(address => uint256)) private _approvedValues;
    uint256 private _tokenIdGenerator;

    /// @notice Mint a token of `slot` holding `value` to `to` (anyone: a benchmark fixture).
    function mint(address to, uint256 slot, uint256 value) external returns (uint256 tokenId) {
        tokenId = ++_tokenIdGenerator;
        _mint(to, tokenId, slot, value);
    }

    /// @notice Move `value` of `fromTokenId` into a new token of the same slot owned by `to`.
    function transferFrom(uint256 fromTokenId, address to, uint256 value) external returns (uint256 newTokenId) {
        _spendAllowance(msg.sender, fromTokenId, value);
        newTokenId = ++_tokenIdGenerator;
        _mint(to, newTokenId, _token(fromTokenId).slot, 0);
        _transferValue(fromTokenId, newTokenId, value);
    }

    /// @notice The value held by `tokenId`.
    function balanceOf(uint256 tokenId) external view returns (uint256) {
        return _token(tokenId).balance;
    }

    /// @notice The owner of `tokenId`.
    function ownerOf(uint256 tokenId) external view returns (address) {
        return _token(tokenId).owner;
    }

    function _exists(uint256 tokenId) private view returns (bool) {
        return _allTokens.length != 0 && _allTokens[_allTokensIndex[tokenId]].id == tokenId;
    }

    function _token(uint256 tokenId) private view returns (TokenData storage) {
        require(_exists(tokenId), BenchNonexistentToken(tokenId));
        return _allTokens[_allTokensIndex[tokenId]];
    }

    function _spendAllowance(address operator, uint256 tokenId, uint256 value) private {
        TokenData storage token = _token(tokenId);
        address owner = token.owner;
        if (owner == operator || _addressData[owner].approvals[operator] || token.approved == operator) {
            return;
        }
        uint256 allowed = _approvedValues[tokenId][operator];
        require(allowed >= value, BenchNotAuthorized(tokenId, operator));
        if (allowed != type(uint256).max) {
            _approvedValues[tokenId][operator] = allowed - value;
        }
    }

    function _mint(address to, uint256 tokenId, uint256 slot, uint256 value) private {
        require(to != address(0), BenchZeroAddress());
        _allTokensIndex[tokenId] = _allTokens.length;
        _allTokens.push(
            TokenData({
                id: tokenId,
                slot: slot,
                balance: 0,
                owner: to,
                approved: address(0),
                valueApprovals: new address[](0)
            })
        );
        AddressData storage owned = _addressData[to];
        owned.ownedTokensIndex[tokenId] = owned.ownedTokens.length;
        owned.ownedTokens.push(tokenId);
        emit Transfer(address(0), to, tokenId);
        emit SlotChanged(tokenId, 0, slot);
        if (value != 0) {
            _allTokens[_allTokensIndex[tokenId]].balance += value;
            emit TransferValue(0, tokenId, value);
        }
    }

    function _transferValue(uint256 fromTokenId, uint256 toTokenId, uint256 value) private {
        TokenData storage from = _token(fromTokenId);
        TokenData storage to = _token(toTokenId);
        require(from.balance >= value, BenchInsufficientBalance(fromTokenId, from.balance, value));
        from.balance -= value;
        to.balance += value;
        emit TransferValue(fromTokenId, toTokenId, value);
    }
}
