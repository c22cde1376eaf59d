// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title Plain OpenZeppelin ERC-721 for the benchmarks only (never deployed by the ledger)
/// @notice The reference for moving a whole asset: `scf bench` measures its mint and `transferFrom`.
contract BenchERC721 is ERC721 {
    constructor() ERC721("Bench ERC-721", "B721") {}

    /// @notice Mint `tokenId` to `to` (anyone: a benchmark fixture).
    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }
}
