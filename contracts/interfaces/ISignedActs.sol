// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Signed acts
/// @notice The acts of the ledger's participants as EIP-712 typed messages they sign themselves, verified here and
/// performed on their behalf, exactly as if the participant had sent the transaction: whoever relays the act
/// (the operator's service, another gateway, the signer itself) changes nothing. Each act has its own
/// human-readable type, so a wallet shows the signer what it undertakes, and the signed message is the evidence
/// of the act. The signature is checked against the key the registry holds for the account
/// ({IParticipantRegistry-signerOf}): ECDSA for a key (low-s only), ERC-1271 `isValidSignature` for a contract
/// account such as a Safe whose owners approve together. Every act carries a deadline and a nonce from the
/// account's unordered nonce space (a bitmap, as in Uniswap's Permit2): each nonce works once, in any order.
/// The domain (name "scf-ledger", version "1", the chain id and this contract's address) keeps a signature to
/// one deployment on one chain.
///
/// The ledger's contracts trust this contract as their ERC-2771 forwarder and read the account it appends to
/// the call. It only ever builds the call from an act's typed fields, for the function that act names, and
/// none of the contracts it calls has `multicall` or any other path that re-enters itself with calldata of the
/// caller's choosing (the December 2023 ERC-2771 + Multicall address-spoofing advisory).
interface ISignedActs {
    struct RegisterInvoice {
        address account;
        bytes32 keyHash;
        address buyer;
        uint256 amount;
        bytes3 currency;
        uint64 dueDate;
        bytes32 documentHash;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The payment undertaking: the buyer confirms it owes `amount` to `seller` on `dueDate`. The
    /// fields are checked against the invoice on chain.
    struct ConfirmInvoice {
        address account;
        uint256 invoiceId;
        address seller;
        uint256 amount;
        bytes3 currency;
        uint64 dueDate;
        uint256 nonce;
        uint256 deadline;
    }

    struct RejectInvoice {
        address account;
        uint256 invoiceId;
        bytes32 reason;
        uint256 nonce;
        uint256 deadline;
    }

    struct SetCreditLine {
        address account;
        address coreFirm;
        uint256 grant;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice Assigns `value` of piece `pieceId` to `to`: the whole piece when `value` is all of it, a split
    /// otherwise.
    struct AssignPiece {
        address account;
        uint256 pieceId;
        address to;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }

    struct RequestFinancing {
        address account;
        uint256 pieceId;
        uint256 amount;
        address financier;
        uint16 maxDiscountRateBps;
        uint256 maxFee;
        uint256 nonce;
        uint256 deadline;
    }

    struct ApproveFinancing {
        address account;
        uint256 requestId;
        uint16 discountRateBps;
        uint256 fee;
        uint16 dayCountBasis;
        bytes32 review;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The financier pays for `amount` of `holder`'s receivable at the approved terms; the fields are
    /// checked against the request on chain.
    struct FundFinancing {
        address account;
        uint256 requestId;
        address holder;
        uint256 amount;
        uint16 discountRateBps;
        uint256 fee;
        uint16 dayCountBasis;
        uint256 nonce;
        uint256 deadline;
    }

    struct DeclineFinancing {
        address account;
        uint256 requestId;
        uint256 nonce;
        uint256 deadline;
    }

    struct CancelFinancing {
        address account;
        uint256 requestId;
        uint256 nonce;
        uint256 deadline;
    }

    struct Repay {
        address account;
        uint256 invoiceId;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    struct Redeem {
        address account;
        uint256 pieceId;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice Lets a ledger contract (`spender`) take up to `amount` deposit tokens from the account: what a
    /// financier grants before it funds, a core firm before it repays.
    struct ApproveSettlement {
        address account;
        address spender;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    struct IssueReceipt {
        address account;
        address owner;
        bytes32 lotKeyHash;
        bytes32 goodsHash;
        uint256 quantity;
        bytes8 unit;
        uint256 valuation;
        uint64 expiry;
        bytes32 documentHash;
        uint256 nonce;
        uint256 deadline;
    }

    struct RevalueReceipt {
        address account;
        uint256 receiptId;
        uint256 valuation;
        bytes32 attestationHash;
        uint256 nonce;
        uint256 deadline;
    }

    struct RequestPledge {
        address account;
        uint256 receiptId;
        address financier;
        uint256 principal;
        uint16 rateBps;
        uint64 dueDate;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The financier lends `principal` against receipt `receiptId` of `borrower`; the fields are checked
    /// against the pledge on chain.
    struct FundPledge {
        address account;
        uint256 pledgeId;
        uint256 receiptId;
        address borrower;
        uint256 principal;
        uint16 rateBps;
        uint64 dueDate;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The financier records the 中登网 registration (number, date) of its funded financing request.
    struct RecordFinancingRegistration {
        address account;
        uint256 requestId;
        bytes32 number;
        uint64 registeredAt;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The financier records the 中登网 registration (number, date) of its funded pledge.
    struct RecordPledgeRegistration {
        address account;
        uint256 pledgeId;
        bytes32 number;
        uint64 registeredAt;
        uint256 nonce;
        uint256 deadline;
    }

    struct DeclinePledge {
        address account;
        uint256 pledgeId;
        uint256 nonce;
        uint256 deadline;
    }

    struct CancelPledge {
        address account;
        uint256 pledgeId;
        uint256 nonce;
        uint256 deadline;
    }

    struct RepayPledge {
        address account;
        uint256 pledgeId;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    struct MarkDefaulted {
        address account;
        uint256 invoiceId;
        uint256 pieceId;
        uint256 nonce;
        uint256 deadline;
    }

    struct TransferReceipt {
        address account;
        uint256 receiptId;
        address to;
        uint256 nonce;
        uint256 deadline;
    }

    struct UpdateGoodsStatus {
        address account;
        uint256 receiptId;
        uint8 status;
        bytes32 attestationHash;
        uint256 nonce;
        uint256 deadline;
    }

    struct AppointOracle {
        address account;
        address oracle;
        uint256 nonce;
        uint256 deadline;
    }

    struct EnforcePledge {
        address account;
        uint256 pledgeId;
        uint256 nonce;
        uint256 deadline;
    }

    struct RequestRedemption {
        address account;
        uint256 receiptId;
        uint256 nonce;
        uint256 deadline;
    }

    struct WithdrawRedemption {
        address account;
        uint256 receiptId;
        uint256 nonce;
        uint256 deadline;
    }

    struct ConfirmRedemption {
        address account;
        uint256 receiptId;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A self-custody participant replaces its key: signed by the key in place.
    struct RotateKey {
        address account;
        address newSigner;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice `account`'s act of type `typeHash` was performed, signed by `signer` under nonce `nonce`;
    /// `digest` is the EIP-712 hash the signature is over (the evidence: re-verify it from the act's fields).
    event ActPerformed(
        address indexed account, bytes32 indexed typeHash, address indexed signer, uint256 nonce, bytes32 digest
    );
    /// @notice The account voided the unused nonces of `mask` in word `word` of its nonce space.
    event NoncesInvalidated(address indexed account, uint256 word, uint256 mask);

    /// @notice The signature is not `account`'s signer's (a wrong key, a rotated-out key, other fields, another
    /// act type, chain or deployment, a malleable high-s form, or fewer owners than a contract account needs).
    /// @custom:kind forbidden
    error SignedActsInvalidSignature(address account, address signer);
    /// @notice The act's deadline has passed.
    /// @custom:kind conflict
    error SignedActsExpired(uint256 deadline, uint256 timestamp);
    /// @notice The nonce was used (or voided) already: an act is performed once.
    /// @custom:kind conflict
    error SignedActsNonceUsed(address account, uint256 nonce);
    /// @notice The terms the signer approved are not those on chain (the invoice or request it restates).
    /// @custom:kind conflict
    error SignedActsTermsChanged(bytes32 typeHash, uint256 id);
    /// @notice An `UpdateGoodsStatus` act names no goods status of {IWarehouseReceipts-GoodsStatus}.
    /// @custom:kind invalid
    error SignedActsUnknownGoodsStatus(uint8 status);
    /// @notice The act's contract is not part of this deployment (a warehouse act where no warehouse-receipts
    /// contract was deployed).
    /// @custom:kind conflict
    error SignedActsNotDeployed();

    /// @notice Whether nonce `nonce` of `account` is used.
    function nonceUsed(address account, uint256 nonce) external view returns (bool);

    /// @notice Bitmap of used nonces of `account` in word `word` (nonces `word * 256` to `word * 256 + 255`).
    function nonceBitmap(address account, uint256 word) external view returns (uint256);

    /// @notice The EIP-712 hash of an act's struct hash in this contract's domain.
    function hashTypedDataV4(bytes32 structHash) external view returns (bytes32);
}
