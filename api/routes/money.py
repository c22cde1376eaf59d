"""Cash: deposits and withdrawals by the settlement agent (mint and burn of the deposit token against bank
transfers), and balances."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from api.auth import CurrentCaller, Service, require_role
from api.models import BalanceView
from api.operations import perform
from api.routes.common import Address, Amount
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


@router.post("/deposits", status_code=202)
async def deposit(body: CashMovement, request: Request, service: Service, caller: CurrentCaller) -> JSONResponse:
    """Credit deposit tokens for money received at the settlement bank."""
    require_role(caller, Role.SETTLEMENT_AGENT)
    reference = bank_reference_hash(body.bank_reference)
    return await perform(
        request,
        service,
        caller,
        "deposit",
        body,
        lambda op_id: service.client.mint_deposit(caller.address, body.participant, body.amount, reference, op_id),
    )


@router.post("/withdrawals", status_code=202)
async def withdraw(body: CashMovement, request: Request, service: Service, caller: CurrentCaller) -> JSONResponse:
    """Burn deposit tokens for money paid out by the settlement bank."""
    require_role(caller, Role.SETTLEMENT_AGENT)
    reference = bank_reference_hash(body.bank_reference)
    return await perform(
        request,
        service,
        caller,
        "withdrawal",
        body,
        lambda op_id: service.client.burn_deposit(caller.address, body.participant, body.amount, reference, op_id),
    )


@router.get("/balances/me", response_model=BalanceView)
def my_balance(service: Service, caller: CurrentCaller) -> BalanceView:
    """The caller's own deposit-token balance as on chain now, in fen (every participant sees its own only)."""
    return BalanceView(participant=caller.address, currency="CNY", balance=service.client.balance_of(caller.address))
