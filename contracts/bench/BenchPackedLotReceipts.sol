// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title ERC-721 receipt with a packed lot record, for the benchmarks only (never deployed by the ledger)
/// @notice The same lot as `BenchLotReceipts` packed into two slots (amounts `uint96`, time `uint64`).
contract BenchPackedLotReceipts is ERC721 {
    struct Lot {
        uint96 quantity;
        uint96 valuation;
        uint64 expiry;
        bytes32 documentHash;
    }

    mapping(uint256 => Lot) private _lots;

    constructor() ERC721("Bench packed lots", "BPLOT") {}

    /// @notice Mint receipt `tokenId` for a lot to `to` (anyone: a benchmark fixture).
    function issue(address to, uint256 tokenId, uint96 quantity, uint96 valuation, uint64 expiry, bytes32 doc)
        external
    {
        _lots[tokenId] = Lot(quantity, valuation, expiry, doc);
        _mint(to, tokenId);
    }
}
