// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ERC165Checker} from "@openzeppelin/contracts/utils/introspection/ERC165Checker.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IERC3525, IERC3525Receiver} from "./interfaces/IERC3525.sol";
import {IReceivables} from "./interfaces/IReceivables.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {IDepositToken} from "./interfaces/IDepositToken.sol";
import {Roles} from "./Roles.sol";
import {ReceivablesMetadata} from "./ReceivablesMetadata.sol";
import {PackedERC721} from "./PackedERC721.sol";
import {SignedActsRecipient} from "./SignedActsRecipient.sol";

/// @title Receivables
/// @notice Confirmed invoices as ERC-3525 slots whose pieces are split, passed down the supply chain,
/// financed and redeemed; see {IReceivables}. ERC-721 is {PackedERC721}'s, with the owner packed into the
/// piece's record, and ERC-3525 is implemented here on OpenZeppelin 5 primitives (a piece is two storage words),
/// so that a split-transfer costs one new piece and no more. Every change of a piece's owner passes
/// {PackedERC721-_update}, overridden here with the rules of a piece's movement and the lapse of its value
/// allowances.
///
/// ERC-3525 value allowances are kept per piece in a list of at most {MAX_VALUE_APPROVALS} entries (operator
/// and allowance in one word), so that a piece changing hands can announce the end of each one: the holder's
/// allowances lapse with a whole-piece transfer or a burn, and each operator whose allowance was not zero gets
/// `ApprovalValue(piece, operator, 0)`, as EIP-3525 requires of every change. A reader that rebuilds
/// allowances from events (the ledger's index does) therefore never keeps one the contract no longer honours.
contract Receivables is IReceivables, PackedERC721 {
    uint8 private constant FROZEN = 1;
    uint8 private constant HAS_TOKEN_APPROVAL = 2;
    /// @dev Bits 2-5 of a piece's flags: how many entries of its value-allowance list are in use.
    uint8 private constant VALUE_APPROVALS = 0x3c;
    uint8 private constant ONE_VALUE_APPROVAL = 4;
    /// @notice The most operators that hold a value allowance on one piece at once.
    uint256 public constant MAX_VALUE_APPROVALS = 8;
    /// @dev An allowance as stored (96 bits beside its operator); type(uint256).max, "unlimited", is stored as
    /// this value, which no other allowance may take.
    uint256 private constant UNLIMITED = type(uint96).max;
    uint256 private constant BPS = 10_000;
    bytes4 private constant ERC3525_RECEIVED = IERC3525Receiver.onERC3525Received.selector;

    IParticipantRegistry public immutable registry;
    IDepositToken public immutable depositToken;
    /// @notice Renders {tokenURI}: a contract of its own, created with this one (see {ReceivablesMetadata}).
    ReceivablesMetadata public immutable metadata;
    bytes3 private immutable _currency;

    uint64 public maxTenor = 365 days;
    uint64 public gracePeriod = 30 days;
    uint48 private _lastInvoiceId;
    uint48 private _lastPieceId;
    uint48 private _lastRequestId;
    /// @notice Financing an obligation that runs longer than this from confirmation needs a credit review.
    uint64 public reviewTenor = 183 days;

    mapping(uint256 invoiceId => Invoice) private _invoices;
    mapping(bytes32 keyHash => uint256 invoiceId) private _invoiceIdOfKey;
    mapping(uint256 pieceId => Piece) private _pieces;
    mapping(uint256 requestId => FinancingRequest) private _requests;
    mapping(address coreFirm => CreditLine) private _creditLines;
    mapping(address grantor => mapping(address coreFirm => uint96)) private _creditGrants;
    /// @dev Value allowances of a piece: `operator | allowance << 160` each; the first `flags & VALUE_APPROVALS`
    /// entries are in use (an entry at zero allowance is free for the next operator), the rest are stale.
    mapping(uint256 pieceId => uint256[MAX_VALUE_APPROVALS]) private _valueApprovals;
    mapping(uint256 requestId => Registration) private _registrations;
    /// @dev The request whose registration was recorded first for an obligation (slot): its financier alone
    /// funds further financings of the obligation.
    mapping(uint256 slotId => uint256 requestId) private _registeredFinancing;

    /// @param signedActs_ The {SignedActs} contract that relays participants' signed acts (ERC-2771).
    constructor(IParticipantRegistry registry_, IDepositToken depositToken_, address signedActs_)
        SignedActsRecipient(signedActs_)
    {
        registry = registry_;
        depositToken = depositToken_;
        _currency = depositToken_.currency();
        metadata = new ReceivablesMetadata();
        // The starting rule parameters are announced like every later change, so an index rebuilt from
        // events alone knows them (invariant 8).
        emit ParametersUpdated(maxTenor, gracePeriod, reviewTenor);
    }

    // ---------------------------------------------------------------------------------------------------
    // Invoices and obligations
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceivables
    function registerInvoice(
        bytes32 keyHash,
        address buyer,
        uint256 amount,
        bytes3 currency,
        uint64 dueDate,
        bytes32 documentHash
    ) external returns (uint256 invoiceId) {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.SUPPLIER, sender);
        registry.requireActiveRole(Roles.CORE_FIRM, buyer);
        require(keyHash != bytes32(0), ReceivablesInvalidKey(keyHash));
        uint256 existing = _invoiceIdOfKey[keyHash];
        require(existing == 0, ReceivablesInvoiceAlreadyRegistered(keyHash, existing));
        require(buyer != sender, ReceivablesSelfBilling(buyer));
        require(amount != 0, ReceivablesZeroAmount());
        require(amount <= type(uint96).max, ReceivablesAmountTooLarge(amount));
        require(currency == _currency, ReceivablesCurrencyMismatch(currency, _currency));
        require(dueDate > block.timestamp, ReceivablesDueDateNotInFuture(dueDate, block.timestamp));

        invoiceId = ++_lastInvoiceId;
        _invoiceIdOfKey[keyHash] = invoiceId;
        Invoice storage inv = _invoices[invoiceId];
        inv.seller = sender;
        inv.dueDate = dueDate;
        inv.state = InvoiceState.Registered;
        inv.buyer = buyer;
        inv.amount = uint96(amount);
        inv.documentHash = documentHash;
        emit InvoiceRegistered(invoiceId, keyHash, sender, buyer, amount, currency, dueDate, documentHash);
    }

    /// @inheritdoc IReceivables
    function confirmInvoice(uint256 invoiceId) external returns (uint256 pieceId) {
        address sender = _msgSender();
        Invoice storage inv = _existingInvoice(invoiceId);
        address buyer = inv.buyer;
        require(sender == buyer, ReceivablesNotBuyer(invoiceId, sender, buyer));
        registry.requireActiveRole(Roles.CORE_FIRM, sender);
        address seller = inv.seller;
        registry.requireActive(seller);
        uint64 dueDate = inv.dueDate;
        require(dueDate > block.timestamp, ReceivablesDueDateNotInFuture(dueDate, block.timestamp));
        uint256 tenor = dueDate - block.timestamp;
        require(tenor <= maxTenor, ReceivablesTenorTooLong(invoiceId, tenor, maxTenor));
        uint96 amount = inv.amount;
        CreditLine storage line = _creditLines[buyer];
        (uint96 limit, uint96 used) = (line.limit, line.used);
        require(
            uint256(used) + amount <= limit, ReceivablesCreditLineExceeded(buyer, used, amount, limit)
        );

        _transition(invoiceId, inv, InvoiceState.Confirmed);
        inv.confirmedAt = uint64(block.timestamp);
        line.used = used + amount;
        pieceId = ++_lastPieceId;
        _pieces[pieceId] = Piece({
            owner: seller,
            slotId: uint48(invoiceId),
            parentId: 0,
            value: amount,
            checkpoint: 0,
            openRequestId: 0,
            flags: 0
        });
        emit InvoiceConfirmed(invoiceId, buyer, seller, pieceId, amount, dueDate);
        _update(address(0), seller, pieceId, address(0));
        emit SlotChanged(pieceId, 0, invoiceId);
        emit TransferValue(0, pieceId, amount);
    }

    /// @inheritdoc IReceivables
    function rejectInvoice(uint256 invoiceId, bytes32 reason) external {
        address sender = _msgSender();
        Invoice storage inv = _existingInvoice(invoiceId);
        require(sender == inv.buyer, ReceivablesNotBuyer(invoiceId, sender, inv.buyer));
        registry.requireActiveRole(Roles.CORE_FIRM, sender);
        _transition(invoiceId, inv, InvoiceState.Rejected);
        emit InvoiceRejected(invoiceId, sender, reason);
    }

    /// @inheritdoc IReceivables
    function setCreditLine(address coreFirm, uint256 grant) external {
        address sender = _msgSender();
        if (!registry.hasRole(Roles.OPERATOR, sender)) {
            registry.requireActiveRole(Roles.FINANCIER, sender);
        } else {
            registry.requireActive(sender);
        }
        registry.requireActiveRole(Roles.CORE_FIRM, coreFirm);
        require(grant <= type(uint96).max, ReceivablesAmountTooLarge(grant));
        CreditLine storage line = _creditLines[coreFirm];
        uint256 limit = uint256(line.limit) - _creditGrants[sender][coreFirm] + grant;
        require(limit >= line.used, ReceivablesCreditLineBelowUsage(coreFirm, limit, line.used));
        require(limit <= type(uint96).max, ReceivablesAmountTooLarge(limit));

        _creditGrants[sender][coreFirm] = uint96(grant);
        line.limit = uint96(limit);
        emit CreditLineSet(coreFirm, sender, grant, limit, line.used);
    }

    /// @inheritdoc IReceivables
    function repay(uint256 slotId, uint256 amount) external {
        address sender = _msgSender();
        Invoice storage inv = _existingInvoice(slotId);
        address buyer = inv.buyer;
        require(sender == buyer, ReceivablesNotBuyer(slotId, sender, buyer));
        InvoiceState state = inv.state;
        require(
            state == InvoiceState.Confirmed || state == InvoiceState.Defaulted,
            ReceivablesInvalidTransition(slotId, state, InvoiceState.Paid)
        );
        require(amount != 0, ReceivablesZeroAmount());
        uint256 outstanding = inv.amount - inv.repaid;
        require(amount <= outstanding, ReceivablesOverpayment(slotId, amount, outstanding));

        uint96 repaid = inv.repaid + uint96(amount);
        inv.repaid = repaid;
        CreditLine storage line = _creditLines[buyer];
        line.used -= uint96(amount);
        emit ObligationRepaid(slotId, buyer, amount, repaid, outstanding - amount);
        if (repaid == inv.amount) {
            _transition(slotId, inv, InvoiceState.Paid);
            emit ObligationPaid(slotId);
        }
        _pullDeposit(sender, address(this), amount);
    }

    /// @inheritdoc IReceivables
    function redeem(uint256 pieceId) external returns (uint256 payout) {
        address sender = _msgSender();
        Piece storage p = _existingPiece(pieceId);
        address holder = p.owner;
        require(sender == holder, ReceivablesNotHolder(pieceId, sender, holder));
        require(p.openRequestId == 0, ReceivablesPieceLocked(pieceId, p.openRequestId));
        require(p.flags & FROZEN == 0, ReceivablesPieceFrozen(pieceId));
        uint256 slotId = p.slotId;
        Invoice storage inv = _invoices[slotId];
        uint96 repaid = inv.repaid;
        payout = _redeemable(p, inv.amount, repaid);
        require(payout != 0, ReceivablesNothingToRedeem(pieceId));

        uint96 remaining = p.value - uint96(payout);
        p.value = remaining;
        p.checkpoint = repaid;
        inv.redeemed += uint96(payout);
        emit TransferValue(pieceId, 0, payout);
        if (remaining == 0) {
            _update(holder, address(0), pieceId, address(0));
        }
        emit PieceRedeemed(pieceId, slotId, holder, payout, remaining);
        _payDeposit(holder, payout);
    }

    /// @inheritdoc IReceivables
    function markDefaulted(uint256 slotId, uint256 pieceId) external {
        address sender = _msgSender();
        Invoice storage inv = _existingInvoice(slotId);
        if (!registry.hasRole(Roles.OPERATOR, sender)) {
            Piece storage p = _existingPiece(pieceId);
            require(
                p.owner == sender && p.slotId == slotId, ReceivablesNotHolder(pieceId, sender, p.owner)
            );
        }
        registry.requireActive(sender);
        uint256 defaultableAt = uint256(inv.dueDate) + gracePeriod;
        require(block.timestamp > defaultableAt, ReceivablesNotOverdue(slotId, defaultableAt, block.timestamp));
        _transition(slotId, inv, InvoiceState.Defaulted);
        emit ObligationDefaulted(slotId, sender);
    }

    // ---------------------------------------------------------------------------------------------------
    // Financing
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceivables
    function requestFinancing(
        uint256 pieceId,
        uint256 amount,
        address financier,
        uint16 maxDiscountRateBps,
        uint256 maxFee
    ) external returns (uint256 requestId) {
        address sender = _msgSender();
        Piece storage p = _existingPiece(pieceId);
        require(sender == p.owner, ReceivablesNotHolder(pieceId, sender, p.owner));
        require(financier != sender, ReceivablesSelfFinancing(pieceId, sender));
        _requireMovable(pieceId, p);
        registry.requireActive(sender);
        registry.requireActiveRole(Roles.FINANCIER, financier);
        require(amount != 0, ReceivablesZeroAmount());
        require(amount <= p.value, ReceivablesInsufficientValue(pieceId, p.value, amount));
        require(maxDiscountRateBps <= BPS, ReceivablesInvalidTerms(maxDiscountRateBps, 365));
        require(maxFee <= type(uint96).max, ReceivablesAmountTooLarge(maxFee));

        requestId = ++_lastRequestId;
        p.openRequestId = uint48(requestId);
        FinancingRequest storage r = _requests[requestId];
        r.holder = sender;
        r.pieceId = uint48(pieceId);
        r.state = RequestState.Requested;
        r.financier = financier;
        r.amount = uint96(amount);
        r.maxDiscountRateBps = maxDiscountRateBps;
        r.maxFee = uint96(maxFee);
        emit FinancingRequested(requestId, pieceId, sender, financier, amount, maxDiscountRateBps, maxFee);
    }

    /// @inheritdoc IReceivables
    function approveFinancing(
        uint256 requestId,
        uint16 discountRateBps,
        uint256 fee,
        uint16 dayCountBasis,
        bytes32 review
    ) external {
        address sender = _msgSender();
        FinancingRequest storage r = _existingRequest(requestId);
        require(sender == r.financier, ReceivablesNotFinancier(requestId, sender, r.financier));
        registry.requireActiveRole(Roles.FINANCIER, sender);
        require(
            discountRateBps <= BPS && (dayCountBasis == 360 || dayCountBasis == 365),
            ReceivablesInvalidTerms(discountRateBps, dayCountBasis)
        );
        // The accepted rate is on a 365-day basis: a 360-day rate is compared at its 365-day equivalent.
        (uint16 maxRate, uint96 maxFee) = (r.maxDiscountRateBps, r.maxFee);
        require(
            uint256(discountRateBps) * 365 <= uint256(maxRate) * dayCountBasis && fee <= maxFee,
            ReceivablesTermsAboveAccepted(requestId, discountRateBps, fee, maxRate, maxFee)
        );
        require(fee < r.amount, ReceivablesPriceNotPositive(requestId, r.amount, 0, fee));
        _transitionRequest(requestId, r, RequestState.Approved);
        r.discountRateBps = discountRateBps;
        r.dayCountBasis = dayCountBasis;
        r.fee = uint96(fee);
        r.review = review;
        _requireReview(requestId, r, _invoices[_pieces[r.pieceId].slotId]);
        emit FinancingApproved(requestId, sender, discountRateBps, fee, dayCountBasis, review);
    }

    /// @inheritdoc IReceivables
    function fundFinancing(uint256 requestId) external returns (uint256 pieceId) {
        address sender = _msgSender();
        FinancingRequest storage r = _existingRequest(requestId);
        address financier = r.financier;
        require(sender == financier, ReceivablesNotFinancier(requestId, sender, financier));
        registry.requireActiveRole(Roles.FINANCIER, financier);
        _transitionRequest(requestId, r, RequestState.Funded);
        uint256 sourceId = r.pieceId;
        Piece storage p = _pieces[sourceId];
        address holder = r.holder;
        // The request's own lock is lifted for the move; every other rule of a movement applies.
        p.openRequestId = 0;
        Invoice storage inv = _requireMovable(sourceId, p);
        _requireReview(requestId, r, inv);
        _requireNotRegisteredElsewhere(requestId, p.slotId, financier);
        registry.requireTransfer(holder, financier);
        uint256 amount = r.amount;
        (uint256 discount, uint256 price) = _price(r, inv.dueDate);
        require(price != 0, ReceivablesPriceNotPositive(requestId, amount, discount, r.fee));

        r.price = uint96(price);
        if (amount == p.value) {
            pieceId = sourceId;
            // Authorised and checked above: the gate moves the piece and ends its allowances.
            _update(holder, financier, sourceId, address(0));
        } else {
            pieceId = _split(sourceId, p, financier, amount);
        }
        r.fundedPieceId = uint48(pieceId);
        emit FinancingFunded(requestId, pieceId, financier, holder, amount, discount, r.fee, price);
        // Cash leg last: if it fails, the piece's move above is undone with it. It is paid by the caller, whom
        // the check above proved to be the request's financier.
        _pullDeposit(sender, holder, price);
    }

    /// @inheritdoc IReceivables
    function recordFinancingRegistration(uint256 requestId, bytes32 number, uint64 registeredAt) external {
        address sender = _msgSender();
        FinancingRequest storage r = _existingRequest(requestId);
        address financier = r.financier;
        require(sender == financier, ReceivablesNotFinancier(requestId, sender, financier));
        registry.requireActive(sender);
        require(r.state == RequestState.Funded, ReceivablesRequestNotFunded(requestId, r.state));
        Registration storage reg = _registrations[requestId];
        bytes32 recorded = reg.number;
        require(recorded == 0, ReceivablesFinancingAlreadyRegistered(requestId, recorded));
        require(
            number[0] != 0 && registeredAt != 0 && registeredAt <= block.timestamp,
            ReceivablesInvalidRegistration(number, registeredAt, block.timestamp)
        );
        reg.number = number;
        reg.registeredAt = registeredAt;
        uint256 slotId = _pieces[r.pieceId].slotId;
        _requireNotRegisteredElsewhere(requestId, slotId, sender);
        if (_registeredFinancing[slotId] == 0) _registeredFinancing[slotId] = requestId;
        emit FinancingRegistered(requestId, slotId, sender, number, registeredAt);
    }

    /// @inheritdoc IReceivables
    function declineFinancing(uint256 requestId) external {
        address sender = _msgSender();
        FinancingRequest storage r = _existingRequest(requestId);
        require(sender == r.financier, ReceivablesNotFinancier(requestId, sender, r.financier));
        _transitionRequest(requestId, r, RequestState.Declined);
        _pieces[r.pieceId].openRequestId = 0;
        emit FinancingDeclined(requestId, sender);
    }

    /// @inheritdoc IReceivables
    function cancelFinancing(uint256 requestId) external {
        address sender = _msgSender();
        FinancingRequest storage r = _existingRequest(requestId);
        require(sender == r.holder, ReceivablesNotRequestHolder(requestId, sender, r.holder));
        _transitionRequest(requestId, r, RequestState.Cancelled);
        _pieces[r.pieceId].openRequestId = 0;
        emit FinancingCancelled(requestId, sender);
    }

    // ---------------------------------------------------------------------------------------------------
    // Regulator and operator
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceivables
    function freezePiece(uint256 pieceId, bytes32 reason) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.REGULATOR, sender);
        Piece storage p = _existingPiece(pieceId);
        require(p.flags & FROZEN == 0, ReceivablesPieceFrozen(pieceId));
        p.flags |= FROZEN;
        emit PieceFrozen(pieceId, sender, reason);
    }

    /// @inheritdoc IReceivables
    function unfreezePiece(uint256 pieceId) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.REGULATOR, sender);
        Piece storage p = _existingPiece(pieceId);
        require(p.flags & FROZEN != 0, ReceivablesPieceNotFrozen(pieceId));
        p.flags &= ~FROZEN;
        emit PieceUnfrozen(pieceId, sender);
    }

    /// @inheritdoc IReceivables
    function setParameters(uint64 maxTenor_, uint64 gracePeriod_, uint64 reviewTenor_) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.OPERATOR, sender);
        require(
            maxTenor_ != 0 && maxTenor_ <= 3650 days && gracePeriod_ <= 365 days && reviewTenor_ <= maxTenor_,
            ReceivablesInvalidParameters(maxTenor_, gracePeriod_, reviewTenor_)
        );
        maxTenor = maxTenor_;
        gracePeriod = gracePeriod_;
        reviewTenor = reviewTenor_;
        emit ParametersUpdated(maxTenor_, gracePeriod_, reviewTenor_);
    }

    // ---------------------------------------------------------------------------------------------------
    // ERC-721
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc PackedERC721
    /// @dev Operators are others: appointing oneself reverts with {ReceivablesInvalidReceiver}.
    function setApprovalForAll(address operator, bool approved) public override(IERC721, PackedERC721) {
        address sender = _msgSender();
        require(operator != sender, ReceivablesInvalidReceiver(operator));
        super.setApprovalForAll(operator, approved);
    }

    /// @inheritdoc IERC721Metadata
    function name() external pure returns (string memory) {
        return "SCF Receivable";
    }

    /// @inheritdoc IERC721Metadata
    function symbol() external pure returns (string memory) {
        return "SCFR";
    }

    /// @inheritdoc IERC721Metadata
    /// @dev A `data:application/json;base64,` URI of the piece's public facts as ERC-721 / ERC-3525 metadata
    /// JSON, read from the chain at the time of asking (no off-chain server), rendered by {metadata}: see
    /// {ReceivablesMetadata-pieceURI} for its fields. Reverts with {ReceivablesNonexistentPiece} for a piece that
    /// does not exist or was burnt.
    function tokenURI(uint256 tokenId) external view returns (string memory) {
        Piece storage p = _existingPiece(tokenId);
        uint256 slotId = p.slotId;
        Invoice storage inv = _invoices[slotId];
        return metadata.pieceURI(tokenId, slotId, p.value, _currency, inv.dueDate, inv.buyer, p.parentId);
    }

    // ---------------------------------------------------------------------------------------------------
    // ERC-3525
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc IERC3525
    /// @dev Values are in the deposit token's minor units (2 decimals).
    function valueDecimals() external pure returns (uint8) {
        return 2;
    }

    /// @inheritdoc IERC3525
    function balanceOf(uint256 tokenId) external view returns (uint256) {
        return _existingPiece(tokenId).value;
    }

    /// @inheritdoc IERC3525
    function slotOf(uint256 tokenId) external view returns (uint256) {
        return _existingPiece(tokenId).slotId;
    }

    /// @inheritdoc IERC3525
    /// @dev `value` is at most the largest piece value (2^96 − 2) or type(uint256).max, an allowance that is never
    /// used up; anything between reverts with {ReceivablesAmountTooLarge}. At most {MAX_VALUE_APPROVALS}
    /// operators hold a non-zero allowance on one piece at once ({ReceivablesTooManyValueApprovals}); approving
    /// 0 frees an operator's entry. Allowances lapse when the whole piece changes hands or is burnt, each with
    /// `ApprovalValue(tokenId, operator, 0)`.
    function approve(uint256 tokenId, address operator, uint256 value) external {
        address sender = _msgSender();
        Piece storage p = _existingPiece(tokenId);
        address owner = p.owner;
        require(
            sender == owner || isApprovedForAll(owner, sender), ReceivablesNotAuthorized(tokenId, sender)
        );
        require(operator != address(0) && operator != owner, ReceivablesInvalidReceiver(operator));
        require(value < UNLIMITED || value == type(uint256).max, ReceivablesAmountTooLarge(value));

        uint256[MAX_VALUE_APPROVALS] storage entries = _valueApprovals[tokenId];
        uint8 flags = p.flags;
        uint256 count = (flags & VALUE_APPROVALS) / ONE_VALUE_APPROVAL;
        uint256 index = count;
        uint256 free = count;
        for (uint256 i; i < count; ++i) {
            uint256 entry = entries[i];
            if (address(uint160(entry)) == operator) {
                index = i;
                break;
            }
            if (free == count && entry >> 160 == 0) free = i;
        }
        if (index == count && value != 0) {
            index = free;
            if (index == count) {
                require(count < MAX_VALUE_APPROVALS, ReceivablesTooManyValueApprovals(tokenId, MAX_VALUE_APPROVALS));
                p.flags = flags + ONE_VALUE_APPROVAL;
            }
        }
        if (index != count || value != 0) {
            entries[index] = uint256(uint160(operator)) | Math.min(value, UNLIMITED) << 160;
        }
        emit ApprovalValue(tokenId, operator, value);
    }

    /// @inheritdoc IERC3525
    function allowance(uint256 tokenId, address operator) external view returns (uint256 allowed) {
        Piece storage p = _existingPiece(tokenId);
        (, allowed) = _valueApproval(_valueApprovals[tokenId], p.flags, operator);
    }

    /// @inheritdoc IERC3525
    /// @dev Both pieces must be of one slot and at the same redemption checkpoint (pieces that have redeemed
    /// different shares of a partial repayment are different claims).
    function transferFrom(uint256 fromTokenId, uint256 toTokenId, uint256 value) external {
        address sender = _msgSender();
        Piece storage from = _existingPiece(fromTokenId);
        Piece storage to = _existingPiece(toTokenId);
        require(fromTokenId != toTokenId, ReceivablesSelfTransfer(fromTokenId));
        require(from.slotId == to.slotId, ReceivablesSlotMismatch(fromTokenId, toTokenId));
        require(from.checkpoint == to.checkpoint, ReceivablesCheckpointMismatch(fromTokenId, toTokenId));
        _spendValue(fromTokenId, from, value, sender);
        _requireMovable(fromTokenId, from);
        _requireMovable(toTokenId, to);
        address toOwner = to.owner;
        _requireParties(from.owner, toOwner, sender);

        from.value -= uint96(value);
        to.value += uint96(value);
        emit TransferValue(fromTokenId, toTokenId, value);
        _checkOnERC3525Received(fromTokenId, toTokenId, toOwner, value, sender);
    }

    /// @inheritdoc IERC3525
    function transferFrom(uint256 fromTokenId, address to, uint256 value) external returns (uint256 newTokenId) {
        address sender = _msgSender();
        return _transferValue(sender, fromTokenId, _existingPiece(fromTokenId), to, value);
    }

    /// @inheritdoc IReceivables
    function transferPiece(uint256 pieceId, address to, uint256 value) external returns (uint256 heldPieceId) {
        address sender = _msgSender();
        Piece storage p = _existingPiece(pieceId);
        if (value != p.value) return _transferValue(sender, pieceId, p, to, value);
        require(value != 0, ReceivablesZeroAmount());
        // ERC-721 `transferFrom(holder, to, pieceId)`, the sender already known.
        if (to == address(0)) _revertInvalidReceiver(to);
        _update(p.owner, to, pieceId, sender);
        return pieceId;
    }

    // ---------------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceivables
    function invoice(uint256 invoiceId) external view returns (Invoice memory) {
        return _existingInvoice(invoiceId);
    }

    /// @inheritdoc IReceivables
    function invoiceIdOfKey(bytes32 keyHash) external view returns (uint256) {
        return _invoiceIdOfKey[keyHash];
    }

    /// @inheritdoc IReceivables
    /// @dev A redeemed-away (burnt) piece is still returned, with owner zero, so paths through it stay readable.
    function piece(uint256 pieceId) external view returns (Piece memory) {
        Piece memory p = _pieces[pieceId];
        require(p.slotId != 0, ReceivablesNonexistentPiece(pieceId));
        return p;
    }

    /// @inheritdoc IReceivables
    function financingRequest(uint256 requestId) external view returns (FinancingRequest memory) {
        return _existingRequest(requestId);
    }

    /// @inheritdoc IReceivables
    function creditLine(address coreFirm) external view returns (CreditLine memory) {
        return _creditLines[coreFirm];
    }

    /// @inheritdoc IReceivables
    function creditGrant(address grantor, address coreFirm) external view returns (uint256) {
        return _creditGrants[grantor][coreFirm];
    }

    /// @inheritdoc IReceivables
    function obligationState(uint256 slotId) external view returns (InvoiceState) {
        Invoice storage inv = _existingInvoice(slotId);
        if (inv.state == InvoiceState.Confirmed && block.timestamp > uint256(inv.dueDate) + gracePeriod) {
            return InvoiceState.Overdue;
        }
        return inv.state;
    }

    /// @inheritdoc IReceivables
    function pathOf(uint256 pieceId) external view returns (uint256[] memory path) {
        require(_pieces[pieceId].slotId != 0, ReceivablesNonexistentPiece(pieceId));
        uint256 depth = 0;
        for (uint256 id = pieceId; id != 0; id = _pieces[id].parentId) ++depth;
        path = new uint256[](depth);
        for (uint256 id = pieceId; id != 0; id = _pieces[id].parentId) path[--depth] = id;
    }

    /// @inheritdoc IReceivables
    function financingRegistration(uint256 requestId) external view returns (Registration memory) {
        return _registrations[requestId];
    }

    /// @inheritdoc IReceivables
    function registeredFinancingOf(uint256 slotId) external view returns (uint256) {
        return _registeredFinancing[slotId];
    }

    /// @inheritdoc IReceivables
    function redeemable(uint256 pieceId) external view returns (uint256) {
        Piece storage p = _existingPiece(pieceId);
        Invoice storage inv = _invoices[p.slotId];
        return _redeemable(p, inv.amount, inv.repaid);
    }

    /// @inheritdoc IReceivables
    function quoteFinancing(uint256 requestId) external view returns (uint256 discount, uint256 fee, uint256 price) {
        FinancingRequest storage r = _existingRequest(requestId);
        (discount, price) = _price(r, _invoices[_pieces[r.pieceId].slotId].dueDate);
        fee = r.fee;
    }

    /// @inheritdoc IERC165
    /// @dev ERC-3525, and ERC-721, its metadata and ERC-165 ({PackedERC721-supportsInterface}).
    function supportsInterface(bytes4 interfaceId) public pure override(IERC165, PackedERC721) returns (bool) {
        return interfaceId == type(IERC3525).interfaceId || super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------------

    /// @dev The one place an invoice's state changes; the allowed edges of the lifecycle.
    function _transition(uint256 invoiceId, Invoice storage inv, InvoiceState to) private {
        InvoiceState from = inv.state;
        bool allowed = (
            from == InvoiceState.Registered && (to == InvoiceState.Confirmed || to == InvoiceState.Rejected)
        )
            || (from == InvoiceState.Confirmed && (to == InvoiceState.Paid || to == InvoiceState.Defaulted))
            || (from == InvoiceState.Defaulted && to == InvoiceState.Paid);
        require(allowed, ReceivablesInvalidTransition(invoiceId, from, to));
        inv.state = to;
    }

    /// @dev The one place a financing request's state changes.
    function _transitionRequest(uint256 requestId, FinancingRequest storage r, RequestState to) private {
        RequestState from = r.state;
        bool open = from == RequestState.Requested || from == RequestState.Approved;
        bool allowed = (from == RequestState.Requested && to == RequestState.Approved)
            || (from == RequestState.Approved && to == RequestState.Funded)
            || (open && (to == RequestState.Declined || to == RequestState.Cancelled));
        require(allowed, ReceivablesRequestInvalidTransition(requestId, from, to));
        r.state = to;
    }

    /// @dev 银发〔2025〕77号: an obligation running more than {reviewTenor} from confirmation to maturity is financed
    /// only with the financier's credit review, recorded with the request (checked at approval and again at
    /// funding, against the parameter as it stands then).
    function _requireReview(uint256 requestId, FinancingRequest storage r, Invoice storage inv) private view {
        uint256 tenor = inv.dueDate - inv.confirmedAt;
        uint64 threshold = reviewTenor;
        require(tenor <= threshold || r.review != 0, ReceivablesFinancingReviewRequired(requestId, tenor, threshold));
    }

    /// @dev 动产和权利担保统一登记: once a financing of obligation `slotId` is registered, a financing of it by another
    /// financier would be a second pledge or transfer of the same receivable; refused while the obligation is
    /// outstanding (a paid one does not move, so it is never funded again).
    function _requireNotRegisteredElsewhere(uint256 requestId, uint256 slotId, address financier) private view {
        uint256 registered = _registeredFinancing[slotId];
        if (registered == 0) return;
        address holder = _requests[registered].financier;
        require(holder == financier, ReceivablesRegisteredElsewhere(requestId, slotId, registered, holder));
    }

    /// @dev Every movement of value passes here: not locked in a request, not frozen, obligation confirmed
    /// and not matured. Returns the obligation.
    function _requireMovable(uint256 pieceId, Piece storage p) private view returns (Invoice storage inv) {
        uint48 openRequest = p.openRequestId;
        require(openRequest == 0, ReceivablesPieceLocked(pieceId, openRequest));
        require(p.flags & FROZEN == 0, ReceivablesPieceFrozen(pieceId));
        inv = _invoices[p.slotId];
        InvoiceState state = inv.state;
        require(state == InvoiceState.Confirmed, ReceivablesNotTransferable(pieceId, state));
        require(block.timestamp < inv.dueDate, ReceivablesMatured(pieceId, inv.dueDate, block.timestamp));
    }

    /// @dev Both parties active and unfrozen; an operator acting for the holder must be active too.
    function _requireParties(address from, address to, address sender) private view {
        require(to != address(0), ReceivablesInvalidReceiver(to));
        registry.requireTransfer(from, to);
        if (sender != from) registry.requireActive(sender);
    }

    /// @dev Authorises `sender` (the acting account) to move `value` out of `tokenId`: the holder, an ERC-721-approved
    /// address or operator, or an ERC-3525 value allowance (decremented unless unlimited).
    function _spendValue(uint256 tokenId, Piece storage p, uint256 value, address sender) private {
        require(value != 0, ReceivablesZeroAmount());
        require(value <= p.value, ReceivablesInsufficientValue(tokenId, p.value, value));
        if (_isAuthorized(p.owner, sender, tokenId)) return;
        uint256[MAX_VALUE_APPROVALS] storage entries = _valueApprovals[tokenId];
        (uint256 index, uint256 allowed) = _valueApproval(entries, p.flags, sender);
        require(allowed >= value, ReceivablesInsufficientAllowance(tokenId, sender, allowed, value));
        if (allowed != type(uint256).max) {
            // Found (a missing entry allows 0, refused above): the entry at `index` is the caller's.
            entries[index] = uint256(uint160(sender)) | (allowed - value) << 160;
            emit ApprovalValue(tokenId, sender, allowed - value);
        }
    }

    /// @dev The entry of `operator` in a piece's value-allowance list and its allowance (type(uint256).max when
    /// unlimited); (the number of entries in use, 0) when it has none.
    function _valueApproval(uint256[MAX_VALUE_APPROVALS] storage entries, uint8 flags, address operator)
        private
        view
        returns (uint256 index, uint256 allowed)
    {
        uint256 count = (flags & VALUE_APPROVALS) / ONE_VALUE_APPROVAL;
        for (index = 0; index < count; ++index) {
            uint256 entry = entries[index];
            if (address(uint160(entry)) == operator) {
                allowed = entry >> 160;
                return (index, allowed == UNLIMITED ? type(uint256).max : allowed);
            }
        }
    }

    /// @dev Announces the end of the piece's value allowances (the caller then resets the count in its flags):
    /// `ApprovalValue(tokenId, operator, 0)` for every entry in use whose allowance is not already zero.
    function _clearValueApprovals(uint256 tokenId, uint8 flags) private {
        uint256[MAX_VALUE_APPROVALS] storage entries = _valueApprovals[tokenId];
        uint256 count = (flags & VALUE_APPROVALS) / ONE_VALUE_APPROVAL;
        for (uint256 i; i < count; ++i) {
            uint256 entry = entries[i];
            if (entry >> 160 != 0) emit ApprovalValue(tokenId, address(uint160(entry)), 0);
        }
    }

    /// @dev The gate of {PackedERC721}, with a piece's rules. A move asked for by `auth` (transferFrom and both
    /// safeTransferFrom) is authorised first (an ERC-721 approval or operator; a value allowance does not move a
    /// whole piece), then must be a move to another holder of a movable piece between parties allowed to deal
    /// ({_requireMovable}, {_requireParties}); the moves the contract makes itself (a mint, a funded request's
    /// whole piece, a redemption's burn) were checked by their callers. A piece leaving its holder (moved or
    /// burnt) ends its value allowances, each announced ({_clearValueApprovals}); its token approval lapses in
    /// {_writeOwner}.
    function _update(address from, address to, uint256 tokenId, address auth) internal override {
        if (from != address(0)) {
            Piece storage p = _pieces[tokenId];
            if (auth != address(0)) {
                _checkAuthorized(from, auth, tokenId);
                require(from != to, ReceivablesSelfTransfer(tokenId));
                _requireMovable(tokenId, p);
                _requireParties(from, to, auth);
            }
            uint8 flags = p.flags;
            if (flags & VALUE_APPROVALS != 0) _clearValueApprovals(tokenId, flags);
        }
        super._update(from, to, tokenId, address(0));
    }

    /// @dev ERC-3525's transfer of `value` out of piece `fromId` to a new piece held by `to`.
    function _transferValue(address sender, uint256 fromId, Piece storage from, address to, uint256 value)
        private
        returns (uint256 newId)
    {
        _spendValue(fromId, from, value, sender);
        _requireMovable(fromId, from);
        _requireParties(from.owner, to, sender);

        newId = _split(fromId, from, to, value);
        _checkOnERC3525Received(fromId, newId, to, value, sender);
    }

    /// @dev Moves `value` out of piece `fromId` into a new piece of the same slot held by `to`, recording
    /// its parent and the redemption checkpoint it shares with its parent.
    function _split(uint256 fromId, Piece storage from, address to, uint256 value) private returns (uint256 newId) {
        newId = ++_lastPieceId;
        uint48 slotId = from.slotId;
        from.value -= uint96(value);
        _pieces[newId] = Piece({
            owner: to,
            slotId: slotId,
            parentId: uint48(fromId),
            value: uint96(value),
            checkpoint: from.checkpoint,
            openRequestId: 0,
            flags: 0
        });
        _update(address(0), to, newId, address(0));
        emit SlotChanged(newId, 0, slotId);
        emit TransferValue(fromId, newId, value);
        emit PieceSplit(fromId, newId, to, slotId, value);
    }

    /// @dev Pro-rata share of repayments since the piece's checkpoint, rounded down.
    function _redeemable(Piece storage p, uint96 face, uint96 repaid) private view returns (uint256) {
        uint96 checkpoint = p.checkpoint;
        if (repaid <= checkpoint) return 0;
        return Math.mulDiv(p.value, repaid - checkpoint, face - checkpoint);
    }

    /// @dev Discount for the days to maturity (whole days, counted up) at the request's rate and basis,
    /// rounded up; price = amount − discount − fee, or 0 when that is not positive.
    function _price(FinancingRequest storage r, uint64 maturity)
        private
        view
        returns (uint256 discount, uint256 price)
    {
        uint256 amount = r.amount;
        uint256 secondsLeft = maturity > block.timestamp ? maturity - block.timestamp : 0;
        uint256 daysLeft = Math.ceilDiv(secondsLeft, 1 days);
        uint256 basis = r.dayCountBasis == 0 ? 365 : r.dayCountBasis;
        discount = Math.mulDiv(amount, uint256(r.discountRateBps) * daysLeft, basis * BPS, Math.Rounding.Ceil);
        uint256 charges = discount + r.fee;
        price = charges < amount ? amount - charges : 0;
    }

    /// @dev Moves `amount` deposit tokens from `from` (always the acting account, checked by the caller to be the party
    /// that owes them) to `to`, and insists on the token's answer: a token that returned false is a failed leg.
    function _pullDeposit(address from, address to, uint256 amount) private {
        bool ok = depositToken.transferFrom(from, to, amount);
        require(ok, ReceivablesInvalidReceiver(from));
    }

    function _payDeposit(address to, uint256 amount) private {
        bool ok = depositToken.transfer(to, amount);
        require(ok, ReceivablesInvalidReceiver(to));
    }

    function _checkOnERC3525Received(
        uint256 fromTokenId,
        uint256 toTokenId,
        address to,
        uint256 value,
        address sender
    ) private {
        if (to.code.length == 0) return;
        if (!ERC165Checker.supportsInterface(to, type(IERC3525Receiver).interfaceId)) return;
        bytes4 answer = IERC3525Receiver(to).onERC3525Received(sender, fromTokenId, toTokenId, value, "");
        require(answer == ERC3525_RECEIVED, ReceivablesInvalidReceiver(to));
    }

    function _existingInvoice(uint256 invoiceId) private view returns (Invoice storage inv) {
        inv = _invoices[invoiceId];
        require(inv.state != InvoiceState.None, ReceivablesUnknownInvoice(invoiceId));
    }

    function _existingPiece(uint256 pieceId) private view returns (Piece storage p) {
        p = _pieces[pieceId];
        require(p.owner != address(0), ReceivablesNonexistentPiece(pieceId));
    }

    function _existingRequest(uint256 requestId) private view returns (FinancingRequest storage r) {
        r = _requests[requestId];
        require(r.state != RequestState.None, ReceivablesUnknownRequest(requestId));
    }

    // ---------------------------------------------------------------------------------------------------
    // PackedERC721: the owner is word 0 of the piece, the approval flag a bit of its flags; the errors
    // ---------------------------------------------------------------------------------------------------

    function _ownerOf(uint256 tokenId) internal view override returns (address) {
        return _pieces[tokenId].owner;
    }

    /// @dev The new holder takes the piece without the previous holder's approvals: every flag but FROZEN is
    /// cleared (the token approval and the count of value allowances, announced by {_update}).
    function _writeOwner(uint256 tokenId, address to) internal override returns (bool hadApproval) {
        Piece storage p = _pieces[tokenId];
        uint8 flags = p.flags;
        p.flags = flags & FROZEN;
        p.owner = to;
        return flags & HAS_TOKEN_APPROVAL != 0;
    }

    function _hasApprovalFlag(uint256 tokenId) internal view override returns (bool) {
        return _pieces[tokenId].flags & HAS_TOKEN_APPROVAL != 0;
    }

    /// @dev Set when an approval is given; withdrawing it leaves the flag (the approval itself is zero).
    function _setApprovalFlag(uint256 tokenId, bool approved) internal override {
        if (approved) _pieces[tokenId].flags |= HAS_TOKEN_APPROVAL;
    }

    function _revertInvalidOwner(address owner) internal pure override {
        revert ReceivablesInvalidReceiver(owner);
    }

    function _revertNonexistentToken(uint256 tokenId) internal pure override {
        revert ReceivablesNonexistentPiece(tokenId);
    }

    function _revertIncorrectOwner(address from, uint256 tokenId, address owner) internal pure override {
        revert ReceivablesNotHolder(tokenId, from, owner);
    }

    function _revertInsufficientApproval(address spender, uint256 tokenId) internal pure override {
        revert ReceivablesNotAuthorized(tokenId, spender);
    }

    function _revertInvalidApprover(address approver, uint256 tokenId) internal pure override {
        revert ReceivablesNotAuthorized(tokenId, approver);
    }

    function _revertInvalidOperator(address operator) internal pure override {
        revert ReceivablesInvalidReceiver(operator);
    }

    function _revertInvalidReceiver(address receiver) internal pure override {
        revert ReceivablesInvalidReceiver(receiver);
    }

    /// @dev {SignedActsRecipient}: the registry that says who acts only by signed acts.
    function _participants() internal view override returns (IParticipantRegistry) {
        return registry;
    }
}
