"""Cash: deposits and withdrawals by the settlement agent (mint and burn of the deposit token against bank
transfers), and balances."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from api.actions import Action, Call, Prepare, install
from api.auth import Caller, CurrentCaller, Service, require_role
from api.models import BalanceView
from api.routes.common import Address, Amount
from api.service import LedgerService
from ledger.identifiers import BANK_REFERENCE_PATTERN, bank_reference_hash, canonical_bank_reference
from ledger.models import Role

router = APIRouter(tags=["cash"])


class CashMovement(BaseModel):
    participant: Address
    amount: Amount
    bank_reference: str = Field(
        min_length=1,
        max_length=64,
        pattern=BANK_REFERENCE_PATTERN,
        examples=["CNAPS 2026120400017"],
        description="the bank transfer's reference, exactly as the bank gives it: ASCII letters, digits, "
        ". _ / : ( ) , ' + - and single spaces between words. A reference credits once (deposits) and debits once "
        "(withdrawals): its second use is refused on chain (409 `DepositMintReferenceUsed` / "
        "`DepositBurnReferenceUsed`)",
    )

    @field_validator("bank_reference")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_bank_reference(value)


def _cash_movement(operation: str, holder: str) -> Prepare:
    """A deposit (mint) or a withdrawal (burn) by the settlement agent, once per bank reference."""

    def prepare(service: LedgerService, caller: Caller, body: CashMovement) -> Call:
        require_role(caller, Role.SETTLEMENT_AGENT)
        args = {
            holder: body.participant,
            "amount": body.amount,
            "bank_reference": bank_reference_hash(body.bank_reference),
        }
        return Call(operation, caller.address, args)

    return prepare


class SettlementApproval(BaseModel):
    spender_contract: Literal["receivables", "receipts"] = Field(
        description="the ledger contract that may draw the caller's cash legs: `receivables` (funding, "
        "repayments) or `receipts` (pledge loans and their repayments)"
    )


def _approve_settlement(service: LedgerService, caller: Caller, body: SettlementApproval) -> Call:
    """Hosted participants got both approvals when they were onboarded; a self-custody participant signs its
    own (the answer is then a 428 with the act to sign)."""
    return Call("settlement.approve", caller.address, {"spender_contract": body.spender_contract})


ACTIONS = (
    # Their `prepare` only computes (a role check, a hash): on the event loop.
    Action("POST", "/deposits", "deposit", _cash_movement("deposit", "to"), "deposit", CashMovement, reads_chain=False),
    Action(
        "POST",
        "/settlement-approvals",
        "approve_settlement",
        _approve_settlement,
        "settlement.approve",
        SettlementApproval,
        reads_chain=False,
    ),
    Action(
        "POST",
        "/withdrawals",
        "withdraw",
        _cash_movement("withdrawal", "holder"),
        "withdrawal",
        CashMovement,
        reads_chain=False,
    ),
)
install(router, ACTIONS)


@router.get("/balances/me", response_model=BalanceView)
async def my_balance(service: Service, caller: CurrentCaller) -> BalanceView:
    """The caller's own deposit-token balance as on chain now, in fen (every participant sees its own only)."""
    balance = await service.client.balance_of_async(caller.address)
    return BalanceView(participant=caller.address, currency="CNY", balance=balance)
