// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

// Safe{Wallet} 1.4.1 from the npm package @safe-global/safe-contracts (pinned in package.json), compiled with
// the project so that a participant may be a Safe: an N-of-M contract account that approves the ledger's
// EIP-712 acts through ERC-1271 `isValidSignature(bytes32,bytes)`, which a Safe answers through its fallback
// handler. The compiler makes an artifact of each contract imported here (ledger.compiler.PACKAGED_CONTRACTS);
// ledger/safe.py deploys them. Nothing of Safe's is copied into this tree.

/* solhint-disable no-unused-import */
import {Safe} from "@safe-global/safe-contracts/contracts/Safe.sol";
import {SafeL2} from "@safe-global/safe-contracts/contracts/SafeL2.sol";
import {SafeProxyFactory} from "@safe-global/safe-contracts/contracts/proxies/SafeProxyFactory.sol";
import {
    CompatibilityFallbackHandler
} from "@safe-global/safe-contracts/contracts/handler/CompatibilityFallbackHandler.sol";
