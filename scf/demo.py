"""``scf demo``: the whole story against a running service, over HTTP only, printed as a timeline.

It onboards a core firm that keeps its own key (self-custody: it signs each of its acts, the service relays
them), two tiers of suppliers, a financier, a warehouse, a regulator and the settlement
agent; tier 1 invoices the core firm, which confirms; tier 1 pays tier 2 with part of the receivable; tier 2
has its piece financed (the terms and the discount worked out in the open); a warehouse issues a receipt, the
owner pledges it, a second pledge is refused; the clock moves to maturity; the core firm repays and the
holders redeem; the loan is repaid with its interest (worked out in the open) and the lien released. Every
participant is new (credit codes drawn from the clock), so the demo can run again and again on the same ledger.

The clock: the invoice falls due in 90 days. On a local development chain (anvil, chain id 31337) the demo moves
the chain's clock forward :data:`CLOCK_MOVE_DAYS` days (``evm_increaseTime``) to reach it, and says so before it
does; the move is permanent: every later block of that chain is stamped that much later, so each run of the demo
puts the local chain's time another 91 days ahead of the wall clock. On any other chain it never touches the
clock: the core firm repays before maturity (the contracts allow it) and the loan runs for the seconds the demo
takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from ledger import acts
from ledger.identifiers import synthetic_credit_code

YUAN = 100
WAIT = {"Prefer": "wait=30"}
DAY = 86_400
BPS = 10_000
LOCAL_CHAIN_ID = 31337
"""anvil's default chain id: the only chain whose clock the demo moves (and only when the node is anvil)."""
INVOICE_TENOR_DAYS = 90
CLOCK_MOVE_DAYS = 91
"""How far the demo moves a local chain's clock: a day past the invoice's maturity."""


class DemoError(RuntimeError):
    """A step of the demo did not answer as expected."""


def yuan(fen: int) -> str:
    return f"¥{fen // YUAN:,}.{fen % YUAN:02d}"


def percent(bps: int) -> str:
    return f"{bps / 100:.2f}% a year ({bps:,} bps)"


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def day_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def event_args(operation: dict[str, Any], name: str) -> dict[str, Any]:
    """The arguments of the first event ``name`` in an operation's result."""
    for event in operation["result"]["events"]:
        if event["name"] == name:
            return dict(event["args"])
    raise DemoError(f"{operation['kind']}: no {name} event in {operation['result']['events']}")


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

    def onboard_self_custody(self, name: str, role: str, key: LocalAccount) -> tuple[str, dict[str, str]]:
        """Onboard a participant that keeps its key: it proves possession by signing the ledger's text."""
        self.serial += 1
        code = synthetic_credit_code(self.serial)
        message = self.call(
            "GET",
            "/participants/possession-message",
            self.operator,
            params={"address": key.address, "credit_code": code},
        )["message"]
        proof = key.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
        body = {"name": name, "credit_code": code, "roles": [role], "address": key.address, "proof": proof}
        created = self.call("POST", "/participants", self.operator, 201, json=body)
        self.step(f"onboarded {name} as {role}, self-custody: {key.address} (the service holds no key of it)")
        return key.address, {"Authorization": f"Bearer {created['api_key']}"}

    def act(self, method: str, path: str, headers: dict[str, str], key: LocalAccount, **kwargs: Any) -> Any:
        """A request by a self-custody participant: the service answers 428 with the act to sign; the
        participant checks it, signs it with its own key (here, in this process) and posts it to /acts."""
        response = self.http.request(method, path, headers={**headers, **WAIT}, **kwargs)
        if response.status_code != 428:
            raise DemoError(
                f"{method} {path}: expected 428 signature-required, got {response.status_code}: {response.text}"
            )
        asked = response.json()
        document = asked["typed_data"]
        if "0x" + acts.digest(document).hex() != asked["digest"]:
            raise DemoError("the service's digest is not the act's: refusing to sign")
        self.step(f"  signing with its own key: {asked['sentence']}")
        signature = acts.sign(document, key).hex()
        return self.call("POST", "/acts", headers, json={"typed_data": document, "signature": "0x" + signature})

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in answer:
            raise DemoError(f"the chain refused {method}: {answer['error']}")
        return answer["result"]

    def chain_time(self, block: int | str = "latest") -> int:
        number = block if isinstance(block, str) else hex(block)
        return int(self.rpc("eth_getBlockByNumber", [number, False])["timestamp"], 16)

    def is_local_dev_chain(self, chain_id: object) -> bool:
        """A local anvil with the development chain id: the only kind of chain whose clock the demo moves."""
        if chain_id != LOCAL_CHAIN_ID:
            return False
        try:
            client = str(self.rpc("web3_clientVersion", []))
        except (DemoError, httpx.HTTPError, KeyError, ValueError):
            return False
        return client.lower().startswith("anvil")

    def move_clock(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])

    def due_date(self, days: int) -> str:
        return (datetime.fromtimestamp(self.chain_time(), UTC).date() + timedelta(days=days)).isoformat()

    # -- the story ----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        health = self.http.get("/health").json()
        self.step(f"service up: chain {health.get('chain_id')}, head block {health.get('head')}")
        local = self.is_local_dev_chain(health.get("chain_id"))
        if local:
            self.step(
                f"this is a local development chain (anvil, chain id {LOCAL_CHAIN_ID}): to show repayment at "
                f"maturity, the demo will move the chain's clock forward {CLOCK_MOVE_DAYS} days, once, after the "
                "financing and the pledge; the move is permanent (every later block of this chain is stamped that "
                f"much later, so each run puts the chain {CLOCK_MOVE_DAYS} more days ahead of the wall clock)"
            )
        else:
            self.step(
                "this is not a local development chain: the demo leaves its clock alone, so the core firm repays "
                "before maturity and the loan runs only for the seconds the demo takes"
            )
        _, agent = self.onboard("Bank of Changchun settlement desk", "settlement-agent")
        faw_key = Account.create()  # FAW's own key, on FAW's machine: the service never sees it
        faw_id, faw = self.onboard_self_custody("FAW Automotive Co., Ltd.", "core-firm", faw_key)
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
            "due_date": self.due_date(INVOICE_TENOR_DAYS),
        }
        invoice_id = self.call("POST", "/invoices", seats, json=invoice)["result"]["invoice_id"]
        self.step(f"tier 1 registered invoice #{invoice_id} of {yuan(amount)} on FAW, due {invoice['due_date']}")
        confirmed = self.act("POST", f"/invoices/{invoice_id}/confirm", faw, faw_key)
        piece = confirmed["result"]["piece_id"]
        self.step(f"FAW confirmed it, by its own signature: receivable piece #{piece} held by tier 1")
        evidence = self.call("GET", f"/operations/{confirmed['operation_id']}/evidence", faw)
        self.step(
            f"  evidence from the chain: {evidence['act']} signed by {evidence['signer']}, digest "
            f"{evidence['digest'][:18]}… (verifies: {evidence['digest_matches']})"
        )
        split = self.call(
            "POST", f"/receivables/{piece}/transfers", seats, json={"to": foam_id, "amount": 300_000 * YUAN}
        )["result"]["piece_id"]
        self.step(f"tier 1 paid tier 2 with {yuan(300_000 * YUAN)} of it: piece #{split} (parent #{piece})")
        funded_piece = self.finance(invoice_id, split, 300_000 * YUAN, foam, bank_id, bank, seats)

        pledge_id, receipt_id, funded_at = self.pledge(depot, steel_id, steel, bank_id, bank)

        if local:
            self.move_clock(CLOCK_MOVE_DAYS * DAY)
            self.step(
                f"moved the chain's clock forward {CLOCK_MOVE_DAYS} days (anvil evm_increaseTime): it is now "
                f"{day_of(self.chain_time())}, past the invoice's maturity; the loan has run as long"
            )
        self.act("POST", "/settlement-approvals", faw, faw_key, json={"spender_contract": "receivables"})
        self.act("POST", f"/obligations/{invoice_id}/repayments", faw, faw_key, json={"amount": amount})
        self.step(f"FAW repaid {yuan(amount)}{'' if local else ' (before maturity: the clock was not moved)'}")
        for holder, headers, piece_id in (("tier 1", seats, piece), ("Northeast Factoring", bank, funded_piece)):
            payout = self.call("POST", f"/receivables/{piece_id}/redeem", headers)["result"]["payout"]
            self.step(f"{holder} redeemed piece #{piece_id}: {yuan(payout)}")

        self.repay_pledge(pledge_id, funded_at, steel)
        events = self.call("GET", "/audit/events?size=1", regulator)
        self.step(f"the regulator sees {events['total']} events on the ledger")
        return {"invoice_id": invoice_id, "receipt_id": receipt_id, "pledge_id": pledge_id}

    def finance(
        self,
        invoice_id: int,
        piece: int,
        amount: int,
        holder: dict[str, str],
        financier_id: str,
        financier: dict[str, str],
        reader: dict[str, str],
    ) -> int:
        """Tier 2 sells its piece to the financier at a discount; the terms and the discount arithmetic printed."""
        terms = {"discount_rate_bps": 600, "fee": 500 * YUAN, "day_count_basis": 365}
        request_id = self.call(
            "POST",
            "/financing-requests",
            holder,
            json={"piece_id": piece, "amount": amount, "financier": financier_id},
        )["result"]["request_id"]
        self.call("POST", f"/financing-requests/{request_id}/approve", financier, json=terms)
        self.step(
            f"financing terms approved by Northeast Factoring: discount rate {percent(terms['discount_rate_bps'])}, "
            f"day count actual/{terms['day_count_basis']}, fee {yuan(terms['fee'])}"
        )
        operation = self.call("POST", f"/financing-requests/{request_id}/fund", financier)
        funded = event_args(operation, "FinancingFunded")
        funded_at = self.chain_time(int(operation["block_number"]))
        maturity = int(self.call("GET", f"/invoices/{invoice_id}", reader)["due_date"])
        days = ceil_div(max(maturity - funded_at, 0), DAY)
        numerator = amount * terms["discount_rate_bps"] * days
        denominator = terms["day_count_basis"] * BPS
        discount = ceil_div(numerator, denominator)
        self.step(
            f"tenor: funded {day_of(funded_at)}, maturity {day_of(maturity)}: {days} days (whole days, counted up)"
        )
        self.step(
            f"discount = {yuan(amount)} × {terms['discount_rate_bps']} bps × {days} days / "
            f"({terms['day_count_basis']} × 10,000) = {yuan(discount)} (rounded up to the fen); "
            f"price = {yuan(amount)} − {yuan(discount)} − fee {yuan(terms['fee'])} = "
            f"{yuan(amount - discount - terms['fee'])}"
        )
        if (funded["discount"], funded["price"]) != (discount, amount - discount - terms["fee"]):
            raise DemoError(f"the ledger charged discount {funded['discount']} and paid {funded['price']}")
        self.step(
            f"tier 2 financed its piece: paid {yuan(funded['price'])} against piece #{funded['pieceId']}, the piece "
            "and the cash moving in one transaction"
        )
        return int(funded["pieceId"])

    def pledge(
        self, depot: dict[str, str], steel_id: str, steel: dict[str, str], bank_id: str, bank: dict[str, str]
    ) -> tuple[int, int, int]:
        """A receipt issued, pledged and funded, a second pledge refused: (pledge id, receipt id, funded at)."""
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
        funded = event_args(self.call("POST", f"/pledges/{pledge_id}/fund", bank), "PledgeFunded")
        self.step(
            f"the steel trader pledged it to Northeast Factoring and received {yuan(pledge['principal'])}: interest "
            f"{percent(pledge['rate_bps'])}, actual/365 by the second, due {pledge['due_date']}"
        )
        second = self.http.post("/pledges", json={**pledge, "financier": bank_id}, headers={**steel, **WAIT})
        if second.status_code != 409:
            raise DemoError(f"a second pledge of the same receipt answered {second.status_code}: {second.text}")
        self.step(f"a second pledge of the same receipt was refused: 409 {second.json().get('error')}")
        return int(pledge_id), int(receipt_id), int(funded["fundedAt"])

    def repay_pledge(self, pledge_id: int, funded_at: int, steel: dict[str, str]) -> None:
        """Everything owed repaid; the interest arithmetic printed."""
        loan = self.call("GET", f"/pledges/{pledge_id}", steel)
        principal, rate = int(loan["principal"]), int(loan["rate_bps"])
        repaid = event_args(
            self.call("POST", f"/pledges/{pledge_id}/repay", steel, json={"amount": None}), "PledgeRepaid"
        )
        elapsed = int(repaid["paidAt"]) - funded_at
        interest = ceil_div(principal * rate * elapsed, 365 * DAY * BPS)
        self.step(
            f"the loan ran {elapsed:,} s ({elapsed / DAY:.2f} days): interest = {yuan(principal)} × {rate} bps × "
            f"{elapsed:,} s / ({365 * DAY:,} s × 10,000) = {yuan(interest)} (rounded up to the fen)"
        )
        if (int(repaid["interestPaid"]), int(repaid["principalPaid"])) != (interest, principal):
            raise DemoError(f"the ledger charged interest {repaid['interestPaid']} on {repaid['principalPaid']}")
        self.step(
            f"the steel trader repaid {yuan(int(repaid['amount']))} (principal {yuan(principal)} + interest "
            f"{yuan(interest)}) and the lien was released"
        )
