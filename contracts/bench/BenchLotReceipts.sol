// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title ERC-721 receipt with a 4-slot lot record, for the benchmarks only (never deployed by the ledger)
/// @notice The reference for issuing a warehouse receipt the plain way: four full 32-byte fields per lot.
contract BenchLotReceipts is ERC721 {
    struct Lot {
        uint256 quantity;
        uint256 valuation;
        uint256 expiry;
        bytes32 documentHash;
    }

    mapping(uint256 => Lot) private _lots;

    constructor() ERC721("Bench lots", "BLOT") {}

    /// @notice Mint receipt `tokenId` for a lot to `to` (anyone: a benchmark fixture).
    function issue(address to, uint256 tokenId, uint256 quantity, uint256 valuation, uint256 expiry, bytes32 doc)
        external
    {
        _lots[tokenId] = Lot(quantity, valuation, expiry, doc);
        _mint(to, tokenId);
    }
}
