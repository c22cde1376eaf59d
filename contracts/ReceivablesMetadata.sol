// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";

/// @title Metadata of receivable pieces
/// @notice Renders a piece's public facts as an ERC-721 / ERC-3525 metadata JSON document in a
/// `data:application/json;base64,` URI, for {Receivables-tokenURI}. A contract of its own, created by the
/// receivables contract's constructor, only to keep the receivables contract under the EVM's code-size limit
/// (EIP-170, 24 KiB): it holds no state and no asset, and is not a participant of the ledger.
contract ReceivablesMetadata {
    /// @notice The metadata URI of piece `pieceId`. The JSON holds `name`, `description`, ERC-3525's `slot` (the
    /// obligation, whose id is the invoice id) and `balance` (the piece's value in minor units), and
    /// `properties`: `invoiceId`, `payer` (the core firm that owes it), `currency` (ISO 4217 code of the
    /// deposit token, three capital letters), `valueDecimals` (2), `dueDate` (maturity, Unix seconds) and
    /// `parentId` (the piece it was split from; 0 for the first piece of the obligation).
    /// @custom:access anyone (pure)
    function pieceURI(
        uint256 pieceId,
        uint256 slotId,
        uint256 value,
        bytes3 currency,
        uint64 dueDate,
        address payer,
        uint256 parentId
    ) external pure returns (string memory) {
        string memory slot = Strings.toString(slotId);
        // The JSON template is text a wallet reads: longer than 32 bytes by nature.
        // solhint-disable-next-line gas-small-strings
        string memory head = string.concat(
            "{\"name\":\"SCF Receivable ",
            Strings.toString(pieceId),
            "\",\"description\":\"A piece of a confirmed invoice: a claim on its payer, paid at maturity.\","
            "\"slot\":",
            slot,
            ",\"balance\":",
            Strings.toString(value)
        );
        string memory properties = string.concat(
            ",\"properties\":{\"invoiceId\":",
            slot,
            ",\"payer\":\"",
            Strings.toChecksumHexString(payer),
            "\",\"currency\":\"",
            string(abi.encodePacked(currency)),
            "\",\"valueDecimals\":2,\"dueDate\":",
            Strings.toString(dueDate),
            ",\"parentId\":",
            Strings.toString(parentId),
            "}}"
        );
        return string.concat("data:application/json;base64,", Base64.encode(bytes(string.concat(head, properties))));
    }
}
