"""Regression tests for the findings that real audits of receivable-finance and lending protocols reported.

Each test names the kind of finding in its docstring and proves the ledger's contracts do not have it:

- a transfer ban (freeze, suspension, lock, maturity) bypassed through approve + transferFrom;
- stale credit or collateral left behind after a transfer or a burn (approvals, liens, credit usage);
- a payment declared rather than paid (state that records money no token transfer brought in);
- rounding that pays out more than was paid in;
- a state moved without the approver (the Huma v1 exploit: a receivable advanced past its approval);
- each role on each function: a table built against the ABI of every deployed contract, so a new
  state-changing function without an entry fails, and every caller of the cast (each role, a second
  participant of the same role, a stranger) either may call it or is refused with the named error; a signed
  act, whose authority is its signature, is performed whoever relays it.

docs/design.md's invariants are cited where a test proves one (4: only active participants, 5: delivery versus
payment, 6: payouts never exceed payments, 7: one lien, 9: only the named roles act).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
from eth_utils import keccak
from web3.contract.contract import ContractFunction

from ledger import acts
from ledger.errors import ContractRevert
from ledger.tooling.sandbox import CAST, GAS_LIMIT, Sandbox, identity_hash, role_id
from tests.contracts.support import ACCEPT_ANY, DAY, NO_REVIEW, assert_reverts, confirmed_piece, register_invoice, split
from tests.contracts.warehouse_fixtures import (
    DOCUMENTS,
    GOODS,
    MAX_UINT256,
    P_DUE_DATE,
    PRINCIPAL,
    QUANTITY,
    TONNE,
    VALUATION,
    YEAR,
    issue_fn,
    issue_receipt,
    lot_key,
    owner_of,
    pledged_receipt,
    request_pledge,
)

REASON = b"\x52" * 32
STRANGER_SLOT = 3  # eth-tester account index of an address that is nobody in the cast


def receivables(sb: Sandbox) -> Any:
    return sb.contracts["receivables"]


def warehouse(sb: Sandbox) -> Any:
    return sb.contracts["receipts"]


def by_signature(contract: Any, signature: str) -> Callable[..., ContractFunction]:
    return contract.get_function_by_signature(signature)  # type: ignore[no-any-return]


def piece_of(sb: Sandbox, piece_id: int) -> tuple[Any, ...]:
    return tuple(receivables(sb).functions.piece(piece_id).call())


def invoice_of(sb: Sandbox, invoice_id: int) -> tuple[Any, ...]:
    return tuple(receivables(sb).functions.invoice(invoice_id).call())


def request_financing(
    sb: Sandbox, piece_id: int, amount: int, financier: str = "bank", holder: str = "seatmaker"
) -> int:
    tx = sb.send(
        receivables(sb).functions.requestFinancing(piece_id, amount, sb.address(financier), *ACCEPT_ANY), holder
    )
    return int(sb.events(tx, "receivables", "FinancingRequested")[0]["requestId"])


def approve_financing(sb: Sandbox, request_id: int, financier: str = "bank") -> None:
    sb.send(receivables(sb).functions.approveFinancing(request_id, 500, 0, 365, NO_REVIEW), financier)


def outcome(sb: Sandbox, fn: ContractFunction, actor: str) -> str:
    """``"ok"`` when ``actor`` may call ``fn`` now (simulated with eth_call), else the custom error's name."""
    try:
        fn.call({"from": sb.address(actor), "gas": GAS_LIMIT})
    except Exception as exc:
        decoded = sb.decoder.from_exception(exc)
        return decoded.name if isinstance(decoded, ContractRevert) else f"undecoded revert: {exc}"
    return "ok"


# ---------------------------------------------------------------------------------------------------------
# Each role on each function
# ---------------------------------------------------------------------------------------------------------

ACTORS = tuple(CAST)
HOLDERS_OF_CASH = ("automaker", "truckmaker", "bank", "factor", "seatmaker", "chemicals", "trader", "steel")
ACTIVE = tuple(name for name in CAST if name != "outsider")


@dataclass(frozen=True)
class Access:
    """Who may call one function: ``setup`` prepares the chain and returns the call; ``allowed`` succeed,
    everyone else reverts with ``error`` (or the error ``errors`` names for that caller)."""

    setup: Callable[[Sandbox], ContractFunction]
    allowed: tuple[str, ...]
    error: str
    errors: dict[str, str] = field(default_factory=dict)


def _registry(sb: Sandbox) -> Any:
    return sb.contracts["registry"]


def _stranger(sb: Sandbox) -> str:
    return str(sb.w3.eth.accounts[STRANGER_SLOT])


def _suspended(sb: Sandbox, who: str) -> str:
    sb.send(_registry(sb).functions.suspend(sb.address(who)), "operator")
    return sb.address(who)


def _frozen(sb: Sandbox, who: str) -> str:
    sb.send(_registry(sb).functions.freeze(sb.address(who), REASON), "regulator")
    return sb.address(who)


def _piece(sb: Sandbox) -> int:
    return confirmed_piece(sb)[1]


def _requested(sb: Sandbox) -> int:
    return request_financing(sb, _piece(sb), 1_000)


def _approved(sb: Sandbox) -> int:
    request_id = _requested(sb)
    approve_financing(sb, request_id)
    return request_id


def _funded_request(sb: Sandbox) -> int:
    request_id = _approved(sb)
    sb.send(receivables(sb).functions.fundFinancing(request_id), "bank")
    return request_id


REGISTRATION = b"04539487000452458806".ljust(32, b"\0")
"""A 中登网 registration number as the contracts keep it: 20 ASCII digits, left-aligned in a bytes32."""


def _partly_repaid_piece(sb: Sandbox) -> int:
    slot, piece_id = confirmed_piece(sb)
    sb.send(receivables(sb).functions.repay(slot, 1_000), "automaker")
    return piece_id


def _defaulted_piece(sb: Sandbox) -> tuple[int, int]:
    """A piece whose obligation is past maturity and its grace period: (slot, piece)."""
    slot, piece_id = confirmed_piece(sb, due_in=10 * DAY)
    sb.travel_to(sb.now() + 41 * DAY)
    return slot, piece_id


def _defaultable(sb: Sandbox) -> ContractFunction:
    return receivables(sb).functions.markDefaulted(*_defaulted_piece(sb))


def _frozen_piece(sb: Sandbox) -> int:
    piece_id = _piece(sb)
    sb.send(receivables(sb).functions.freezePiece(piece_id, REASON), "regulator")
    return piece_id


def _value_transfer(sb: Sandbox) -> ContractFunction:
    piece_id = _piece(sb)
    other = split(sb, piece_id, "chemicals", 1_000, "seatmaker")
    return by_signature(receivables(sb), "transferFrom(uint256,uint256,uint256)")(piece_id, other, 1)


def _receipt(sb: Sandbox) -> int:
    return issue_receipt(sb)


def _redemption_requested(sb: Sandbox) -> int:
    receipt_id = _receipt(sb)
    sb.send(warehouse(sb).functions.requestRedemption(receipt_id), "steel")
    return receipt_id


def _frozen_receipt(sb: Sandbox) -> int:
    receipt_id = _receipt(sb)
    sb.send(warehouse(sb).functions.freezeReceipt(receipt_id, REASON), "regulator")
    return receipt_id


def _pledge_requested(sb: Sandbox) -> int:
    return request_pledge(sb, _receipt(sb))


def _pledge_active(sb: Sandbox) -> int:
    return pledged_receipt(sb)[1]


def _pledge_due(sb: Sandbox) -> int:
    pledge_id = _pledge_active(sb)
    sb.travel_to(warehouse(sb).functions.pledge(pledge_id).call()[P_DUE_DATE] + 1)
    return pledge_id


def _receipt_transfer(sb: Sandbox, signature: str, *extra: Any) -> ContractFunction:
    receipt_id = _receipt(sb)
    return by_signature(warehouse(sb), signature)(sb.address("steel"), sb.address("trader"), receipt_id, *extra)


def _piece_transfer(sb: Sandbox, signature: str, *extra: Any) -> ContractFunction:
    piece_id = _piece(sb)
    return by_signature(receivables(sb), signature)(sb.address("seatmaker"), sb.address("chemicals"), piece_id, *extra)


def _token_allowance(sb: Sandbox) -> ContractFunction:
    token = sb.contracts["token"]
    sb.send(token.functions.approve(sb.address("bank"), 1), "seatmaker")
    return token.functions.transferFrom(sb.address("seatmaker"), sb.address("trader"), 1)


def _self_custody(sb: Sandbox, who: str) -> str:
    """Switch ``who`` to self-custody (its key: the sandbox's signing key of generation 0); its address."""
    sb.adopt_self_custody(who)
    return sb.address(who)


def _new_signer(sb: Sandbox, who: str) -> str:
    return str(sb.signing_key(who, 1).address)


def _recovery_proposed(sb: Sandbox) -> ContractFunction:
    seatmaker, new = _self_custody(sb, "seatmaker"), _new_signer(sb, "seatmaker")
    sb.send(_registry(sb).functions.proposeKeyRecovery(seatmaker, new), "operator")
    approve: ContractFunction = _registry(sb).functions.approveKeyRecovery(seatmaker, new)
    return approve


def _unset_signed_acts(sb: Sandbox) -> ContractFunction:
    """The deployed registry's signed-acts contract is set (once, by the deployment): who may set it is shown
    on a registry of its own, with the same operator."""
    fresh = sb.deploy(
        "ParticipantRegistry",
        sb.address("operator"),
        identity_hash("operator"),
        sb.address("regulator"),
        identity_hash("regulator"),
        sender="operator",
    )
    return fresh.functions.setSignedActs(sb.contracts["acts"].address)


def _signed(sb: Sandbox, act: str, who: str, call_args: list[Any]) -> ContractFunction:
    """``who``'s act ``act`` (its EIP-712 name) signed by its own key, ``who`` switched to self-custody first:
    the chain is prepared (``call_args`` evaluated) before the switch, by the hosted participants."""
    key = sb.adopt_self_custody(who)
    document = sb.act_document(act, who, call_args, nonce=1)
    return sb.act_function(document, acts.sign(document, key))


def _issue_args(sb: Sandbox) -> list[Any]:
    return [sb.address("steel"), lot_key(), GOODS, QUANTITY, TONNE, VALUATION, sb.now() + YEAR, DOCUMENTS]


ROLE_TABLE: dict[str, dict[str, Access]] = {
    "registry": {
        "register(address,bytes32,bytes32[])": Access(
            lambda sb: _registry(sb).functions.register(_stranger(sb), keccak(text="new"), [role_id("supplier")]),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "updateIdentity(address,bytes32)": Access(
            lambda sb: _registry(sb).functions.updateIdentity(sb.address("seatmaker"), keccak(text="renewed")),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "suspend(address)": Access(
            lambda sb: _registry(sb).functions.suspend(sb.address("chemicals")),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "reinstate(address)": Access(
            lambda sb: _registry(sb).functions.reinstate(_suspended(sb, "chemicals")),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "freeze(address,bytes32)": Access(
            lambda sb: _registry(sb).functions.freeze(sb.address("chemicals"), REASON),
            ("regulator",),
            "AccessControlUnauthorizedAccount",
        ),
        "unfreeze(address)": Access(
            lambda sb: _registry(sb).functions.unfreeze(_frozen(sb, "chemicals")),
            ("regulator",),
            "AccessControlUnauthorizedAccount",
        ),
        "grantRole(bytes32,address)": Access(
            lambda sb: _registry(sb).functions.grantRole(role_id("supplier"), sb.address("bank")),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "revokeRole(bytes32,address)": Access(
            lambda sb: _registry(sb).functions.revokeRole(role_id("supplier"), sb.address("seatmaker")),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        # A participant may give up its own role (and nobody else's): OpenZeppelin's confirmation argument.
        "renounceRole(bytes32,address)": Access(
            lambda sb: _registry(sb).functions.renounceRole(role_id("supplier"), sb.address("seatmaker")),
            ("seatmaker",),
            "AccessControlBadConfirmation",
        ),
        "registerSelfCustody(address,bytes32,bytes32[])": Access(
            lambda sb: _registry(sb).functions.registerSelfCustody(
                _stranger(sb), keccak(text="own key"), [role_id("supplier")]
            ),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "adoptSelfCustody(address,address)": Access(
            lambda sb: _registry(sb).functions.adoptSelfCustody(
                sb.address("seatmaker"), sb.signing_key("seatmaker").address
            ),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        "setSignedActs(address)": Access(_unset_signed_acts, ("operator",), "AccessControlUnauthorizedAccount"),
        # No participant: only the signed-acts contract, performing a rotation the key in place signed
        # (acts' rotateKey below; test_signed_acts.py shows the rotation).
        "rotateSigner(address,address)": Access(
            lambda sb: _registry(sb).functions.rotateSigner(
                _self_custody(sb, "seatmaker"), _new_signer(sb, "seatmaker")
            ),
            (),
            "RegistryNotSignedActs",
        ),
        "proposeKeyRecovery(address,address)": Access(
            lambda sb: _registry(sb).functions.proposeKeyRecovery(
                _self_custody(sb, "seatmaker"), _new_signer(sb, "seatmaker")
            ),
            ("operator",),
            "AccessControlUnauthorizedAccount",
        ),
        # The proposer may not approve even with the regulator role (test_signed_acts.py).
        "approveKeyRecovery(address,address)": Access(
            _recovery_proposed, ("regulator",), "AccessControlUnauthorizedAccount"
        ),
    },
    "token": {
        "mint(address,uint256,bytes32)": Access(
            lambda sb: sb.contracts["token"].functions.mint(sb.address("seatmaker"), 1, REASON),
            ("agent",),
            "RegistryMissingRole",
        ),
        "burn(address,uint256,bytes32)": Access(
            lambda sb: sb.contracts["token"].functions.burn(sb.address("seatmaker"), 1, REASON),
            ("agent",),
            "RegistryMissingRole",
        ),
        # Approving moves nothing; every movement re-checks holder, receiver and spender (see the bypass tests).
        "approve(address,uint256)": Access(
            lambda sb: sb.contracts["token"].functions.approve(sb.address("bank"), 1), ACTORS, ""
        ),
        "transfer(address,uint256)": Access(
            lambda sb: sb.contracts["token"].functions.transfer(sb.address("trader"), 1),
            HOLDERS_OF_CASH,
            "ERC20InsufficientBalance",
            {"outsider": "RegistryNotRegistered"},
        ),
        "transferFrom(address,address,uint256)": Access(
            _token_allowance, ("bank",), "ERC20InsufficientAllowance", {"outsider": "RegistryNotRegistered"}
        ),
    },
    "receivables": {
        "registerInvoice(bytes32,address,uint256,bytes3,uint64,bytes32)": Access(
            lambda sb: receivables(sb).functions.registerInvoice(
                keccak(text="table invoice"), sb.address("automaker"), 1_000, b"CNY", sb.now() + 30 * DAY, REASON
            ),
            ("seatmaker", "chemicals", "trader", "steel"),
            "RegistryMissingRole",
        ),
        "confirmInvoice(uint256)": Access(
            lambda sb: receivables(sb).functions.confirmInvoice(_registered_with_credit(sb)),
            ("automaker",),
            "ReceivablesNotBuyer",
        ),
        "rejectInvoice(uint256,bytes32)": Access(
            lambda sb: receivables(sb).functions.rejectInvoice(register_invoice(sb), REASON),
            ("automaker",),
            "ReceivablesNotBuyer",
        ),
        "setCreditLine(address,uint256)": Access(
            lambda sb: receivables(sb).functions.setCreditLine(sb.address("automaker"), 1_000),
            ("operator", "bank", "factor"),
            "RegistryMissingRole",
        ),
        "repay(uint256,uint256)": Access(
            lambda sb: receivables(sb).functions.repay(confirmed_piece(sb)[0], 1_000),
            ("automaker",),
            "ReceivablesNotBuyer",
        ),
        "redeem(uint256)": Access(
            lambda sb: receivables(sb).functions.redeem(_partly_repaid_piece(sb)),
            ("seatmaker",),
            "ReceivablesNotHolder",
        ),
        "markDefaulted(uint256,uint256)": Access(_defaultable, ("operator", "seatmaker"), "ReceivablesNotHolder"),
        "requestFinancing(uint256,uint256,address,uint16,uint256)": Access(
            lambda sb: receivables(sb).functions.requestFinancing(_piece(sb), 1_000, sb.address("bank"), *ACCEPT_ANY),
            ("seatmaker",),
            "ReceivablesNotHolder",
        ),
        "approveFinancing(uint256,uint16,uint256,uint16,bytes32)": Access(
            lambda sb: receivables(sb).functions.approveFinancing(_requested(sb), 500, 0, 365, NO_REVIEW),
            ("bank",),
            "ReceivablesNotFinancier",
        ),
        "fundFinancing(uint256)": Access(
            lambda sb: receivables(sb).functions.fundFinancing(_approved(sb)), ("bank",), "ReceivablesNotFinancier"
        ),
        "declineFinancing(uint256)": Access(
            lambda sb: receivables(sb).functions.declineFinancing(_requested(sb)), ("bank",), "ReceivablesNotFinancier"
        ),
        "recordFinancingRegistration(uint256,bytes32,uint64)": Access(
            lambda sb: receivables(sb).functions.recordFinancingRegistration(
                _funded_request(sb), REGISTRATION, sb.now() - DAY
            ),
            ("bank",),
            "ReceivablesNotFinancier",
        ),
        "cancelFinancing(uint256)": Access(
            lambda sb: receivables(sb).functions.cancelFinancing(_requested(sb)),
            ("seatmaker",),
            "ReceivablesNotRequestHolder",
        ),
        "freezePiece(uint256,bytes32)": Access(
            lambda sb: receivables(sb).functions.freezePiece(_piece(sb), REASON), ("regulator",), "RegistryMissingRole"
        ),
        "unfreezePiece(uint256)": Access(
            lambda sb: receivables(sb).functions.unfreezePiece(_frozen_piece(sb)), ("regulator",), "RegistryMissingRole"
        ),
        "setParameters(uint64,uint64,uint64)": Access(
            lambda sb: receivables(sb).functions.setParameters(180 * DAY, 10 * DAY, 90 * DAY),
            ("operator",),
            "RegistryMissingRole",
        ),
        "approve(address,uint256)": Access(
            lambda sb: by_signature(receivables(sb), "approve(address,uint256)")(sb.address("bank"), _piece(sb)),
            ("seatmaker",),
            "ReceivablesNotAuthorized",
        ),
        "approve(uint256,address,uint256)": Access(
            lambda sb: by_signature(receivables(sb), "approve(uint256,address,uint256)")(
                _piece(sb), sb.address("bank"), 1
            ),
            ("seatmaker",),
            "ReceivablesNotAuthorized",
        ),
        # An operator approval is one's own business; using it re-checks that the operator is active.
        "setApprovalForAll(address,bool)": Access(
            lambda sb: receivables(sb).functions.setApprovalForAll(_stranger(sb), True), ACTORS, ""
        ),
        "transferFrom(uint256,address,uint256)": Access(
            lambda sb: by_signature(receivables(sb), "transferFrom(uint256,address,uint256)")(
                _piece(sb), sb.address("chemicals"), 1
            ),
            ("seatmaker",),
            "ReceivablesInsufficientAllowance",
        ),
        # All of the piece: the piece itself moves, by the ERC-721 gate (a part goes through the split above).
        "transferPiece(uint256,address,uint256)": Access(
            lambda sb: receivables(sb).functions.transferPiece(
                piece := _piece(sb), sb.address("chemicals"), receivables(sb).functions.piece(piece).call()[3]
            ),
            ("seatmaker",),
            "ReceivablesNotAuthorized",
        ),
        "transferFrom(uint256,uint256,uint256)": Access(
            _value_transfer, ("seatmaker",), "ReceivablesInsufficientAllowance"
        ),
        "transferFrom(address,address,uint256)": Access(
            lambda sb: _piece_transfer(sb, "transferFrom(address,address,uint256)"),
            ("seatmaker",),
            "ReceivablesNotAuthorized",
        ),
        "safeTransferFrom(address,address,uint256)": Access(
            lambda sb: _piece_transfer(sb, "safeTransferFrom(address,address,uint256)"),
            ("seatmaker",),
            "ReceivablesNotAuthorized",
        ),
        "safeTransferFrom(address,address,uint256,bytes)": Access(
            lambda sb: _piece_transfer(sb, "safeTransferFrom(address,address,uint256,bytes)", b""),
            ("seatmaker",),
            "ReceivablesNotAuthorized",
        ),
    },
    "receipts": {
        "issueReceipt(address,bytes32,bytes32,uint256,bytes8,uint256,uint64,bytes32)": Access(
            lambda sb: issue_fn(sb), ("warehouse", "warehouse2"), "RegistryMissingRole"
        ),
        "revalueReceipt(uint256,uint256,bytes32)": Access(
            lambda sb: warehouse(sb).functions.revalueReceipt(_receipt(sb), VALUATION - 1, REASON),
            ("warehouse",),
            "ReceiptNotAttester",
        ),
        "anchorReadings(uint256,bytes32,uint64,uint32,uint256,uint16)": Access(
            lambda sb: warehouse(sb).functions.anchorReadings(_receipt(sb), REASON, 1, 1, 0, 100),
            ("warehouse",),
            "ReceiptNotAttester",
        ),
        "updateGoodsStatus(uint256,uint8,bytes32)": Access(
            lambda sb: warehouse(sb).functions.updateGoodsStatus(_receipt(sb), 1, REASON),
            ("warehouse",),
            "ReceiptNotAttester",
        ),
        "appointOracle(address)": Access(
            lambda sb: warehouse(sb).functions.appointOracle(sb.address("steel")),
            ("warehouse", "warehouse2"),
            "RegistryMissingRole",
        ),
        "appointReceiptOracle(uint256,address)": Access(
            lambda sb: warehouse(sb).functions.appointReceiptOracle(_receipt(sb), sb.address("steel")),
            ("warehouse",),
            "ReceiptNotIssuer",
        ),
        "requestRedemption(uint256)": Access(
            lambda sb: warehouse(sb).functions.requestRedemption(_receipt(sb)), ("steel",), "ReceiptNotOwner"
        ),
        "withdrawRedemption(uint256)": Access(
            lambda sb: warehouse(sb).functions.withdrawRedemption(_redemption_requested(sb)),
            ("steel",),
            "ReceiptNotOwner",
        ),
        "confirmRedemption(uint256)": Access(
            lambda sb: warehouse(sb).functions.confirmRedemption(_redemption_requested(sb)),
            ("warehouse",),
            "ReceiptNotIssuer",
        ),
        "freezeReceipt(uint256,bytes32)": Access(
            lambda sb: warehouse(sb).functions.freezeReceipt(_receipt(sb), REASON),
            ("regulator",),
            "RegistryMissingRole",
        ),
        "unfreezeReceipt(uint256)": Access(
            lambda sb: warehouse(sb).functions.unfreezeReceipt(_frozen_receipt(sb)),
            ("regulator",),
            "RegistryMissingRole",
        ),
        "requestPledge(uint256,address,uint256,uint16,uint64)": Access(
            lambda sb: warehouse(sb).functions.requestPledge(
                _receipt(sb), sb.address("bank"), PRINCIPAL, 600, sb.now() + 90 * DAY
            ),
            ("steel",),
            "ReceiptNotOwner",
        ),
        "cancelPledge(uint256)": Access(
            lambda sb: warehouse(sb).functions.cancelPledge(_pledge_requested(sb)), ("steel",), "PledgeNotBorrower"
        ),
        "declinePledge(uint256)": Access(
            lambda sb: warehouse(sb).functions.declinePledge(_pledge_requested(sb)), ("bank",), "PledgeNotFinancier"
        ),
        "fundPledge(uint256)": Access(
            lambda sb: warehouse(sb).functions.fundPledge(_pledge_requested(sb)), ("bank",), "PledgeNotFinancier"
        ),
        "repayPledge(uint256,uint256)": Access(
            lambda sb: warehouse(sb).functions.repayPledge(_pledge_active(sb), 1_000), ("steel",), "PledgeNotBorrower"
        ),
        "recordPledgeRegistration(uint256,bytes32,uint64)": Access(
            lambda sb: warehouse(sb).functions.recordPledgeRegistration(
                _pledge_active(sb), REGISTRATION, sb.now() - DAY
            ),
            ("bank",),
            "PledgeNotFinancier",
        ),
        "enforcePledge(uint256)": Access(
            lambda sb: warehouse(sb).functions.enforcePledge(_pledge_due(sb)), ("bank",), "PledgeNotFinancier"
        ),
        "setDefaultAdvanceRate(uint16)": Access(
            lambda sb: warehouse(sb).functions.setDefaultAdvanceRate(6_000), ("operator",), "RegistryMissingRole"
        ),
        "setFinancierAdvanceRate(address,uint16)": Access(
            lambda sb: warehouse(sb).functions.setFinancierAdvanceRate(sb.address("bank"), 6_000),
            ("operator",),
            "RegistryMissingRole",
        ),
        "setMaintenanceRatio(uint16)": Access(
            lambda sb: warehouse(sb).functions.setMaintenanceRatio(9_000), ("operator",), "RegistryMissingRole"
        ),
        "approve(address,uint256)": Access(
            lambda sb: warehouse(sb).functions.approve(sb.address("bank"), _receipt(sb)),
            ("steel",),
            "ERC721InvalidApprover",
            {"outsider": "RegistryNotRegistered"},
        ),
        "setApprovalForAll(address,bool)": Access(
            lambda sb: warehouse(sb).functions.setApprovalForAll(_stranger(sb), True),
            ACTIVE,
            "RegistryNotRegistered",
        ),
        "transferFrom(address,address,uint256)": Access(
            lambda sb: _receipt_transfer(sb, "transferFrom(address,address,uint256)"),
            ("steel",),
            "ERC721InsufficientApproval",
            {"outsider": "RegistryNotRegistered"},
        ),
        "safeTransferFrom(address,address,uint256)": Access(
            lambda sb: _receipt_transfer(sb, "safeTransferFrom(address,address,uint256)"),
            ("steel",),
            "ERC721InsufficientApproval",
            {"outsider": "RegistryNotRegistered"},
        ),
        "safeTransferFrom(address,address,uint256,bytes)": Access(
            lambda sb: _receipt_transfer(sb, "safeTransferFrom(address,address,uint256,bytes)", b""),
            ("steel",),
            "ERC721InsufficientApproval",
            {"outsider": "RegistryNotRegistered"},
        ),
    },
    "anchor": {
        "anchor(uint64,bytes32)": Access(
            lambda sb: sb.contracts["anchor"].functions.anchor(1, keccak(text="audit log head")),
            ("operator",),
            "RegistryMissingRole",
        ),
    },
    # A signed act's authority is its signature, not its sender: each act, signed by the rightful participant's
    # own key (the participant switched to self-custody), is performed whoever relays it, the stranger
    # included. What a signature does not authorise is proven rule by rule in test_signed_acts.py.
    "acts": {
        "registerInvoice(tuple,bytes)": Access(
            lambda sb: _signed(
                sb,
                "RegisterInvoice",
                "seatmaker",
                [keccak(text="table invoice"), sb.address("automaker"), 1_000, b"CNY", sb.now() + 30 * DAY, REASON],
            ),
            ACTORS,
            "",
        ),
        "confirmInvoice(tuple,bytes)": Access(
            lambda sb: _signed(sb, "ConfirmInvoice", "automaker", [_registered_with_credit(sb)]), ACTORS, ""
        ),
        "rejectInvoice(tuple,bytes)": Access(
            lambda sb: _signed(sb, "RejectInvoice", "automaker", [register_invoice(sb), REASON]), ACTORS, ""
        ),
        "setCreditLine(tuple,bytes)": Access(
            lambda sb: _signed(sb, "SetCreditLine", "bank", [sb.address("automaker"), 1_000]), ACTORS, ""
        ),
        "assignPiece(tuple,bytes)": Access(
            lambda sb: _signed(sb, "AssignPiece", "seatmaker", [_piece(sb), sb.address("chemicals"), 1]), ACTORS, ""
        ),
        "requestFinancing(tuple,bytes)": Access(
            lambda sb: _signed(
                sb, "RequestFinancing", "seatmaker", [_piece(sb), 1_000, sb.address("bank"), *ACCEPT_ANY]
            ),
            ACTORS,
            "",
        ),
        "approveFinancing(tuple,bytes)": Access(
            lambda sb: _signed(sb, "ApproveFinancing", "bank", [_requested(sb), 500, 0, 365, NO_REVIEW]), ACTORS, ""
        ),
        "fundFinancing(tuple,bytes)": Access(
            lambda sb: _signed(sb, "FundFinancing", "bank", [_approved(sb)]), ACTORS, ""
        ),
        "recordFinancingRegistration(tuple,bytes)": Access(
            lambda sb: _signed(
                sb, "RecordFinancingRegistration", "bank", [_funded_request(sb), REGISTRATION, sb.now() - DAY]
            ),
            ACTORS,
            "",
        ),
        "declineFinancing(tuple,bytes)": Access(
            lambda sb: _signed(sb, "DeclineFinancing", "bank", [_requested(sb)]), ACTORS, ""
        ),
        "cancelFinancing(tuple,bytes)": Access(
            lambda sb: _signed(sb, "CancelFinancing", "seatmaker", [_requested(sb)]), ACTORS, ""
        ),
        "repay(tuple,bytes)": Access(
            lambda sb: _signed(sb, "Repay", "automaker", [confirmed_piece(sb)[0], 1_000]), ACTORS, ""
        ),
        "redeem(tuple,bytes)": Access(
            lambda sb: _signed(sb, "Redeem", "seatmaker", [_partly_repaid_piece(sb)]), ACTORS, ""
        ),
        "approveSettlement(tuple,bytes)": Access(
            lambda sb: _signed(sb, "ApproveSettlement", "bank", [sb.address("receivables"), 1]), ACTORS, ""
        ),
        "issueReceipt(tuple,bytes)": Access(
            lambda sb: _signed(sb, "IssueReceipt", "warehouse", _issue_args(sb)), ACTORS, ""
        ),
        "revalueReceipt(tuple,bytes)": Access(
            lambda sb: _signed(sb, "RevalueReceipt", "warehouse", [_receipt(sb), VALUATION - 1, REASON]), ACTORS, ""
        ),
        "requestPledge(tuple,bytes)": Access(
            lambda sb: _signed(
                sb, "RequestPledge", "steel", [_receipt(sb), sb.address("bank"), PRINCIPAL, 600, sb.now() + 90 * DAY]
            ),
            ACTORS,
            "",
        ),
        "fundPledge(tuple,bytes)": Access(
            lambda sb: _signed(sb, "FundPledge", "bank", [_pledge_requested(sb)]), ACTORS, ""
        ),
        "recordPledgeRegistration(tuple,bytes)": Access(
            lambda sb: _signed(
                sb, "RecordPledgeRegistration", "bank", [_pledge_active(sb), REGISTRATION, sb.now() - DAY]
            ),
            ACTORS,
            "",
        ),
        "declinePledge(tuple,bytes)": Access(
            lambda sb: _signed(sb, "DeclinePledge", "bank", [_pledge_requested(sb)]), ACTORS, ""
        ),
        "cancelPledge(tuple,bytes)": Access(
            lambda sb: _signed(sb, "CancelPledge", "steel", [_pledge_requested(sb)]), ACTORS, ""
        ),
        "repayPledge(tuple,bytes)": Access(
            lambda sb: _signed(sb, "RepayPledge", "steel", [_pledge_active(sb), 1_000]), ACTORS, ""
        ),
        "markDefaulted(tuple,bytes)": Access(
            lambda sb: _signed(sb, "MarkDefaulted", "seatmaker", list(_defaulted_piece(sb))), ACTORS, ""
        ),
        "transferReceipt(tuple,bytes)": Access(
            lambda sb: _signed(sb, "TransferReceipt", "steel", [_receipt(sb), sb.address("trader")]), ACTORS, ""
        ),
        "updateGoodsStatus(tuple,bytes)": Access(
            lambda sb: _signed(sb, "UpdateGoodsStatus", "warehouse", [_receipt(sb), 1, REASON]), ACTORS, ""
        ),
        "appointOracle(tuple,bytes)": Access(
            lambda sb: _signed(sb, "AppointOracle", "warehouse", [sb.address("steel")]), ACTORS, ""
        ),
        "enforcePledge(tuple,bytes)": Access(
            lambda sb: _signed(sb, "EnforcePledge", "bank", [_pledge_due(sb)]), ACTORS, ""
        ),
        "requestRedemption(tuple,bytes)": Access(
            lambda sb: _signed(sb, "RequestRedemption", "steel", [_receipt(sb)]), ACTORS, ""
        ),
        "withdrawRedemption(tuple,bytes)": Access(
            lambda sb: _signed(sb, "WithdrawRedemption", "steel", [_redemption_requested(sb)]), ACTORS, ""
        ),
        "confirmRedemption(tuple,bytes)": Access(
            lambda sb: _signed(sb, "ConfirmRedemption", "warehouse", [_redemption_requested(sb)]), ACTORS, ""
        ),
        "rotateKey(tuple,bytes)": Access(
            lambda sb: _signed(sb, "RotateKey", "seatmaker", [_new_signer(sb, "seatmaker")]), ACTORS, ""
        ),
        # Sent by the account's signer itself: a hosted participant is its own signer.
        "invalidateNonces(address,uint256,uint256)": Access(
            lambda sb: sb.contracts["acts"].functions.invalidateNonces(sb.address("seatmaker"), 0, 1),
            ("seatmaker",),
            "SignedActsInvalidSignature",
        ),
    },
}


DEFAULT_ADMIN = b"\x00" * 32


def _regulator_role_grant(role: str | bytes, who: str) -> Callable[[Sandbox], ContractFunction]:
    role_bytes = role if isinstance(role, bytes) else role_id(role)
    return lambda sb: _registry(sb).functions.grantRole(role_bytes, sb.address(who))


#: The regulator role outside the operator's power (invariant 10's second party): every path by which a role or a
#: status reaches a regulator, by the same rule as ROLE_TABLE (allowed callers succeed, every other member of the
#: cast and a stranger is refused by name). The operator, admin of every other role and default admin, appears
#: in no `allowed`.
REGULATOR_ROLE_TABLE: dict[str, Access] = {
    "register(a stranger, [regulator])": Access(
        lambda sb: _registry(sb).functions.register(_stranger(sb), keccak(text="new"), [role_id("regulator")]),
        (),
        "AccessControlUnauthorizedAccount",
        {"operator": "RegistryRoleNotOperatorManaged"},
    ),
    "registerSelfCustody(a stranger, [supplier, regulator])": Access(
        lambda sb: _registry(sb).functions.registerSelfCustody(
            _stranger(sb), keccak(text="own key"), [role_id("supplier"), role_id("regulator")]
        ),
        (),
        "AccessControlUnauthorizedAccount",
        {"operator": "RegistryRoleNotOperatorManaged"},
    ),
    "grantRole(regulator, a participant)": Access(
        _regulator_role_grant("regulator", "chemicals"), ("regulator",), "AccessControlUnauthorizedAccount"
    ),
    "grantRole(regulator, the operator)": Access(
        _regulator_role_grant("regulator", "operator"),
        (),
        "AccessControlUnauthorizedAccount",
        {"regulator": "RegistryRolesSeparated"},
    ),
    "grantRole(operator, a regulator)": Access(
        _regulator_role_grant("operator", "regulator"),
        (),
        "AccessControlUnauthorizedAccount",
        {"operator": "RegistryRolesSeparated"},
    ),
    "grantRole(default admin, a regulator)": Access(
        _regulator_role_grant(DEFAULT_ADMIN, "regulator"),
        (),
        "AccessControlUnauthorizedAccount",
        {"operator": "RegistryRolesSeparated"},
    ),
    "revokeRole(regulator, a regulator)": Access(
        lambda sb: _registry(sb).functions.revokeRole(role_id("regulator"), sb.address("regulator")),
        ("regulator",),
        "AccessControlUnauthorizedAccount",
    ),
    "suspend(a regulator)": Access(
        lambda sb: _registry(sb).functions.suspend(sb.address("regulator")),
        (),
        "AccessControlUnauthorizedAccount",
        {"operator": "RegistryParticipantNotOperatorManaged"},
    ),
    "adoptSelfCustody(a regulator, a new key)": Access(
        lambda sb: _registry(sb).functions.adoptSelfCustody(
            sb.address("regulator"), sb.signing_key("regulator").address
        ),
        (),
        "AccessControlUnauthorizedAccount",
        {"operator": "RegistryParticipantNotOperatorManaged"},
    ),
}


def _registered_with_credit(sb: Sandbox) -> int:
    sb.send(receivables(sb).functions.setCreditLine(sb.address("automaker"), 10**12), "bank")
    return register_invoice(sb)


def _state_changing(contract: Any) -> set[str]:
    return {
        f"{f['name']}({','.join(i['type'] for i in f['inputs'])})"
        for f in contract.abi
        if f["type"] == "function" and f["stateMutability"] not in ("view", "pure")
    }


def test_every_state_changing_function_of_every_contract_has_an_access_entry(sandbox: Sandbox) -> None:
    """Each role on each function: the table is complete against the deployed ABIs (a new function, or a new
    contract, without an entry fails here), and lists nothing that is not a state-changing function."""
    assert set(ROLE_TABLE) == set(sandbox.contracts), "a deployed contract has no access table (or vice versa)"
    for name, contract in sandbox.contracts.items():
        functions = _state_changing(contract)
        assert functions - set(ROLE_TABLE[name]) == set(), f"{name}: functions with no access entry"
        assert set(ROLE_TABLE[name]) - functions == set(), f"{name}: entries for no such function"


@pytest.mark.parametrize("contract", sorted(ROLE_TABLE))
def test_each_role_may_call_exactly_the_functions_the_table_allows(ledger: Sandbox, contract: str) -> None:
    """Each role on each function (invariant 9): for every state-changing function, every member of the
    cast (operator, core firms, suppliers, financiers, warehouses, regulator, settlement agent) and a
    stranger calls it in a state where the rightful caller succeeds; exactly the allowed ones do, and each
    other is refused with the named custom error."""
    if contract not in ledger.contracts:
        pytest.skip(f"{contract} is not deployed by this sandbox")
    wrong: list[str] = []
    for signature, access in sorted(ROLE_TABLE[contract].items()):
        with ledger.isolated():
            fn = access.setup(ledger)
            for actor in ACTORS:
                got = outcome(ledger, fn, actor)
                expected = "ok" if actor in access.allowed else access.errors.get(actor, access.error)
                if got != expected:
                    wrong.append(f"{contract}.{signature} by {actor}: expected {expected}, got {got}")
    assert wrong == []


def test_only_a_regulator_makes_or_unmakes_a_regulator_and_the_operator_never(ledger: Sandbox) -> None:
    """The regulator role's paths, each member of the cast and a stranger (REGULATOR_ROLE_TABLE): only a regulator
    admits or removes a regulator; the operator's onboarding, its grants (it is default admin), its suspension and
    its custody switch all stop at a regulator, each by its named error; no account is both."""
    wrong: list[str] = []
    for path, access in sorted(REGULATOR_ROLE_TABLE.items()):
        with ledger.isolated():
            fn = access.setup(ledger)
            for actor in ACTORS:
                got = outcome(ledger, fn, actor)
                expected = "ok" if actor in access.allowed else access.errors.get(actor, access.error)
                if got != expected:
                    wrong.append(f"registry.{path} by {actor}: expected {expected}, got {got}")
    assert wrong == []


# ---------------------------------------------------------------------------------------------------------
# A transfer ban bypassed through approve + transferFrom
# ---------------------------------------------------------------------------------------------------------


def _approve_bank_every_way(sb: Sandbox, piece_id: int) -> None:
    r = receivables(sb)
    sb.send(by_signature(r, "approve(address,uint256)")(sb.address("bank"), piece_id), "seatmaker")
    sb.send(by_signature(r, "approve(uint256,address,uint256)")(piece_id, sb.address("bank"), MAX_UINT256), "seatmaker")
    sb.send(r.functions.setApprovalForAll(sb.address("bank"), True), "seatmaker")


def _piece_moves(sb: Sandbox, piece_id: int, other_piece: int) -> list[ContractFunction]:
    r = receivables(sb)
    seat, chem = sb.address("seatmaker"), sb.address("chemicals")
    return [
        by_signature(r, "transferFrom(address,address,uint256)")(seat, chem, piece_id),
        by_signature(r, "safeTransferFrom(address,address,uint256)")(seat, chem, piece_id),
        by_signature(r, "transferFrom(uint256,address,uint256)")(piece_id, chem, 1),
        by_signature(r, "transferFrom(uint256,uint256,uint256)")(piece_id, other_piece, 1),
    ]


@pytest.mark.parametrize(
    ("ban", "error"),
    [
        ("holder frozen", "RegistryParticipantFrozen"),
        ("holder suspended", "RegistryParticipantNotActive"),
        ("spender frozen", "RegistryParticipantFrozen"),
        ("piece frozen", "ReceivablesPieceFrozen"),
        ("piece locked in a financing request", "ReceivablesPieceLocked"),
        ("matured", "ReceivablesMatured"),
    ],
)
def test_a_banned_piece_cannot_be_moved_by_an_approved_spender(ledger: Sandbox, ban: str, error: str) -> None:
    """Transfer ban bypassed through approve + transferFrom: approvals given before a freeze, suspension, lock
    or maturity do not let a spender move what the holder may not (invariant 4), by any of the four ways."""
    sb = ledger
    _, piece_id = confirmed_piece(sb, due_in=30 * DAY)
    other = split(sb, piece_id, "chemicals", 1_000, "seatmaker")
    _approve_bank_every_way(sb, piece_id)
    if ban == "holder frozen":
        _frozen(sb, "seatmaker")
    elif ban == "holder suspended":
        _suspended(sb, "seatmaker")
    elif ban == "spender frozen":
        _frozen(sb, "bank")
    elif ban == "piece frozen":
        sb.send(receivables(sb).functions.freezePiece(piece_id, REASON), "regulator")
    elif ban == "piece locked in a financing request":
        request_financing(sb, piece_id, 1_000, financier="factor")
    else:
        sb.travel_to(invoice_of(sb, piece_of(sb, piece_id)[1])[1])
    before = piece_of(sb, piece_id)
    for move in _piece_moves(sb, piece_id, other):
        assert_reverts(sb, move, "bank", error)
    assert piece_of(sb, piece_id) == before


def test_a_frozen_holders_deposit_tokens_cannot_be_pulled_through_an_allowance(ledger: Sandbox) -> None:
    """Transfer ban bypassed through approve + transferFrom, on the cash token: an allowance outlives neither
    the holder's freeze nor the spender's suspension."""
    sb = ledger
    token = sb.contracts["token"]
    sb.send(token.functions.approve(sb.address("bank"), 10_000), "seatmaker")
    pull = token.functions.transferFrom(sb.address("seatmaker"), sb.address("bank"), 10_000)
    _frozen(sb, "seatmaker")
    assert_reverts(sb, pull, "bank", "RegistryParticipantFrozen")
    sb.send(_registry(sb).functions.unfreeze(sb.address("seatmaker")), "regulator")
    _suspended(sb, "bank")
    assert_reverts(sb, pull, "bank", "RegistryParticipantNotActive")
    assert sb.balance("seatmaker") == 100_000_000


@pytest.mark.parametrize("ban", ["pledge requested", "pledged", "redemption requested", "receipt frozen"])
def test_a_locked_receipt_cannot_be_moved_by_an_approved_address_or_operator(ledger: Sandbox, ban: str) -> None:
    """Transfer ban bypassed through approve + transferFrom, on warehouse receipts: neither an address approved
    for the receipt nor an operator of the owner moves a receipt under a lien, a redemption or a freeze
    (invariant 7)."""
    sb = ledger
    w = warehouse(sb)
    receipt_id = issue_receipt(sb)
    sb.send(w.functions.approve(sb.address("trader"), receipt_id), "steel")
    sb.send(w.functions.setApprovalForAll(sb.address("chemicals"), True), "steel")
    if ban == "pledge requested":
        request_pledge(sb, receipt_id)
    elif ban == "pledged":
        sb.send(w.functions.fundPledge(request_pledge(sb, receipt_id)), "bank")
    elif ban == "redemption requested":
        sb.send(w.functions.requestRedemption(receipt_id), "steel")
    else:
        sb.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
    error = "ReceiptIsFrozen" if ban == "receipt frozen" else "ReceiptLocked"
    steel, trader = sb.address("steel"), sb.address("trader")
    for spender in ("trader", "chemicals"):
        for signature in ("transferFrom(address,address,uint256)", "safeTransferFrom(address,address,uint256)"):
            assert_reverts(sb, by_signature(w, signature)(steel, trader, receipt_id), spender, error)
    assert owner_of(sb, receipt_id) == steel


# ---------------------------------------------------------------------------------------------------------
# Stale credit or collateral after a transfer or burn
# ---------------------------------------------------------------------------------------------------------


def test_approvals_given_by_a_previous_holder_die_with_the_transfer_and_do_not_revive(ledger: Sandbox) -> None:
    """Stale approval after a transfer: the previous holder's token approval and value allowance lapse when the
    piece changes hands, and do not come back when the piece returns to that holder."""
    sb = ledger
    r = receivables(sb)
    _, piece_id = confirmed_piece(sb)
    sb.send(by_signature(r, "approve(address,uint256)")(sb.address("bank"), piece_id), "seatmaker")
    sb.send(by_signature(r, "approve(uint256,address,uint256)")(piece_id, sb.address("factor"), 5_000), "seatmaker")
    seat, chem = sb.address("seatmaker"), sb.address("chemicals")
    sb.send(by_signature(r, "transferFrom(address,address,uint256)")(seat, chem, piece_id), "seatmaker")
    sb.send(by_signature(r, "transferFrom(address,address,uint256)")(chem, seat, piece_id), "chemicals")
    assert r.functions.getApproved(piece_id).call() == "0x" + "00" * 20
    assert by_signature(r, "allowance(uint256,address)")(piece_id, sb.address("factor")).call() == 0
    whole = by_signature(r, "transferFrom(address,address,uint256)")(seat, sb.address("bank"), piece_id)
    assert_reverts(sb, whole, "bank", "ReceivablesNotAuthorized")
    part = by_signature(r, "transferFrom(uint256,address,uint256)")(piece_id, sb.address("factor"), 1)
    assert_reverts(sb, part, "factor", "ReceivablesInsufficientAllowance")


def test_a_redeemed_piece_is_gone_and_its_credit_is_free_again(ledger: Sandbox) -> None:
    """Stale credit after a burn: once the buyer has paid and the holder redeemed, the piece no longer exists
    for any use (redeem, transfer, financing), and the core firm's credit usage is back where it started."""
    sb = ledger
    r = receivables(sb)
    used_before = r.functions.creditLine(sb.address("automaker")).call()[1]
    slot, piece_id = confirmed_piece(sb, amount=50_000)
    assert r.functions.creditLine(sb.address("automaker")).call()[1] == used_before + 50_000
    sb.send(r.functions.repay(slot, 50_000), "automaker")
    assert r.functions.creditLine(sb.address("automaker")).call()[1] == used_before
    sb.send(r.functions.redeem(piece_id), "seatmaker")
    assert_reverts(sb, r.functions.redeem(piece_id), "seatmaker", "ReceivablesNonexistentPiece")
    assert_reverts(
        sb,
        r.functions.requestFinancing(piece_id, 1, sb.address("bank"), *ACCEPT_ANY),
        "seatmaker",
        "ReceivablesNonexistentPiece",
    )
    move = by_signature(r, "transferFrom(address,address,uint256)")(
        sb.address("seatmaker"), sb.address("chemicals"), piece_id
    )
    assert_reverts(sb, move, "seatmaker", "ReceivablesNonexistentPiece")
    assert sb.balance("receivables") == 0


def test_a_redeemed_receipt_backs_no_loan_and_its_lot_is_never_receipted_again(ledger: Sandbox) -> None:
    """Stale collateral after a burn: a receipt whose goods left the warehouse cannot be pledged, moved or
    redeemed again, and the lot cannot be receipted a second time (invariant 1)."""
    sb = ledger
    w = warehouse(sb)
    key = lot_key()
    receipt_id = issue_receipt(sb, key=key)
    sb.send(w.functions.requestRedemption(receipt_id), "steel")
    sb.send(w.functions.confirmRedemption(receipt_id), "warehouse")
    pledge = w.functions.requestPledge(receipt_id, sb.address("bank"), 1, 600, sb.now() + 30 * DAY)
    assert_reverts(sb, pledge, "steel", "ReceiptNotFound")
    assert_reverts(sb, w.functions.requestRedemption(receipt_id), "steel", "ReceiptNotFound")
    move = w.functions.transferFrom(sb.address("steel"), sb.address("trader"), receipt_id)
    assert_reverts(sb, move, "steel", "ERC721NonexistentToken")
    assert_reverts(sb, issue_fn(sb, key=key), "warehouse2", "ReceiptLotAlreadyReceipted")


def test_after_enforcement_the_borrower_keeps_no_hold_on_the_receipt(ledger: Sandbox) -> None:
    """Stale collateral after a transfer: once the financier has enforced, the receipt is the financier's; the
    borrower and the address it had approved can neither move, pledge nor redeem it, and the closed lien
    cannot be enforced or repaid again."""
    sb = ledger
    w = warehouse(sb)
    receipt_id = issue_receipt(sb)
    sb.send(w.functions.approve(sb.address("trader"), receipt_id), "steel")
    pledge_id = request_pledge(sb, receipt_id, due_in=30 * DAY)
    sb.send(w.functions.fundPledge(pledge_id), "bank")
    sb.travel_to(w.functions.pledge(pledge_id).call()[P_DUE_DATE] + 1)
    sb.send(w.functions.enforcePledge(pledge_id), "bank")
    assert owner_of(sb, receipt_id) == sb.address("bank")
    assert w.functions.getApproved(receipt_id).call() == "0x" + "00" * 20
    move = w.functions.transferFrom(sb.address("bank"), sb.address("trader"), receipt_id)
    assert_reverts(sb, move, "trader", "ERC721InsufficientApproval")
    assert_reverts(sb, w.functions.requestRedemption(receipt_id), "steel", "ReceiptNotOwner")
    again = w.functions.requestPledge(receipt_id, sb.address("factor"), 1, 600, sb.now() + 30 * DAY)
    assert_reverts(sb, again, "steel", "ReceiptNotOwner")
    assert_reverts(sb, w.functions.enforcePledge(pledge_id), "bank", "PledgeInvalidTransition")
    assert_reverts(sb, w.functions.repayPledge(pledge_id, 1), "steel", "PledgeNotActive")


# ---------------------------------------------------------------------------------------------------------
# A payment declared rather than paid
# ---------------------------------------------------------------------------------------------------------


def test_a_repayment_is_recorded_only_with_the_cash_that_pays_it(ledger: Sandbox) -> None:
    """Payment declared rather than paid: the obligation's repaid total moves only when the buyer's deposit
    tokens arrive, by exactly that amount; a buyer whose tokens cannot be pulled records nothing."""
    sb = ledger
    r, token = receivables(sb), sb.contracts["token"]
    slot, _ = confirmed_piece(sb, amount=80_000)
    sb.send(token.functions.approve(r.address, 0), "automaker")
    assert_reverts(sb, r.functions.repay(slot, 30_000), "automaker", "ERC20InsufficientAllowance")
    assert invoice_of(sb, slot)[6] == 0
    sb.send(token.functions.approve(r.address, MAX_UINT256), "automaker")
    buyer_before, held_before = sb.balance("automaker"), sb.balance("receivables")
    sb.send(r.functions.repay(slot, 30_000), "automaker")
    assert invoice_of(sb, slot)[6] == 30_000
    assert (sb.balance("automaker"), sb.balance("receivables")) == (buyer_before - 30_000, held_before + 30_000)


def test_funding_without_the_cash_moves_neither_the_piece_nor_the_request(ledger: Sandbox) -> None:
    """Payment declared rather than paid, on financing (invariant 5): a financier whose cash cannot be pulled
    does not get the piece, and the request stays approved."""
    sb = ledger
    r, token = receivables(sb), sb.contracts["token"]
    _, piece_id = confirmed_piece(sb, amount=80_000)
    request_id = request_financing(sb, piece_id, 80_000)
    approve_financing(sb, request_id)
    sb.send(token.functions.approve(r.address, 0), "bank")
    assert_reverts(sb, r.functions.fundFinancing(request_id), "bank", "ERC20InsufficientAllowance")
    assert piece_of(sb, piece_id)[0] == sb.address("seatmaker")
    assert r.functions.financingRequest(request_id).call()[2] == 2  # Approved


def test_a_lien_is_recorded_and_released_only_with_the_cash(ledger: Sandbox) -> None:
    """Payment declared rather than paid, on pledge loans: a funding whose principal cannot be pulled records
    no lien, and a repayment whose cash cannot be pulled releases nothing."""
    sb = ledger
    w, token = warehouse(sb), sb.contracts["token"]
    receipt_id = issue_receipt(sb)
    pledge_id = request_pledge(sb, receipt_id)
    sb.send(token.functions.approve(w.address, 0), "bank")
    assert_reverts(sb, w.functions.fundPledge(pledge_id), "bank", "ERC20InsufficientAllowance")
    assert w.functions.pledge(pledge_id).call()[3] == 1  # Requested
    sb.send(token.functions.approve(w.address, MAX_UINT256), "bank")
    sb.send(w.functions.fundPledge(pledge_id), "bank")
    sb.send(token.functions.approve(w.address, 0), "steel")
    assert_reverts(sb, w.functions.repayPledge(pledge_id, MAX_UINT256), "steel", "ERC20InsufficientAllowance")
    assert w.functions.pledge(pledge_id).call()[3] == 4  # Active
    assert w.functions.receipt(receipt_id).call()[7] == 3  # Pledged


# ---------------------------------------------------------------------------------------------------------
# Rounding that pays out more than was paid in
# ---------------------------------------------------------------------------------------------------------


def test_pro_rata_redemptions_never_pay_out_more_than_was_repaid(ledger: Sandbox) -> None:
    """Rounding that pays out more than was paid in (invariant 6): seven pieces of awkward sizes redeem after
    each of several small repayments; at every step the sum paid out never exceeds the sum repaid, and once
    the buyer has paid in full every fen is paid out and the contract holds nothing."""
    sb = ledger
    r = receivables(sb)
    face = 1_009
    slot, first = confirmed_piece(sb, amount=face)
    pieces = [first] + [
        split(sb, first, "chemicals" if i % 2 else "trader", 97 + 13 * i, "seatmaker") for i in range(6)
    ]
    holders = {p: piece_of(sb, p)[0] for p in pieces}
    names = {sb.address(n): n for n in ("seatmaker", "chemicals", "trader")}
    repaid = paid_out = 0
    for amount in (1, 2, 3, 101, 333, 5, face - 445):
        sb.send(r.functions.repay(slot, amount), "automaker")
        repaid += amount
        for p in pieces:
            if piece_of(sb, p)[0] == "0x" + "00" * 20 or r.functions.redeemable(p).call() == 0:
                continue
            tx = sb.send(r.functions.redeem(p), names[holders[p]])
            paid_out += sb.events(tx, "receivables", "PieceRedeemed")[0]["payout"]
            assert paid_out <= repaid
            assert sb.balance("receivables") == repaid - paid_out
    assert repaid == paid_out == face
    assert invoice_of(sb, slot)[7] == face


def test_a_financing_never_pays_the_holder_more_than_the_terms_give(ledger: Sandbox) -> None:
    """Rounding that pays out more than was paid in, on discounting: the discount is rounded up (and days to
    maturity counted up), so the price is at most the exact amount − discount − fee, never a fen more."""
    sb = ledger
    r = receivables(sb)
    for amount, rate, fee, basis in ((101, 1, 0, 365), (7_777, 333, 1, 360), (10**9 + 7, 1_999, 12_345, 365)):
        _, piece_id = confirmed_piece(sb, amount=amount, due_in=40 * DAY + 5)
        request_id = request_financing(sb, piece_id, amount)
        sb.send(r.functions.approveFinancing(request_id, rate, fee, basis, NO_REVIEW), "bank")
        tx = sb.send(r.functions.fundFinancing(request_id), "bank")
        funded = sb.events(tx, "receivables", "FinancingFunded")[0]
        seconds_left = (
            invoice_of(sb, piece_of(sb, piece_id)[1])[1] - sb.w3.eth.get_block(tx["blockNumber"])["timestamp"]
        )
        days = -(-seconds_left // DAY)
        exact_price = amount - Fraction(amount * rate * days, basis * 10_000) - fee
        assert funded["price"] <= exact_price < funded["price"] + 1


def test_a_pledge_cannot_be_closed_by_paying_principal_when_interest_is_rounded_up(ledger: Sandbox) -> None:
    """Rounding that pays out more than was paid in, on pledge loans: interest is charged rounded up from the
    first second (interest first), so repaying the principal alone leaves the lien in place; and the advance
    limit is rounded down, so a loan one fen above valuation × rate is refused."""
    sb = ledger
    w = warehouse(sb)
    receipt_id, pledge_id = pledged_receipt(sb)
    sb.travel_to(sb.now() + 1)
    tx = sb.send(w.functions.repayPledge(pledge_id, PRINCIPAL), "steel")
    repaid = sb.events(tx, "receipts", "PledgeRepaid")[0]
    assert repaid["interestPaid"] >= 1 and repaid["principalPaid"] == PRINCIPAL - repaid["interestPaid"]
    assert w.functions.pledge(pledge_id).call()[3] == 4  # still Active: the lien stays
    odd = issue_receipt(sb, valuation=3)  # 3 × 70% = 2.1 fen: the limit is 2
    assert w.functions.advanceLimit(odd, sb.address("bank")).call() == 2
    too_much = w.functions.requestPledge(odd, sb.address("bank"), 3, 600, sb.now() + 30 * DAY)
    assert_reverts(sb, too_much, "steel", "PledgeExceedsAdvanceLimit")
    assert receipt_id != odd


# ---------------------------------------------------------------------------------------------------------
# A state moved without the approver (Huma v1)
# ---------------------------------------------------------------------------------------------------------


def test_a_receivable_is_confirmed_only_by_its_own_buyer(ledger: Sandbox) -> None:
    """State moved without the approver: no one but the invoice's buyer confirms or rejects it — not another
    core firm, the seller, a financier that would profit from financing it, nor the operator (invariant 2)."""
    sb = ledger
    r = receivables(sb)
    sb.send(r.functions.setCreditLine(sb.address("automaker"), 10**12), "bank")
    sb.send(r.functions.setCreditLine(sb.address("truckmaker"), 10**12), "bank")
    invoice_id = register_invoice(sb)
    for intruder in ("truckmaker", "seatmaker", "bank", "operator", "regulator"):
        assert_reverts(sb, r.functions.confirmInvoice(invoice_id), intruder, "ReceivablesNotBuyer")
        assert_reverts(sb, r.functions.rejectInvoice(invoice_id, REASON), intruder, "ReceivablesNotBuyer")
    assert invoice_of(sb, invoice_id)[2] == 1  # Registered


def test_financing_cannot_skip_or_borrow_the_financiers_approval(ledger: Sandbox) -> None:
    """State moved without the approver — the Huma v1 exploit, where a receivable was moved on without the
    approval it needed: a request is funded only after its own financier approved it; another financier can
    neither approve nor fund it, and a funded request cannot be approved, declined or cancelled back."""
    sb = ledger
    r = receivables(sb)
    _, piece_id = confirmed_piece(sb)
    request_id = request_financing(sb, piece_id, 1_000)
    assert_reverts(sb, r.functions.fundFinancing(request_id), "bank", "ReceivablesRequestInvalidTransition")
    assert_reverts(
        sb, r.functions.approveFinancing(request_id, 0, 0, 365, NO_REVIEW), "factor", "ReceivablesNotFinancier"
    )
    approve_financing(sb, request_id)
    assert_reverts(sb, r.functions.fundFinancing(request_id), "factor", "ReceivablesNotFinancier")
    sb.send(r.functions.fundFinancing(request_id), "bank")
    for fn, who in (
        (r.functions.approveFinancing(request_id, 0, 0, 365, NO_REVIEW), "bank"),
        (r.functions.declineFinancing(request_id), "bank"),
        (r.functions.cancelFinancing(request_id), "seatmaker"),
    ):
        assert_reverts(sb, fn, who, "ReceivablesRequestInvalidTransition")


def test_a_lien_is_created_and_ended_only_by_its_parties(ledger: Sandbox) -> None:
    """State moved without the approver, on pledges (invariant 7): only the named financier funds, declines or
    enforces; the borrower cannot cancel its way out of an active lien nor take the goods out while it lasts;
    another warehouse cannot release goods it did not receipt."""
    sb = ledger
    w = warehouse(sb)
    receipt_id = issue_receipt(sb)
    pledge_id = request_pledge(sb, receipt_id, due_in=30 * DAY)
    assert_reverts(sb, w.functions.fundPledge(pledge_id), "factor", "PledgeNotFinancier")
    assert_reverts(sb, w.functions.declinePledge(pledge_id), "steel", "PledgeNotFinancier")
    assert_reverts(sb, w.functions.cancelPledge(pledge_id), "bank", "PledgeNotBorrower")
    sb.send(w.functions.fundPledge(pledge_id), "bank")
    assert_reverts(sb, w.functions.cancelPledge(pledge_id), "steel", "PledgeInvalidTransition")
    assert_reverts(sb, w.functions.requestRedemption(receipt_id), "steel", "ReceiptInvalidTransition")
    assert_reverts(sb, w.functions.confirmRedemption(receipt_id), "warehouse", "ReceiptInvalidTransition")
    sb.travel_to(w.functions.pledge(pledge_id).call()[P_DUE_DATE] + 1)
    assert_reverts(sb, w.functions.enforcePledge(pledge_id), "factor", "PledgeNotFinancier")
    assert_reverts(sb, w.functions.enforcePledge(pledge_id), "steel", "PledgeNotFinancier")
    assert owner_of(sb, receipt_id) == sb.address("steel")
    other = issue_receipt(sb)
    sb.send(w.functions.requestRedemption(other), "steel")
    assert_reverts(sb, w.functions.confirmRedemption(other), "warehouse2", "ReceiptNotIssuer")
