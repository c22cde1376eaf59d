"""``scf demo``: the whole story against a running service, over HTTP only, printed as a timeline.

It onboards a core firm, two tiers of suppliers, a financier, a warehouse, a regulator and the settlement
agent; tier 1 invoices the core firm, which confirms; tier 1 pays tier 2 with part of the receivable; tier 2
has its piece financed; the clock moves to maturity (anvil's ``evm_increaseTime``, local chain only); the core
firm repays and the holders redeem; then a warehouse issues a receipt, the owner pledges it, a second pledge
is refused, the loan is repaid and the lien released. Every participant is new (credit codes drawn from the
clock), so the demo can run again and again on the same ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ledger.identifiers import synthetic_credit_code

YUAN = 100
WAIT = {"Prefer": "wait=30"}


class DemoError(RuntimeError):
    """A step of the demo did not answer as expected."""


def yuan(fen: int) -> str:
    return f"¥{fen // YUAN:,}.{fen % YUAN:02d}"


class Demo:
    def __init__(self, base_url: str, operator_key: str, rpc_url: str, say: Callable[[str], None]) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.operator = {"Authorization": f"Bearer {operator_key}"}
        self.rpc_url = rpc_url
        self.say = say
        self.started = time.monotonic()
        self.serial = int(time.time()) % 10_000_000 * 10

    # -- plumbing -----------------------------------------------------------------------------------

    def step(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    def call(self, method: str, path: str, headers: dict[str, str], expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers={**headers, **WAIT}, **kwargs)
        if response.status_code != expect:
            raise DemoError(f"{method} {path}: expected {expect}, got {response.status_code}: {response.text}")
        return response.json()

    def onboard(self, name: str, role: str) -> tuple[str, dict[str, str]]:
        self.serial += 1
        body = {"name": name, "credit_code": synthetic_credit_code(self.serial), "roles": [role]}
        created = self.call("POST", "/participants", self.operator, 201, json=body)
        address = created["participant"]["id"]
        self.step(f"onboarded {name} as {role}: {address}")
        return address, {"Authorization": f"Bearer {created['api_key']}"}

    def chain_time(self) -> int:
        answer = httpx.post(
            self.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]},
        ).json()
        return int(answer["result"]["timestamp"], 16)

    def move_clock(self, seconds: int) -> None:
        for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
            answer = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            if "error" in answer.json():
                raise DemoError(f"the chain refused {method} (moving the clock works on the local anvil only)")

    def due_date(self, days: int) -> str:
        return (datetime.fromtimestamp(self.chain_time(), UTC).date() + timedelta(days=days)).isoformat()

    # -- the story ----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        health = self.http.get("/health").json()
        self.step(f"service up: chain {health.get('chain_id')}, head block {health.get('head')}")
        _, agent = self.onboard("Bank of Changchun settlement desk", "settlement-agent")
        faw_id, faw = self.onboard("FAW Automotive Co., Ltd.", "core-firm")
        _, seats = self.onboard("Changchun Seat Systems (tier 1)", "supplier")
        foam_id, foam = self.onboard("Jilin Foam Materials (tier 2)", "supplier")
        bank_id, bank = self.onboard("Northeast Factoring Co.", "financier")
        _, depot = self.onboard("Changchun Bonded Logistics (warehouse)", "warehouse")
        steel_id, steel = self.onboard("Jilin Steel Trading", "supplier")
        _, regulator = self.onboard("Jilin Financial Regulatory Bureau", "regulator")

        for who, amount in ((faw_id, 20_000_000 * YUAN), (bank_id, 20_000_000 * YUAN), (steel_id, 500_000 * YUAN)):
            self.call(
                "POST",
                "/deposits",
                agent,
                json={"participant": who, "amount": amount, "bank_reference": f"wire {who[:10]}"},
            )
        self.step("settlement agent credited deposit tokens against bank wires")
        self.call("POST", "/credit-lines", bank, json={"core_firm": faw_id, "limit": 50_000_000 * YUAN})
        self.step(f"Northeast Factoring granted FAW a credit line of {yuan(50_000_000 * YUAN)}")

        amount = 1_000_000 * YUAN
        invoice: dict[str, Any] = {
            "buyer": faw_id,
            "amount": amount,
            "currency": "CNY",
            "invoice_number": f"{int(time.time() * 1000):020d}",
            "due_date": self.due_date(90),
        }
        invoice_id = self.call("POST", "/invoices", seats, json=invoice)["result"]["invoice_id"]
        self.step(f"tier 1 registered invoice #{invoice_id} of {yuan(amount)} on FAW, due {invoice['due_date']}")
        piece = self.call("POST", f"/invoices/{invoice_id}/confirm", faw)["result"]["piece_id"]
        self.step(f"FAW confirmed it: receivable piece #{piece} held by tier 1")
        split = self.call(
            "POST", f"/receivables/{piece}/transfers", seats, json={"to": foam_id, "amount": 300_000 * YUAN}
        )["result"]["piece_id"]
        self.step(f"tier 1 paid tier 2 with {yuan(300_000 * YUAN)} of it: piece #{split} (parent #{piece})")
        request_id = self.call(
            "POST",
            "/financing-requests",
            foam,
            json={"piece_id": split, "amount": 300_000 * YUAN, "financier": bank_id},
        )["result"]["request_id"]
        self.call(
            "POST",
            f"/financing-requests/{request_id}/approve",
            bank,
            json={"discount_rate_bps": 600, "fee": 500 * YUAN},
        )
        funded = self.call("POST", f"/financing-requests/{request_id}/fund", bank)["result"]
        self.step(
            f"tier 2 financed its piece: paid {yuan(funded['price'])} (discount {yuan(funded['discount'])}, "
            f"fee {yuan(funded['fee'])}) against piece #{funded['piece_id']}, in one transaction"
        )
        self.move_clock(91 * 86_400)
        self.step("the clock moved 91 days: the obligation is due")
        self.call("POST", f"/obligations/{invoice_id}/repayments", faw, json={"amount": amount})
        self.step(f"FAW repaid {yuan(amount)}")
        for holder, headers, piece_id in (("tier 1", seats, piece), ("Northeast Factoring", bank, funded["piece_id"])):
            payout = self.call("POST", f"/receivables/{piece_id}/redeem", headers)["result"]["payout"]
            self.step(f"{holder} redeemed piece #{piece_id}: {yuan(payout)}")

        valuation = 4_000_000 * YUAN
        receipt: dict[str, Any] = {
            "owner": steel_id,
            "lot_number": f"CC-{self.serial}",
            "goods_description": "hot-rolled steel coil Q235B",
            "quantity": 1_000,
            "unit": "tonne",
            "valuation": valuation,
            "expiry": self.due_date(365),
        }
        receipt_id = self.call("POST", "/warehouse-receipts", depot, json=receipt)["result"]["receipt_id"]
        self.step(f"the warehouse issued receipt {str(receipt_id)[:12]}… for 1,000 t of coil valued {yuan(valuation)}")
        pledge = {
            "receipt_id": receipt_id,
            "financier": bank_id,
            "principal": 2_000_000 * YUAN,
            "rate_bps": 600,
            "due_date": self.due_date(180),
        }
        pledge_id = self.call("POST", "/pledges", steel, json=pledge)["result"]["pledge_id"]
        self.call("POST", f"/pledges/{pledge_id}/fund", bank)
        self.step(f"the steel trader pledged it to Northeast Factoring and received {yuan(pledge['principal'])}")
        second = self.http.post("/pledges", json={**pledge, "financier": bank_id}, headers={**steel, **WAIT})
        if second.status_code != 409:
            raise DemoError(f"a second pledge of the same receipt answered {second.status_code}: {second.text}")
        self.step(f"a second pledge of the same receipt was refused: 409 {second.json().get('error')}")
        self.call("POST", f"/pledges/{pledge_id}/repay", steel, json={"amount": None})
        self.step("the loan was repaid with interest and the lien released")
        events = self.call("GET", "/audit/events?size=1", regulator)
        self.step(f"the regulator sees {events['total']} events on the ledger")
        return {"invoice_id": invoice_id, "receipt_id": receipt_id, "pledge_id": pledge_id}
