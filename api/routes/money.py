"""Cash: deposits and withdrawals by the settlement agent (mint and burn of the deposit token against bank
transfers), and balances."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import CurrentCaller, Service, require_role
from api.operations import perform
from api.routes.common import Address, Amount
from ledger.models import Role

router = APIRouter(tags=["cash"])


class CashMovement(BaseModel):
    participant: Address
    amount: Amount
    bank_reference: str = Field(min_length=1, max_length=100, description="the bank transfer's reference")


@router.post("/deposits", status_code=202)
async def deposit(body: CashMovement, request: Request, service: Service, caller: CurrentCaller) -> JSONResponse:
    """Credit deposit tokens for money received at the settlement bank."""
    require_role(caller, Role.SETTLEMENT_AGENT)
    reference = keccak(text=body.bank_reference)
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
    reference = keccak(text=body.bank_reference)
    return await perform(
        request,
        service,
        caller,
        "withdrawal",
        body,
        lambda op_id: service.client.burn_deposit(caller.address, body.participant, body.amount, reference, op_id),
    )


@router.get("/balances/me")
def my_balance(service: Service, caller: CurrentCaller) -> dict[str, Any]:
    return {"participant": caller.address, "currency": "CNY", "balance": service.client.balance_of(caller.address)}
