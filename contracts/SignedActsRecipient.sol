// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";

/// @title Signed-acts recipient
/// @notice A ledger contract that takes acts from two paths: a participant's own transaction, and a signed act
/// relayed by {SignedActs}, its ERC-2771 trusted forwarder, which appends the account that signed to the call.
/// On its own transaction a self-custody participant is refused ({IParticipantRegistry-requireDirect}): its
/// address may be a key the operator once held or a key that was lost, and only its current signer speaks for
/// it. Only {_msgSender} is ERC-2771-aware: no function here reads `msg.data` otherwise.
abstract contract SignedActsRecipient is Context {
    address private immutable _signedActs;

    constructor(address signedActs) {
        _signedActs = signedActs;
    }

    /// @dev The registry that says who is a self-custody participant.
    function _participants() internal view virtual returns (IParticipantRegistry);

    /// @dev The acting account: the one {SignedActs} appended, or the transaction's own sender when that is not
    /// a self-custody participant. Call it once per function: on the direct path it asks the registry.
    function _msgSender() internal view virtual override returns (address) {
        (address sender, bool direct) = _actor();
        if (direct) _participants().requireDirect(sender);
        return sender;
    }

    /// @dev The acting account and whether it sent the transaction itself, without the registry's check of the
    /// direct path: for a function that makes that check in a query of its own (it must).
    function _actor() internal view returns (address sender, bool direct) {
        if (msg.sender == _signedActs && msg.data.length >= 20) {
            return (address(bytes20(msg.data[msg.data.length - 20:])), false);
        }
        return (msg.sender, true);
    }
}
