"""One declaration per operation: an operation added to the catalogue reaches the client, a route, the OpenAPI
document and the result view from that one entry (and its route's one :class:`api.actions.Action`).

The made-up operation is ``cash.pay``: a participant pays another in deposit tokens with the token's own
ERC-20 ``transfer``, a function the ledger's catalogue does not offer. Nothing else in the service is told
about it.
"""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from api.actions import Action, Call, install
from api.auth import Caller
from api.routes.common import Address, Amount
from api.service import LedgerService
from ledger.catalogue import CATALOGUE, OperationSpec
from tests.api.conftest import Api

PAY = OperationSpec(
    name="cash.pay",
    contract="token",
    function="transfer",
    params=("to", "amount"),
    sender="payer",
    roles=(),
    summary="Pay another participant in deposit tokens (an operation made up by this test).",
    results={"Transfer": {"value": "paid"}},
)
CATALOGUE_WITH_PAY = CATALOGUE.extended(PAY)


class Payment(BaseModel):
    to: Address
    amount: Amount


def _pay(service: LedgerService, caller: Caller, body: Payment) -> Call:
    return Call("cash.pay", caller.address, {"to": body.to, "amount": body.amount})


router = APIRouter(tags=["payments"])
install(router, [Action("POST", "/payments", "pay", _pay, "cash.pay", Payment)], CATALOGUE_WITH_PAY)

APP = {"catalogue": CATALOGUE_WITH_PAY, "extra_routers": [router]}
"""create_app's options for this module's service (see tests/api/conftest.py)."""


def test_an_operation_declared_once_reaches_the_client_a_route_the_document_and_the_result(api: Api) -> None:
    assert api.service.client.catalogue["cash.pay"] is PAY

    document = api.http.get("/openapi.json").json()
    route = document["paths"]["/payments"]["post"]
    assert PAY.summary in route["description"]
    assert "`paid` (from `Transfer`)" in route["description"]
    assert route["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Payment"}
    for status in ("200", "202"):
        schema = route["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OperationView"}
    assert {"401", "403", "409", "422", "503"} <= set(route["responses"])

    agent = api.onboard("Payments test bank", "settlement-agent")
    payer = api.onboard("Payments test payer", "supplier")
    payee = api.onboard("Payments test payee", "supplier")
    deposit = {"participant": payer.id, "amount": 50_000, "bank_reference": "CNAPS PAY-TEST-1"}
    assert api.http.post("/deposits", json=deposit, headers=agent.waiting()).status_code == 200

    answer = api.http.post("/payments", json={"to": payee.id, "amount": 12_345}, headers=payer.waiting())
    assert answer.status_code == 200, answer.text
    operation = answer.json()
    assert operation["kind"] == "cash.pay"
    assert operation["status"] == "confirmed"
    assert operation["result"]["paid"] == 12_345
    assert [e["name"] for e in operation["result"]["events"]] == ["Transfer"]
    assert api.http.get("/balances/me", headers=payee.headers).json()["balance"] == 12_345
    again = api.http.get(f"/operations/{operation['operation_id']}", headers=payer.headers).json()
    assert again["kind"] == "cash.pay" and again["result"]["paid"] == 12_345

    refused = api.http.post("/payments", json={"to": payee.id, "amount": 10**9}, headers=payer.waiting())
    assert refused.status_code == 409, refused.text  # the token's own error, decoded and mapped like any other
    assert refused.json()["error"] == "ERC20InsufficientBalance"


def test_a_route_for_an_operation_the_catalogue_lacks_is_refused_when_installed() -> None:
    with pytest.raises(LookupError, match=r"no operation cash\.pay"):
        install(APIRouter(), [Action("POST", "/payments", "pay", _pay, "cash.pay", Payment)])


def test_the_client_submits_by_name_with_arguments_in_order_or_by_name() -> None:
    assert PAY.bind(["0x" + "11" * 20, 5]) == {"to": "0x" + "11" * 20, "amount": 5}
    assert PAY.bind({"amount": 5, "to": "0x" + "11" * 20}) == {"to": "0x" + "11" * 20, "amount": 5}
    with pytest.raises(TypeError, match="missing"):
        PAY.bind({"to": "0x" + "11" * 20})
    with pytest.raises(TypeError, match="unknown"):
        PAY.bind({"to": "0x" + "11" * 20, "amount": 5, "memo": "x"})
