// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {IWarehouseReceipts} from "./interfaces/IWarehouseReceipts.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {IDepositToken} from "./interfaces/IDepositToken.sol";
import {Roles} from "./Roles.sol";
import {PackedERC721} from "./PackedERC721.sol";
import {SignedActsRecipient} from "./SignedActsRecipient.sol";

/// @title Warehouse receipts and pledge loans
/// @notice One ERC-721 receipt per lot of goods, pledged to financiers against deposit-token loans; see
/// {IWarehouseReceipts}. The ERC-721 core is {PackedERC721}'s, shared with {Receivables}, with OpenZeppelin 5's
/// ERC-721 errors, and a receipt's owner is packed into the receipt's own storage: issuing a receipt writes
/// three words and the owner's balance, no more. Every change of owner passes the one gate,
/// {PackedERC721-_update}, overridden here: a movement between participants (transferFrom and both
/// safeTransferFrom, by the owner, an approved address or an operator; and enforcement) meets the lock, freeze
/// and participant checks there; the mint is only in {issueReceipt} and the burn only in {confirmRedemption},
/// each with its own checks.
contract WarehouseReceipts is IWarehouseReceipts, PackedERC721, IERC721Errors {
    using SafeERC20 for IDepositToken;

    uint256 private constant BPS = 10_000;
    uint256 private constant YEAR = 365 days;
    uint16 private constant DEFAULT_ADVANCE_RATE_BPS = 7_000;
    uint16 private constant DEFAULT_MAINTENANCE_RATIO_BPS = 8_000;

    /// @dev A receipt as stored: three words. Its id is its lot key hash, so the record itself marks the lot
    /// key as taken (`state` is never `None` again once issued; a redeemed record is kept). The owner is the
    /// ERC-721 owner (zero once burnt); `pledgeId` is the latest pledge requested against the receipt.
    /// The view {receipt} returns it as {IWarehouseReceipts-Receipt}. Fields are grouped by who reads and
    /// writes them together, not by size (hence the linter's packing hint is disabled).
    // solhint-disable-next-line gas-struct-packing
    struct StoredReceipt {
        // word 0: custody and value (read by attesters, pledges and redemption)
        address warehouse;
        uint96 valuation;
        // word 1: terms and lifecycle (read by every action)
        uint64 quantity;
        uint48 valuedAt;
        uint48 expiry;
        GoodsStatus goodsStatus;
        ReceiptState state;
        bool frozen;
        uint48 pledgeId;
        // word 2: ownership (written by every movement)
        address owner;
        bytes8 unit;
        bool hasApproval; // an approval is set ({PackedERC721}); cleared with it on every movement
    }

    /// @dev A pledge as stored: four words, the fourth written from funding on. The view {pledge} returns it
    /// as {IWarehouseReceipts-Pledge}. Word 3 is apart so that a request does not pay for it (a cancelled or
    /// declined request never does).
    // solhint-disable-next-line gas-struct-packing
    struct StoredPledge {
        // word 0
        address borrower;
        uint16 rateBps;
        PledgeState state;
        uint64 dueDate;
        // word 1
        address financier;
        uint96 principal;
        // word 2
        uint256 receiptId;
        // word 3
        uint96 interestDue;
        uint64 accruedFrom;
    }

    IParticipantRegistry public immutable registry;
    IDepositToken public immutable depositToken;

    // One storage word: the pledge counter and both parameters.
    uint48 private _lastPledgeId;
    /// @inheritdoc IWarehouseReceipts
    uint16 public defaultAdvanceRateBps;
    /// @inheritdoc IWarehouseReceipts
    uint16 public maintenanceRatioBps;

    mapping(uint256 receiptId => StoredReceipt) private _receipts;
    mapping(uint256 pledgeId => StoredPledge) private _pledges;
    mapping(address financier => uint16 advanceRateBps) private _financierAdvanceRate;
    /// @inheritdoc IWarehouseReceipts
    mapping(address warehouse => address oracle) public warehouseOracle;
    /// @inheritdoc IWarehouseReceipts
    mapping(uint256 receiptId => address oracle) public receiptOracle;
    mapping(uint256 pledgeId => Registration) private _pledgeRegistrations;

    /// @param registry_ The participant registry every check asks.
    /// @param depositToken_ The deposit token in which loans are paid out and repaid.
    /// @param signedActs_ The {SignedActs} contract that relays participants' signed acts (ERC-2771).
    constructor(IParticipantRegistry registry_, IDepositToken depositToken_, address signedActs_)
        SignedActsRecipient(signedActs_)
    {
        // The registry must be a contract ({_requireActiveWarehouseAndOwner} relies on it): a query with a return
        // value reverts when the address has no code, as its empty answer does not decode.
        // slither-disable-next-line unused-return -- the call is the check: it reverts when the registry has no code
        registry_.isActive(address(0));
        registry = registry_;
        depositToken = depositToken_;
        defaultAdvanceRateBps = DEFAULT_ADVANCE_RATE_BPS;
        maintenanceRatioBps = DEFAULT_MAINTENANCE_RATIO_BPS;
        emit AdvanceRateSet(address(0), DEFAULT_ADVANCE_RATE_BPS, msg.sender);
        emit MaintenanceRatioSet(DEFAULT_MAINTENANCE_RATIO_BPS, msg.sender);
    }

    // -------------------------------------------------------------------------------------------------------
    // Receipts
    // -------------------------------------------------------------------------------------------------------

    /// @inheritdoc IWarehouseReceipts
    function issueReceipt(
        address owner,
        bytes32 lotKeyHash,
        bytes32 goodsHash,
        uint256 quantity,
        bytes8 unit,
        uint256 valuation,
        uint64 expiry,
        bytes32 documentHash
    ) external returns (uint256 receiptId) {
        (address sender, bool direct) = _actor();
        // The caller is an active warehouse (on its own transaction, not a self-custody one) and the owner an
        // active participant (invariants 9 and 4): one query.
        _requireActiveWarehouseAndOwner(sender, direct, owner);
        // `if (...) revert` rather than `require(..., Error(...))` here: the error's arguments are then evaluated
        // only on failure (about 20 gas a check on the hottest path of the contract).
        if (lotKeyHash == bytes32(0)) revert ReceiptInvalidLotKey(lotKeyHash);
        receiptId = uint256(lotKeyHash);
        StoredReceipt storage r = _receipts[receiptId];
        // Invariant 1: a record, once written, keeps its warehouse forever (redeemed too), so the lot key stays
        // taken. (Reading the warehouse rather than the state costs the same storage read, without decoding an
        // enum.)
        if (r.warehouse != address(0)) revert ReceiptLotAlreadyReceipted(lotKeyHash, receiptId);
        if (goodsHash == bytes32(0) || documentHash == bytes32(0)) {
            revert ReceiptInvalidDocuments(goodsHash, documentHash);
        }
        if (quantity == 0 || quantity > type(uint64).max || unit == bytes8(0)) {
            revert ReceiptInvalidQuantity(quantity, unit);
        }
        if (valuation == 0 || valuation > type(uint96).max) revert ReceiptInvalidValuation(valuation);
        if (expiry <= block.timestamp || expiry > type(uint48).max) {
            revert ReceiptInvalidExpiry(expiry, block.timestamp);
        }

        _writeIssued(r, sender, owner, quantity, unit, valuation, expiry);
        _update(address(0), owner, receiptId, address(0));
        emit ReceiptIssued(
            receiptId, sender, owner, lotKeyHash, goodsHash, quantity, unit, valuation,
            uint64(block.timestamp), expiry, documentHash
        );
    }

    /// @inheritdoc IWarehouseReceipts
    function revalueReceipt(uint256 receiptId, uint256 valuation, bytes32 attestationHash) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        address warehouse = r.warehouse;
        _requireAttester(receiptId, warehouse, sender);
        require(valuation <= type(uint96).max, ReceiptInvalidValuation(valuation));

        uint256 previous = r.valuation;
        r.valuation = uint96(valuation);
        r.valuedAt = uint48(block.timestamp);
        emit ReceiptRevalued(
            receiptId, warehouse, sender, previous, valuation, uint64(block.timestamp), attestationHash
        );
        // slither-disable-next-line incorrect-equality -- an enum state, not a balance anyone can move
        if (r.state == ReceiptState.Pledged) _marginTest(r, receiptId, valuation);
    }

    /// @inheritdoc IWarehouseReceipts
    function anchorReadings(
        uint256 receiptId,
        bytes32 digest,
        uint64 periodEnd,
        uint32 readings,
        uint256 observedQuantity,
        uint16 toleranceBps
    ) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        _requireAttester(receiptId, r.warehouse, sender);
        require(digest != bytes32(0) && toleranceBps <= BPS, ReceiptInvalidReadings(digest, toleranceBps));

        emit ReceiptReadingsAnchored(receiptId, sender, digest, periodEnd, readings, observedQuantity);
        uint256 quantity = r.quantity;
        if (observedQuantity >= quantity || observedQuantity * BPS >= quantity * (BPS - toleranceBps)) return;
        emit ReceiptCollateralShortfall(receiptId, sender, quantity, observedQuantity, toleranceBps);
        if (r.state == ReceiptState.Pledged) {
            // observed < quantity here, so the scaled valuation fits the recorded one's 96 bits.
            _marginTest(r, receiptId, r.valuation * observedQuantity / quantity);
        }
    }

    /// @inheritdoc IWarehouseReceipts
    function updateGoodsStatus(uint256 receiptId, GoodsStatus status, bytes32 attestationHash) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        address warehouse = r.warehouse;
        _requireAttester(receiptId, warehouse, sender);

        GoodsStatus previous = r.goodsStatus;
        r.goodsStatus = status;
        emit ReceiptGoodsStatusUpdated(
            receiptId, warehouse, sender, previous, status, uint64(block.timestamp), attestationHash
        );
    }

    /// @inheritdoc IWarehouseReceipts
    function appointOracle(address oracle) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.WAREHOUSE, sender);
        if (oracle != address(0)) registry.requireActive(oracle);

        address previous = warehouseOracle[sender];
        warehouseOracle[sender] = oracle;
        emit OracleAppointed(sender, 0, oracle, previous);
    }

    /// @inheritdoc IWarehouseReceipts
    function appointReceiptOracle(uint256 receiptId, address oracle) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        require(sender == r.warehouse, ReceiptNotIssuer(receiptId, sender, r.warehouse));
        registry.requireActiveRole(Roles.WAREHOUSE, sender);
        if (oracle != address(0)) registry.requireActive(oracle);

        address previous = receiptOracle[receiptId];
        receiptOracle[receiptId] = oracle;
        emit OracleAppointed(sender, receiptId, oracle, previous);
    }

    /// @inheritdoc IWarehouseReceipts
    function requestRedemption(uint256 receiptId) external {
        StoredReceipt storage r = _liveReceipt(receiptId);
        address owner = _requireOwner(receiptId, r);
        require(!r.frozen, ReceiptIsFrozen(receiptId));
        _checkReceiptEdge(receiptId, r.state, ReceiptState.RedemptionRequested);

        _transition(receiptId, r, ReceiptState.RedemptionRequested);
        emit ReceiptRedemptionRequested(receiptId, owner, r.warehouse);
    }

    /// @inheritdoc IWarehouseReceipts
    function withdrawRedemption(uint256 receiptId) external {
        StoredReceipt storage r = _liveReceipt(receiptId);
        address owner = _requireOwner(receiptId, r);
        require(
            r.state == ReceiptState.RedemptionRequested,
            ReceiptInvalidTransition(receiptId, r.state, ReceiptState.Active)
        );

        _transition(receiptId, r, ReceiptState.Active);
        emit ReceiptRedemptionWithdrawn(receiptId, owner, r.warehouse);
    }

    /// @inheritdoc IWarehouseReceipts
    function confirmRedemption(uint256 receiptId) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        address warehouse = r.warehouse;
        require(sender == warehouse, ReceiptNotIssuer(receiptId, sender, warehouse));
        address owner = r.owner;
        // The warehouse is an active warehouse and the owner, to whom the goods go, still active: one query.
        registry.requireActiveRoleAndActive(Roles.WAREHOUSE, sender, owner);
        require(!r.frozen, ReceiptIsFrozen(receiptId));
        _checkReceiptEdge(receiptId, r.state, ReceiptState.Redeemed);

        // The burn: the record stays (in `Redeemed`, so the lot key stays taken) without an owner.
        _transition(receiptId, r, ReceiptState.Redeemed);
        _update(owner, address(0), receiptId, address(0));
        emit ReceiptRedeemed(receiptId, owner, warehouse);
    }

    /// @inheritdoc IWarehouseReceipts
    function freezeReceipt(uint256 receiptId, bytes32 reason) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        registry.requireActiveRole(Roles.REGULATOR, sender);
        require(!r.frozen, ReceiptIsFrozen(receiptId));

        r.frozen = true;
        emit ReceiptFrozen(receiptId, sender, reason);
    }

    /// @inheritdoc IWarehouseReceipts
    function unfreezeReceipt(uint256 receiptId) external {
        address sender = _msgSender();
        StoredReceipt storage r = _liveReceipt(receiptId);
        registry.requireActiveRole(Roles.REGULATOR, sender);
        require(r.frozen, ReceiptNotFrozen(receiptId));

        r.frozen = false;
        emit ReceiptUnfrozen(receiptId, sender);
    }

    // -------------------------------------------------------------------------------------------------------
    // Pledges
    // -------------------------------------------------------------------------------------------------------

    /// @inheritdoc IWarehouseReceipts
    function requestPledge(uint256 receiptId, address financier, uint256 principal, uint16 rateBps, uint64 dueDate)
        external
        returns (uint256 pledgeId)
    {
        StoredReceipt storage r = _liveReceipt(receiptId);
        address owner = r.owner;
        {
            address sender = _msgSender();
            require(sender == owner, ReceiptNotOwner(receiptId, sender, owner));
        }
        ReceiptState state = r.state;
        require(
            state != ReceiptState.PledgeRequested && state != ReceiptState.Pledged,
            ReceiptAlreadyPledged(receiptId, r.pledgeId)
        );
        _checkReceiptEdge(receiptId, state, ReceiptState.PledgeRequested);
        require(!r.frozen, ReceiptIsFrozen(receiptId));
        uint256 expiry = r.expiry;
        require(block.timestamp < expiry, ReceiptExpired(receiptId, expiry, block.timestamp));
        require(r.goodsStatus == GoodsStatus.Sound, ReceiptGoodsNotSound(receiptId, r.goodsStatus));
        require(financier != owner, PledgeFinancierIsBorrower(financier));
        // The lender is an active financier and the borrower (the caller) active: one query.
        registry.requireActiveRoleAndActive(Roles.FINANCIER, financier, owner);
        require(principal != 0, PledgeZeroPrincipal());
        uint256 limit = _advanceLimit(r.valuation, financier);
        require(principal <= limit, PledgeExceedsAdvanceLimit(receiptId, principal, limit));
        require(dueDate > block.timestamp && dueDate < expiry, PledgeInvalidDueDate(dueDate, block.timestamp, expiry));

        pledgeId = ++_lastPledgeId;
        _transition(receiptId, r, ReceiptState.PledgeRequested);
        r.pledgeId = uint48(pledgeId);
        StoredPledge storage p = _pledges[pledgeId];
        p.borrower = owner;
        p.rateBps = rateBps;
        p.dueDate = dueDate;
        _transition(pledgeId, p, PledgeState.Requested);
        p.financier = financier;
        p.principal = uint96(principal);
        p.receiptId = receiptId;
        emit PledgeRequested(pledgeId, owner, financier, receiptId, principal, rateBps, dueDate);
    }

    /// @inheritdoc IWarehouseReceipts
    function cancelPledge(uint256 pledgeId) external {
        address sender = _msgSender();
        StoredPledge storage p = _existingPledge(pledgeId);
        address borrower = p.borrower;
        require(sender == borrower, PledgeNotBorrower(pledgeId, sender, borrower));
        registry.requireActive(sender);
        _checkPledgeEdge(pledgeId, p.state, PledgeState.Cancelled);

        uint256 receiptId = p.receiptId;
        _transition(pledgeId, p, PledgeState.Cancelled);
        _transition(receiptId, _receipts[receiptId], ReceiptState.Active);
        emit PledgeCancelled(pledgeId, borrower, p.financier, receiptId);
    }

    /// @inheritdoc IWarehouseReceipts
    function declinePledge(uint256 pledgeId) external {
        address sender = _msgSender();
        StoredPledge storage p = _existingPledge(pledgeId);
        address financier = p.financier;
        require(sender == financier, PledgeNotFinancier(pledgeId, sender, financier));
        registry.requireActive(sender);
        _checkPledgeEdge(pledgeId, p.state, PledgeState.Declined);

        uint256 receiptId = p.receiptId;
        _transition(pledgeId, p, PledgeState.Declined);
        _transition(receiptId, _receipts[receiptId], ReceiptState.Active);
        emit PledgeDeclined(pledgeId, p.borrower, financier, receiptId);
    }

    /// @inheritdoc IWarehouseReceipts
    function fundPledge(uint256 pledgeId) external {
        address sender = _msgSender();
        StoredPledge storage p = _existingPledge(pledgeId);
        address financier = p.financier;
        require(sender == financier, PledgeNotFinancier(pledgeId, sender, financier));
        registry.requireActiveRole(Roles.FINANCIER, sender);
        _checkPledgeEdge(pledgeId, p.state, PledgeState.Active);
        uint64 dueDate = p.dueDate;
        require(block.timestamp < dueDate, PledgePastDue(pledgeId, dueDate, block.timestamp));
        uint256 receiptId = p.receiptId;
        StoredReceipt storage r = _receipts[receiptId];
        require(!r.frozen, ReceiptIsFrozen(receiptId));
        require(r.goodsStatus == GoodsStatus.Sound, ReceiptGoodsNotSound(receiptId, r.goodsStatus));
        uint256 principal = p.principal;
        uint256 limit = _advanceLimit(r.valuation, financier);
        require(principal <= limit, PledgeExceedsAdvanceLimit(receiptId, principal, limit));
        address borrower = p.borrower;

        _transition(pledgeId, p, PledgeState.Active);
        p.accruedFrom = uint64(block.timestamp);
        _transition(receiptId, r, ReceiptState.Pledged);
        emit PledgeFunded(
            pledgeId, borrower, financier, receiptId, principal, p.rateBps, dueDate, uint64(block.timestamp)
        );
        // Paid by the caller, whom the check above proved to be the pledge's financier.
        depositToken.safeTransferFrom(sender, borrower, principal);
    }

    /// @inheritdoc IWarehouseReceipts
    function recordPledgeRegistration(uint256 pledgeId, bytes32 number, uint64 registeredAt) external {
        address sender = _msgSender();
        StoredPledge storage p = _existingPledge(pledgeId);
        address financier = p.financier;
        require(sender == financier, PledgeNotFinancier(pledgeId, sender, financier));
        registry.requireActive(sender);
        require(p.state == PledgeState.Active, PledgeNotActive(pledgeId, p.state));
        Registration storage reg = _pledgeRegistrations[pledgeId];
        bytes32 recorded = reg.number;
        require(recorded == 0, PledgeAlreadyRegistered(pledgeId, recorded));
        require(
            number[0] != 0 && registeredAt != 0 && registeredAt <= block.timestamp,
            PledgeInvalidRegistration(number, registeredAt, block.timestamp)
        );
        reg.number = number;
        reg.registeredAt = registeredAt;
        emit PledgeRegistered(pledgeId, p.receiptId, sender, number, registeredAt);
    }

    /// @inheritdoc IWarehouseReceipts
    function pledgeRegistration(uint256 pledgeId) external view returns (Registration memory) {
        return _pledgeRegistrations[pledgeId];
    }

    /// @inheritdoc IWarehouseReceipts
    function repayPledge(uint256 pledgeId, uint256 amount)
        external
        returns (uint256 interestPaid, uint256 principalPaid)
    {
        address sender = _msgSender();
        StoredPledge storage p = _existingPledge(pledgeId);
        address borrower = p.borrower;
        require(sender == borrower, PledgeNotBorrower(pledgeId, sender, borrower));
        registry.requireActive(sender);
        require(p.state == PledgeState.Active, PledgeNotActive(pledgeId, p.state));
        uint256 principal = p.principal;
        uint256 interest = _interestOwed(p, principal);
        uint256 owed = principal + interest;
        if (amount == type(uint256).max) amount = owed;
        require(amount != 0, PledgeZeroRepayment(pledgeId));
        require(amount <= owed, PledgeRepaymentExceedsDebt(pledgeId, amount, owed));

        interestPaid = Math.min(amount, interest);
        principalPaid = amount - interestPaid;
        principal -= principalPaid;
        interest -= interestPaid;
        p.principal = uint96(principal);
        p.interestDue = SafeCast.toUint96(interest);
        // Never moved back (a block older than the last accrual would otherwise charge that interval twice).
        if (block.timestamp > p.accruedFrom) p.accruedFrom = uint64(block.timestamp);
        address financier = p.financier;
        uint256 receiptId = p.receiptId;
        emit PledgeRepaid(
            pledgeId,
            borrower,
            financier,
            receiptId,
            amount,
            interestPaid,
            principalPaid,
            principal,
            interest,
            uint64(block.timestamp)
        );
        // Interest is charged before principal, so no principal left means no interest left either.
        // slither-disable-next-line incorrect-equality -- integer fen owed by this pledge alone; exactly 0 is repaid
        if (principal == 0) {
            _transition(pledgeId, p, PledgeState.Released);
            _transition(receiptId, _receipts[receiptId], ReceiptState.Active);
            emit PledgeReleased(pledgeId, borrower, financier, receiptId);
        }
        // Paid by the caller, whom the check above proved to be the borrower.
        depositToken.safeTransferFrom(sender, financier, amount);
    }

    /// @inheritdoc IWarehouseReceipts
    function enforcePledge(uint256 pledgeId) external {
        address sender = _msgSender();
        StoredPledge storage p = _existingPledge(pledgeId);
        address financier = p.financier;
        require(sender == financier, PledgeNotFinancier(pledgeId, sender, financier));
        registry.requireActiveRole(Roles.FINANCIER, sender);
        _checkPledgeEdge(pledgeId, p.state, PledgeState.Enforced);
        uint64 dueDate = p.dueDate;
        require(block.timestamp > dueDate, PledgeNotDue(pledgeId, dueDate, block.timestamp));
        uint256 receiptId = p.receiptId;
        StoredReceipt storage r = _receipts[receiptId];
        require(!r.frozen, ReceiptIsFrozen(receiptId));
        address borrower = p.borrower;
        uint256 principal = p.principal;
        uint256 interest = _interestOwed(p, principal);

        _transition(pledgeId, p, PledgeState.Enforced);
        // The closed pledge keeps what was owed at enforcement, as {PledgeEnforced} reports it.
        p.interestDue = SafeCast.toUint96(interest);
        _transition(receiptId, r, ReceiptState.Active);
        // The lien authorises the move (no spender); the gate checks that borrower and financier are active.
        _update(borrower, financier, receiptId, address(0));
        emit PledgeEnforced(pledgeId, borrower, financier, receiptId, principal, interest);
    }

    // -------------------------------------------------------------------------------------------------------
    // Parameters
    // -------------------------------------------------------------------------------------------------------

    /// @inheritdoc IWarehouseReceipts
    function setDefaultAdvanceRate(uint16 advanceRateBps) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.OPERATOR, sender);
        require(advanceRateBps != 0 && advanceRateBps <= BPS, PledgeInvalidAdvanceRate(advanceRateBps));

        defaultAdvanceRateBps = advanceRateBps;
        emit AdvanceRateSet(address(0), advanceRateBps, sender);
    }

    /// @inheritdoc IWarehouseReceipts
    function setFinancierAdvanceRate(address financier, uint16 advanceRateBps) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.OPERATOR, sender);
        require(
            registry.hasRole(Roles.FINANCIER, financier),
            IParticipantRegistry.RegistryMissingRole(financier, Roles.FINANCIER)
        );
        require(advanceRateBps <= BPS, PledgeInvalidAdvanceRate(advanceRateBps));

        _financierAdvanceRate[financier] = advanceRateBps;
        emit AdvanceRateSet(financier, advanceRateBps, sender);
    }

    /// @inheritdoc IWarehouseReceipts
    function setMaintenanceRatio(uint16 ratioBps) external {
        address sender = _msgSender();
        registry.requireActiveRole(Roles.OPERATOR, sender);
        require(ratioBps != 0 && ratioBps <= BPS, PledgeInvalidMaintenanceRatio(ratioBps));

        maintenanceRatioBps = ratioBps;
        emit MaintenanceRatioSet(ratioBps, sender);
    }

    // -------------------------------------------------------------------------------------------------------
    // ERC-721
    // -------------------------------------------------------------------------------------------------------

    /// @inheritdoc PackedERC721
    /// @dev Approving is a state change: the approver (the owner or an operator of the owner) must be active.
    /// Approving a locked receipt is allowed; moving it is not.
    function approve(address to, uint256 tokenId) public override(IERC721, PackedERC721) {
        address sender = _msgSender();
        registry.requireActive(sender);
        super.approve(to, tokenId);
    }

    /// @inheritdoc PackedERC721
    /// @dev Granting or revoking an operator is a state change: the owner must be active.
    function setApprovalForAll(address operator, bool approved) public override(IERC721, PackedERC721) {
        address sender = _msgSender();
        registry.requireActive(sender);
        super.setApprovalForAll(operator, approved);
    }

    /// @inheritdoc IERC721Metadata
    function name() external pure returns (string memory) {
        return "SCF Warehouse Receipt";
    }

    /// @inheritdoc IERC721Metadata
    function symbol() external pure returns (string memory) {
        return "SCFWR";
    }

    /// @inheritdoc IERC721Metadata
    /// @dev A `data:application/json;base64,` URI of the receipt's public facts as ERC-721 metadata JSON, read
    /// from the chain at the time of asking (no off-chain server): `name`, `description` and `properties`:
    /// `lotKeyHash` (the receipt's id), `warehouse`, `quantity` and `unit` (the unit as text when it is printable
    /// ASCII without quotes or backslashes, else its 8 bytes in hex), `valuation` in minor units of `currency`
    /// (the deposit token's ISO 4217 code) with `valueDecimals`, `valuedAt` and `expiry` (Unix seconds). Reverts
    /// with {IERC721Errors-ERC721NonexistentToken} for a receipt not issued or already redeemed.
    function tokenURI(uint256 tokenId) external view returns (string memory) {
        _requireOwned(tokenId);
        StoredReceipt storage r = _receipts[tokenId];
        string memory quantity = Strings.toString(r.quantity);
        string memory unit = _unitText(r.unit);
        // The JSON template is text a wallet reads: longer than 32 bytes by nature.
        // solhint-disable-next-line gas-small-strings
        string memory head = string.concat(
            "{\"name\":\"SCF Warehouse Receipt, ",
            quantity,
            " ",
            unit,
            "\",\"description\":\"A warehouse receipt for a lot of goods held by a licensed warehouse.\","
            "\"properties\":{\"lotKeyHash\":\"",
            Strings.toHexString(tokenId, 32),
            "\",\"warehouse\":\"",
            Strings.toChecksumHexString(r.warehouse)
        );
        string memory terms = string.concat(
            "\",\"quantity\":",
            quantity,
            ",\"unit\":\"",
            unit,
            "\",\"valuation\":",
            Strings.toString(r.valuation),
            ",\"currency\":\"",
            string(abi.encodePacked(depositToken.currency())),
            "\",\"valueDecimals\":2,\"valuedAt\":",
            Strings.toString(r.valuedAt),
            ",\"expiry\":",
            Strings.toString(r.expiry),
            "}}"
        );
        return string.concat("data:application/json;base64,", Base64.encode(bytes(string.concat(head, terms))));
    }

    /// @notice ERC-165: answers ERC-721, ERC-721 metadata, ERC-165 and {IWarehouseReceipts}.
    function supportsInterface(bytes4 interfaceId) public pure override(IERC165, PackedERC721) returns (bool) {
        return interfaceId == type(IWarehouseReceipts).interfaceId || super.supportsInterface(interfaceId);
    }

    // -------------------------------------------------------------------------------------------------------
    // Views
    // -------------------------------------------------------------------------------------------------------

    /// @inheritdoc IWarehouseReceipts
    function receipt(uint256 receiptId) external view returns (Receipt memory) {
        StoredReceipt storage r = _receipts[receiptId];
        return Receipt({
            warehouse: r.warehouse,
            valuation: r.valuation,
            quantity: r.quantity,
            unit: r.unit,
            valuedAt: r.valuedAt,
            expiry: r.expiry,
            goodsStatus: r.goodsStatus,
            state: r.state,
            frozen: r.frozen
        });
    }

    /// @inheritdoc IWarehouseReceipts
    function receiptIdOfLot(bytes32 lotKeyHash) external view returns (uint256) {
        uint256 receiptId = uint256(lotKeyHash);
        return _receipts[receiptId].state == ReceiptState.None ? 0 : receiptId;
    }

    /// @inheritdoc IWarehouseReceipts
    function pledge(uint256 pledgeId) external view returns (Pledge memory) {
        StoredPledge storage p = _pledges[pledgeId];
        return Pledge({
            borrower: p.borrower,
            receiptId: p.receiptId,
            rateBps: p.rateBps,
            state: p.state,
            financier: p.financier,
            principal: p.principal,
            interestDue: p.interestDue,
            dueDate: p.dueDate,
            accruedFrom: p.accruedFrom
        });
    }

    /// @inheritdoc IWarehouseReceipts
    function pledgeOf(uint256 receiptId) external view returns (uint256) {
        return _receipts[receiptId].pledgeId;
    }

    /// @inheritdoc IWarehouseReceipts
    function amountOwed(uint256 pledgeId) external view returns (uint256 principal, uint256 interest) {
        StoredPledge storage p = _pledges[pledgeId];
        if (p.state != PledgeState.Active) return (0, 0);
        principal = p.principal;
        interest = _interestOwed(p, principal);
    }

    /// @inheritdoc IWarehouseReceipts
    function advanceRateOf(address financier) public view returns (uint16) {
        uint16 own = _financierAdvanceRate[financier];
        return own == 0 ? defaultAdvanceRateBps : own;
    }

    /// @inheritdoc IWarehouseReceipts
    function advanceLimit(uint256 receiptId, address financier) external view returns (uint256) {
        return _advanceLimit(_receipts[receiptId].valuation, financier);
    }

    // -------------------------------------------------------------------------------------------------------
    // Internals
    // -------------------------------------------------------------------------------------------------------

    /// @dev The gate of {PackedERC721}, with a receipt's rules for every movement between participants:
    /// transferFrom and both safeTransferFrom (`auth` the caller) and enforcement (no `auth`: the lien authorises
    /// it). The receipt must be `Active` (no open pledge or redemption: invariant 7) and not frozen, both parties
    /// active (invariant 4), and a spender other than the owner must itself be active, and then (in
    /// `super._update`) be approved for the receipt or an operator of the owner. The previous owner's approval
    /// lapses. The mint ({issueReceipt}) and the burn ({confirmRedemption}) pass with their own checks.
    function _update(address from, address to, uint256 tokenId, address auth) internal override {
        if (from != address(0) && to != address(0)) {
            StoredReceipt storage r = _receipts[tokenId];
            require(!r.frozen, ReceiptIsFrozen(tokenId));
            ReceiptState state = r.state;
            require(state == ReceiptState.Active, ReceiptLocked(tokenId, state));
            registry.requireTransfer(from, to);
            if (auth != address(0) && auth != from) registry.requireActive(auth);
        }
        super._update(from, to, tokenId, auth);
    }

    /// @dev Writes the record of a receipt being issued, `Active` (the edge None → Active of {ReceiptState}), as
    /// three whole words: one SSTORE each instead of a read-modify-write per field (about 700 gas). The layout is
    /// {StoredReceipt}'s as the compiler lays it out (each word from its lowest-order byte, in declaration
    /// order); {receipt} and the tests read every field back through the compiler's own accessors. A record
    /// without a warehouse was never written, so the fields left zero here (goods `Sound`, not frozen, no
    /// pledge, no approval) were zero already. The caller range-checked the arguments (`expiry` < 2^48 also
    /// bounds `block.timestamp`).
    function _writeIssued(
        StoredReceipt storage r,
        address warehouse,
        address owner,
        uint256 quantity,
        bytes8 unit,
        uint256 valuation,
        uint256 expiry
    ) private {
        // word 0: warehouse (bytes 0-19) | valuation (20-31)
        uint256 custody = uint256(uint160(warehouse)) | (valuation << 160);
        // word 1: quantity (0-7) | valuedAt (8-13) | expiry (14-19) | goodsStatus (20) | state (21) | frozen (22)
        // | pledgeId (23-28)
        uint256 terms = quantity | (block.timestamp << 64) | (expiry << 112)
            | (uint256(uint8(ReceiptState.Active)) << 168);
        // word 2: owner (0-19) | unit (20-27) | hasApproval (28)
        uint256 ownership = uint256(uint160(owner)) | (uint256(uint64(unit)) << 160);
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let slot := r.slot
            sstore(slot, custody)
            sstore(add(slot, 1), terms)
            sstore(add(slot, 2), ownership)
        }
    }

    /// @dev `registry.requireDirectRoleAndActive(Roles.WAREHOUSE, warehouse, owner)` (for a relayed signed act,
    /// `requireActiveRoleAndActive`), encoded by hand: the same query, reverting with the registry's own error,
    /// for about 200 gas less than the compiler's generic encoder, code-size pre-check and return handling
    /// (issuing is the one operation with a design gas target, and sits at its floor). The constructor checked that the registry has code, which is what the skipped
    /// pre-check guards: a call to an address without code would succeed.
    function _requireActiveWarehouseAndOwner(address warehouse, bool direct, address owner) private view {
        address target = address(registry);
        bytes4 selector = direct
            ? IParticipantRegistry.requireDirectRoleAndActive.selector
            : IParticipantRegistry.requireActiveRoleAndActive.selector;
        bytes32 role = Roles.WAREHOUSE;
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            // Scratch space past the free memory pointer: selector, role, account, counterparty (100 bytes).
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 4), role)
            mstore(add(ptr, 36), warehouse)
            mstore(add(ptr, 68), owner)
            if iszero(staticcall(gas(), target, ptr, 100, 0, 0)) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
        }
    }

    /// @dev A receipt's unit as JSON string content: its bytes up to the zero padding when every one is printable
    /// ASCII other than `"` and `\` (what the service accepts), else all eight bytes in hex (`0x…`), so that a
    /// unit a warehouse wrote by other means cannot break the metadata document.
    function _unitText(bytes8 unit) private pure returns (string memory) {
        uint256 length = 8;
        while (length != 0 && unit[length - 1] == 0) --length;
        bytes memory text = new bytes(length);
        for (uint256 i; i < length; ++i) {
            bytes1 c = unit[i];
            if (c < 0x20 || c > 0x7e || c == "\"" || c == "\\") return Strings.toHexString(uint64(unit), 8);
            text[i] = c;
        }
        return string(text);
    }

    /// @dev Moves a receipt along an allowed edge of {ReceiptState}; the only writer of its `state` after the
    /// issue ({_writeIssued} writes the first, `Active`).
    function _transition(uint256 receiptId, StoredReceipt storage r, ReceiptState to) private {
        _checkReceiptEdge(receiptId, r.state, to);
        r.state = to;
    }

    /// @dev Moves a pledge along an allowed edge of {PledgeState}; the only writer of its `state`.
    function _transition(uint256 pledgeId, StoredPledge storage p, PledgeState to) private {
        _checkPledgeEdge(pledgeId, p.state, to);
        p.state = to;
    }

    function _checkReceiptEdge(uint256 receiptId, ReceiptState from, ReceiptState to) private pure {
        bool allowed = false;
        if (to == ReceiptState.Active) {
            allowed = from == ReceiptState.None || from == ReceiptState.PledgeRequested
                || from == ReceiptState.Pledged || from == ReceiptState.RedemptionRequested;
        } else if (to == ReceiptState.PledgeRequested || to == ReceiptState.RedemptionRequested) {
            allowed = from == ReceiptState.Active;
        } else if (to == ReceiptState.Pledged) {
            allowed = from == ReceiptState.PledgeRequested;
        } else if (to == ReceiptState.Redeemed) {
            allowed = from == ReceiptState.RedemptionRequested;
        }
        require(allowed, ReceiptInvalidTransition(receiptId, from, to));
    }

    function _checkPledgeEdge(uint256 pledgeId, PledgeState from, PledgeState to) private pure {
        bool allowed = false;
        if (to == PledgeState.Requested) {
            allowed = from == PledgeState.None;
        } else if (to == PledgeState.Cancelled || to == PledgeState.Declined || to == PledgeState.Active) {
            allowed = from == PledgeState.Requested;
        } else if (to == PledgeState.Released || to == PledgeState.Enforced) {
            allowed = from == PledgeState.Active;
        }
        require(allowed, PledgeInvalidTransition(pledgeId, from, to));
    }

    /// @dev A receipt that was issued and not redeemed.
    function _liveReceipt(uint256 receiptId) private view returns (StoredReceipt storage r) {
        r = _receipts[receiptId];
        require(r.state != ReceiptState.None && r.state != ReceiptState.Redeemed, ReceiptNotFound(receiptId));
    }

    function _existingPledge(uint256 pledgeId) private view returns (StoredPledge storage p) {
        p = _pledges[pledgeId];
        require(p.state != PledgeState.None, PledgeNotFound(pledgeId));
    }

    /// @dev Reverts unless the caller owns the (live) receipt and is active; returns the owner.
    function _requireOwner(uint256 receiptId, StoredReceipt storage r) private view returns (address owner) {
        address sender = _msgSender();
        owner = r.owner;
        require(sender == owner, ReceiptNotOwner(receiptId, sender, owner));
        registry.requireActive(sender);
    }

    /// @dev The caller is the issuing warehouse (an active warehouse), or an oracle appointed for this receipt
    /// or for all of the warehouse's receipts, itself active, while the warehouse is an active warehouse.
    function _requireAttester(uint256 receiptId, address warehouse, address sender) private view {
        if (sender != warehouse) {
            require(
                sender == receiptOracle[receiptId] || sender == warehouseOracle[warehouse],
                ReceiptNotAttester(receiptId, sender)
            );
            registry.requireActive(sender);
        }
        registry.requireActiveRole(Roles.WAREHOUSE, warehouse);
    }

    /// @dev The margin test of a pledged receipt against `valuation`: emits {PledgeMarginCalled} when the
    /// outstanding principal × 10,000 > valuation × maintenance ratio.
    function _marginTest(StoredReceipt storage r, uint256 receiptId, uint256 valuation) private {
        uint256 pledgeId = r.pledgeId;
        StoredPledge storage p = _pledges[pledgeId];
        uint256 principal = p.principal;
        uint16 maintenance = maintenanceRatioBps;
        if (principal * BPS > valuation * maintenance) {
            emit PledgeMarginCalled(pledgeId, p.borrower, p.financier, receiptId, principal, valuation, maintenance);
        }
    }

    /// @dev valuation × advance rate / 10,000, rounded down (a limit on what is paid out).
    function _advanceLimit(uint256 valuation, address financier) private view returns (uint256) {
        return valuation * advanceRateOf(financier) / BPS;
    }

    /// @dev Interest unpaid from before `accruedFrom` plus ⌈principal × rate × seconds since / (365 days ×
    /// 10,000)⌉: rounded up, as every charge of the ledger. A block stamped before `accruedFrom` (a node whose
    /// clock went back) accrues nothing: time never counts negatively, and no read or repayment reverts on it.
    function _interestOwed(StoredPledge storage p, uint256 principal) private view returns (uint256) {
        uint64 accruedFrom = p.accruedFrom;
        uint256 elapsed = block.timestamp > accruedFrom ? block.timestamp - accruedFrom : 0;
        return p.interestDue + Math.ceilDiv(principal * p.rateBps * elapsed, YEAR * BPS);
    }

    // -------------------------------------------------------------------------------------------------------
    // PackedERC721: the owner and the approval flag are in word 2 of the receipt; the errors are ERC-6093's
    // -------------------------------------------------------------------------------------------------------

    function _ownerOf(uint256 tokenId) internal view override returns (address) {
        return _receipts[tokenId].owner;
    }

    function _writeOwner(uint256 tokenId, address to) internal override returns (bool hadApproval) {
        StoredReceipt storage r = _receipts[tokenId];
        hadApproval = r.hasApproval;
        if (hadApproval) r.hasApproval = false;
        r.owner = to;
    }

    function _hasApprovalFlag(uint256 tokenId) internal view override returns (bool) {
        return _receipts[tokenId].hasApproval;
    }

    function _setApprovalFlag(uint256 tokenId, bool approved) internal override {
        _receipts[tokenId].hasApproval = approved;
    }

    function _revertInvalidOwner(address owner) internal pure override {
        revert ERC721InvalidOwner(owner);
    }

    function _revertNonexistentToken(uint256 tokenId) internal pure override {
        revert ERC721NonexistentToken(tokenId);
    }

    function _revertIncorrectOwner(address from, uint256 tokenId, address owner) internal pure override {
        revert ERC721IncorrectOwner(from, tokenId, owner);
    }

    function _revertInsufficientApproval(address spender, uint256 tokenId) internal pure override {
        revert ERC721InsufficientApproval(spender, tokenId);
    }

    function _revertInvalidApprover(address approver, uint256) internal pure override {
        revert ERC721InvalidApprover(approver);
    }

    function _revertInvalidOperator(address operator) internal pure override {
        revert ERC721InvalidOperator(operator);
    }

    function _revertInvalidReceiver(address receiver) internal pure override {
        revert ERC721InvalidReceiver(receiver);
    }

    /// @dev {SignedActsRecipient}: the registry that says who acts only by signed acts.
    function _participants() internal view override returns (IParticipantRegistry) {
        return registry;
    }
}
