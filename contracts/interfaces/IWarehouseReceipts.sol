// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title Warehouse receipts and pledge loans (ERC-721)
/// @notice A licensed warehouse issues one receipt (an ERC-721 token) per lot of goods it holds, keyed by the salted
/// hash of the lot's canonical key (the warehouse's registration number, the lot number and a platform salt, hashed off
/// chain): the receipt's token id is that hash read as a `uint256`. One lot key is receipted once, by any warehouse,
/// forever: the key stays taken after the receipt is redeemed. The owner pledges a receipt to a named financier for a
/// loan of at most valuation × advance rate; funding records the lien and pays the principal to the owner in deposit
/// tokens in the same transaction. While a pledge is requested or active, or a redemption is requested, the receipt is
/// locked: no transfer by anyone (owner, approved address or operator), no redemption, no second pledge. The issuing
/// warehouse, or an oracle it appoints, attests valuations and goods status; a valuation that puts the outstanding
/// principal above the maintenance ratio raises a margin call. Repayment in full releases the lien; after the due date,
/// unpaid, the financier takes the receipt. The owner redeems an unpledged receipt for the goods: the warehouse
/// confirms and the receipt is burnt. The regulator freezes and unfreezes receipts and moves nothing.
///
/// Conventions: money is in minor units of the deposit token's currency (fen for CNY); rates are basis
/// points (1/10,000); times are Unix seconds. Interest is simple, per year of 365 days (act/365), and every
/// charge rounds up (in the financier's favour, as the ledger's charges do) while every limit paid out
/// rounds down. Every state change emits one of the events below, which together carry everything an
/// off-chain index needs to rebuild receipts and pledges without reading storage; ownership changes are the
/// ERC-721 {IERC721-Transfer} events.
interface IWarehouseReceipts is IERC721 {
    // -------------------------------------------------------------------------------------------------------
    // Types
    // -------------------------------------------------------------------------------------------------------

    /// @notice Lifecycle of a receipt. `None` is the zero value of an unknown id. Allowed edges:
    /// None → Active (issue); Active → PledgeRequested (request) → Active (cancel, decline) or Pledged (fund);
    /// Pledged → Active (release, or enforcement, which also passes the receipt to the financier);
    /// Active → RedemptionRequested → Active (withdraw) or Redeemed (confirm; the token is burnt).
    /// Only an `Active` receipt moves.
    enum ReceiptState {
        None,
        Active,
        PledgeRequested,
        Pledged,
        RedemptionRequested,
        Redeemed
    }

    /// @notice Condition of the goods as last attested. Only `Sound` goods can be pledged or funded.
    enum GoodsStatus {
        Sound,
        Damaged,
        Disputed,
        Missing
    }

    /// @notice Lifecycle of a pledge loan. `None` is the zero value of an unknown id. Allowed edges:
    /// None → Requested → Cancelled (by the owner), Declined (by the financier) or Active (funded);
    /// Active → Released (repaid in full) or Enforced (the financier took the receipt after the due date).
    enum PledgeState {
        None,
        Requested,
        Cancelled,
        Declined,
        Active,
        Released,
        Enforced
    }

    /// @notice A receipt as {receipt} returns it. The owner is the ERC-721 owner ({IERC721-ownerOf}); the lot
    /// key hash is the receipt's id. The goods description hash and document hash are not stored (they are in
    /// {ReceiptIssued}); storing them would cost about 44,000 gas more per issue.
    /// @param warehouse The issuing warehouse: custodian of the goods, attester, confirmer of redemption.
    /// @param valuation Current value of the lot in minor units, as last attested.
    /// @param quantity Quantity of goods in `unit`.
    /// @param unit ASCII unit of `quantity`, left-aligned and zero-padded (e.g. "tonne", "kg").
    /// @param valuedAt When `valuation` was attested (block time of the issue or last revaluation).
    /// @param expiry When the receipt expires; an expired receipt cannot be pledged.
    /// @param goodsStatus Condition of the goods as last attested.
    /// @param state Lifecycle state; anything but `Active` locks the receipt.
    /// @param frozen True while the regulator's freeze holds.
    // solhint-disable-next-line gas-struct-packing
    struct Receipt {
        address warehouse;
        uint96 valuation;
        uint64 quantity;
        bytes8 unit;
        uint48 valuedAt;
        uint48 expiry;
        GoodsStatus goodsStatus;
        ReceiptState state;
        bool frozen;
    }

    /// @notice A pledge loan as {pledge} returns it.
    /// @param borrower The receipt's owner who asked for the loan.
    /// @param receiptId The pledged receipt (its lot key hash as a number).
    /// @param rateBps Simple interest a year (365 days) in basis points.
    /// @param state Lifecycle state.
    /// @param financier The lender named in the request.
    /// @param principal Principal still owed (the requested principal until funded).
    /// @param interestDue Interest accrued up to `accruedFrom` and not yet paid.
    /// @param dueDate When the loan falls due; after it, unpaid, the financier may enforce.
    /// @param accruedFrom Interest on `principal` accrues from this time (funding, then each repayment).
    // solhint-disable-next-line gas-struct-packing
    struct Pledge {
        address borrower;
        uint256 receiptId;
        uint16 rateBps;
        PledgeState state;
        address financier;
        uint96 principal;
        uint96 interestDue;
        uint64 dueDate;
        uint64 accruedFrom;
    }

    /// @notice A pledge's registration in the unified registry of movable-property and rights security
    /// (动产和权利担保统一登记, 中登网), as its financier recorded it: `number` its 初始登记编号 in ASCII, left-aligned
    /// and zero-padded, `registeredAt` the registration's date (seconds since 1970); zero when none.
    struct Registration {
        bytes32 number;
        uint64 registeredAt;
    }

    // -------------------------------------------------------------------------------------------------------
    // Events
    // -------------------------------------------------------------------------------------------------------

    /// @notice `warehouse` issued receipt `receiptId` for lot `lotKeyHash` to `owner` (also an
    /// {IERC721-Transfer} from the zero address). The receipt is `Active`, its goods `Sound`, not frozen.
    event ReceiptIssued(
        uint256 indexed receiptId,
        address indexed warehouse,
        address indexed owner,
        bytes32 lotKeyHash,
        bytes32 goodsHash,
        uint256 quantity,
        bytes8 unit,
        uint256 valuation,
        uint64 valuedAt,
        uint64 expiry,
        bytes32 documentHash
    );

    /// @notice `attester` (the warehouse or its oracle) set the valuation of `receiptId` at `valuedAt`, backed
    /// by the attestation document hashed as `attestationHash`.
    event ReceiptRevalued(
        uint256 indexed receiptId,
        address indexed warehouse,
        address indexed attester,
        uint256 previousValuation,
        uint256 valuation,
        uint64 valuedAt,
        bytes32 attestationHash
    );

    /// @notice `attester` (the warehouse or its oracle) set the goods status of `receiptId` at `attestedAt`.
    event ReceiptGoodsStatusUpdated(
        uint256 indexed receiptId,
        address indexed warehouse,
        address indexed attester,
        GoodsStatus previousStatus,
        GoodsStatus status,
        uint64 attestedAt,
        bytes32 attestationHash
    );

    /// @notice `attester` anchored the digest of the sensor readings of `receiptId` for the period ending at
    /// `periodEnd`: `readings` readings hashed as `digest` (the readings stay off chain), of which the
    /// lowest observed quantity was `observedQuantity` (in the receipt's unit).
    event ReceiptReadingsAnchored(
        uint256 indexed receiptId,
        address indexed attester,
        bytes32 digest,
        uint64 periodEnd,
        uint32 readings,
        uint256 observedQuantity
    );

    /// @notice The sensors of `receiptId` observed `observedQuantity`, below the receipt's `quantity` by more
    /// than `toleranceBps` (observed × 10,000 < quantity × (10,000 − tolerance)), as anchored by `attester`.
    event ReceiptCollateralShortfall(
        uint256 indexed receiptId,
        address indexed attester,
        uint256 quantity,
        uint256 observedQuantity,
        uint16 toleranceBps
    );

    /// @notice `warehouse` appointed `oracle` to attest for receipt `receiptId`, or for all its receipts when
    /// `receiptId` is 0; `oracle` 0 revokes the appointment. `previousOracle` is the one replaced.
    event OracleAppointed(
        address indexed warehouse, uint256 indexed receiptId, address indexed oracle, address previousOracle
    );

    /// @notice The regulator froze receipt `receiptId`; `reason` refers to its decision.
    event ReceiptFrozen(uint256 indexed receiptId, address indexed regulator, bytes32 reason);

    /// @notice The regulator lifted the freeze of receipt `receiptId`.
    event ReceiptUnfrozen(uint256 indexed receiptId, address indexed regulator);

    /// @notice `owner` asked `warehouse` to release the goods of `receiptId`; the receipt is locked.
    event ReceiptRedemptionRequested(uint256 indexed receiptId, address indexed owner, address indexed warehouse);

    /// @notice `owner` withdrew its redemption request; the receipt is `Active` again.
    event ReceiptRedemptionWithdrawn(uint256 indexed receiptId, address indexed owner, address indexed warehouse);

    /// @notice `warehouse` released the goods of `receiptId` to `owner`; the receipt is burnt
    /// (also an {IERC721-Transfer} to the zero address).
    event ReceiptRedeemed(uint256 indexed receiptId, address indexed owner, address indexed warehouse);

    /// @notice `borrower` asked `financier` for a loan of `principal` against `receiptId`, at `rateBps` a
    /// year, due at `dueDate`. The receipt is locked until the request is cancelled, declined or funded.
    event PledgeRequested(
        uint256 indexed pledgeId,
        address indexed borrower,
        address indexed financier,
        uint256 receiptId,
        uint256 principal,
        uint16 rateBps,
        uint64 dueDate
    );

    /// @notice The borrower cancelled the request; the receipt is `Active` again.
    event PledgeCancelled(
        uint256 indexed pledgeId, address indexed borrower, address indexed financier, uint256 receiptId
    );

    /// @notice The financier declined the request; the receipt is `Active` again.
    event PledgeDeclined(
        uint256 indexed pledgeId, address indexed borrower, address indexed financier, uint256 receiptId
    );

    /// @notice The financier funded the loan at `fundedAt`: the lien on `receiptId` is recorded and
    /// `principal` deposit tokens moved from the financier to the borrower ({IERC20-Transfer}).
    event PledgeFunded(
        uint256 indexed pledgeId,
        address indexed borrower,
        address indexed financier,
        uint256 receiptId,
        uint256 principal,
        uint16 rateBps,
        uint64 dueDate,
        uint64 fundedAt
    );

    /// @notice The financier of funded pledge `pledgeId` recorded its registration in 中登网: initial
    /// registration number `number` (ASCII, left-aligned) of `registeredAt`.
    event PledgeRegistered(
        uint256 indexed pledgeId,
        uint256 indexed receiptId,
        address indexed financier,
        bytes32 number,
        uint64 registeredAt
    );

    /// @notice The borrower paid `amount` at `paidAt`: `interestPaid` to interest accrued first, then
    /// `principalPaid` to principal. What remains owed is `principalOutstanding` and `interestOutstanding`,
    /// with interest accruing again from `paidAt`.
    event PledgeRepaid(
        uint256 indexed pledgeId,
        address indexed borrower,
        address indexed financier,
        uint256 receiptId,
        uint256 amount,
        uint256 interestPaid,
        uint256 principalPaid,
        uint256 principalOutstanding,
        uint256 interestOutstanding,
        uint64 paidAt
    );

    /// @notice Principal and interest were repaid in full: the lien is released and the receipt is `Active`.
    event PledgeReleased(
        uint256 indexed pledgeId, address indexed borrower, address indexed financier, uint256 receiptId
    );

    /// @notice After the due date the financier enforced the lien: receipt `receiptId` passed from the
    /// borrower to the financier ({IERC721-Transfer}) and is `Active` in its hands. `principalOutstanding` and
    /// `interestOutstanding` were owed at enforcement; the pledge records them and is closed.
    event PledgeEnforced(
        uint256 indexed pledgeId,
        address indexed borrower,
        address indexed financier,
        uint256 receiptId,
        uint256 principalOutstanding,
        uint256 interestOutstanding
    );

    /// @notice A revaluation of `receiptId` put the outstanding `principal` above `maintenanceRatioBps` of
    /// the new `valuation` (principal × 10,000 > valuation × maintenance ratio). Informational: the pledge
    /// stays `Active`; the borrower is expected to repay or the financier to act off chain.
    event PledgeMarginCalled(
        uint256 indexed pledgeId,
        address indexed borrower,
        address indexed financier,
        uint256 receiptId,
        uint256 principal,
        uint256 valuation,
        uint16 maintenanceRatioBps
    );

    /// @notice The advance rate for loans by `financier` is now `advanceRateBps`; `financier` 0 is the
    /// default for financiers without their own rate. A financier's rate 0 means "use the default".
    event AdvanceRateSet(address indexed financier, uint16 advanceRateBps, address indexed operator);

    /// @notice The maintenance ratio for margin calls is now `maintenanceRatioBps`.
    event MaintenanceRatioSet(uint16 maintenanceRatioBps, address indexed operator);

    // -------------------------------------------------------------------------------------------------------
    // Errors
    // -------------------------------------------------------------------------------------------------------

    /// @notice No receipt `receiptId` exists, or it was redeemed (burnt).
    /// @custom:kind not-found
    error ReceiptNotFound(uint256 receiptId);
    /// @notice Lot key `lotKeyHash` was receipted before, as `existingReceiptId` (perhaps since redeemed).
    /// @custom:kind conflict
    error ReceiptLotAlreadyReceipted(bytes32 lotKeyHash, uint256 existingReceiptId);
    /// @notice A lot key hash must not be zero.
    /// @custom:kind invalid
    error ReceiptInvalidLotKey(bytes32 lotKeyHash);
    /// @notice The goods description hash and the document hash must not be zero.
    /// @custom:kind invalid
    error ReceiptInvalidDocuments(bytes32 goodsHash, bytes32 documentHash);
    /// @notice The quantity must be positive and fit 64 bits; the unit must not be empty.
    /// @custom:kind invalid
    error ReceiptInvalidQuantity(uint256 quantity, bytes8 unit);
    /// @notice The valuation must fit 96 bits, and be positive at issue.
    /// @custom:kind invalid
    error ReceiptInvalidValuation(uint256 valuation);
    /// @notice The expiry must be after `timestamp` (now) and fit 48 bits.
    /// @custom:kind invalid
    error ReceiptInvalidExpiry(uint256 expiry, uint256 timestamp);
    /// @notice The receipt cannot go from `from` to `to`.
    /// @custom:kind conflict
    error ReceiptInvalidTransition(uint256 receiptId, ReceiptState from, ReceiptState to);
    /// @notice `account` is not the owner of the receipt (`owner`).
    /// @custom:kind forbidden
    error ReceiptNotOwner(uint256 receiptId, address account, address owner);
    /// @notice `account` is not the warehouse that issued the receipt (`warehouse`).
    /// @custom:kind forbidden
    error ReceiptNotIssuer(uint256 receiptId, address account, address warehouse);
    /// @notice `account` is neither the issuing warehouse nor an oracle it appointed for the receipt.
    /// @custom:kind forbidden
    error ReceiptNotAttester(uint256 receiptId, address account);
    /// @notice A readings digest must not be zero and a tolerance must be at most 10,000 basis points.
    /// @custom:kind invalid
    error ReceiptInvalidReadings(bytes32 digest, uint16 toleranceBps);
    /// @notice The receipt is locked in `state` (a pledge or a redemption is open) and cannot move.
    /// @custom:kind conflict
    error ReceiptLocked(uint256 receiptId, ReceiptState state);
    /// @notice The receipt is frozen by the regulator.
    /// @custom:kind conflict
    error ReceiptIsFrozen(uint256 receiptId);
    /// @notice The receipt is not frozen.
    /// @custom:kind conflict
    error ReceiptNotFrozen(uint256 receiptId);
    /// @notice The receipt expired at `expiry` (now is `timestamp`).
    /// @custom:kind invalid
    error ReceiptExpired(uint256 receiptId, uint256 expiry, uint256 timestamp);
    /// @notice The goods are not `Sound` (`status`), so the receipt cannot be pledged or the pledge funded.
    /// @custom:kind invalid
    error ReceiptGoodsNotSound(uint256 receiptId, GoodsStatus status);
    /// @notice The receipt already has an open pledge request or an active pledge, `pledgeId`.
    /// @custom:kind conflict
    error ReceiptAlreadyPledged(uint256 receiptId, uint256 pledgeId);

    /// @notice No pledge `pledgeId` exists.
    /// @custom:kind not-found
    error PledgeNotFound(uint256 pledgeId);
    /// @notice The pledge cannot go from `from` to `to`.
    /// @custom:kind conflict
    error PledgeInvalidTransition(uint256 pledgeId, PledgeState from, PledgeState to);
    /// @notice The pledge is not `Active` (it is `state`), so it cannot be repaid.
    /// @custom:kind conflict
    error PledgeNotActive(uint256 pledgeId, PledgeState state);
    /// @notice `account` is not the pledge's borrower (`borrower`).
    /// @custom:kind forbidden
    error PledgeNotBorrower(uint256 pledgeId, address account, address borrower);
    /// @notice `account` is not the pledge's financier (`financier`).
    /// @custom:kind forbidden
    error PledgeNotFinancier(uint256 pledgeId, address account, address financier);
    /// @notice The owner named itself as financier.
    /// @custom:kind invalid
    error PledgeFinancierIsBorrower(address account);
    /// @notice The principal must be positive.
    /// @custom:kind invalid
    error PledgeZeroPrincipal();
    /// @notice `principal` exceeds the advance limit `limit` = valuation × advance rate / 10,000 (rounded down).
    /// @custom:kind invalid
    error PledgeExceedsAdvanceLimit(uint256 receiptId, uint256 principal, uint256 limit);
    /// @notice The due date must be after now (`timestamp`) and before the receipt's `expiry`.
    /// @custom:kind invalid
    error PledgeInvalidDueDate(uint256 dueDate, uint256 timestamp, uint256 expiry);
    /// @notice The request's due date has passed (now is `timestamp`); it can no longer be funded.
    /// @custom:kind invalid
    error PledgePastDue(uint256 pledgeId, uint256 dueDate, uint256 timestamp);
    /// @notice The loan is not yet due (now is `timestamp`); it cannot be enforced.
    /// @custom:kind invalid
    error PledgeNotDue(uint256 pledgeId, uint256 dueDate, uint256 timestamp);
    /// @notice A repayment must be positive.
    /// @custom:kind invalid
    error PledgeZeroRepayment(uint256 pledgeId);
    /// @notice `amount` exceeds everything owed now (`owed` = principal + interest).
    /// @custom:kind invalid
    error PledgeRepaymentExceedsDebt(uint256 pledgeId, uint256 amount, uint256 owed);
    /// @notice An advance rate must be at most 10,000 bps (and positive for the default).
    /// @custom:kind invalid
    error PledgeInvalidAdvanceRate(uint256 advanceRateBps);
    /// @notice A maintenance ratio must be positive and at most 10,000 bps.
    /// @custom:kind invalid
    error PledgeInvalidMaintenanceRatio(uint256 maintenanceRatioBps);

    /// @notice The registration of pledge `pledgeId` was recorded before, as `number`.
    /// @custom:kind conflict
    error PledgeAlreadyRegistered(uint256 pledgeId, bytes32 number);
    /// @notice A registration needs a number (non-zero ASCII, left-aligned) and a date not after now
    /// (`timestamp`).
    /// @custom:kind invalid
    error PledgeInvalidRegistration(bytes32 number, uint64 registeredAt, uint256 timestamp);

    // -------------------------------------------------------------------------------------------------------
    // Receipts
    // -------------------------------------------------------------------------------------------------------

    /// @notice Issues a receipt for a lot held by the caller to `owner`. The receipt's id is
    /// `uint256(lotKeyHash)`. The valuation is attested now; the goods are `Sound`.
    /// @param lotKeyHash Salted hash of the lot's canonical key (warehouse registration number, lot number,
    /// platform salt), computed off chain. Never receipted twice, by any warehouse, even after redemption.
    /// @param goodsHash Hash of the goods description (commodity, grade, brand, specification).
    /// @param quantity Quantity in `unit`, positive, at most 2^64 − 1.
    /// @param unit ASCII unit, left-aligned (e.g. "tonne").
    /// @param valuation Value of the lot in minor units, positive, at most 2^96 − 1.
    /// @param expiry When the receipt expires (after now, at most 2^48 − 1).
    /// @param documentHash Hash of the encrypted warehouse documents.
    /// @custom:access active warehouse; `owner` must be an active participant
    /// @dev Emits {IERC721-Transfer} and {ReceiptIssued}. Reverts with a registry error
    /// ({IParticipantRegistry-RegistryMissingRole}, ...NotRegistered, ...ParticipantNotActive,
    /// ...ParticipantFrozen) for the caller or the owner (checked first, in that order; a zero owner is not
    /// registered), then {ReceiptInvalidLotKey}, {ReceiptLotAlreadyReceipted}, {ReceiptInvalidDocuments},
    /// {ReceiptInvalidQuantity}, {ReceiptInvalidValuation} or {ReceiptInvalidExpiry}.
    function issueReceipt(
        address owner,
        bytes32 lotKeyHash,
        bytes32 goodsHash,
        uint256 quantity,
        bytes8 unit,
        uint256 valuation,
        uint64 expiry,
        bytes32 documentHash
    ) external returns (uint256 receiptId);

    /// @notice Attests a new valuation of receipt `receiptId`, timestamped now. If the receipt is pledged and
    /// the outstanding principal is now above the maintenance ratio of the new valuation, raises a margin
    /// call. Allowed in any live state, frozen or not (an attestation moves nothing). A valuation may be 0
    /// (goods lost).
    /// @custom:access the issuing warehouse (active, warehouse role), or an active oracle it appointed for
    /// this receipt or for all its receipts while the warehouse itself is an active warehouse
    /// @dev Emits {ReceiptRevalued} and, on a margin breach, {PledgeMarginCalled}. Reverts with
    /// {ReceiptNotFound}, {ReceiptNotAttester}, {ReceiptInvalidValuation} or a registry error.
    function revalueReceipt(uint256 receiptId, uint256 valuation, bytes32 attestationHash) external;

    /// @notice Attests the condition of the goods of receipt `receiptId`. Goods not `Sound` cannot be
    /// pledged or funded; an active pledge is unaffected (the valuation carries the risk).
    /// @custom:access as {revalueReceipt}
    /// @dev Emits {ReceiptGoodsStatusUpdated}. Reverts with {ReceiptNotFound}, {ReceiptNotAttester} or a
    /// registry error.
    function updateGoodsStatus(uint256 receiptId, GoodsStatus status, bytes32 attestationHash) external;

    /// @notice Anchors the digest of a period of sensor readings of receipt `receiptId` (see docs/sensors.md)
    /// and the lowest quantity they observed. When `observedQuantity` is below the receipt's quantity by more
    /// than `toleranceBps`, raises a collateral alert and, if the receipt is pledged, applies the margin test
    /// of {revalueReceipt} to the valuation scaled by observed / quantity (rounded down), without changing the
    /// recorded valuation. Allowed in any live state, frozen or not.
    /// @param digest Hash of the period's readings, in the service's canonical order; not zero.
    /// @param periodEnd End of the period (Unix seconds).
    /// @param readings Number of valid readings in the period.
    /// @param toleranceBps The lot's tolerance, at most 10,000.
    /// @custom:access as {revalueReceipt}
    /// @dev Emits {ReceiptReadingsAnchored} and, on a shortfall, {ReceiptCollateralShortfall} and, on a margin
    /// breach, {PledgeMarginCalled}. Reverts with {ReceiptNotFound}, {ReceiptNotAttester},
    /// {ReceiptInvalidReadings} or a registry error.
    function anchorReadings(
        uint256 receiptId,
        bytes32 digest,
        uint64 periodEnd,
        uint32 readings,
        uint256 observedQuantity,
        uint16 toleranceBps
    ) external;

    /// @notice Appoints `oracle` to attest valuations and goods status for every receipt the caller issued;
    /// `oracle` 0 revokes. The caller itself always remains an attester.
    /// @custom:access active warehouse; `oracle` must be an active participant
    /// @dev Emits {OracleAppointed} with receipt id 0. Reverts with a registry error.
    function appointOracle(address oracle) external;

    /// @notice Appoints `oracle` to attest for receipt `receiptId` only; `oracle` 0 revokes.
    /// @custom:access the issuing warehouse, active; `oracle` must be an active participant
    /// @dev Emits {OracleAppointed}. Reverts with {ReceiptNotFound}, {ReceiptNotIssuer} or a registry error.
    function appointReceiptOracle(uint256 receiptId, address oracle) external;

    /// @notice Asks the issuing warehouse to release the goods; locks the receipt.
    /// @custom:access the receipt's owner, active
    /// @dev Emits {ReceiptRedemptionRequested}. Reverts with {ReceiptNotFound}, {ReceiptNotOwner},
    /// {ReceiptIsFrozen}, {ReceiptInvalidTransition} (pledge open or redemption already requested) or a
    /// registry error.
    function requestRedemption(uint256 receiptId) external;

    /// @notice Withdraws the caller's redemption request; unlocks the receipt.
    /// @custom:access the receipt's owner, active
    /// @dev Emits {ReceiptRedemptionWithdrawn}. Reverts with {ReceiptNotFound}, {ReceiptNotOwner},
    /// {ReceiptInvalidTransition} or a registry error.
    function withdrawRedemption(uint256 receiptId) external;

    /// @notice Confirms that the goods were released to the owner and burns the receipt. Its lot key stays
    /// taken.
    /// @custom:access the issuing warehouse, active; the owner must still be active
    /// @dev Emits {IERC721-Transfer} to the zero address and {ReceiptRedeemed}. Reverts with
    /// {ReceiptNotFound}, {ReceiptNotIssuer}, {ReceiptIsFrozen}, {ReceiptInvalidTransition} (no redemption
    /// requested) or a registry error.
    function confirmRedemption(uint256 receiptId) external;

    /// @notice Freezes receipt `receiptId`: it cannot move, be pledged, be funded, be enforced or be
    /// redeemed until unfrozen. Repayment of an active pledge stays possible (it moves only cash between the
    /// parties, and stops interest running against the borrower); a lien released while frozen leaves the
    /// receipt `Active` and still frozen. Cancelling or declining a request and withdrawing a redemption also
    /// stay possible (they only unlock).
    /// @custom:access regulator, active
    /// @dev Emits {ReceiptFrozen}. Reverts with {ReceiptNotFound}, {ReceiptIsFrozen} or a registry error.
    function freezeReceipt(uint256 receiptId, bytes32 reason) external;

    /// @notice Lifts the freeze of receipt `receiptId`.
    /// @custom:access regulator, active
    /// @dev Emits {ReceiptUnfrozen}. Reverts with {ReceiptNotFound}, {ReceiptNotFrozen} or a registry error.
    function unfreezeReceipt(uint256 receiptId) external;

    // -------------------------------------------------------------------------------------------------------
    // Pledges
    // -------------------------------------------------------------------------------------------------------

    /// @notice Asks `financier` for a loan of `principal` against receipt `receiptId` at `rateBps` a year
    /// (simple, act/365), due at `dueDate`. Locks the receipt until the request is cancelled, declined or
    /// funded. The principal must not exceed the advance limit, valuation × the financier's advance rate /
    /// 10,000, rounded down (see {advanceRateOf}).
    /// @custom:access the receipt's owner, active; `financier` must be an active financier other than the owner
    /// @dev Emits {PledgeRequested}. Reverts with {ReceiptNotFound}, {ReceiptNotOwner},
    /// {ReceiptAlreadyPledged}, {ReceiptInvalidTransition} (redemption requested), {ReceiptIsFrozen},
    /// {ReceiptExpired}, {ReceiptGoodsNotSound}, {PledgeFinancierIsBorrower}, {PledgeZeroPrincipal},
    /// {PledgeExceedsAdvanceLimit}, {PledgeInvalidDueDate} or a registry error.
    function requestPledge(uint256 receiptId, address financier, uint256 principal, uint16 rateBps, uint64 dueDate)
        external
        returns (uint256 pledgeId);

    /// @notice Cancels the caller's open request; unlocks the receipt.
    /// @custom:access the pledge's borrower, active
    /// @dev Emits {PledgeCancelled}. Reverts with {PledgeNotFound}, {PledgeNotBorrower},
    /// {PledgeInvalidTransition} or a registry error.
    function cancelPledge(uint256 pledgeId) external;

    /// @notice Declines a request addressed to the caller; unlocks the receipt.
    /// @custom:access the pledge's financier, active
    /// @dev Emits {PledgeDeclined}. Reverts with {PledgeNotFound}, {PledgeNotFinancier},
    /// {PledgeInvalidTransition} or a registry error.
    function declinePledge(uint256 pledgeId) external;

    /// @notice Funds a request in one transaction: records the lien (the receipt becomes `Pledged`) and pays
    /// the principal from the caller to the borrower in deposit tokens (`transferFrom`; the caller must have
    /// approved this contract). Interest accrues from now. The advance limit is checked again against the
    /// current valuation and rate.
    /// @custom:access the pledge's financier, an active financier
    /// @dev Emits {PledgeFunded} and {IERC20-Transfer}. Reverts with {PledgeNotFound}, {PledgeNotFinancier},
    /// {PledgeInvalidTransition}, {PledgePastDue}, {ReceiptIsFrozen}, {ReceiptGoodsNotSound},
    /// {PledgeExceedsAdvanceLimit}, a registry error or a deposit-token error (allowance, balance, a party
    /// not active).
    function fundPledge(uint256 pledgeId) external;

    /// @notice Records the registration of a funded (active) pledge in 中登网 (动产和权利担保统一登记办法): its
    /// initial registration number (ASCII, left-aligned, zero-padded) and date. The ledger cannot see the
    /// registry: it keeps what the financier says it registered, once.
    /// @custom:access the pledge's financier, active
    /// @dev Emits {PledgeRegistered}. Reverts with {PledgeNotFound}, {PledgeNotFinancier}, {PledgeNotActive},
    /// {PledgeAlreadyRegistered}, {PledgeInvalidRegistration} or a registry error.
    function recordPledgeRegistration(uint256 pledgeId, bytes32 number, uint64 registeredAt) external;

    /// @notice Repays `amount` of an active pledge (`type(uint256).max`: everything owed now). Interest
    /// accrued since the last payment is charged first, interest = ⌈principal × rateBps × seconds /
    /// (365 days × 10,000)⌉, rounded up (a charge, in the ledger's favour); the rest reduces principal.
    /// Paying principal and interest in full releases the lien and unlocks the receipt. The deposit tokens
    /// move from the caller to the financier (`transferFrom`; the caller must have approved this contract).
    /// Allowed after the due date until enforcement, and while the receipt is frozen.
    /// @custom:access the pledge's borrower, active
    /// @dev Emits {PledgeRepaid}, {IERC20-Transfer} and, when paid in full, {PledgeReleased}. Reverts with
    /// {PledgeNotFound}, {PledgeNotBorrower}, {PledgeNotActive}, {PledgeZeroRepayment},
    /// {PledgeRepaymentExceedsDebt}, a registry error or a deposit-token error.
    function repayPledge(uint256 pledgeId, uint256 amount)
        external
        returns (uint256 interestPaid, uint256 principalPaid);

    /// @notice After the due date, with the loan unpaid, passes the receipt from the borrower to the
    /// financier and closes the lien as enforced. The receipt is `Active` in the financier's hands. Both
    /// parties must be active and the receipt not frozen.
    /// @custom:access the pledge's financier, an active financier
    /// @dev Emits {IERC721-Transfer} and {PledgeEnforced}. Reverts with {PledgeNotFound},
    /// {PledgeNotFinancier}, {PledgeInvalidTransition}, {PledgeNotDue}, {ReceiptIsFrozen} or a registry error.
    function enforcePledge(uint256 pledgeId) external;

    // -------------------------------------------------------------------------------------------------------
    // Parameters
    // -------------------------------------------------------------------------------------------------------

    /// @notice Sets the default advance rate (initially 7,000 bps) for financiers without their own rate.
    /// @custom:access operator, active
    /// @dev Emits {AdvanceRateSet} with financier 0. Reverts with {PledgeInvalidAdvanceRate} (0 or above
    /// 10,000) or a registry error.
    function setDefaultAdvanceRate(uint16 advanceRateBps) external;

    /// @notice Sets the advance rate for loans by `financier`; 0 returns it to the default.
    /// @custom:access operator, active; `financier` must hold the financier role
    /// @dev Emits {AdvanceRateSet}. Reverts with {PledgeInvalidAdvanceRate} (above 10,000) or a registry error.
    function setFinancierAdvanceRate(address financier, uint16 advanceRateBps) external;

    /// @notice Sets the maintenance ratio (initially 8,000 bps) above which a revaluation raises a margin call.
    /// @custom:access operator, active
    /// @dev Emits {MaintenanceRatioSet}. Reverts with {PledgeInvalidMaintenanceRatio} (0 or above 10,000) or
    /// a registry error.
    function setMaintenanceRatio(uint16 maintenanceRatioBps) external;

    // -------------------------------------------------------------------------------------------------------
    // Views
    // -------------------------------------------------------------------------------------------------------

    /// @notice Receipt `receiptId` as stored (all zero when unknown; kept after redemption).
    function receipt(uint256 receiptId) external view returns (Receipt memory);

    /// @notice The receipt issued for lot key `lotKeyHash` (that is, `uint256(lotKeyHash)`), 0 if none.
    function receiptIdOfLot(bytes32 lotKeyHash) external view returns (uint256);

    /// @notice Pledge `pledgeId` as stored (all zero when unknown).
    function pledge(uint256 pledgeId) external view returns (Pledge memory);

    /// @notice The 中登网 registration recorded for pledge `pledgeId` (zero when none).
    function pledgeRegistration(uint256 pledgeId) external view returns (Registration memory);

    /// @notice The latest pledge requested against `receiptId` (0 if none). It is open exactly when the
    /// receipt is `PledgeRequested` or `Pledged`.
    function pledgeOf(uint256 receiptId) external view returns (uint256);

    /// @notice What the borrower owes on pledge `pledgeId` now: principal, and interest accrued (rounded up);
    /// (0, 0) unless the pledge is `Active`. A transaction mined later owes more interest: repay
    /// `type(uint256).max` to pay exactly what is owed when it runs.
    function amountOwed(uint256 pledgeId) external view returns (uint256 principal, uint256 interest);

    /// @notice The advance rate that applies to loans by `financier`: its own rate, else the default.
    function advanceRateOf(address financier) external view returns (uint16);

    /// @notice The most `financier` may lend against `receiptId` now: valuation × advance rate / 10,000,
    /// rounded down.
    function advanceLimit(uint256 receiptId, address financier) external view returns (uint256);

    /// @notice Default advance rate in basis points.
    function defaultAdvanceRateBps() external view returns (uint16);

    /// @notice Maintenance ratio in basis points.
    function maintenanceRatioBps() external view returns (uint16);

    /// @notice The oracle `warehouse` appointed for all its receipts (0 if none).
    function warehouseOracle(address warehouse) external view returns (address);

    /// @notice The oracle appointed for receipt `receiptId` alone (0 if none).
    function receiptOracle(uint256 receiptId) external view returns (address);
}
