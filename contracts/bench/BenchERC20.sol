// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Plain OpenZeppelin ERC-20 for the benchmarks only (never deployed by the ledger)
/// @notice The reference for a cash leg: `scf bench` measures its `transfer` beside the ledger's deposit token.
contract BenchERC20 is ERC20 {
    constructor() ERC20("Bench ERC-20", "B20") {}

    /// @notice Mint `amount` to `to` (anyone: a benchmark fixture).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
