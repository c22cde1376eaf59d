// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

// Bench-only contracts (never deployed by the ledger): the three ways a signed act can reach the contract it is
// performed on, on one small ledger, so that `scf bench`'s gas stage can set their costs beside each other.
//
// - direct: the participant's own transaction; the target asks the registry whether the sender may act directly;
// - forwarded: as the ledger's `SignedActs` does it: a separate contract verifies the act (its own nonce bitmap,
//   the registry's signer look-up, ECDSA or ERC-1271, an `ActPerformed` event) and calls the target with the
//   account appended (ERC-2771);
// - in target: the relayer's transaction goes to the target itself, which hashes the act from its own calldata
//   and asks the registry (which it calls anyway on the direct path) to check the signature and spend the nonce.
//
// The acts: cancelling a pledge (restates nothing) and confirming an invoice (restates seller, amount, currency
// and due date, which the target compares with its own record). The bodies mirror the ledger's (the same reads,
// writes and registry calls); the figures that matter are the differences between the three paths.

/// @title Bench registry: each participant's status word and, for the in-target path, the act verifier
contract BenchActRegistry {
    uint256 private constant SELF_CUSTODY = 1 << 160;
    uint256 private constant ACTIVE = 1 << 161;
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice The contract the in-target path performs acts on (created with the registry).
    BenchActTarget public immutable target;
    bytes32 private immutable _domainSeparator;

    /// @dev Low 160 bits: the signer; bit 160: signs its own acts; bit 161: active.
    mapping(address account => uint256 word) private _status;
    mapping(address account => mapping(uint256 word => uint256 bitmap)) public nonceBitmap;

    event ActPerformed(
        address indexed account, bytes32 indexed typeHash, address indexed signer, uint256 nonce, bytes32 digest
    );

    /// @notice The account signs its own acts: its own transaction is refused.
    /// @custom:kind forbidden
    error BenchSignedActsOnly(address account);
    /// @notice The account is not an active participant.
    /// @custom:kind forbidden
    error BenchInactive(address account);
    /// @notice Only the bench target may spend nonces at the registry.
    /// @custom:kind forbidden
    error BenchNotTarget(address caller);
    /// @notice The act's deadline has passed.
    /// @custom:kind invalid
    error BenchExpired(uint256 deadline);
    /// @notice The act's nonce was used (or voided) before.
    /// @custom:kind conflict
    error BenchNonceUsed(address account, uint256 nonce);
    /// @notice The signature is not the account's signer's for this act.
    /// @custom:kind forbidden
    error BenchInvalidSignature(address account, address signer);

    constructor() {
        _domainSeparator =
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("scf-ledger"), keccak256("1"), block.chainid, address(this)));
        target = new BenchActTarget(this);
    }

    /// @notice Register `account` (anyone: a benchmark fixture).
    function register(address account, address signer, bool selfCustody) external {
        _status[account] = uint256(uint160(signer)) | ACTIVE | (selfCustody ? SELF_CUSTODY : 0);
    }

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator;
    }

    function requireDirect(address account) external view {
        if (_status[account] & SELF_CUSTODY != 0) revert BenchSignedActsOnly(account);
    }

    function requireActive(address account) external view {
        if (_status[account] & ACTIVE == 0) revert BenchInactive(account);
    }

    function signerOf(address account) external view returns (address) {
        return address(uint160(_status[account]));
    }

    /// @notice The in-target path's check: `structHash` (hashed by the target from its calldata) signed by the
    /// account's signer, before `deadline`, with a nonce never used; spends the nonce.
    function useAct(
        address account,
        bytes32 typeHash,
        bytes32 structHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        require(msg.sender == address(target), BenchNotTarget(msg.sender));
        require(block.timestamp <= deadline, BenchExpired(deadline));
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = nonceBitmap[account][nonce >> 8] ^= bit;
        require(flipped & bit != 0, BenchNonceUsed(account, nonce));
        bytes32 digest = MessageHashUtils.toTypedDataHash(_domainSeparator, structHash);
        address signer = address(uint160(_status[account]));
        // slither-disable-next-line unused-return -- the third value only details a failure already in `failure`
        (address recovered, ECDSA.RecoverError failure,) = ECDSA.tryRecoverCalldata(digest, signature);
        bool valid = (failure == ECDSA.RecoverError.NoError && recovered == signer)
            || SignatureChecker.isValidERC1271SignatureNow(signer, digest, signature);
        require(valid, BenchInvalidSignature(account, signer));
        emit ActPerformed(account, typeHash, signer, nonce, digest);
    }
}

/// @title Bench target: a pledge to cancel and an invoice to confirm, by the three paths
contract BenchActTarget {
    bytes32 public constant CANCEL_PLEDGE_TYPEHASH =
        keccak256("CancelPledge(address account,uint256 pledgeId,uint256 nonce,uint256 deadline)");
    bytes32 public constant CONFIRM_INVOICE_TYPEHASH = keccak256(
        "ConfirmInvoice(address account,uint256 invoiceId,address seller,uint256 amount,bytes3 currency,uint64 dueDate,uint256 nonce,uint256 deadline)"
    );

    struct Invoice {
        address seller;
        uint64 dueDate;
        uint8 state;
        address buyer;
        uint64 confirmedAt;
        uint96 amount;
    }

    struct Pledge {
        address borrower;
        uint8 state;
        uint256 receiptId;
    }

    BenchActRegistry public immutable registry;
    /// @notice The forwarded path's verifier (set once, as the ledger's contracts name `SignedActs`).
    address public forwarder;
    bytes3 public constant CURRENCY = "CNY";

    mapping(uint256 invoiceId => Invoice) public invoices;
    mapping(uint256 pledgeId => Pledge) public pledges;
    mapping(uint256 receiptId => uint256 state) public receiptStates;

    event PledgeCancelled(uint256 indexed pledgeId, address indexed borrower, uint256 receiptId);
    event InvoiceConfirmed(uint256 indexed invoiceId, address indexed buyer, address seller, uint256 amount);

    /// @notice Only the pledge's borrower may cancel it.
    /// @custom:kind forbidden
    error BenchNotBorrower(uint256 pledgeId, address sender);
    /// @notice Only the invoice's buyer may confirm it.
    /// @custom:kind forbidden
    error BenchNotBuyer(uint256 invoiceId, address sender);
    /// @notice The pledge or invoice is not in the state the act needs.
    /// @custom:kind conflict
    error BenchWrongState(uint256 id);
    /// @notice The forwarder is set once.
    /// @custom:kind conflict
    error BenchForwarderSet(address forwarder);
    /// @notice The terms the signer approved are not the invoice's.
    /// @custom:kind conflict
    error BenchTermsChanged(uint256 invoiceId);

    constructor(BenchActRegistry registry_) {
        registry = registry_;
    }

    /// @notice Fixtures (anyone).
    function setForwarder(address forwarder_) external {
        require(forwarder == address(0), BenchForwarderSet(forwarder));
        forwarder = forwarder_;
    }

    function openPledge(uint256 pledgeId, address borrower, uint256 receiptId) external {
        pledges[pledgeId] = Pledge(borrower, 1, receiptId);
        receiptStates[receiptId] = 2;
    }

    function registerInvoice(uint256 invoiceId, address seller, address buyer, uint96 amount, uint64 dueDate)
        external
    {
        invoices[invoiceId] = Invoice(seller, dueDate, 1, buyer, 0, amount);
    }

    /// @notice The terms a confirmation restates: what the forwarder reads across a call to compare.
    function terms(uint256 invoiceId) external view returns (address seller, uint96 amount, uint64 dueDate) {
        Invoice storage inv = invoices[invoiceId];
        return (inv.seller, inv.amount, inv.dueDate);
    }

    // -- cancelling a pledge ----------------------------------------------------------------------------------

    function cancelPledge(uint256 pledgeId) external {
        _cancelPledge(pledgeId, _msgSender());
    }

    function cancelPledgeSigned(
        uint256 pledgeId,
        address account,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash = keccak256(abi.encode(CANCEL_PLEDGE_TYPEHASH, account, pledgeId, nonce, deadline));
        registry.useAct(account, CANCEL_PLEDGE_TYPEHASH, structHash, nonce, deadline, signature);
        _cancelPledge(pledgeId, account);
    }

    function _cancelPledge(uint256 pledgeId, address sender) private {
        Pledge storage p = pledges[pledgeId];
        address borrower = p.borrower;
        require(sender == borrower, BenchNotBorrower(pledgeId, sender));
        registry.requireActive(sender);
        require(p.state == 1, BenchWrongState(pledgeId));
        uint256 receiptId = p.receiptId;
        p.state = 3;
        receiptStates[receiptId] = 1;
        emit PledgeCancelled(pledgeId, borrower, receiptId);
    }

    // -- confirming an invoice (the act restates its terms) ------------------------------------------------

    function confirmInvoice(uint256 invoiceId) external {
        _confirmInvoice(invoiceId, _msgSender());
    }

    /// @notice The in-target signed confirmation: the terms the buyer signed must be the invoice's.
    function confirmInvoiceSigned(
        uint256 invoiceId,
        address seller,
        uint256 amount,
        bytes3 currency,
        uint64 dueDate,
        address account,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash = keccak256(
            abi.encode(CONFIRM_INVOICE_TYPEHASH, account, invoiceId, seller, amount, currency, dueDate, nonce, deadline)
        );
        registry.useAct(account, CONFIRM_INVOICE_TYPEHASH, structHash, nonce, deadline, signature);
        Invoice storage inv = invoices[invoiceId];
        require(
            inv.seller == seller && inv.amount == amount && inv.dueDate == dueDate && currency == CURRENCY,
            BenchTermsChanged(invoiceId)
        );
        _confirmInvoice(invoiceId, account);
    }

    function _confirmInvoice(uint256 invoiceId, address sender) private {
        Invoice storage inv = invoices[invoiceId];
        address buyer = inv.buyer;
        require(sender == buyer, BenchNotBuyer(invoiceId, sender));
        registry.requireActive(sender);
        registry.requireActive(inv.seller);
        require(inv.state == 1, BenchWrongState(invoiceId));
        inv.state = 2;
        inv.confirmedAt = uint64(block.timestamp);
        emit InvoiceConfirmed(invoiceId, buyer, inv.seller, inv.amount);
    }

    // -- who acts -------------------------------------------------------------------------------------------

    /// @dev As the ledger's `SignedActsRecipient`: the account the forwarder appended, or the sender (asked
    /// whether it may act directly).
    function _msgSender() private view returns (address) {
        if (msg.sender == forwarder && msg.data.length >= 20) {
            return address(bytes20(msg.data[msg.data.length - 20:]));
        }
        registry.requireDirect(msg.sender);
        return msg.sender;
    }
}

/// @title Bench forwarder: the ledger's `SignedActs` pattern for the two acts
contract BenchActForwarder {
    bytes32 private constant CANCEL_PLEDGE_TYPEHASH =
        keccak256("CancelPledge(address account,uint256 pledgeId,uint256 nonce,uint256 deadline)");
    bytes32 private constant CONFIRM_INVOICE_TYPEHASH = keccak256(
        "ConfirmInvoice(address account,uint256 invoiceId,address seller,uint256 amount,bytes3 currency,uint64 dueDate,uint256 nonce,uint256 deadline)"
    );
    bytes3 private constant CURRENCY = "CNY";
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    struct CancelPledge {
        address account;
        uint256 pledgeId;
        uint256 nonce;
        uint256 deadline;
    }

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

    BenchActRegistry public immutable registry;
    BenchActTarget public immutable target;
    bytes32 private immutable _domainSeparator;
    mapping(address account => mapping(uint256 word => uint256 bitmap)) public nonceBitmap;

    event ActPerformed(
        address indexed account, bytes32 indexed typeHash, address indexed signer, uint256 nonce, bytes32 digest
    );

    /// @notice The act's deadline has passed.
    /// @custom:kind invalid
    error BenchExpired(uint256 deadline);
    /// @notice The act's nonce was used (or voided) before.
    /// @custom:kind conflict
    error BenchNonceUsed(address account, uint256 nonce);
    /// @notice The signature is not the account's signer's for this act.
    /// @custom:kind forbidden
    error BenchInvalidSignature(address account, address signer);
    /// @notice The terms the signer approved are not the invoice's.
    /// @custom:kind conflict
    error BenchTermsChanged(uint256 invoiceId);

    constructor(BenchActRegistry registry_) {
        registry = registry_;
        target = registry_.target();
        _domainSeparator =
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("scf-ledger"), keccak256("1"), block.chainid, address(this)));
    }

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator;
    }

    function cancelPledge(CancelPledge calldata act, bytes calldata signature) external {
        _verify(CANCEL_PLEDGE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        _call(abi.encodeCall(BenchActTarget.cancelPledge, (act.pledgeId)), act.account);
    }

    function confirmInvoice(ConfirmInvoice calldata act, bytes calldata signature) external {
        _verify(CONFIRM_INVOICE_TYPEHASH, act.account, act.nonce, act.deadline, abi.encode(act), signature);
        (address seller, uint96 amount, uint64 dueDate) = target.terms(act.invoiceId);
        require(
            seller == act.seller && amount == act.amount && dueDate == act.dueDate
                && act.currency == CURRENCY,
            BenchTermsChanged(act.invoiceId)
        );
        _call(abi.encodeCall(BenchActTarget.confirmInvoice, (act.invoiceId)), act.account);
    }

    function _verify(
        bytes32 typeHash,
        address account,
        uint256 nonce,
        uint256 deadline,
        bytes memory encoded,
        bytes calldata signature
    ) private {
        require(block.timestamp <= deadline, BenchExpired(deadline));
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = nonceBitmap[account][nonce >> 8] ^= bit;
        require(flipped & bit != 0, BenchNonceUsed(account, nonce));
        bytes32 digest =
            MessageHashUtils.toTypedDataHash(_domainSeparator, keccak256(bytes.concat(typeHash, encoded)));
        address signer = registry.signerOf(account);
        // slither-disable-next-line unused-return -- the third value only details a failure already in `failure`
        (address recovered, ECDSA.RecoverError failure,) = ECDSA.tryRecoverCalldata(digest, signature);
        bool valid = (failure == ECDSA.RecoverError.NoError && recovered == signer)
            || SignatureChecker.isValidERC1271SignatureNow(signer, digest, signature);
        require(valid, BenchInvalidSignature(account, signer));
        emit ActPerformed(account, typeHash, signer, nonce, digest);
    }

    function _call(bytes memory data, address account) private {
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory result) = address(target).call(bytes.concat(data, bytes20(account)));
        if (!ok) {
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }
}
