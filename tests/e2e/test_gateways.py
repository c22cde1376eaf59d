"""A consortium of gateways on one chain, as real processes (docs/consortium.md).

One anvil and four ``scf serve`` processes, each with its own data folder (SQLite database, keystore), port,
API keys and own account: the operator's gateway (which deploys), a bank's and a core firm's
(``SCF_GATEWAY_ROLE=member``, attached to a copy of the operator's deployment record, their relayers funded with
gas) and the regulator's (``SCF_GATEWAY_ROLE=regulator``, its own account the regulator named at deployment, its
index in PostgreSQL where a server answers at 127.0.0.1:5432, the others' in SQLite files).

The receivable story runs across them: the supplier and the settlement agent are hosted by the operator's
gateway; the core firm keeps its key and signs its acts at its own gateway; the financier's key was made in the
bank's gateway's keystore (the operator onboarded the account by address and proof, no key handed over) and the
bank's gateway signs its acts. The bank's gateway is killed with ``kill -9`` right after it accepted the funding,
the others carry on, and the restarted one finishes the funding and catches up. At the end every gateway's index
holds the same ledger, and the lists, balances, reports and audit views read through different gateways agree.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, select

from ledger import acts
from ledger.db import Base
from ledger.identifiers import synthetic_credit_code
from ledger.node import connect
from ledger.tooling.chain import Anvil, find_anvil
from tests.api.conftest import postgres_answers, postgres_schema
from tests.e2e.conftest import free_port
from tests.e2e.processes import Served, base_environment, one_error_line, run_scf, serving

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

YUAN = 100
DAY = 86_400
WAIT = {"Prefer": "wait=30"}
LEDGER_TABLES = (
    "events",
    "participants",
    "participant_roles",
    "invoices",
    "pieces",
    "financing_requests",
    "repayments",
    "redemptions",
    "credit_lines",
    "credit_grants",
    "deposit_transfers",
)
"""The index tables every gateway must hold alike (not its bookkeeping: blocks seen, checkpoint)."""


@dataclass
class Gateway:
    """One ``scf serve`` of the consortium: its environment, its process, and its own account's API key."""

    name: str
    env: dict[str, str]
    cwd: Path
    stack: contextlib.ExitStack
    served: Served | None = None
    admin: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['SCF_API_PORT']}"

    @property
    def database(self) -> str:
        return self.env.get("SCF_DATABASE_URL") or f"sqlite:///{Path(self.env['SCF_DATA_DIR']) / 'ledger.sqlite3'}"

    def start(self) -> None:
        self.served = self.stack.enter_context(serving(self.env, self.cwd))
        if not self.admin:
            self.admin = self.served.operator_key()

    def kill(self) -> None:
        assert self.served is not None and self.served.process is not None
        self.served.process.send_signal(signal.SIGKILL)
        self.served.process.wait(timeout=30)

    def request(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **WAIT, **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=90, **kwargs)

    def call(self, method: str, path: str, key: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, key, **kwargs)
        assert response.status_code == expect, (self.name, method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def indexed(self) -> int | None:
        health = httpx.get(self.url + "/health", timeout=10).json()
        return health.get("indexed")


@dataclass
class Consortium:
    anvil: Anvil
    operator: Gateway
    bank: Gateway
    firm: Gateway
    regulator: Gateway
    firm_key: LocalAccount
    keys: dict[str, str] = field(default_factory=dict)
    """API keys: '<participant>@<gateway>'."""
    ids: dict[str, str] = field(default_factory=dict)
    credit_codes: dict[str, str] = field(default_factory=dict)

    @property
    def gateways(self) -> tuple[Gateway, ...]:
        return (self.operator, self.bank, self.firm, self.regulator)

    def chain_head(self) -> int:
        return int(connect(self.anvil.rpc_url, self.anvil.chain_id).eth.block_number)

    def caught_up(self, timeout: float = 60) -> int:
        """Wait until every gateway's index holds the chain's head of now; that block."""
        head = self.chain_head()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all((g.indexed() or 0) >= head for g in self.gateways):
                return head
            time.sleep(0.2)
        pytest.fail(f"the gateways did not index block {head}: {[g.indexed() for g in self.gateways]}")


def _fund(anvil: Anvil, address: str) -> None:
    w3 = connect(anvil.rpc_url, anvil.chain_id)
    w3.provider.make_request("anvil_setBalance", [address, hex(100 * 10**18)])  # type: ignore[arg-type]


_serial = iter(range(9_000, 10_000))


def _signed(gateway: Gateway, method: str, path: str, key: str, signer: LocalAccount, **kwargs: Any) -> Any:
    """A self-custody participant's request: the gateway answers 428 with the act, the participant signs it with
    its own key (here, in the test) and posts it to the same gateway's /acts."""
    asked = gateway.call(method, path, key, 428, **kwargs)
    assert asked["type"] == "urn:scf:problem:signature-required", asked
    signature = "0x" + acts.sign(asked["typed_data"], signer).hex()
    return gateway.call("POST", "/acts", key, json={"typed_data": asked["typed_data"], "signature": signature})


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    root = tmp_path_factory.mktemp("consortium")
    anvil = Anvil(root / "chain", port=free_port(), block_time=0.2)
    anvil.start()
    regulator_key: LocalAccount = Account.create()
    bank_relayer: LocalAccount = Account.create()
    firm_relayer: LocalAccount = Account.create()
    for account in (regulator_key, bank_relayer, firm_relayer):
        _fund(anvil, account.address)
    common = {"SCF_RPC_URL": anvil.rpc_url, "SCF_CONFIRMATIONS": "0"}
    with contextlib.ExitStack() as stack:
        try:
            operator = Gateway(
                "operator",
                base_environment(root / "operator", SCF_REGULATOR_ADDRESS=regulator_key.address, **common),
                root,
                stack,
            )
            operator.start()  # deploys: the chain has no ledger yet
            members = {
                "bank": ("member", bank_relayer),
                "firm": ("member", firm_relayer),
                "regulator": ("regulator", regulator_key),
            }
            gateways: dict[str, Gateway] = {}
            for name, (role, own) in members.items():
                data = root / name
                # Attaching is copying the operator's deployment record: a member's gateway never deploys.
                shutil.copytree(Path(operator.env["SCF_DEPLOYMENTS_DIR"]), data / "deployments")
                env = base_environment(data, SCF_GATEWAY_ROLE=role, SCF_OPERATOR_KEY=own.key.to_0x_hex(), **common)
                if name == "regulator" and postgres_answers():  # another kind of database, where there is one
                    env["SCF_DATABASE_URL"] = stack.enter_context(postgres_schema("scf_gateway"))
                gateways[name] = Gateway(name, env, root, stack)
                gateways[name].start()
            consortium = Consortium(
                anvil, operator, gateways["bank"], gateways["firm"], gateways["regulator"], Account.create()
            )
            _onboard(consortium)
            yield consortium
        finally:
            stack.close()
            anvil.kill()


def _onboard(c: Consortium) -> None:
    operator = c.operator
    for name, role in (("agent", "settlement-agent"), ("supplier", "supplier")):
        code = synthetic_credit_code(next(_serial))
        created = operator.call(
            "POST",
            "/participants",
            operator.admin,
            201,
            json={"name": f"{name} co", "credit_code": code, "roles": [role]},
        )
        c.ids[name], c.keys[f"{name}@operator"], c.credit_codes[name] = (
            created["participant"]["id"],
            created["api_key"],
            code,
        )

    # The core firm keeps its key: the operator onboards its account by proof, its own gateway serves it by proof.
    code = synthetic_credit_code(next(_serial))
    message = operator.call(
        "GET",
        "/participants/possession-message",
        operator.admin,
        params={"address": c.firm_key.address, "credit_code": code},
    )["message"]
    proof = c.firm_key.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    body = {
        "name": "firm co",
        "credit_code": code,
        "roles": ["core-firm"],
        "address": c.firm_key.address,
        "proof": proof,
    }
    c.keys["firm@operator"] = operator.call("POST", "/participants", operator.admin, 201, json=body)["api_key"]
    served = c.firm.call(
        "POST",
        "/gateway/participants",
        c.firm.admin,
        201,
        json={"address": c.firm_key.address, "name": "firm co", "credit_code": code, "proof": proof},
    )
    assert served["hosted"] is False and served["participant"]["roles"] == ["core-firm"], served
    c.ids["firm"], c.keys["firm@firm"], c.credit_codes["firm"] = c.firm_key.address, served["api_key"], code

    # The financier's key is made in the bank's gateway and never leaves it; the operator onboards the account by
    # the proof the bank's gateway gives, and the bank's gateway serves it, signing its acts.
    code = synthetic_credit_code(next(_serial))
    hosted = c.bank.call("POST", "/gateway/keys", c.bank.admin, 201, json={"credit_code": code})
    body = {"name": "bank co", "credit_code": code, "roles": ["financier"], "address": hosted["address"]}
    c.keys["bank@operator"] = operator.call(
        "POST", "/participants", operator.admin, 201, json={**body, "proof": hosted["proof"]}
    )["api_key"]
    served = c.bank.call(
        "POST",
        "/gateway/participants",
        c.bank.admin,
        201,
        json={"address": hosted["address"], "name": "bank co", "credit_code": code},
    )
    assert served["hosted"] is True and served["participant"]["roles"] == ["financier"], served
    c.ids["bank"], c.keys["bank@bank"], c.credit_codes["bank"] = hosted["address"], served["api_key"], code
    c.keys["regulator@regulator"] = c.regulator.admin


def _register_invoice(c: Consortium, amount: int) -> int:
    due = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    invoice = {
        "buyer": c.ids["firm"],
        "amount": amount,
        "currency": "CNY",
        "invoice_number": f"{time.time_ns() // 1000:020d}",
        "due_date": due,
    }
    done = c.operator.call("POST", "/invoices", c.keys["supplier@operator"], json=invoice)
    return int(done["result"]["invoice_id"])


def _all(gateway: Gateway, path: str, key: str) -> list[Any]:
    """Every item of a cursor-paged list."""
    items: list[Any] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"size": 200, **({"after": after} if after else {})}
        page = gateway.call("GET", path, key, params=params)
        items += page["items"]
        after = page.get("next")
        if not after:
            return items


_OFF_CHAIN = frozenset({"name", "invoice_number", "lot_number", "goods_description"})


def _on_chain(value: Any) -> Any:
    """``value`` without what each gateway keeps off chain: the names of participants (the chain holds a hash of
    name and credit code; kept by the gateways that serve them) and the invoice and lot numbers and goods
    descriptions (the chain holds their hashes; kept by the gateway that was asked to act), which another gateway
    shows as None."""
    if isinstance(value, dict):
        return {k: _on_chain(v) for k, v in value.items() if k not in _OFF_CHAIN and not k.endswith("_name")}
    if isinstance(value, list):
        return [_on_chain(v) for v in value]
    return value


def _table(database_url: str, name: str, through: int) -> list[str]:
    """The rows of index table ``name`` up to block ``through``, read through the ledger's own column types (so that
    a SQLite and a PostgreSQL index compare), in a canonical order."""
    table = Base.metadata.tables[name]
    query = select(table)
    if "block_number" in table.c:
        query = query.where((table.c.block_number <= through) | table.c.block_number.is_(None))
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    finally:
        engine.dispose()
    return sorted(repr(tuple(_plain(value) for value in row)) for row in rows)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat() if value.tzinfo is None else value.astimezone(UTC).isoformat()
    return value


def test_the_receivable_story_across_three_gateways_survives_a_kill_and_every_gateway_agrees(
    consortium: Consortium,
) -> None:
    c = consortium
    started = time.monotonic()
    supplier, agent = c.keys["supplier@operator"], c.keys["agent@operator"]
    bank, firm = c.keys["bank@bank"], c.keys["firm@firm"]

    for who, amount in (("bank", 5_000_000 * YUAN), ("firm", 5_000_000 * YUAN)):
        c.operator.call(
            "POST",
            "/deposits",
            agent,
            json={"participant": c.ids[who], "amount": amount, "bank_reference": f"wire {who}"},
        )
    # The bank grants the core firm a credit line at its own gateway, which signs the act with the bank's key.
    granted = c.bank.call("POST", "/credit-lines", bank, json={"core_firm": c.ids["firm"], "limit": 10_000_000 * YUAN})
    assert granted["status"] == "confirmed", granted

    amount = 1_000_000 * YUAN
    invoice_id = _register_invoice(c, amount)  # the supplier, at the operator's gateway
    confirmed = _signed(
        c.firm, "POST", f"/invoices/{invoice_id}/confirm", firm, c.firm_key
    )  # the core firm, at its own
    piece = int(confirmed["result"]["piece_id"])

    request_id = c.operator.call(
        "POST",
        "/financing-requests",
        supplier,
        json={
            "piece_id": piece,
            "amount": 300_000 * YUAN,
            "financier": c.ids["bank"],
            "max_discount_rate_bps": 600,  # the most the supplier accepts: the terms below, not a fen more
            "max_fee": 500 * YUAN,
        },
    )["result"]["request_id"]
    terms = {"discount_rate_bps": 600, "fee": 500 * YUAN, "day_count_basis": 365}
    c.bank.call("POST", f"/financing-requests/{request_id}/approve", bank, json=terms)
    c.bank.call("POST", "/settlement-approvals", bank, json={"spender_contract": "receivables"})

    # The bank funds, and its gateway is killed the moment it accepted the funding (202, journaled).
    accepted = c.bank.call("POST", f"/financing-requests/{request_id}/fund", bank, 202, headers={"Prefer": "wait=0"})
    funding = accepted["operation_id"]
    c.bank.kill()

    # The others carry on: a second invoice, registered at the operator's, confirmed at the core firm's gateway.
    second = _register_invoice(c, 200_000 * YUAN)
    second_piece = int(_signed(c.firm, "POST", f"/invoices/{second}/confirm", firm, c.firm_key)["result"]["piece_id"])
    assert c.regulator.call("GET", "/audit/events", c.regulator.admin, params={"size": 1})["total"] > 0

    # Restarted, the bank's gateway finishes the funding it had accepted and catches up with the chain.
    c.bank.start()
    deadline = time.monotonic() + 60
    while (operation := c.bank.call("GET", f"/operations/{funding}", bank))["status"] != "confirmed":
        assert operation["status"] in ("pending", "sent", "indexing"), operation
        assert time.monotonic() < deadline, operation
        time.sleep(0.2)
    funded = next(e["args"] for e in operation["result"]["events"] if e["name"] == "FinancingFunded")
    request = c.bank.call("GET", f"/financing-requests/{request_id}", bank)
    assert request["state"] == "funded", request

    # The core firm repays at maturity, from its own gateway; holders redeem at theirs.
    _signed(c.firm, "POST", "/settlement-approvals", firm, c.firm_key, json={"spender_contract": "receivables"})
    _signed(c.firm, "POST", f"/obligations/{invoice_id}/repayments", firm, c.firm_key, json={"amount": amount})
    w3 = connect(c.anvil.rpc_url, c.anvil.chain_id)
    w3.provider.make_request("evm_increaseTime", [92 * DAY])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    bank_pieces = [p for p in c.bank.call("GET", "/receivables", bank)["items"] if p["slot_id"] == invoice_id]
    assert [p["value"] for p in bank_pieces] == [300_000 * YUAN], bank_pieces
    redeemed = c.bank.call("POST", f"/receivables/{bank_pieces[0]['id']}/redeem", bank)
    assert redeemed["result"]["payout"] == 300_000 * YUAN, redeemed
    c.operator.call("POST", f"/receivables/{piece}/redeem", supplier)

    # Every gateway's index holds the same ledger, through the same block.
    through = c.caught_up()
    for table in LEDGER_TABLES:
        copies = {g.name: _table(g.database, table, through) for g in c.gateways}
        assert copies["operator"] or table in ("redemptions",), table
        for name, rows in copies.items():
            assert rows == copies["operator"], (table, name)

    # What a participant reads through one gateway is what it reads through another.
    for path in ("/receivables", "/financing-requests", "/invoices"):
        assert _on_chain(_all(c.bank, path, bank)) == _on_chain(_all(c.operator, path, c.keys["bank@operator"])), path
        assert _on_chain(_all(c.firm, path, firm)) == _on_chain(_all(c.operator, path, c.keys["firm@operator"])), path
    for who, gateway in (("bank", c.bank), ("firm", c.firm)):
        mine = gateway.call("GET", "/balances/me", c.keys[f"{who}@{gateway.name}"])
        assert mine == c.operator.call("GET", "/balances/me", c.keys[f"{who}@operator"]), who
    price = int(funded["price"])
    assert c.bank.call("GET", "/balances/me", bank)["balance"] == 5_000_000 * YUAN - price + 300_000 * YUAN
    assert c.firm.call("GET", "/balances/me", firm)["balance"] == 5_000_000 * YUAN - amount
    credit = c.bank.call("GET", f"/credit-lines/{c.ids['firm']}", bank)
    assert credit == c.operator.call("GET", f"/credit-lines/{c.ids['firm']}", c.operator.admin)

    # The regulator reads the whole ledger from its own copy: the same audit trail and reports as the operator's.
    regulator = c.regulator.admin
    assert _all(c.regulator, "/audit/events", regulator) == _all(c.operator, "/audit/events", c.operator.admin)
    for report in ("/reports/large-transactions", "/reports/payment-discipline"):
        ours, theirs = c.regulator.call("GET", report, regulator), c.operator.call("GET", report, c.operator.admin)
        # the chain's time when each was asked (a block every 0.2 s): not the report's data
        assert abs(ours.pop("chain_time", 0) - theirs.pop("chain_time", 0)) <= 5, report
        assert _on_chain(ours) == _on_chain(theirs), report
    assert second_piece in {p["id"] for p in _all(c.operator, "/receivables", supplier)}  # made while the bank was down
    assert time.monotonic() - started < 120, time.monotonic() - started


def test_no_gateway_acts_for_a_participant_it_does_not_host(consortium: Consortium) -> None:
    c = consortium
    # The operator's gateway serves the bank (it onboarded it) but holds no key of it: the bank's request there is
    # answered with the act to sign, nothing is signed or sent.
    asked = c.operator.call(
        "POST", "/settlement-approvals", c.keys["bank@operator"], 428, json={"spender_contract": "receipts"}
    )
    assert asked["type"] == "urn:scf:problem:signature-required", asked

    # The core firm's gateway cannot take on the bank without its signer's proof: no API key for it there.
    body = {"address": c.ids["bank"], "name": "bank co", "credit_code": c.credit_codes["bank"]}
    refused = c.firm.call("POST", "/gateway/participants", c.firm.admin, 422, json=body)
    assert refused["type"] == "urn:scf:problem:proof-required", refused
    forged = Account.create().sign_message(encode_defunct(text="anything")).signature.to_0x_hex()
    refused = c.firm.call("POST", "/gateway/participants", c.firm.admin, 422, json={**body, "proof": forged})
    assert refused["type"] == "urn:scf:problem:invalid-proof", refused

    # Its name and credit code must be those whose hash the chain holds: no gateway renames a participant.
    firm = {"address": c.ids["firm"], "name": "another name", "credit_code": c.credit_codes["firm"]}
    refused = c.bank.call("POST", "/gateway/participants", c.bank.admin, 422, json=firm)
    assert refused["type"] == "urn:scf:problem:identity-mismatch", refused

    # A participant registered as hosted is served by the gateway that holds its key alone.
    supplier = {"address": c.ids["supplier"], "name": "supplier co", "credit_code": c.credit_codes["supplier"]}
    refused = c.bank.call("POST", "/gateway/participants", c.bank.admin, 409, json=supplier)
    assert refused["type"] == "urn:scf:problem:hosted-elsewhere", refused

    # A member's gateway lists the participants it serves (to its own account), not the registry.
    relayer = c.bank.call("GET", "/gateway", c.bank.admin)["account"]
    assert {p["id"] for p in _all(c.bank, "/participants", c.bank.admin)} == {relayer, c.ids["bank"]}

    # Only the gateway's own account adopts participants or makes keys.
    refused = c.bank.call(
        "POST", "/gateway/keys", c.keys["bank@bank"], 403, json={"credit_code": c.credit_codes["bank"]}
    )
    assert refused["type"] == "urn:scf:problem:gateway-account-only", refused
    # A hosted participant whose key left this gateway's keystore (moved to another machine, cold storage) is not
    # acted for any more: 403, and nothing is signed, although the record and its API key are still here.
    foam = c.operator.call(
        "POST",
        "/participants",
        c.operator.admin,
        201,
        json={"name": "foam co", "credit_code": synthetic_credit_code(next(_serial)), "roles": ["supplier"]},
    )
    keyfile = Path(c.operator.env["SCF_DATA_DIR"]) / "keystore" / f"{foam['participant']['id']}.json"
    keyfile.rename(keyfile.with_suffix(".moved"))
    refused = c.operator.call(
        "POST", "/settlement-approvals", foam["api_key"], 403, json={"spender_contract": "receivables"}
    )
    assert refused["type"] == "urn:scf:problem:not-hosted-here", refused

    # A member's relayer is nobody's operator: it cannot onboard.
    refused = c.bank.call(
        "POST",
        "/participants",
        c.bank.admin,
        403,
        json={"name": "x co", "credit_code": synthetic_credit_code(next(_serial)), "roles": ["supplier"]},
    )
    assert refused["type"] == "urn:scf:problem:forbidden-role", refused


def test_the_regulator_gateway_freezes_answers_reports_and_refuses_every_other_write(consortium: Consortium) -> None:
    c = consortium
    regulator = c.regulator.admin
    info = c.regulator.call("GET", "/gateway", regulator)
    assert (
        info["role"] == "regulator"
        and info["registry"] == c.operator.call("GET", "/gateway", c.operator.admin)["registry"]
    )
    for method, path, body in (
        (
            "POST",
            "/invoices",
            {"buyer": c.ids["firm"], "amount": 1, "invoice_number": "12345678", "due_date": "2030-01-01"},
        ),
        ("POST", "/acts", {"typed_data": {}, "signature": "0x00"}),
        ("POST", "/participants", {"name": "x", "credit_code": synthetic_credit_code(1), "roles": ["supplier"]}),
        ("POST", "/batch", {"items": []}),
        ("POST", "/gateway/keys", {"credit_code": synthetic_credit_code(2)}),
        ("POST", f"/participants/{c.ids['supplier']}/suspend", None),
        ("POST", "/audit/log/anchors", None),
    ):
        refused = c.regulator.call(method, path, regulator, 403, json=body)
        assert refused["type"] == "urn:scf:problem:read-only-gateway", (path, refused)

    frozen = c.regulator.call(
        "POST", "/freezes", regulator, json={"kind": "participant", "target": c.ids["supplier"], "reason": "inquiry 7"}
    )
    assert frozen["status"] == "confirmed", frozen
    c.caught_up()
    listed = c.operator.call("GET", "/freezes", c.operator.admin)["items"]
    assert [f["id"] for f in listed] == [f"participant:{c.ids['supplier']}"], listed
    assert c.regulator.call("GET", "/freezes", regulator)["items"] == listed
    c.regulator.call("DELETE", f"/freezes/participant:{c.ids['supplier']}", regulator)
    c.caught_up()
    assert c.operator.call("GET", "/freezes", c.operator.admin)["items"] == []
    for report in ("/reports/large-transactions", "/reports/payment-discipline", "/audit/log", "/audit/events"):
        c.regulator.call("GET", report, regulator)


def test_a_gateway_that_cannot_be_what_its_role_says_does_not_start(consortium: Consortium, tmp_path: Path) -> None:
    """A member's gateway without the deployment record never deploys its own ledger; the regulator's gateway
    refuses a key that holds no regulator role on chain. Each is one line naming the setting, exit code 1."""
    c = consortium
    common = {"SCF_RPC_URL": c.anvil.rpc_url}
    lonely = base_environment(tmp_path / "lonely", SCF_GATEWAY_ROLE="member", SCF_OPERATOR_KEY=strong_key(), **common)
    one_error_line(run_scf("serve", "--no-chain", env=lonely, cwd=tmp_path), "SCF_DEPLOYMENTS_DIR", "never deploys")
    assert not (tmp_path / "lonely" / "deployments").exists()

    impostor = base_environment(
        tmp_path / "impostor", SCF_GATEWAY_ROLE="regulator", SCF_OPERATOR_KEY=strong_key(), **common
    )
    shutil.copytree(Path(c.operator.env["SCF_DEPLOYMENTS_DIR"]), tmp_path / "impostor" / "deployments")
    one_error_line(run_scf("serve", "--no-chain", env=impostor, cwd=tmp_path), "SCF_OPERATOR_KEY", "no regulator role")


def strong_key() -> str:
    key: LocalAccount = Account.create()
    return key.key.to_0x_hex()
