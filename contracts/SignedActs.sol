// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {ISignedActs} from "./interfaces/ISignedActs.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {IReceivables} from "./interfaces/IReceivables.sol";
import {IWarehouseReceipts} from "./interfaces/IWarehouseReceipts.sol";
import {IDepositToken} from "./interfaces/IDepositToken.sol";

/// @title Signed acts
/// @notice See {ISignedActs}. One function per act: it hashes the act's typed struct, checks the signature,
/// deadline and nonce ({_verify}), checks the fields that restate chain state, and calls the one function the
/// act names with the account appended (ERC-2771).
contract SignedActs is ISignedActs, IERC5267 {
    bytes32 public constant REGISTER_INVOICE_TYPEHASH = keccak256(
        "RegisterInvoice(address account,bytes32 keyHash,address buyer,uint256 amount,bytes3 currency,uint64 dueDate,bytes32 documentHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant CONFIRM_INVOICE_TYPEHASH = keccak256(
        "ConfirmInvoice(address account,uint256 invoiceId,address seller,uint256 amount,bytes3 currency,uint64 dueDate,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REJECT_INVOICE_TYPEHASH =
        keccak256("RejectInvoice(address account,uint256 invoiceId,bytes32 reason,uint256 nonce,uint256 deadline)");
    bytes32 public constant SET_CREDIT_LINE_TYPEHASH =
        keccak256("SetCreditLine(address account,address coreFirm,uint256 grant,uint256 nonce,uint256 deadline)");
    bytes32 public constant ASSIGN_PIECE_TYPEHASH = keccak256(
        "AssignPiece(address account,uint256 pieceId,address to,uint256 value,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REQUEST_FINANCING_TYPEHASH = keccak256(
        "RequestFinancing(address account,uint256 pieceId,uint256 amount,address financier,uint16 maxDiscountRateBps,uint256 maxFee,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant APPROVE_FINANCING_TYPEHASH = keccak256(
        "ApproveFinancing(address account,uint256 requestId,uint16 discountRateBps,uint256 fee,uint16 dayCountBasis,bytes32 review,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant FUND_FINANCING_TYPEHASH = keccak256(
        "FundFinancing(address account,uint256 requestId,address holder,uint256 amount,uint16 discountRateBps,uint256 fee,uint16 dayCountBasis,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant DECLINE_FINANCING_TYPEHASH =
        keccak256("DeclineFinancing(address account,uint256 requestId,uint256 nonce,uint256 deadline)");
    bytes32 public constant CANCEL_FINANCING_TYPEHASH =
        keccak256("CancelFinancing(address account,uint256 requestId,uint256 nonce,uint256 deadline)");
    bytes32 public constant REPAY_TYPEHASH =
        keccak256("Repay(address account,uint256 invoiceId,uint256 amount,uint256 nonce,uint256 deadline)");
    bytes32 public constant REDEEM_TYPEHASH =
        keccak256("Redeem(address account,uint256 pieceId,uint256 nonce,uint256 deadline)");
    bytes32 public constant APPROVE_SETTLEMENT_TYPEHASH = keccak256(
        "ApproveSettlement(address account,address spender,uint256 amount,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant ISSUE_RECEIPT_TYPEHASH = keccak256(
        "IssueReceipt(address account,address owner,bytes32 lotKeyHash,bytes32 goodsHash,uint256 quantity,bytes8 unit,uint256 valuation,uint64 expiry,bytes32 documentHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVALUE_RECEIPT_TYPEHASH = keccak256(
        "RevalueReceipt(address account,uint256 receiptId,uint256 valuation,bytes32 attestationHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REQUEST_PLEDGE_TYPEHASH = keccak256(
        "RequestPledge(address account,uint256 receiptId,address financier,uint256 principal,uint16 rateBps,uint64 dueDate,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant FUND_PLEDGE_TYPEHASH = keccak256(
        "FundPledge(address account,uint256 pledgeId,uint256 receiptId,address borrower,uint256 principal,uint16 rateBps,uint64 dueDate,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant RECORD_FINANCING_REGISTRATION_TYPEHASH = keccak256(
        "RecordFinancingRegistration(address account,uint256 requestId,bytes32 number,uint64 registeredAt,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant RECORD_PLEDGE_REGISTRATION_TYPEHASH = keccak256(
        "RecordPledgeRegistration(address account,uint256 pledgeId,bytes32 number,uint64 registeredAt,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant DECLINE_PLEDGE_TYPEHASH =
        keccak256("DeclinePledge(address account,uint256 pledgeId,uint256 nonce,uint256 deadline)");
    bytes32 public constant CANCEL_PLEDGE_TYPEHASH =
        keccak256("CancelPledge(address account,uint256 pledgeId,uint256 nonce,uint256 deadline)");
    bytes32 public constant REPAY_PLEDGE_TYPEHASH =
        keccak256("RepayPledge(address account,uint256 pledgeId,uint256 amount,uint256 nonce,uint256 deadline)");
    bytes32 public constant MARK_DEFAULTED_TYPEHASH = keccak256(
        "MarkDefaulted(address account,uint256 invoiceId,uint256 pieceId,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant TRANSFER_RECEIPT_TYPEHASH = keccak256(
        "TransferReceipt(address account,uint256 receiptId,address to,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant UPDATE_GOODS_STATUS_TYPEHASH = keccak256(
        "UpdateGoodsStatus(address account,uint256 receiptId,uint8 status,bytes32 attestationHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant APPOINT_ORACLE_TYPEHASH =
        keccak256("AppointOracle(address account,address oracle,uint256 nonce,uint256 deadline)");
    bytes32 public constant ENFORCE_PLEDGE_TYPEHASH =
        keccak256("EnforcePledge(address account,uint256 pledgeId,uint256 nonce,uint256 deadline)");
    bytes32 public constant REQUEST_REDEMPTION_TYPEHASH =
        keccak256("RequestRedemption(address account,uint256 receiptId,uint256 nonce,uint256 deadline)");
    bytes32 public constant WITHDRAW_REDEMPTION_TYPEHASH =
        keccak256("WithdrawRedemption(address account,uint256 receiptId,uint256 nonce,uint256 deadline)");
    bytes32 public constant CONFIRM_REDEMPTION_TYPEHASH =
        keccak256("ConfirmRedemption(address account,uint256 receiptId,uint256 nonce,uint256 deadline)");
    bytes32 public constant ROTATE_KEY_TYPEHASH =
        keccak256("RotateKey(address account,address newSigner,uint256 nonce,uint256 deadline)");

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("scf-ledger");
    bytes32 private constant VERSION_HASH = keccak256("1");

    IParticipantRegistry public immutable registry;
    IDepositToken public immutable depositToken;
    IReceivables public immutable receivables;
    IWarehouseReceipts public immutable warehouseReceipts;
    /// @notice The deposit token's currency, which an invoice's confirmation restates.
    bytes3 public immutable currency;
    uint256 private immutable _deployedChainId;
    bytes32 private immutable _deployedDomainSeparator;

    mapping(address account => mapping(uint256 word => uint256 bitmap)) public nonceBitmap;

    /// @dev Deployed after the contracts it performs acts on, which name this contract's address (computed
    /// before it exists) as their trusted forwarder; the addresses are immutable, so an act reads no storage to
    /// find its contract. `warehouseReceipts_` is zero where no warehouse-receipts contract is deployed.
    constructor(
        IParticipantRegistry registry_,
        IDepositToken depositToken_,
        IReceivables receivables_,
        IWarehouseReceipts warehouseReceipts_
    ) {
        registry = registry_;
        depositToken = depositToken_;
        receivables = receivables_;
        warehouseReceipts = warehouseReceipts_;
        currency = depositToken_.currency();
        _deployedChainId = block.chainid;
        _deployedDomainSeparator = _domainSeparator();
    }

    /// @notice The EIP-712 domain (EIP-5267): name "scf-ledger", version "1", this chain and this contract.
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", "scf-ledger", "1", block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @notice The EIP-712 domain separator of this deployment on this chain.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------------------------------------------
    // Receivables
    // ---------------------------------------------------------------------------------------------------

    function registerInvoice(RegisterInvoice calldata act, bytes calldata signature)
        external
        returns (uint256 invoiceId)
    {
        _verify(REGISTER_INVOICE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(
            IReceivables.registerInvoice,
            (act.keyHash, act.buyer, act.amount, act.currency, act.dueDate, act.documentHash)
        );
        invoiceId = abi.decode(_call(address(receivables), data, act.account), (uint256));
    }

    function confirmInvoice(ConfirmInvoice calldata act, bytes calldata signature) external returns (uint256 pieceId) {
        _verify(CONFIRM_INVOICE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        IReceivables.Invoice memory inv = receivables.invoice(act.invoiceId);
        require(
            inv.seller == act.seller && inv.amount == act.amount && inv.dueDate == act.dueDate
                && act.currency == currency,
            SignedActsTermsChanged(CONFIRM_INVOICE_TYPEHASH, act.invoiceId)
        );
        bytes memory data = abi.encodeCall(IReceivables.confirmInvoice, (act.invoiceId));
        pieceId = abi.decode(_call(address(receivables), data, act.account), (uint256));
    }

    function rejectInvoice(RejectInvoice calldata act, bytes calldata signature) external {
        _verify(REJECT_INVOICE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(address(receivables), abi.encodeCall(IReceivables.rejectInvoice, (act.invoiceId, act.reason)), act.account);
    }

    function setCreditLine(SetCreditLine calldata act, bytes calldata signature) external {
        _verify(SET_CREDIT_LINE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(address(receivables), abi.encodeCall(IReceivables.setCreditLine, (act.coreFirm, act.grant)), act.account);
    }

    /// @notice {IReceivables-transferPiece}: the whole piece moves when `value` is all of it, otherwise `value` is
    /// split off to `to`. Returns the piece `to` holds.
    function assignPiece(AssignPiece calldata act, bytes calldata signature) external returns (uint256 pieceId) {
        _verify(ASSIGN_PIECE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IReceivables.transferPiece, (act.pieceId, act.to, act.value));
        pieceId = abi.decode(_call(address(receivables), data, act.account), (uint256));
    }

    function requestFinancing(RequestFinancing calldata act, bytes calldata signature)
        external
        returns (uint256 requestId)
    {
        _verify(REQUEST_FINANCING_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(
            IReceivables.requestFinancing, (act.pieceId, act.amount, act.financier, act.maxDiscountRateBps, act.maxFee)
        );
        requestId = abi.decode(_call(address(receivables), data, act.account), (uint256));
    }

    function approveFinancing(ApproveFinancing calldata act, bytes calldata signature) external {
        _verify(APPROVE_FINANCING_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(
            IReceivables.approveFinancing,
            (act.requestId, act.discountRateBps, act.fee, act.dayCountBasis, act.review)
        );
        _call(address(receivables), data, act.account);
    }

    function fundFinancing(FundFinancing calldata act, bytes calldata signature) external returns (uint256 pieceId) {
        _verify(FUND_FINANCING_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        IReceivables.FinancingRequest memory r = receivables.financingRequest(act.requestId);
        require(
            r.holder == act.holder && r.amount == act.amount && r.discountRateBps == act.discountRateBps
                && r.fee == act.fee && r.dayCountBasis == act.dayCountBasis,
            SignedActsTermsChanged(FUND_FINANCING_TYPEHASH, act.requestId)
        );
        bytes memory data = abi.encodeCall(IReceivables.fundFinancing, (act.requestId));
        pieceId = abi.decode(_call(address(receivables), data, act.account), (uint256));
    }

    function declineFinancing(DeclineFinancing calldata act, bytes calldata signature) external {
        _verify(DECLINE_FINANCING_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(address(receivables), abi.encodeCall(IReceivables.declineFinancing, (act.requestId)), act.account);
    }

    function cancelFinancing(CancelFinancing calldata act, bytes calldata signature) external {
        _verify(CANCEL_FINANCING_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(address(receivables), abi.encodeCall(IReceivables.cancelFinancing, (act.requestId)), act.account);
    }

    function repay(Repay calldata act, bytes calldata signature) external {
        _verify(REPAY_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(address(receivables), abi.encodeCall(IReceivables.repay, (act.invoiceId, act.amount)), act.account);
    }

    function redeem(Redeem calldata act, bytes calldata signature) external returns (uint256 payout) {
        _verify(REDEEM_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IReceivables.redeem, (act.pieceId));
        payout = abi.decode(_call(address(receivables), data, act.account), (uint256));
    }

    function markDefaulted(MarkDefaulted calldata act, bytes calldata signature) external {
        _verify(MARK_DEFAULTED_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IReceivables.markDefaulted, (act.invoiceId, act.pieceId));
        _call(address(receivables), data, act.account);
    }

    // ---------------------------------------------------------------------------------------------------
    // Deposits
    // ---------------------------------------------------------------------------------------------------

    function approveSettlement(ApproveSettlement calldata act, bytes calldata signature) external {
        _verify(APPROVE_SETTLEMENT_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(address(depositToken), abi.encodeCall(IERC20.approve, (act.spender, act.amount)), act.account);
    }

    // ---------------------------------------------------------------------------------------------------
    // Warehouse receipts
    // ---------------------------------------------------------------------------------------------------

    function issueReceipt(IssueReceipt calldata act, bytes calldata signature) external returns (uint256 receiptId) {
        _verify(ISSUE_RECEIPT_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(
            IWarehouseReceipts.issueReceipt,
            (
                act.owner,
                act.lotKeyHash,
                act.goodsHash,
                act.quantity,
                act.unit,
                act.valuation,
                act.expiry,
                act.documentHash
            )
        );
        receiptId = abi.decode(_call(address(warehouseReceipts), data, act.account), (uint256));
    }

    function revalueReceipt(RevalueReceipt calldata act, bytes calldata signature) external {
        _verify(REVALUE_RECEIPT_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data =
            abi.encodeCall(IWarehouseReceipts.revalueReceipt, (act.receiptId, act.valuation, act.attestationHash));
        _call(address(warehouseReceipts), data, act.account);
    }

    function requestPledge(RequestPledge calldata act, bytes calldata signature) external returns (uint256 pledgeId) {
        _verify(REQUEST_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(
            IWarehouseReceipts.requestPledge, (act.receiptId, act.financier, act.principal, act.rateBps, act.dueDate)
        );
        pledgeId = abi.decode(_call(address(warehouseReceipts), data, act.account), (uint256));
    }

    function fundPledge(FundPledge calldata act, bytes calldata signature) external {
        _verify(FUND_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        IWarehouseReceipts.Pledge memory p = warehouseReceipts.pledge(act.pledgeId);
        require(
            p.receiptId == act.receiptId && p.borrower == act.borrower && p.principal == act.principal
                && p.rateBps == act.rateBps && p.dueDate == act.dueDate,
            SignedActsTermsChanged(FUND_PLEDGE_TYPEHASH, act.pledgeId)
        );
        _call(address(warehouseReceipts), abi.encodeCall(IWarehouseReceipts.fundPledge, (act.pledgeId)), act.account);
    }

    function recordFinancingRegistration(RecordFinancingRegistration calldata act, bytes calldata signature)
        external
    {
        _verify(
            RECORD_FINANCING_REGISTRATION_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature
        );
        bytes memory data = abi.encodeCall(
            IReceivables.recordFinancingRegistration, (act.requestId, act.number, act.registeredAt)
        );
        _call(address(receivables), data, act.account);
    }

    function recordPledgeRegistration(RecordPledgeRegistration calldata act, bytes calldata signature) external {
        _verify(RECORD_PLEDGE_REGISTRATION_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(
            IWarehouseReceipts.recordPledgeRegistration, (act.pledgeId, act.number, act.registeredAt)
        );
        _call(address(warehouseReceipts), data, act.account);
    }

    function declinePledge(DeclinePledge calldata act, bytes calldata signature) external {
        _verify(DECLINE_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.declinePledge, (act.pledgeId));
        _call(address(warehouseReceipts), data, act.account);
    }

    function cancelPledge(CancelPledge calldata act, bytes calldata signature) external {
        _verify(CANCEL_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.cancelPledge, (act.pledgeId));
        _call(address(warehouseReceipts), data, act.account);
    }

    function repayPledge(RepayPledge calldata act, bytes calldata signature)
        external
        returns (uint256 principalPaid, uint256 interestPaid)
    {
        _verify(REPAY_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.repayPledge, (act.pledgeId, act.amount));
        (principalPaid, interestPaid) =
            abi.decode(_call(address(warehouseReceipts), data, act.account), (uint256, uint256));
    }

    function enforcePledge(EnforcePledge calldata act, bytes calldata signature) external {
        _verify(ENFORCE_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.enforcePledge, (act.pledgeId));
        _call(address(warehouseReceipts), data, act.account);
    }

    function transferReceipt(TransferReceipt calldata act, bytes calldata signature) external {
        _verify(TRANSFER_RECEIPT_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IERC721.transferFrom, (act.account, act.to, act.receiptId));
        _call(address(warehouseReceipts), data, act.account);
    }

    function updateGoodsStatus(UpdateGoodsStatus calldata act, bytes calldata signature) external {
        _verify(UPDATE_GOODS_STATUS_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        require(
            act.status <= uint8(type(IWarehouseReceipts.GoodsStatus).max), SignedActsUnknownGoodsStatus(act.status)
        );
        bytes memory data = abi.encodeCall(
            IWarehouseReceipts.updateGoodsStatus,
            (act.receiptId, IWarehouseReceipts.GoodsStatus(act.status), act.attestationHash)
        );
        _call(address(warehouseReceipts), data, act.account);
    }

    function appointOracle(AppointOracle calldata act, bytes calldata signature) external {
        _verify(APPOINT_ORACLE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.appointOracle, (act.oracle));
        _call(address(warehouseReceipts), data, act.account);
    }

    function requestRedemption(RequestRedemption calldata act, bytes calldata signature) external {
        _verify(REQUEST_REDEMPTION_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.requestRedemption, (act.receiptId));
        _call(address(warehouseReceipts), data, act.account);
    }

    function withdrawRedemption(WithdrawRedemption calldata act, bytes calldata signature) external {
        _verify(WITHDRAW_REDEMPTION_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.withdrawRedemption, (act.receiptId));
        _call(address(warehouseReceipts), data, act.account);
    }

    function confirmRedemption(ConfirmRedemption calldata act, bytes calldata signature) external {
        _verify(CONFIRM_REDEMPTION_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        bytes memory data = abi.encodeCall(IWarehouseReceipts.confirmRedemption, (act.receiptId));
        _call(address(warehouseReceipts), data, act.account);
    }

    // ---------------------------------------------------------------------------------------------------
    // Keys and nonces
    // ---------------------------------------------------------------------------------------------------

    /// @notice Replaces a self-custody participant's key, as its current key signed.
    function rotateKey(RotateKey calldata act, bytes calldata signature) external {
        _verify(ROTATE_KEY_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        registry.rotateSigner(act.account, act.newSigner);
    }

    /// @notice Voids the unused nonces of `mask` in word `word` of `account`'s nonce space (acts signed and
    /// not yet relayed that the account wants never to happen). Sent by the account's signer itself.
    function invalidateNonces(address account, uint256 word, uint256 mask) external {
        address signer = registry.signerOf(account);
        require(msg.sender == signer, SignedActsInvalidSignature(account, signer));
        nonceBitmap[account][word] |= mask;
        emit NoncesInvalidated(account, word, mask);
    }

    /// @inheritdoc ISignedActs
    function nonceUsed(address account, uint256 nonce) external view returns (bool) {
        return nonceBitmap[account][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @inheritdoc ISignedActs
    function hashTypedDataV4(bytes32 structHash) external view returns (bytes32) {
        return _hashTypedDataV4(structHash);
    }

    // ---------------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------------

    /// @dev Checks the deadline, spends the nonce and checks the signature over the act: `encoded` is the act's
    /// ABI encoding, which for a struct of atomic fields is EIP-712's `encodeData` of it.
    function _verify(
        bytes32 typeHash,
        address account,
        uint256 nonce,
        uint256 deadline,
        bytes memory encoded,
        bytes calldata signature
    ) private {
        require(block.timestamp <= deadline, SignedActsExpired(deadline, block.timestamp));
        _useNonce(account, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(bytes.concat(typeHash, encoded)));
        address signer = registry.signerOf(account);
        // A key's signature first (no look at the signer's code: that would be a cold account access), then a
        // contract account's ERC-1271 answer: a Safe's owners' signatures never recover to the Safe itself.
        // slither-disable-next-line unused-return -- the third value only details a failure already in `failure`
        (address recovered, ECDSA.RecoverError failure,) = ECDSA.tryRecoverCalldata(digest, signature);
        bool valid = (failure == ECDSA.RecoverError.NoError && recovered == signer)
            || SignatureChecker.isValidERC1271SignatureNow(signer, digest, signature);
        require(valid, SignedActsInvalidSignature(account, signer));
        emit ActPerformed(account, typeHash, signer, nonce, digest);
    }

    function _hashTypedDataV4(bytes32 structHash) private view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(_domainSeparatorV4(), structHash);
    }

    /// @dev The separator computed at deployment, or again on another chain (after a fork): a signature for one
    /// chain id never verifies on another.
    function _domainSeparatorV4() private view returns (bytes32) {
        return block.chainid == _deployedChainId ? _deployedDomainSeparator : _domainSeparator();
    }

    function _domainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _useNonce(address account, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = nonceBitmap[account][nonce >> 8] ^= bit;
        require(flipped & bit != 0, SignedActsNonceUsed(account, nonce));
    }

    /// @dev Calls `target` with `data` and the acting account appended (ERC-2771), passing a revert through
    /// unchanged so that the caller sees the contract's own named error.
    function _call(address target, bytes memory data, address account) private returns (bytes memory) {
        require(target != address(0), SignedActsNotDeployed());
        // The one low-level call: ERC-2771 needs the account appended to the calldata the compiler builds.
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory result) = target.call(bytes.concat(data, bytes20(account)));
        if (!ok) {
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }
}
