// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC3525} from "./IERC3525.sol";

/// @title Receivables: confirmed invoices as splittable, financeable claims (ERC-3525)
/// @notice A supplier registers an invoice under the salted hash of its canonical key; the buyer, a core
/// firm, confirms it within its credit line and the tenor rule. Confirmation makes the invoice an obligation
/// (an ERC-3525 slot whose id is the invoice id) and mints its first piece (a token holding the face value)
/// to the supplier. Holders split pieces and transfer value to active participants until maturity, finance
/// pieces with a named financier (delivery-versus-payment in deposit tokens), and redeem them pro rata to
/// what the core firm has repaid. For every slot the pieces' values add up to face value minus what has been
/// redeemed; value and cash are one to one, so redemptions never pay out more than was paid in.
interface IReceivables is IERC3525 {
    /// @notice Lifecycle of an invoice and the obligation it becomes. `Overdue` is never stored: it is how
    /// {obligationState} reports a `Confirmed` obligation past maturity plus the grace period.
    enum InvoiceState {
        None,
        Registered,
        Rejected,
        Confirmed,
        Paid,
        Defaulted,
        Overdue
    }

    /// @notice Lifecycle of a financing request.
    enum RequestState {
        None,
        Requested,
        Approved,
        Funded,
        Declined,
        Cancelled
    }

    /// @notice An invoice; once confirmed, also the obligation of slot `invoiceId`.
    struct Invoice {
        address seller;
        uint64 dueDate;
        InvoiceState state;
        address buyer;
        uint64 confirmedAt;
        uint96 amount;
        uint96 repaid;
        uint96 redeemed;
        bytes32 documentHash;
    }

    /// @notice A piece of an obligation. `checkpoint` is the obligation's repaid total when the piece last
    /// settled a redemption; `openRequestId` is non-zero while the piece is locked in a financing request.
    /// `flags`: bit 0 frozen by the regulator; bit 1 an ERC-721 approval is set; bits 2-5 how many entries of
    /// the piece's ERC-3525 value-allowance list are in use (bookkeeping; read allowances with `allowance`).
    struct Piece {
        address owner;
        uint48 slotId;
        uint48 parentId;
        uint96 value;
        uint96 checkpoint;
        uint48 openRequestId;
        uint8 flags;
    }

    /// @notice A holder's request to finance `amount` of a piece with a named financier, and its terms.
    /// `maxDiscountRateBps` and `maxFee` are the most the holder accepted when it asked (the quote it was shown):
    /// the rate is a year on a 365-day basis, and terms on a 360-day basis are compared at their 365-day
    /// equivalent, so the discount can never exceed the one quoted. `review` is the financier's credit review
    /// (hash or reference of its document), required when the obligation's tenor exceeds {reviewTenor}.
    struct FinancingRequest {
        address holder;
        uint48 pieceId;
        RequestState state;
        uint16 discountRateBps;
        uint16 dayCountBasis;
        address financier;
        uint96 fee;
        uint96 amount;
        uint96 price;
        uint48 fundedPieceId;
        uint16 maxDiscountRateBps;
        uint96 maxFee;
        bytes32 review;
    }

    /// @notice A registration in the unified registry of movable-property and rights security (动产和权利担保统一
    /// 登记, 中登网), as the financier recorded it: `number` its 初始登记编号 in ASCII, left-aligned and zero-padded,
    /// and `registeredAt` the registration's date (a time of that day, seconds since 1970); zero when none.
    struct Registration {
        bytes32 number;
        uint64 registeredAt;
    }

    /// @notice A credit line of a core firm: total granted and confirmed-unpaid total.
    struct CreditLine {
        uint96 limit;
        uint96 used;
    }

    event InvoiceRegistered(
        uint256 indexed invoiceId,
        bytes32 indexed keyHash,
        address indexed seller,
        address buyer,
        uint256 amount,
        bytes3 currency,
        uint64 dueDate,
        bytes32 documentHash
    );
    event InvoiceConfirmed(
        uint256 indexed invoiceId,
        address indexed buyer,
        address indexed seller,
        uint256 pieceId,
        uint256 amount,
        uint64 dueDate
    );
    event InvoiceRejected(uint256 indexed invoiceId, address indexed buyer, bytes32 reason);
    /// @notice A piece's value was split into a new piece (parent recorded) held by `to`.
    event PieceSplit(uint256 indexed parentId, uint256 indexed pieceId, address indexed to, uint256 slotId, uint256 value);
    event PieceFrozen(uint256 indexed pieceId, address indexed regulator, bytes32 reason);
    event PieceUnfrozen(uint256 indexed pieceId, address indexed regulator);
    event CreditLineSet(address indexed coreFirm, address indexed grantor, uint256 grant, uint256 limit, uint256 used);
    /// @notice `holder` asked `financier` to finance `amount` of a piece, accepting at most `maxDiscountRateBps`
    /// a year (365-day basis) and a fee of `maxFee`: the fee-and-rate disclosure it was shown.
    event FinancingRequested(
        uint256 indexed requestId,
        uint256 indexed pieceId,
        address indexed holder,
        address financier,
        uint256 amount,
        uint16 maxDiscountRateBps,
        uint256 maxFee
    );
    /// @notice The financier offered its terms, with `review` the reference of its credit review (zero: none).
    event FinancingApproved(
        uint256 indexed requestId,
        address indexed financier,
        uint16 discountRateBps,
        uint256 fee,
        uint16 dayCountBasis,
        bytes32 review
    );
    event FinancingFunded(
        uint256 indexed requestId,
        uint256 indexed pieceId,
        address indexed financier,
        address holder,
        uint256 amount,
        uint256 discount,
        uint256 fee,
        uint256 price
    );
    event FinancingDeclined(uint256 indexed requestId, address indexed financier);
    event FinancingCancelled(uint256 indexed requestId, address indexed holder);
    event ObligationRepaid(uint256 indexed slotId, address indexed payer, uint256 amount, uint256 repaid, uint256 outstanding);
    event ObligationPaid(uint256 indexed slotId);
    event ObligationDefaulted(uint256 indexed slotId, address indexed declaredBy);
    /// @notice `holder` redeemed `payout` of piece `pieceId`; the piece keeps `remaining` (0: burnt).
    event PieceRedeemed(uint256 indexed pieceId, uint256 indexed slotId, address indexed holder, uint256 payout, uint256 remaining);
    /// @notice The financier of funded request `requestId` (financing of obligation `slotId`) recorded its
    /// registration in 中登网: initial registration number `number` (ASCII, left-aligned) of `registeredAt`.
    event FinancingRegistered(
        uint256 indexed requestId,
        uint256 indexed slotId,
        address indexed financier,
        bytes32 number,
        uint64 registeredAt
    );
    /// @notice The market's rule parameters: the longest tenor a receivable may be confirmed with, the grace
    /// period after maturity, and the tenor above which a financing needs the financier's credit review.
    event ParametersUpdated(uint64 maxTenor, uint64 gracePeriod, uint64 reviewTenor);

    /// @notice An invoice with key hash `keyHash` was registered before (by anyone), as `invoiceId`.
    /// @custom:kind conflict
    error ReceivablesInvoiceAlreadyRegistered(bytes32 keyHash, uint256 invoiceId);
    /// @notice No invoice (obligation) `invoiceId` exists.
    /// @custom:kind not-found
    error ReceivablesUnknownInvoice(uint256 invoiceId);
    /// @notice An amount (of an invoice, a repayment, a financing request or a value transfer) must be positive.
    /// @custom:kind invalid
    error ReceivablesZeroAmount();
    /// @notice `amount` is more than the ledger stores (96 bits); a value allowance is below that or unlimited.
    /// @custom:kind invalid
    error ReceivablesAmountTooLarge(uint256 amount);
    /// @notice An invoice key hash must not be zero.
    /// @custom:kind invalid
    error ReceivablesInvalidKey(bytes32 keyHash);
    /// @notice The due date `dueDate` is not after now (`timestamp`).
    /// @custom:kind invalid
    error ReceivablesDueDateNotInFuture(uint64 dueDate, uint256 timestamp);
    /// @notice The invoice's `currency` is not the ledger's settlement currency, `settlementCurrency`.
    /// @custom:kind invalid
    error ReceivablesCurrencyMismatch(bytes3 currency, bytes3 settlementCurrency);
    /// @notice A seller named itself (`account`) as the buyer of its invoice.
    /// @custom:kind invalid
    error ReceivablesSelfBilling(address account);
    /// @notice Invoice `invoiceId` cannot go from `from` to `to` (decided twice, or repaid once paid).
    /// @custom:kind conflict
    error ReceivablesInvalidTransition(uint256 invoiceId, InvoiceState from, InvoiceState to);
    /// @notice `caller` is not the invoice's buyer (`buyer`), who alone confirms, rejects and repays it.
    /// @custom:kind forbidden
    error ReceivablesNotBuyer(uint256 invoiceId, address caller, address buyer);
    /// @notice The invoice falls due `tenor` seconds after its confirmation, more than the ledger's maximum
    /// `maxTenor`.
    /// @custom:kind invalid
    error ReceivablesTenorTooLong(uint256 invoiceId, uint256 tenor, uint256 maxTenor);
    /// @notice Confirming `amount` would take the core firm's confirmed-unpaid total `used` past its credit line
    /// `limit`.
    /// @custom:kind conflict
    error ReceivablesCreditLineExceeded(address coreFirm, uint256 used, uint256 amount, uint256 limit);
    /// @notice A credit line `limit` cannot be below what the core firm already uses (`used`, confirmed and
    /// unpaid).
    /// @custom:kind conflict
    error ReceivablesCreditLineBelowUsage(address coreFirm, uint256 limit, uint256 used);
    /// @notice No piece `pieceId` exists, or it was burnt.
    /// @custom:kind not-found
    error ReceivablesNonexistentPiece(uint256 pieceId);
    /// @notice `caller` is neither the piece's holder nor approved for it, nor an operator of the holder.
    /// @custom:kind forbidden
    error ReceivablesNotAuthorized(uint256 pieceId, address caller);
    /// @notice `caller` (or the named sender) is not the holder of piece `pieceId` (`holder`).
    /// @custom:kind forbidden
    error ReceivablesNotHolder(uint256 pieceId, address caller, address holder);
    /// @notice The piece is locked by the open financing request `requestId` and cannot move or be redeemed.
    /// @custom:kind conflict
    error ReceivablesPieceLocked(uint256 pieceId, uint256 requestId);
    /// @notice The piece is frozen by the regulator.
    /// @custom:kind conflict
    error ReceivablesPieceFrozen(uint256 pieceId);
    /// @notice The piece is not frozen, so there is nothing to unfreeze.
    /// @custom:kind conflict
    error ReceivablesPieceNotFrozen(uint256 pieceId);
    /// @notice The piece's invoice is `state`, not `Confirmed`, so the piece cannot move.
    /// @custom:kind conflict
    error ReceivablesNotTransferable(uint256 pieceId, InvoiceState state);
    /// @notice The piece's invoice fell due at `maturity` (now is `timestamp`): the piece no longer moves.
    /// @custom:kind invalid
    error ReceivablesMatured(uint256 pieceId, uint64 maturity, uint256 timestamp);
    /// @notice The piece holds `value`, less than the `requested` amount.
    /// @custom:kind invalid
    error ReceivablesInsufficientValue(uint256 pieceId, uint256 value, uint256 requested);
    /// @notice `operator` may move `allowance` of the piece's value, less than the `requested` amount.
    /// @custom:kind invalid
    error ReceivablesInsufficientAllowance(uint256 pieceId, address operator, uint256 allowance, uint256 requested);
    /// @notice Value moves only between pieces of the same invoice (slot).
    /// @custom:kind invalid
    error ReceivablesSlotMismatch(uint256 fromPieceId, uint256 toPieceId);
    /// @notice Value moves only between pieces that last redeemed at the same repaid total (checkpoint).
    /// @custom:kind invalid
    error ReceivablesCheckpointMismatch(uint256 fromPieceId, uint256 toPieceId);
    /// @notice `receiver` cannot take part: the zero address, the caller as its own operator, a contract that
    /// refused the piece, or a deposit-token leg that failed.
    /// @custom:kind invalid
    error ReceivablesInvalidReceiver(address receiver);
    /// @notice A piece cannot go from its holder to the same holder, nor value from a piece to itself.
    /// @custom:kind invalid
    error ReceivablesSelfTransfer(uint256 pieceId);
    /// @notice No financing request `requestId` exists.
    /// @custom:kind not-found
    error ReceivablesUnknownRequest(uint256 requestId);
    /// @notice Financing request `requestId` cannot go from `from` to `to`.
    /// @custom:kind conflict
    error ReceivablesRequestInvalidTransition(uint256 requestId, RequestState from, RequestState to);
    /// @notice `caller` is not the financier the request names (`financier`).
    /// @custom:kind forbidden
    error ReceivablesNotFinancier(uint256 requestId, address caller, address financier);
    /// @notice A holder cannot name itself (`holder`) as the financier of its own piece.
    /// @custom:kind invalid
    error ReceivablesSelfFinancing(uint256 pieceId, address holder);
    /// @notice `caller` is not the holder who made the financing request (`holder`).
    /// @custom:kind forbidden
    error ReceivablesNotRequestHolder(uint256 requestId, address caller, address holder);
    /// @notice A discount rate must be at most 10,000 bps and the day-count basis 360 or 365.
    /// @custom:kind invalid
    error ReceivablesInvalidTerms(uint16 discountRateBps, uint16 dayCountBasis);
    /// @notice The `discount` and the `fee` would take all of the financed `amount`: nothing would be paid for it.
    /// @custom:kind invalid
    error ReceivablesPriceNotPositive(uint256 requestId, uint256 amount, uint256 discount, uint256 fee);
    /// @notice A repayment of `amount` exceeds what is still owed on the invoice (`outstanding`).
    /// @custom:kind invalid
    error ReceivablesOverpayment(uint256 slotId, uint256 amount, uint256 outstanding);
    /// @notice The piece's share of the repayments since it last redeemed is zero: nothing to pay out.
    /// @custom:kind invalid
    error ReceivablesNothingToRedeem(uint256 pieceId);
    /// @notice The obligation can be declared in default only after `defaultableAt` (due date plus grace period);
    /// now is `timestamp`.
    /// @custom:kind invalid
    error ReceivablesNotOverdue(uint256 slotId, uint256 defaultableAt, uint256 timestamp);
    /// @notice The maximum tenor must be positive and at most 3,650 days, the grace period at most 365 days and
    /// the review tenor at most the maximum tenor.
    /// @custom:kind invalid
    error ReceivablesInvalidParameters(uint64 maxTenor, uint64 gracePeriod, uint64 reviewTenor);
    /// @notice The terms offered (`discountRateBps` a year on their basis, `fee`) are above what the holder
    /// accepted in its request (`maxDiscountRateBps` a year on a 365-day basis, `maxFee`).
    /// @custom:kind invalid
    error ReceivablesTermsAboveAccepted(
        uint256 requestId, uint16 discountRateBps, uint256 fee, uint16 maxDiscountRateBps, uint256 maxFee
    );
    /// @notice The obligation runs `tenor` seconds from confirmation to maturity, more than `reviewTenor`: its
    /// financing needs the financier's credit review (a non-zero `review` with the approval).
    /// @custom:kind invalid
    error ReceivablesFinancingReviewRequired(uint256 requestId, uint256 tenor, uint256 reviewTenor);
    /// @notice Only a funded financing request is registered; request `requestId` is `state`.
    /// @custom:kind conflict
    error ReceivablesRequestNotFunded(uint256 requestId, RequestState state);
    /// @notice The registration of financing request `requestId` was recorded before, as `number`.
    /// @custom:kind conflict
    error ReceivablesFinancingAlreadyRegistered(uint256 requestId, bytes32 number);
    /// @notice A registration needs a number (non-zero ASCII, left-aligned) and a date not after now
    /// (`timestamp`).
    /// @custom:kind invalid
    error ReceivablesInvalidRegistration(bytes32 number, uint64 registeredAt, uint256 timestamp);
    /// @notice The obligation `slotId` is financed under the registration recorded with request
    /// `registeredRequestId` by another financier (`registeredFinancier`), outstanding until it is paid: a
    /// second financier does not finance the same receivable.
    /// @custom:kind conflict
    error ReceivablesRegisteredElsewhere(
        uint256 requestId, uint256 slotId, uint256 registeredRequestId, address registeredFinancier
    );
    /// @notice `limit` operators already hold a value allowance on piece `pieceId`: approve 0 for one of them
    /// (or let it use its allowance up) before naming another.
    /// @custom:kind conflict
    error ReceivablesTooManyValueApprovals(uint256 pieceId, uint256 limit);

    /// @notice Registers an invoice of the caller (the seller) under the salted hash of its canonical key.
    /// @custom:access active supplier
    /// @dev Emits {InvoiceRegistered}. Reverts with {ReceivablesInvoiceAlreadyRegistered} when the key was
    /// registered before by anyone, {ReceivablesZeroAmount}, {ReceivablesAmountTooLarge},
    /// {ReceivablesInvalidKey}, {ReceivablesDueDateNotInFuture}, {ReceivablesCurrencyMismatch},
    /// {ReceivablesSelfBilling}, or a registry error when the seller is not an active supplier or the buyer
    /// not an active core firm.
    function registerInvoice(
        bytes32 keyHash,
        address buyer,
        uint256 amount,
        bytes3 currency,
        uint64 dueDate,
        bytes32 documentHash
    ) external returns (uint256 invoiceId);

    /// @notice Confirms an invoice: it becomes obligation (slot) `invoiceId` with a first piece held by the
    /// seller. The buyer's confirmed-unpaid total must stay within its credit line and the time from now to
    /// maturity within the maximum tenor.
    /// @custom:access the invoice's buyer, an active core firm
    /// @dev Emits {InvoiceConfirmed}, {IERC721-Transfer}, {IERC3525-SlotChanged}, {IERC3525-TransferValue}.
    /// Reverts with {ReceivablesNotBuyer}, {ReceivablesInvalidTransition}, {ReceivablesDueDateNotInFuture},
    /// {ReceivablesTenorTooLong}, {ReceivablesCreditLineExceeded} or a registry error.
    function confirmInvoice(uint256 invoiceId) external returns (uint256 pieceId);

    /// @notice Rejects a registered invoice; its key stays registered and cannot be used again.
    /// @custom:access the invoice's buyer, an active core firm
    /// @dev Emits {InvoiceRejected}. Reverts with {ReceivablesNotBuyer} or {ReceivablesInvalidTransition}.
    function rejectInvoice(uint256 invoiceId, bytes32 reason) external;

    /// @notice Sets the caller's grant of credit to `coreFirm`; the core firm's limit is the sum of grants.
    /// @custom:access active financier or operator
    /// @dev Emits {CreditLineSet}. Reverts with {ReceivablesCreditLineBelowUsage} when the new limit would be
    /// below the core firm's confirmed-unpaid total, or a registry error.
    function setCreditLine(address coreFirm, uint256 grant) external;

    /// @notice Asks `financier` to finance `amount` of piece `pieceId`, accepting a discount rate of at most
    /// `maxDiscountRateBps` a year (365-day basis) and a fee of at most `maxFee`, the quote the holder was
    /// shown; the piece is locked until the request is funded, declined or cancelled.
    /// @custom:access the piece's holder, active
    /// @dev Emits {FinancingRequested}. Reverts with {ReceivablesNotHolder}, {ReceivablesPieceLocked} (already
    /// in an open request), {ReceivablesPieceFrozen}, {ReceivablesNotTransferable}, {ReceivablesMatured},
    /// {ReceivablesZeroAmount}, {ReceivablesInsufficientValue}, {ReceivablesSelfFinancing} (the holder named
    /// itself as financier), {ReceivablesInvalidTerms} (a cap above 10,000 bps), {ReceivablesAmountTooLarge}
    /// or a registry error.
    function requestFinancing(
        uint256 pieceId,
        uint256 amount,
        address financier,
        uint16 maxDiscountRateBps,
        uint256 maxFee
    ) external returns (uint256 requestId);

    /// @notice Approves a request with its terms: discount rate a year in basis points, a fee in minor units,
    /// the day-count basis (360 or 365 days a year), and `review`, the hash or reference of the financier's
    /// credit review (zero when it made none). The terms must be within what the request accepted, and an
    /// obligation whose tenor (confirmation to maturity) exceeds {reviewTenor} needs a non-zero review.
    /// @custom:access the request's financier, active
    /// @dev Emits {FinancingApproved}. Reverts with {ReceivablesNotFinancier}, {ReceivablesInvalidTerms},
    /// {ReceivablesTermsAboveAccepted}, {ReceivablesFinancingReviewRequired} or
    /// {ReceivablesRequestInvalidTransition}.
    function approveFinancing(
        uint256 requestId,
        uint16 discountRateBps,
        uint256 fee,
        uint16 dayCountBasis,
        bytes32 review
    ) external;

    /// @notice Funds an approved request in one transaction: the requested value moves to the financier (the
    /// whole piece, or a new piece split from it) and the price moves from the financier to the holder in
    /// deposit tokens; both or neither. Price = amount − discount − fee, where discount = amount × rate ×
    /// days to maturity / (basis × 10,000), days counted up to whole days and the discount rounded up: the
    /// holder is never paid more than the terms give.
    /// @custom:access the request's financier, active, having approved this contract for the price
    /// @dev Emits {FinancingFunded}, the ERC-721/ERC-3525 movement events and {IERC20-Transfer}. Reverts with
    /// {ReceivablesNotFinancier}, {ReceivablesRequestInvalidTransition}, {ReceivablesMatured},
    /// {ReceivablesPieceFrozen}, {ReceivablesPriceNotPositive}, {ReceivablesFinancingReviewRequired} (the
    /// obligation's tenor exceeds {reviewTenor} as it stands now and the approval carried no review),
    /// {ReceivablesRegisteredElsewhere} (another financier's financing of the obligation is registered), a
    /// registry error or a deposit-token error.
    function fundFinancing(uint256 requestId) external returns (uint256 pieceId);

    /// @notice Records the registration of a funded financing in 中登网 (动产和权利担保统一登记办法): its initial
    /// registration number (ASCII, left-aligned, zero-padded) and date. The ledger cannot see the registry: it
    /// keeps what the financier says it registered, once. The first registration recorded for an obligation
    /// binds it to its financier: until the obligation is paid, {fundFinancing} of any piece of it by another
    /// financier, and the recording of another financier's registration of it (a financing funded before the
    /// first was recorded), revert with {ReceivablesRegisteredElsewhere}.
    /// @custom:access the request's financier, active
    /// @dev Emits {FinancingRegistered}. Reverts with {ReceivablesNotFinancier}, {ReceivablesRequestNotFunded},
    /// {ReceivablesFinancingAlreadyRegistered}, {ReceivablesInvalidRegistration},
    /// {ReceivablesRegisteredElsewhere} or a registry error.
    function recordFinancingRegistration(uint256 requestId, bytes32 number, uint64 registeredAt) external;

    /// @notice Declines a requested or approved request and unlocks the piece.
    /// @custom:access the request's financier
    /// @dev Emits {FinancingDeclined}. Reverts with {ReceivablesNotFinancier} or
    /// {ReceivablesRequestInvalidTransition}.
    function declineFinancing(uint256 requestId) external;

    /// @notice Cancels a requested or approved request and unlocks the piece.
    /// @custom:access the request's holder
    /// @dev Emits {FinancingCancelled}. Reverts with {ReceivablesNotRequestHolder} or
    /// {ReceivablesRequestInvalidTransition}.
    function cancelFinancing(uint256 requestId) external;

    /// @notice The buyer pays `amount` of obligation `slotId` in deposit tokens, in full or in part; the
    /// obligation is `Paid` once the repaid total reaches face value. Frees the same amount of credit line.
    /// @custom:access the obligation's buyer (payer)
    /// @dev Emits {ObligationRepaid} (and {ObligationPaid}). Reverts with {ReceivablesNotBuyer},
    /// {ReceivablesInvalidTransition} (not confirmed or defaulted), {ReceivablesZeroAmount},
    /// {ReceivablesOverpayment} or a deposit-token error.
    function repay(uint256 slotId, uint256 amount) external;

    /// @notice Redeems piece `pieceId` for deposit tokens, pro rata to what the payer has repaid since the
    /// piece last redeemed: payout = value × (repaid − checkpoint) / (face − checkpoint), rounded down. The
    /// payout's value is burnt from the piece; a piece left with no value is burnt.
    /// @custom:access the piece's holder, active
    /// @dev Emits {PieceRedeemed}, {IERC3525-TransferValue} (and {IERC721-Transfer} on burn) and
    /// {IERC20-Transfer}. Reverts with {ReceivablesNotHolder}, {ReceivablesPieceLocked},
    /// {ReceivablesPieceFrozen} or {ReceivablesNothingToRedeem}.
    function redeem(uint256 pieceId) external returns (uint256 payout);

    /// @notice Marks a confirmed obligation defaulted once maturity plus the grace period has passed.
    /// @custom:access the operator, or the holder of piece `pieceId` of slot `slotId`
    /// @dev Emits {ObligationDefaulted}. Reverts with {ReceivablesNotOverdue}, {ReceivablesNotHolder},
    /// {ReceivablesInvalidTransition}.
    function markDefaulted(uint256 slotId, uint256 pieceId) external;

    /// @notice Pays `to` exactly `value` of piece `pieceId`: the piece itself moves (ERC-721) when `value` is all of
    /// it as the transaction runs, otherwise `value` is split off into a new piece held by `to` (ERC-3525). Returns
    /// the piece `to` holds. The choice is made here, not by the caller from an earlier read of the piece: a piece
    /// whose value changed in between (part of it split off, value transferred into it) would otherwise move
    /// more or less than `value`.
    /// @custom:access the piece's holder (or its ERC-721 approved address or operator; for a part, also an
    /// ERC-3525 value allowance)
    /// @dev Emits what the ERC-721 or ERC-3525 transfer emits. Reverts with {ReceivablesZeroAmount},
    /// {ReceivablesInsufficientValue} and the errors of the transfer it makes.
    function transferPiece(uint256 pieceId, address to, uint256 value) external returns (uint256 heldPieceId);

    /// @notice Freezes a piece: it cannot move, be financed or redeemed until unfrozen.
    /// @custom:access regulator
    function freezePiece(uint256 pieceId, bytes32 reason) external;

    /// @notice Unfreezes a piece. @custom:access regulator
    function unfreezePiece(uint256 pieceId) external;

    /// @notice Sets the maximum tenor (confirmation to maturity), the grace period after maturity and the review
    /// tenor (a financing of an obligation running longer needs the financier's credit review).
    /// @custom:access operator
    /// @dev Emits {ParametersUpdated}. Reverts with {ReceivablesInvalidParameters} or a registry error.
    function setParameters(uint64 maxTenor, uint64 gracePeriod, uint64 reviewTenor) external;

    function invoice(uint256 invoiceId) external view returns (Invoice memory);
    function invoiceIdOfKey(bytes32 keyHash) external view returns (uint256);
    function piece(uint256 pieceId) external view returns (Piece memory);
    function financingRequest(uint256 requestId) external view returns (FinancingRequest memory);
    function creditLine(address coreFirm) external view returns (CreditLine memory);
    function creditGrant(address grantor, address coreFirm) external view returns (uint256);
    /// @notice State of an obligation as of now: `Overdue` for a confirmed one past maturity plus grace.
    function obligationState(uint256 slotId) external view returns (InvoiceState);
    /// @notice The pieces from the first piece of the slot down to `pieceId` (inclusive), parents first.
    function pathOf(uint256 pieceId) external view returns (uint256[] memory path);
    /// @notice The 中登网 registration recorded for financing request `requestId` (zero when none).
    function financingRegistration(uint256 requestId) external view returns (Registration memory);
    /// @notice The financing request whose registration was recorded first for obligation `slotId` (0: none).
    function registeredFinancingOf(uint256 slotId) external view returns (uint256);
    /// @notice What {redeem} would pay for `pieceId` now.
    function redeemable(uint256 pieceId) external view returns (uint256);
    /// @notice Discount, fee and price {fundFinancing} would settle now.
    function quoteFinancing(uint256 requestId) external view returns (uint256 discount, uint256 fee, uint256 price);
    function maxTenor() external view returns (uint64);
    function gracePeriod() external view returns (uint64);
    /// @notice The longest tenor (confirmation to maturity) an obligation may run and be financed without the
    /// financier's credit review (银发〔2025〕77号: more than six months needs one).
    function reviewTenor() external view returns (uint64);
}
