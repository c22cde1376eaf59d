// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @notice A deliberately vulnerable contract: `tests/contracts/test_static_analysis.py` proves that
/// `scripts/slither.py` fails on it. Not part of the ledger (it lies outside the project's `contracts/`).
interface IToken {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

contract LeakyVault {
    error LeakyVaultPaymentFailed(address to, uint256 amount);

    IToken public immutable token;
    mapping(address account => uint256) public balances;

    constructor(IToken token_) {
        token = token_;
    }

    function deposit() external payable {
        balances[msg.sender] += msg.value;
    }

    /// Reentrancy (reentrancy-eth, high): the balance is cleared after the external call that pays it out.
    function withdraw() external {
        uint256 amount = balances[msg.sender];
        (bool ok,) = msg.sender.call{value: amount}("");
        require(ok, LeakyVaultPaymentFailed(msg.sender, amount));
        balances[msg.sender] = 0;
    }

    /// The same, paid with `transfer`: the pattern solhint's `reentrancy` rule recognises (an error in our
    /// `.solhint.json`).
    function withdrawAll() external {
        uint256 amount = balances[msg.sender];
        payable(msg.sender).transfer(amount);
        balances[msg.sender] = 0;
    }

    /// A payment pulled from anyone (arbitrary-send-erc20, high), its result ignored (unchecked-transfer, high).
    function collect(address from, uint256 amount) external {
        token.transferFrom(from, address(this), amount);
    }
}
