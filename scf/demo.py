"""``scf demo``: the whole story against a running service, over HTTP, printed as a timeline.

It onboards a core firm that keeps its own key (self-custody: it signs each of its acts, the service relays
them), a financier whose account is a 2-of-3 Safe (self-custody by a contract account: any two of its three
owners sign each act), two tiers of suppliers, a warehouse, a regulator and the settlement agent; tier 1
invoices the core firm, which confirms; tier 1 pays tier 2 with part of the receivable; tier 2 has its piece
financed (the terms and the discount worked out in the open; the financier's clerk signs each act alone and is
refused, its officer adds the second signature and the act goes through); a warehouse issues a receipt, the
owner pledges it, a second pledge is refused; the clock moves to maturity; the core firm repays and the
holders redeem; the loan is repaid with its interest (worked out in the open) and the lien released. Every
participant is new (credit codes drawn from the clock), so the demo can run again and again on the same ledger.

The financier's Safe: the demo deploys the Safe 1.4.1 contracts (compiled by the project from
``@safe-global/safe-contracts``) and creates the Safe through the chain's JSON-RPC before it onboards anyone,
paying the gas from a key of the financier's own: on a local development chain a fresh key that anvil gives test
ether (``anvil_setBalance``), on any other chain the key given as ``--safe-payer-key`` (``SCF_DEMO_SAFE_PAYER_KEY``),
without which the demo stops before it has onboarded anyone. Everything else goes over HTTP.

The clock: the invoice falls due in 90 days. On a local development chain (anvil, chain id 31337) the demo moves
the chain's clock forward :data:`CLOCK_MOVE_DAYS` days (``evm_increaseTime``) to reach it, and says so before it
does; the move is permanent: every later block of that chain is stamped that much later, so each run of the demo
puts the local chain's time another 91 days ahead of the wall clock. On any other chain it never touches the
clock: the core firm repays before maturity (the contracts allow it) and the loan runs for the seconds the demo
takes.

The regulator: the regulator role is outside the operator's power (docs/design.md, invariant 10): the first
regulator is named when the contracts are deployed, and only a regulator admits another. On the local chain the
service hosts that first regulator's key (anvil's dev account 9, a public key, for the demo only), so onboarding
the Jilin regulator works: the operator registers it and the hosted regulator admits it. On any other chain the
service holds no regulator's key and answers 403 ``RegistryRoleNotOperatorManaged``; the demo says so and reads
the event log as the operator instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from ledger import acts
from ledger.compiler import CompilationError, compile_contracts
from ledger.identifiers import synthetic_credit_code
from ledger.node import ChainError, connect
from ledger.safe import SAFE_VERSION, SafeError, create_safe, deploy_safe_infrastructure, safe_owners, safe_signature
from scf.client import SIGNATURE_REQUIRED, ClientError, check_act
from scf.examples import receipt_elements

YUAN = 100
WAIT = {"Prefer": "wait=30"}
DAY = 86_400
BPS = 10_000
LOCAL_CHAIN_ID = 31337
"""anvil's default chain id: the only chain whose clock the demo moves (and only when the node is anvil)."""
INVOICE_TENOR_DAYS = 90
CLOCK_MOVE_DAYS = 91
"""How far the demo moves a local chain's clock: a day past the invoice's maturity."""
SAFE_THRESHOLD = 2
"""How many of the financier's three Safe owners sign each of its acts."""
PAYER_TEST_WEI = 100 * 10**18
"""The test ether anvil gives the key that pays for the financier's Safe on a local development chain."""


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


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def readable(sentence: str) -> str:
    """An act's sentence for the timeline: a 256-bit id (a warehouse receipt's) cut to its first 12 digits, as the
    timeline shows it elsewhere."""
    return re.sub(r"(?<![0-9A-Fa-fx])\d{21,}(?![0-9A-Fa-f])", lambda number: number[0][:12] + "…", sentence)


def event_args(operation: dict[str, Any], name: str) -> dict[str, Any]:
    """The arguments of the first event ``name`` in an operation's result."""
    for event in operation["result"]["events"]:
        if event["name"] == name:
            return dict(event["args"])
    raise DemoError(f"{operation['kind']}: no {name} event in {operation['result']['events']}")


@dataclass(frozen=True)
class SafeAccount:
    """A participant's Safe and the keys of its three owners, by their desk; any two of them sign an act."""

    holder: str
    """The participant's name, for the timeline."""
    address: ChecksumAddress
    clerk: LocalAccount
    """经办: prepares each act and signs it first."""
    officer: LocalAccount
    """复核: checks what the clerk prepared and adds the second signature."""
    head: LocalAccount
    """负责人, the desk's head: the third owner, who signs in place of either when one is away."""
    w3: Web3

    def signature(self, digest: bytes, signers: Sequence[LocalAccount]) -> str:
        """The Safe's ERC-1271 signature of ``digest`` by ``signers``, 0x-hex, as ``POST /acts`` takes it."""
        return "0x" + safe_signature(self.w3, self.address, digest, signers).hex()


class Demo:
    def __init__(
        self,
        base_url: str,
        operator_key: str,
        rpc_url: str,
        say: Callable[[str], None],
        safe_payer_key: str | None = None,
    ) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.operator = {"Authorization": f"Bearer {operator_key}"}
        self.rpc_url = rpc_url
        self.say = say
        self.safe_payer_key = safe_payer_key
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

    def onboard_regulator(self, name: str) -> dict[str, str] | None:
        """Onboard a regulator: the operator registers it and the regulator named at deployment admits it, which
        the service does only where it hosts that regulator's key (the local chain). Elsewhere the registry's
        refusal comes back (403 ``RegistryRoleNotOperatorManaged``), and the demo goes on without one."""
        self.serial += 1
        body = {"name": name, "credit_code": synthetic_credit_code(self.serial), "roles": ["regulator"]}
        response = self.http.post("/participants", json=body, headers={**self.operator, **WAIT})
        if response.status_code == 403 and response.json().get("error") == "RegistryRoleNotOperatorManaged":
            self.step(
                f"{name} not onboarded: the operator cannot grant the regulator role (403 "
                "RegistryRoleNotOperatorManaged), and this service hosts no regulator's key to admit it; a "
                "regulator admits regulators from its own key"
            )
            return None
        if response.status_code != 201:
            raise DemoError(f"POST /participants: expected 201, got {response.status_code}: {response.text}")
        created = response.json()
        self.step(
            f"onboarded {name} as regulator: {created['participant']['id']} (registered by the operator, admitted "
            "by the regulator named at deployment, whose key this local service hosts)"
        )
        return {"Authorization": f"Bearer {created['api_key']}"}

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

    def create_safe_account(self, holder: str, chain_id: int, local: bool) -> SafeAccount:
        """``holder``'s 2-of-3 Safe, created on chain before anyone is onboarded (see the module's docstring)."""
        payer, paid_by = self.safe_payer(local)
        clerk, officer, head = (Account.create() for _ in range(3))  # each owner's key on its owner's machine
        try:
            w3 = connect(self.rpc_url, chain_id)
            infra = deploy_safe_infrastructure(w3, payer, compile_contracts())
            address = create_safe(w3, infra, [clerk.address, officer.address, head.address], SAFE_THRESHOLD, payer)
            on_chain = safe_owners(w3, address)
        except (ChainError, CompilationError, SafeError) as exc:
            raise DemoError(f"{holder}'s Safe could not be created: {exc}") from exc
        self.step(
            f"deployed the Safe {SAFE_VERSION} contracts (from @safe-global/safe-contracts) on this chain: "
            f"singleton {short(infra.singleton)}, proxy factory {short(infra.proxy_factory)}, fallback handler "
            f"{short(infra.fallback_handler)}; gas paid by {paid_by}"
        )
        self.step(
            f"created {holder}'s Safe {address}: the chain says {on_chain.threshold} of "
            f"{len(on_chain.owners)} owners sign: 经办 clerk {short(clerk.address)}, 复核 officer "
            f"{short(officer.address)}, 负责人 head of desk {short(head.address)}"
        )
        return SafeAccount(holder, address, clerk, officer, head, w3)

    def safe_payer(self, local: bool) -> tuple[LocalAccount, str]:
        """The key that pays for the Safe, and how it came by its gas money."""
        if self.safe_payer_key:
            try:
                payer: LocalAccount = Account.from_key(self.safe_payer_key)
            except ValueError:
                raise DemoError("--safe-payer-key is not a private key (32 bytes, hex)") from None
            return payer, f"the key of --safe-payer-key, {payer.address}"
        if not local:
            raise DemoError(
                "this is not a local development chain: the financier's Safe needs a key with gas money to create "
                "it; give one as --safe-payer-key (or SCF_DEMO_SAFE_PAYER_KEY). Nothing was onboarded."
            )
        payer = Account.create()
        self.rpc("anvil_setBalance", [payer.address, hex(PAYER_TEST_WEI)])
        return payer, f"a fresh key of its own, {short(payer.address)}, given test ether by anvil (anvil_setBalance)"

    def onboard_safe(self, role: str, safe: SafeAccount) -> dict[str, str]:
        """Onboard a participant whose account is a Safe: two of its owners sign the proof of possession, which
        the service checks with the Safe (ERC-1271)."""
        self.serial += 1
        code = synthetic_credit_code(self.serial)
        message = self.call(
            "GET",
            "/participants/possession-message",
            self.operator,
            params={"address": safe.address, "credit_code": code},
        )["message"]
        proof = safe.signature(acts.possession_hash(message), [safe.clerk, safe.officer])
        body = {"name": safe.holder, "credit_code": code, "roles": [role], "address": safe.address, "proof": proof}
        created = self.call("POST", "/participants", self.operator, 201, json=body)
        self.step(
            f"onboarded {safe.holder} as {role}, self-custody by its Safe: {safe.address} (the service holds no key "
            "of it; the clerk and the officer signed the proof of possession)"
        )
        return {"Authorization": f"Bearer {created['api_key']}"}

    def signature_required(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        """A self-custody participant's request: the service answers 428 with the act to sign."""
        response = self.http.request(method, path, headers={**headers, **WAIT}, **kwargs)
        if response.status_code != 428 or response.json().get("type") != SIGNATURE_REQUIRED:
            raise DemoError(
                f"{method} {path}: expected 428 signature-required, got {response.status_code}: {response.text}"
            )
        return dict(response.json())

    def checked(self, asked: dict[str, Any], account: str) -> dict[str, Any]:
        """The act's typed data, once checked as ``scf client`` checks it before signing (:func:`check_act`)."""
        try:
            return check_act(asked, account)[1]
        except ClientError as exc:
            raise DemoError(f"refusing to sign: {exc}") from None

    def act(self, method: str, path: str, headers: dict[str, str], key: LocalAccount, **kwargs: Any) -> Any:
        """A request by a self-custody participant: the service answers 428 with the act to sign; the
        participant checks it, signs it with its own key (here, in this process) and posts it to /acts."""
        asked = self.signature_required(method, path, headers, **kwargs)
        document = self.checked(asked, key.address)
        self.step(f"  signing with its own key: {readable(asked['sentence'])}")
        signature = acts.sign(document, key).hex()
        return self.call("POST", "/acts", headers, json={"typed_data": document, "signature": "0x" + signature})

    def safe_act(
        self, method: str, path: str, headers: dict[str, str], safe: SafeAccount, *, show: bool = False, **kwargs: Any
    ) -> Any:
        """A request by the Safe's participant: the service answers 428 with the act; the clerk (经办) checks and
        signs it, the officer (复核) checks it and adds the second signature, and the two make the Safe's
        signature, which the ``SignedActs`` contract checks with the Safe (ERC-1271). With ``show``, the clerk's
        signature is first posted alone, to show that it is refused, and the act's evidence is printed."""
        asked = self.signature_required(method, path, headers, **kwargs)
        document = self.checked(asked, safe.address)
        digest = acts.digest(document)
        sentence = readable(asked["sentence"])

        def signed_by(*owners: LocalAccount) -> dict[str, Any]:
            return {"typed_data": document, "signature": safe.signature(digest, owners)}

        if not show:
            done = self.call("POST", "/acts", headers, json=signed_by(safe.clerk, safe.officer))
            self.step(f"  {safe.holder}'s clerk and officer signed ({SAFE_THRESHOLD} of 3 Safe owners): {sentence}")
            return done
        self.step(f"  经办 clerk {short(safe.clerk.address)} prepared the act and signed it: {sentence}")
        alone = self.http.post("/acts", json=signed_by(safe.clerk), headers={**headers, **WAIT})
        problem = alone.json() if alone.headers.get("content-type", "").endswith("json") else {}
        if alone.status_code != 403 or problem.get("error") != "SignedActsInvalidSignature":
            raise DemoError(f"the clerk's signature alone answered {alone.status_code}: {alone.text}")
        self.step(
            f"  the clerk's signature alone (1 of 3 owners) posted to /acts: refused, {alone.status_code} "
            f"{problem['error']} (the Safe does not accept it; found at pre-flight, nothing was sent)"
        )
        done = self.call("POST", "/acts", headers, json=signed_by(safe.clerk, safe.officer))
        self.step(
            f"  复核 officer {short(safe.officer.address)} checked it and added the second signature: "
            f"{SAFE_THRESHOLD} of 3, the Safe accepts; {done['status']} in block {done['block_number']}"
        )
        evidence = self.call("GET", f"/acts/{done['tx_hash']}", headers)
        owners = (len(evidence["signature"]) - 2) // 130
        self.step(f"  evidence from the chain (GET /acts/{evidence['tx_hash']}):")
        self.step(
            f"    {evidence['act']} of {short(evidence['account'])}, signed by {short(evidence['signer'])}: the Safe "
            f"itself (ERC-1271, {owners} owners' signatures), digest {evidence['digest'][:18]}… "
            f"(verifies: {evidence['digest_matches']})"
        )
        return done

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
        bank_safe = self.create_safe_account("Northeast Factoring Co.", int(health["chain_id"]), local)
        _, agent = self.onboard("Bank of Changchun settlement desk", "settlement-agent")
        faw_key = Account.create()  # FAW's own key, on FAW's machine: the service never sees it
        faw_id, faw = self.onboard_self_custody("FAW Automotive Co., Ltd.", "core-firm", faw_key)
        _, seats = self.onboard("Changchun Seat Systems (tier 1)", "supplier")
        foam_id, foam = self.onboard("Jilin Foam Materials (tier 2)", "supplier")
        bank_id, bank = bank_safe.address, self.onboard_safe("financier", bank_safe)
        _, depot = self.onboard("Changchun Bonded Logistics (warehouse)", "warehouse")
        steel_id, steel = self.onboard("Jilin Steel Trading", "supplier")
        regulator = self.onboard_regulator("Jilin Financial Regulatory Bureau")

        for who, amount in ((faw_id, 20_000_000 * YUAN), (bank_id, 20_000_000 * YUAN), (steel_id, 500_000 * YUAN)):
            self.call(
                "POST",
                "/deposits",
                agent,
                json={"participant": who, "amount": amount, "bank_reference": f"wire {who[:10]}"},
            )
        self.step("settlement agent credited deposit tokens against bank wires")
        self.safe_act("POST", "/credit-lines", bank, bank_safe, json={"core_firm": faw_id, "limit": 50_000_000 * YUAN})
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
        request_id, funded_piece = self.finance(invoice_id, split, 300_000 * YUAN, foam, bank, bank_safe, seats)

        pledge_id, receipt_id, funded_at = self.pledge(depot, steel_id, steel, bank, bank_safe)

        if local:
            self.move_clock(CLOCK_MOVE_DAYS * DAY)
            self.step(
                f"moved the chain's clock forward {CLOCK_MOVE_DAYS} days (anvil evm_increaseTime): it is now "
                f"{day_of(self.chain_time())}, past the invoice's maturity; the loan has run as long"
            )
        self.act("POST", "/settlement-approvals", faw, faw_key, json={"spender_contract": "receivables"})
        self.act("POST", f"/obligations/{invoice_id}/repayments", faw, faw_key, json={"amount": amount})
        self.step(f"FAW repaid {yuan(amount)}{'' if local else ' (before maturity: the clock was not moved)'}")
        payout = self.call("POST", f"/receivables/{piece}/redeem", seats)["result"]["payout"]
        self.step(f"tier 1 redeemed piece #{piece}: {yuan(payout)}")
        redeemed = self.safe_act("POST", f"/receivables/{funded_piece}/redeem", bank, bank_safe)
        self.step(f"Northeast Factoring redeemed piece #{funded_piece}: {yuan(redeemed['result']['payout'])}")

        self.repay_pledge(pledge_id, funded_at, steel)
        events = self.call("GET", "/audit/events?size=1", regulator or self.operator)
        self.step(f"the {'regulator' if regulator else 'operator'} sees {events['total']} events on the ledger")
        return {
            "invoice_id": invoice_id,
            "financing_request_id": request_id,
            "financier_safe": bank_id,
            "receipt_id": receipt_id,
            "pledge_id": pledge_id,
        }

    def finance(
        self,
        invoice_id: int,
        piece: int,
        amount: int,
        holder: dict[str, str],
        financier: dict[str, str],
        safe: SafeAccount,
        reader: dict[str, str],
    ) -> tuple[int, int]:
        """Tier 2 sells its piece to the financier at a discount; the terms and the discount arithmetic printed;
        each of the financier's acts signed by two owners of its Safe, the clerk's signature alone refused first.
        (The request's id, the funded piece's id.)"""
        terms = {"discount_rate_bps": 600, "fee": 500 * YUAN, "day_count_basis": 365}
        request_id = self.call(
            "POST",
            "/financing-requests",
            holder,
            json={
                "piece_id": piece,
                "amount": amount,
                "financier": safe.address,
                "max_discount_rate_bps": terms["discount_rate_bps"],
                "max_fee": terms["fee"],
            },
        )["result"]["request_id"]
        self.step(
            f"tier 2 asked {safe.holder} to finance piece #{piece} (request #{request_id}), accepting at most "
            f"{percent(terms['discount_rate_bps'])} a year and a fee of {yuan(terms['fee'])}"
        )
        self.step(f"{safe.holder} approves the financing terms, from its Safe:")
        self.safe_act("POST", f"/financing-requests/{request_id}/approve", financier, safe, show=True, json=terms)
        self.step(
            f"financing terms approved by Northeast Factoring: discount rate {percent(terms['discount_rate_bps'])}, "
            f"day count actual/{terms['day_count_basis']}, fee {yuan(terms['fee'])}"
        )
        self.step(f"{safe.holder} lets the receivables contract draw its cash legs (once, before its first funding):")
        self.safe_act(
            "POST", "/settlement-approvals", financier, safe, show=True, json={"spender_contract": "receivables"}
        )
        self.step(f"{safe.holder} funds the financing, from its Safe:")
        operation = self.safe_act("POST", f"/financing-requests/{request_id}/fund", financier, safe, show=True)
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
        return int(request_id), int(funded["pieceId"])

    def pledge(
        self, depot: dict[str, str], steel_id: str, steel: dict[str, str], bank: dict[str, str], safe: SafeAccount
    ) -> tuple[int, int, int]:
        """A receipt issued, pledged and funded (by the financier's Safe), a second pledge refused: (pledge id,
        receipt id, funded at)."""
        bank_id = safe.address
        valuation = 4_000_000 * YUAN
        receipt: dict[str, Any] = {
            "owner": steel_id,
            "lot_number": f"CC-{self.serial}",
            "goods_description": "hot-rolled steel coil Q235B",
            "elements": receipt_elements(),
            "quantity": 1_000,
            "unit": "tonne",
            "valuation": valuation,
            "expiry": self.due_date(365),
        }
        issued = self.call("POST", "/warehouse-receipts", depot, json=receipt)
        receipt_id = issued["result"]["receipt_id"]
        self.step(f"the warehouse issued receipt {str(receipt_id)[:12]}… for 1,000 t of coil valued {yuan(valuation)}")
        document_hash = str(event_args(issued, "ReceiptIssued")["documentHash"]).removeprefix("0x").lower()
        document = self.http.get(f"/documents/{document_hash}", headers=steel)
        if document.status_code != 200 or hashlib.sha256(document.content).hexdigest() != document_hash:
            raise DemoError(f"the receipt's document {document_hash} was not served as hashed: {document.status_code}")
        elements = json.loads(document.content)["elements"]
        period = elements["storage_period"]
        self.step(
            f"its 仓单 (GB/T 30332-2024) is a document of {len(document.content):,} bytes whose SHA-256 is on chain: "
            f"depositor {elements['depositor']['name']}, {elements['goods']['pieces']} pieces, stored at "
            f"{elements['storage_place']} from {period['start']} to {period['end']}; "
            "the owner reads it back"
        )
        pledge = {
            "receipt_id": receipt_id,
            "financier": bank_id,
            "principal": 2_000_000 * YUAN,
            "rate_bps": 600,
            "due_date": self.due_date(180),
        }
        pledge_id = self.call("POST", "/pledges", steel, json=pledge)["result"]["pledge_id"]
        self.safe_act("POST", "/settlement-approvals", bank, safe, json={"spender_contract": "receipts"})
        funded = event_args(self.safe_act("POST", f"/pledges/{pledge_id}/fund", bank, safe), "PledgeFunded")
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
