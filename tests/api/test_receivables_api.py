"""The receivable story over HTTP against a real anvil, with authorisation, idempotency, sign-in and problem
details. Every route's success and its main refusals are here; the warehouse and regulator routes have
their own modules."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from ledger.identifiers import synthetic_credit_code
from tests.api.conftest import WAIT, Api, Participant

YUAN = 100


def due_in(days: int, api: Api) -> str:
    return (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=days)).isoformat()


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:scf:problem:")
    return body  # type: ignore[no-any-return]


def invoice_to(buyer: Participant, amount: int, due_date: str) -> dict[str, Any]:
    """A new invoice's body (its number from the clock, so each is new)."""
    return {
        "buyer": buyer.id,
        "amount": amount,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000):020d}",
        "due_date": due_date,
    }


def cast(api: Api, tag: str = "") -> dict[str, Participant]:
    """The story's participants; ``tag`` keeps a second cast's bank references apart from the first's."""
    people = {
        "agent": api.onboard("Settlement bank", "settlement-agent"),
        "automaker": api.onboard("FAW Automotive", "core-firm"),
        "seatmaker": api.onboard("Changchun Seats", "supplier"),
        "foammaker": api.onboard("Jilin Foam", "supplier"),
        "factor": api.onboard("Northeast Factoring", "financier"),
    }
    for name, amount in (("automaker", 5_000_000 * YUAN), ("factor", 5_000_000 * YUAN)):
        ok(
            api.http.post(
                "/deposits",
                json={"participant": people[name].id, "amount": amount, "bank_reference": f"opening {name}{tag}"},
                headers=people["agent"].waiting(),
            )
        )
    ok(
        api.http.post(
            "/credit-lines",
            json={"core_firm": people["automaker"].id, "limit": 10_000_000 * YUAN},
            headers={**api.operator_headers, **WAIT},
        )
    )
    return people


def test_receivable_story_over_http_settles_every_cash_leg(api: Api) -> None:
    p = cast(api)
    http = api.http
    body = invoice_to(p["automaker"], 1_000_000 * YUAN, due_in(90, api))
    registered = ok(http.post("/invoices", json=body, headers=p["seatmaker"].waiting()))
    invoice_id = registered["result"]["invoice_id"]
    assert registered["status"] == "confirmed" and registered["kind"] == "invoice.register"
    duplicate = problem(http.post("/invoices", json=body, headers=p["seatmaker"].waiting()), 409)
    assert duplicate["error"] == "ReceivablesInvoiceAlreadyRegistered"

    # Only the buyer confirms; the others cannot even see the invoice.
    problem(http.post(f"/invoices/{invoice_id}/confirm", headers=p["seatmaker"].waiting()), 403)
    problem(http.get(f"/invoices/{invoice_id}", headers=p["factor"].headers), 404)
    piece_id = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=p["automaker"].waiting()))["result"]["piece_id"]
    assert ok(http.get(f"/invoices/{invoice_id}", headers=p["seatmaker"].headers))["state"] == "confirmed"

    # Tier 1 pays tier 2 with part of it.
    split = ok(
        http.post(
            f"/receivables/{piece_id}/transfers",
            json={"to": p["foammaker"].id, "amount": 300_000 * YUAN},
            headers=p["seatmaker"].waiting(),
        )
    )
    foam_piece = split["result"]["piece_id"]
    detail = ok(http.get(f"/receivables/{foam_piece}", headers=p["foammaker"].headers))
    assert detail["path"] == [piece_id, foam_piece] and detail["value"] == 300_000 * YUAN
    problem(
        http.post(
            f"/receivables/{foam_piece}/transfers",
            json={"to": p["seatmaker"].id, "amount": 1},
            headers=p["seatmaker"].waiting(),
        ),
        403,  # the invoice's seller may see the piece, but it is not its to move
    )
    gone = problem(
        http.post(
            f"/receivables/{foam_piece + 10**6}/transfers",
            json={"to": p["seatmaker"].id, "amount": 1},
            headers=p["foammaker"].waiting(),
        ),
        404,  # no such piece: as unseen as somebody else's
    )
    assert gone["type"] == "urn:scf:problem:not-found"

    # Tier 2 finances its piece with the factor: DvP. The request carries the most it accepts (rate, fee).
    asking = {"piece_id": foam_piece, "amount": 300_000 * YUAN, "financier": p["factor"].id}
    for missing in ("max_discount_rate_bps", "max_fee"):
        capped = {**asking, "max_discount_rate_bps": 600, "max_fee": 500 * YUAN}
        del capped[missing]
        problem(http.post("/financing-requests", json=capped, headers=p["foammaker"].waiting()), 422)
    asking |= {"max_discount_rate_bps": 600, "max_fee": 500 * YUAN}
    problem(http.post("/financing-requests", json={**asking, "max_fee": "500"}, headers=p["foammaker"].waiting()), 422)
    request_id = ok(http.post("/financing-requests", json=asking, headers=p["foammaker"].waiting()))["result"][
        "request_id"
    ]
    again = problem(http.post("/financing-requests", json=asking, headers=p["foammaker"].waiting()), 409)
    assert again["error"] == "ReceivablesPieceLocked"
    problem(http.post(f"/financing-requests/{request_id}/fund", headers=p["seatmaker"].waiting()), 403)
    for above in ({"discount_rate_bps": 601, "fee": 500 * YUAN}, {"discount_rate_bps": 600, "fee": 500 * YUAN + 1}):
        refused = problem(
            http.post(f"/financing-requests/{request_id}/approve", json=above, headers=p["factor"].waiting()), 422
        )
        assert refused["error"] == "ReceivablesTermsAboveAccepted"
    ok(
        http.post(
            f"/financing-requests/{request_id}/approve",
            json={"discount_rate_bps": 600, "fee": 500 * YUAN},
            headers=p["factor"].waiting(),
        )
    )
    shown = ok(http.get(f"/financing-requests/{request_id}", headers=p["foammaker"].headers))
    assert (shown["max_discount_rate_bps"], shown["max_fee"], shown["review"]) == (600, 500 * YUAN, None)
    assert (shown["discount_rate_bps"], shown["fee"], shown["day_count_basis"]) == (600, 500 * YUAN, 365)
    quote = shown["quote"]
    before = ok(http.get("/balances/me", headers=p["foammaker"].headers))["balance"]
    funded = ok(http.post(f"/financing-requests/{request_id}/fund", headers=p["factor"].waiting()))
    assert funded["result"]["price"] == quote["price"]
    assert ok(http.get("/balances/me", headers=p["foammaker"].headers))["balance"] == before + quote["price"]

    # The factor's list names each request's obligor and maturity (from the piece's invoice).
    [listed] = [
        r for r in ok(http.get("/financing-requests", headers=p["factor"].headers))["items"] if r["id"] == request_id
    ]
    obligor = ok(http.get("/participants/me", headers=p["automaker"].headers))
    due = ok(http.get(f"/invoices/{invoice_id}", headers=p["automaker"].headers))["due_date"]
    assert (listed["obligor"], listed["obligor_name"], listed["due_date"]) == (obligor["id"], obligor["name"], due)

    # Maturity: the core firm repays; holders redeem. The rules route tells clients the chain's time.
    api.travel(91 * 86_400)
    before = api.now()
    rules = ok(http.get("/rules", headers=p["seatmaker"].headers))
    # The chain's latest block as the route read it: blocks come every 0.25 s, so one may land in between.
    assert before <= rules["chain_time"] <= api.now() and rules["chain_time"] > due
    assert (rules["max_tenor"], rules["grace_period"]) == (365 * 86_400, 30 * 86_400)  # as the contracts hold them
    assert rules["review_tenor"] == 183 * 86_400
    problem(
        http.post(f"/obligations/{invoice_id}/repayments", json={"amount": 1}, headers=p["seatmaker"].waiting()), 403
    )
    ok(
        http.post(
            f"/obligations/{invoice_id}/repayments", json={"amount": 1_000_000 * YUAN}, headers=p["automaker"].waiting()
        )
    )
    payout = ok(http.post(f"/receivables/{piece_id}/redeem", headers=p["seatmaker"].waiting()))["result"]["payout"]
    assert payout == 700_000 * YUAN
    factor_piece = funded["result"]["piece_id"]
    ok(http.post(f"/receivables/{factor_piece}/redeem", headers=p["factor"].waiting()))
    assert ok(http.get(f"/invoices/{invoice_id}", headers=p["automaker"].headers))["state"] == "paid"


def test_a_payment_with_a_piece_answers_the_piece_the_payee_holds_whole_or_split(api: Api) -> None:
    p = cast(api, " (payments)")
    http = api.http
    body = invoice_to(p["automaker"], 10_000 * YUAN, due_in(60, api))
    invoice_id = ok(http.post("/invoices", json=body, headers=p["seatmaker"].waiting()))["result"]["invoice_id"]
    piece_id = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=p["automaker"].waiting()))["result"]["piece_id"]
    pay = {"to": p["foammaker"].id, "amount": 4_000 * YUAN}
    part = ok(http.post(f"/receivables/{piece_id}/transfers", json=pay, headers=p["seatmaker"].waiting()))
    assert part["result"]["piece_id"] not in (piece_id, None)
    pay["amount"] = 6_000 * YUAN  # all that is left
    whole = ok(http.post(f"/receivables/{piece_id}/transfers", json=pay, headers=p["seatmaker"].waiting()))
    assert whole["result"]["piece_id"] == piece_id
    assert [e["name"] for e in whole["result"]["events"]] == ["Transfer"]
    held = ok(http.get(f"/receivables/{piece_id}", headers=p["foammaker"].headers))
    assert held["value"] == 6_000 * YUAN


def test_assets_sent_to_a_ledger_contract_are_refused_as_a_broken_rule(api: Api) -> None:
    """The ledger's contracts are participants (the receivables contract holds repayments in escrow), but a
    piece or a deposit sent to one would be stuck there for good: 422 with the contract's error, nothing moved."""
    agent = api.onboard("Settlement bank 3", "settlement-agent")
    core = api.onboard("Dongfeng Trucks", "core-firm")
    supplier = api.onboard("Wuhan Axles", "supplier")
    ok(
        api.http.post(
            "/credit-lines",
            json={"core_firm": core.id, "limit": 1_000 * YUAN},
            headers={**api.operator_headers, **WAIT},
        )
    )
    body = {
        "buyer": core.id,
        "amount": 1_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000) + 7:020d}",
        "due_date": due_in(60, api),
    }
    invoice_id = ok(api.http.post("/invoices", json=body, headers=supplier.waiting()))["result"]["invoice_id"]
    piece_id = ok(api.http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting()))["result"]["piece_id"]
    contracts = ok(api.http.get("/health"))["contracts"]
    for name in ("Receivables", "DepositToken", "WarehouseReceipts"):
        for amount in (1 * YUAN, 1_000 * YUAN):  # part of the piece, the whole piece
            refused = problem(
                api.http.post(
                    f"/receivables/{piece_id}/transfers",
                    json={"to": contracts[name], "amount": amount},
                    headers=supplier.waiting(),
                ),
                422,
            )
            assert refused["type"] == "urn:scf:problem:contract:RegistryRecipientIsLedgerContract"
            assert refused["arguments"] == {"account": contracts[name].lower()}
        deposit = {"participant": contracts[name], "amount": 5 * YUAN, "bank_reference": f"wire to {name}"}
        refused = problem(api.http.post("/deposits", json=deposit, headers=agent.waiting()), 422)
        assert refused["error"] == "RegistryRecipientIsLedgerContract"
    piece = ok(api.http.get(f"/receivables/{piece_id}", headers=supplier.headers))
    assert (piece["owner"], piece["value"]) == (supplier.id, 1_000 * YUAN)


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(api: Api) -> None:
    agent = api.onboard("Settlement bank 2", "settlement-agent")
    holder = api.onboard("Holder", "supplier")
    body = {"participant": holder.id, "amount": 12_345, "bank_reference": "wire 1"}
    headers = agent.waiting(**{"Idempotency-Key": "deposit-1"})
    first = ok(api.http.post("/deposits", json=body, headers=headers))
    for _ in range(3):
        replay = api.http.post("/deposits", json=body, headers=headers)
        assert replay.json() == first and replay.headers["Idempotent-Replayed"] == "true"
    assert ok(api.http.get("/balances/me", headers=holder.headers))["balance"] == 12_345
    problem(api.http.post("/deposits", json={**body, "amount": 1}, headers=headers), 422)


def test_requests_without_valid_credentials_or_role_are_refused(api: Api) -> None:
    supplier = api.onboard("Some supplier", "supplier")
    problem(api.http.get("/balances/me"), 401)
    problem(api.http.get("/balances/me", headers={"Authorization": "Bearer scf_wrong"}), 401)
    problem(api.http.get("/balances/me", headers={"Authorization": "Bearer a.b.c"}), 401)
    body = {"name": "X", "credit_code": synthetic_credit_code(999_999), "roles": ["supplier"]}
    problem(api.http.post("/participants", json=body, headers=supplier.headers), 403)
    problem(
        api.http.post(
            "/deposits", json={"participant": supplier.id, "amount": 1, "bank_reference": "r"}, headers=supplier.headers
        ),
        403,
    )
    problem(api.http.post("/invoices", json={"buyer": "0x12", "amount": -5}, headers=supplier.headers), 422)


def test_api_keys_rotate_and_the_old_key_stops_working(api: Api) -> None:
    supplier = api.onboard("Rotating supplier", "supplier")
    new = ok(api.http.post(f"/participants/{supplier.id}/keys", headers=api.operator_headers), 201)
    assert new["revoked"] == 1
    problem(api.http.get("/balances/me", headers=supplier.headers), 401)
    ok(api.http.get("/balances/me", headers={"Authorization": f"Bearer {new['api_key']}"}))


def test_sign_in_with_an_ethereum_key_gives_a_token_and_a_challenge_is_single_use(api: Api) -> None:
    wallet = Account.create()
    supplier = api.onboard("Wallet supplier", "supplier", login_address=wallet.address)
    challenge = ok(api.http.post("/auth/challenge", json={"address": wallet.address}), 201)
    signature = wallet.sign_message(encode_defunct(text=challenge["message"])).signature.to_0x_hex()
    body = {"address": wallet.address, "nonce": challenge["nonce"], "signature": signature}
    token = ok(api.http.post("/auth/token", json=body))["access_token"]
    me = ok(api.http.get("/balances/me", headers={"Authorization": f"Bearer {token}"}))
    assert me["participant"] == supplier.id
    problem(api.http.post("/auth/token", json=body), 401)  # replayed challenge
    other = ok(api.http.post("/auth/challenge", json={"address": wallet.address}), 201)
    forged = Account.create().sign_message(encode_defunct(text=other["message"])).signature.to_0x_hex()
    problem(api.http.post("/auth/token", json={**body, "nonce": other["nonce"], "signature": forged}), 401)


def test_operation_resource_reports_status_and_only_to_its_owner(api: Api) -> None:
    agent = api.onboard("Settlement bank 3", "settlement-agent")
    holder = api.onboard("Holder 3", "supplier")
    accepted = api.http.post(
        "/deposits", json={"participant": holder.id, "amount": 7, "bank_reference": "w"}, headers=agent.headers
    )
    assert accepted.status_code in (200, 202), accepted.text
    location = accepted.headers["Location"]
    final = ok(api.http.get(location, headers={**agent.headers, **WAIT}))
    assert final["status"] == "confirmed" and final["result"]["amount"] == 7
    problem(api.http.get(location, headers=holder.headers), 404)
    ok(api.http.get("/health"))
    assert "scf_http_requests_total" in api.http.get("/metrics").text
    assert date.today()


def test_each_request_logs_its_request_id_caller_operation_and_transaction_hash(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    agent = api.onboard("Logging Settlement Bank", "settlement-agent")
    body = {"participant": agent.id, "amount": 1, "bank_reference": "log line"}
    with caplog.at_level(logging.INFO, logger="api"):
        answer = ok(api.http.post("/deposits", json=body, headers=agent.waiting(**{"X-Request-ID": "req-log-1"})))
    assert answer["status"] == "confirmed"
    lines = [r.getMessage() for r in caplog.records if r.name == "api" and "request_id=req-log-1" in r.getMessage()]
    assert len(lines) == 1, lines
    assert f"caller={agent.id}" in lines[0] and "status=200" in lines[0]
    assert f"operation_id={answer['operation_id']}" in lines[0] and f"tx_hash={answer['tx_hash']}" in lines[0]


def test_a_supplier_is_quoted_before_it_asks_the_price_the_contract_then_settles(api: Api) -> None:
    """A financier's standing terms (for one core firm, else for any) give the holder the discount, fee and price
    before it asks; approved with the same terms, the contract's own quote of the request is the same."""
    p = {
        "automaker": api.onboard("Quoted FAW", "core-firm"),
        "seatmaker": api.onboard("Quoted Seats", "supplier"),
        "foammaker": api.onboard("Quoted Foam", "supplier"),
        "factor": api.onboard("Quoted Factoring", "financier"),
    }
    http = api.http
    line = {"core_firm": p["automaker"].id, "limit": 10_000_000 * YUAN}
    ok(http.post("/credit-lines", json=line, headers={**api.operator_headers, **WAIT}))
    invoice = {
        "buyer": p["automaker"].id,
        "amount": 800_000 * YUAN + 33,
        "invoice_number": f"{int(time.time() * 1000) + 77:020d}",
        "due_date": due_in(75, api),
    }
    invoice_id = ok(http.post("/invoices", json=invoice, headers=p["seatmaker"].waiting()))["result"]["invoice_id"]
    piece_id = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=p["automaker"].waiting()))["result"]["piece_id"]
    asked = {"piece_id": piece_id, "amount": 500_000 * YUAN + 7, "financier": p["factor"].id}
    assert problem(http.get("/financing-quote", params=asked, headers=p["seatmaker"].headers), 404)["type"].endswith(
        "no-offer"
    )
    anyone = {"discount_rate_bps": 600, "fee": 0, "day_count_basis": 360}
    ok(http.put("/financing-offers", json=anyone, headers=p["factor"].headers))
    general = ok(http.get("/financing-quote", params=asked, headers=p["seatmaker"].headers))
    assert general["discount_rate_bps"] == 600 and general["day_count_basis"] == 360
    terms = {"core_firm": p["automaker"].id, "discount_rate_bps": 365, "fee": 100 * YUAN, "day_count_basis": 365}
    problem(http.put("/financing-offers", json=terms, headers=p["seatmaker"].headers), 403)  # a financier's only
    problem(http.put("/financing-offers", json={**terms, "day_count_basis": 364}, headers=p["factor"].headers), 422)
    ok(http.put("/financing-offers", json=terms, headers=p["factor"].headers))
    listed = ok(http.get("/financing-offers", params={"financier": p["factor"].id}, headers=p["seatmaker"].headers))
    assert {offer["core_firm"] for offer in listed["items"]} == {None, p["automaker"].id}
    for offer in listed["items"]:  # an RFC 3339 date-time, with its zone (SQLite gives the column back without)
        assert datetime.fromisoformat(offer["updated_at"]).tzinfo is not None, offer

    quoted = ok(http.get("/financing-quote", params=asked, headers=p["seatmaker"].headers))
    assert quoted["core_firm"] == p["automaker"].id and quoted["discount_rate_bps"] == 365  # the firm's own terms
    assert quoted["price"] == quoted["amount"] - quoted["discount"] - quoted["fee"] and quoted["fee"] == 100 * YUAN
    assert quoted["discount"] * 365 * 10_000 >= quoted["amount"] * 365 * quoted["days"]  # rounded up, never down
    problem(http.get("/financing-quote", params=asked, headers=p["foammaker"].headers), 404)  # not its piece
    too_much = {**asked, "amount": invoice["amount"] + 1}
    problem(http.get("/financing-quote", params=too_much, headers=p["seatmaker"].headers), 422)

    # The request carries the quote it was shown as the most it accepts.
    accepted = {**asked, "max_discount_rate_bps": quoted["discount_rate_bps"], "max_fee": quoted["fee"]}
    request_id = ok(http.post("/financing-requests", json=accepted, headers=p["seatmaker"].waiting()))["result"][
        "request_id"
    ]
    approval = {key: terms[key] for key in ("discount_rate_bps", "fee", "day_count_basis")}
    ok(http.post(f"/financing-requests/{request_id}/approve", json=approval, headers=p["factor"].waiting()))
    settled = ok(http.get(f"/financing-requests/{request_id}", headers=p["seatmaker"].headers))["quote"]
    assert settled == {key: quoted[key] for key in ("discount", "fee", "price")}


def test_a_receivable_of_more_than_six_months_is_financed_only_with_the_financiers_credit_review(api: Api) -> None:
    """银发〔2025〕77号: beyond the review tenor (`GET /rules`), the approval carries the financier's credit review,
    recorded on chain and shown with the request."""
    p = {
        "agent": api.onboard("Reviewed Settlement", "settlement-agent"),
        "automaker": api.onboard("Reviewed FAW", "core-firm"),
        "seatmaker": api.onboard("Reviewed Seats", "supplier"),
        "factor": api.onboard("Reviewed Factoring", "financier"),
    }
    http = api.http
    deposit = {"participant": p["factor"].id, "amount": 200_000 * YUAN, "bank_reference": "opening reviewed factor"}
    ok(http.post("/deposits", json=deposit, headers=p["agent"].waiting()))
    line = {"core_firm": p["automaker"].id, "limit": 10_000_000 * YUAN}
    ok(http.post("/credit-lines", json=line, headers={**api.operator_headers, **WAIT}))
    review_tenor = ok(http.get("/rules", headers=p["seatmaker"].headers))["review_tenor"]
    invoice = {
        "buyer": p["automaker"].id,
        "amount": 100_000 * YUAN,
        "invoice_number": f"{int(time.time() * 1000) + 91:020d}",
        "due_date": due_in(review_tenor // 86_400 + 30, api),
    }
    invoice_id = ok(http.post("/invoices", json=invoice, headers=p["seatmaker"].waiting()))["result"]["invoice_id"]
    piece_id = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=p["automaker"].waiting()))["result"]["piece_id"]
    asked = {
        "piece_id": piece_id,
        "amount": 100_000 * YUAN,
        "financier": p["factor"].id,
        "max_discount_rate_bps": 500,
        "max_fee": 0,
    }
    request_id = ok(http.post("/financing-requests", json=asked, headers=p["seatmaker"].waiting()))["result"][
        "request_id"
    ]
    terms = {"discount_rate_bps": 500, "fee": 0}
    path = f"/financing-requests/{request_id}/approve"
    refused = problem(http.post(path, json=terms, headers=p["factor"].waiting()), 422)
    assert refused["error"] == "ReceivablesFinancingReviewRequired"
    for bad in ("0x" + "00" * 32, "0x" + "ab" * 31, "ab" * 32):
        problem(http.post(path, json={**terms, "review": bad}, headers=p["factor"].waiting()), 422)
    review = "0x" + "ab" * 32
    ok(http.post(path, json={**terms, "review": review}, headers=p["factor"].waiting()))
    shown = ok(http.get(f"/financing-requests/{request_id}", headers=p["seatmaker"].headers))
    assert (shown["state"], shown["review"]) == ("approved", review)
    [listed] = [
        r for r in ok(http.get("/financing-requests", headers=p["factor"].headers))["items"] if r["id"] == request_id
    ]
    assert (listed["review"], listed["max_discount_rate_bps"], int(listed["max_fee"])) == (review, 500, 0)
    funded = ok(http.post(f"/financing-requests/{request_id}/fund", headers=p["factor"].waiting()))
    assert funded["status"] == "confirmed"
