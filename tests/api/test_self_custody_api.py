"""Self-custody participants over HTTP: onboarding with a proof of possession, and every act of theirs signed by
their own key: the route answers 428 with the EIP-712 act, the participant signs it outside the service and
posts it to /acts, and the operation runs as any other. The evidence of each act is rebuilt from the chain and
checked with eth-account, an EIP-712 implementation independent of the ledger's own."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount

from ledger import acts
from ledger.compiler import compile_contracts
from ledger.errors import ContractRevert
from ledger.identifiers import synthetic_credit_code
from ledger.keystore import UnknownAccount
from ledger.node import dev_key
from ledger.safe import create_safe, deploy_safe_infrastructure, safe_message_hash, safe_signature
from tests.api.conftest import WAIT, Api, Participant
from tests.api.test_receivables_api import YUAN, due_in, ok, problem
from tests.stories import receipt_elements


def onboard_self_custody(api: Api, name: str, role: str, key: LocalAccount, code: str) -> Participant:
    message = ok(
        api.http.get(
            "/participants/possession-message",
            params={"address": key.address, "credit_code": code},
            headers=api.operator_headers,
        )
    )
    proof = key.sign_message(encode_defunct(text=message["message"])).signature.to_0x_hex()
    body = {"name": name, "credit_code": code, "roles": [role], "address": key.address, "proof": proof}
    created = ok(api.http.post("/participants", json=body, headers={**api.operator_headers, **WAIT}), 201)
    assert created["participant"]["custody"] == "self" and created["participant"]["id"] == key.address
    return Participant(key.address, {"Authorization": f"Bearer {created['api_key']}"})


def sign_and_relay(api: Api, who: Participant, key: LocalAccount, asked: dict[str, Any]) -> dict[str, Any]:
    """What a self-custody client does with a 428: check the act is the one it asked for, sign, post."""
    assert asked["type"] == "urn:scf:problem:signature-required"
    document = asked["typed_data"]
    assert acts.digest(document).hex() == asked["digest"][2:]
    signature = key.unsafe_sign_hash(acts.digest(document)).signature.to_0x_hex()
    return ok(api.http.post("/acts", json={"typed_data": document, "signature": signature}, headers=who.waiting()))


def signed_by(key: LocalAccount, asked: dict[str, Any]) -> dict[str, Any]:
    """The body of POST /acts: the 428's act signed by ``key`` (whoever it is)."""
    signature = key.unsafe_sign_hash(acts.digest(asked["typed_data"])).signature.to_0x_hex()
    return {"typed_data": asked["typed_data"], "signature": signature}


def settlement_approval(api: Api, who: Participant) -> dict[str, Any]:
    """A 428 for ``who``'s settlement approval (a cheap act to prove which key signs)."""
    return problem(
        api.http.post("/settlement-approvals", json={"spender_contract": "receivables"}, headers=who.waiting()), 428
    )


def test_a_self_custody_core_firm_confirms_only_by_its_own_signature(api: Api) -> None:
    key = Account.create()
    code = synthetic_credit_code(int(time.time() * 1000) % 10**8)
    core = onboard_self_custody(api, "FAW Self-Custody", "core-firm", key, code)
    supplier = api.onboard("Changchun Seats SC", "supplier")
    ok(
        api.http.post(
            "/credit-lines",
            json={"core_firm": core.id, "limit": 10_000_000 * YUAN},
            headers={**api.operator_headers, **WAIT},
        )
    )
    body = {
        "buyer": core.id,
        "amount": 1_000_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000):020d}",
        "due_date": due_in(90, api),
    }
    invoice_id = ok(api.http.post("/invoices", json=body, headers=supplier.waiting()))["result"]["invoice_id"]

    asked = problem(api.http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting()), 428)
    message = asked["typed_data"]["message"]
    assert asked["typed_data"]["primaryType"] == "ConfirmInvoice"
    assert (message["invoiceId"], message["seller"], message["amount"]) == (invoice_id, supplier.id, 1_000_000 * YUAN)
    assert str(1_000_000 * YUAN) in asked["sentence"]

    # Signed by someone else (the operator's service holds every hosted key, not this one): refused on chain.
    forged = Account.create().unsafe_sign_hash(acts.digest(asked["typed_data"])).signature.to_0x_hex()
    refused = problem(
        api.http.post("/acts", json={"typed_data": asked["typed_data"], "signature": forged}, headers=core.waiting()),
        403,
    )
    assert refused["error"] == "SignedActsInvalidSignature"

    done = sign_and_relay(api, core, key, asked)
    assert done["status"] == "confirmed" and done["kind"] == "invoice.confirm"
    assert done["result"]["piece_id"] >= 1

    replayed = problem(
        api.http.post(
            "/acts",
            json={
                "typed_data": asked["typed_data"],
                "signature": key.unsafe_sign_hash(acts.digest(asked["typed_data"])).signature.to_0x_hex(),
            },
            headers=core.waiting(),
        ),
        409,
    )
    assert replayed["error"] == "SignedActsNonceUsed"

    evidence = ok(api.http.get(f"/operations/{done['operation_id']}/evidence", headers=core.headers))
    assert evidence["account"] == core.id and evidence["signer"] == key.address and evidence["digest_matches"]
    independent = encode_typed_data(full_message=evidence["typed_data"])
    assert Account.recover_message(independent, signature=evidence["signature"]) == key.address


def test_a_hosted_supplier_takes_its_own_key_rotates_it_and_recovers_it_when_lost(api: Api) -> None:
    http, operator = api.http, {**api.operator_headers, **WAIT}
    supplier = api.onboard("Harbin Bearings", "supplier")
    regulator = api.onboard("Jilin Banking Regulator", "regulator")
    record = api.service.participant_record(supplier.id)
    assert record is not None and record.custody == "hosted"
    assert supplier.id in api.service.keystore

    # The new key (not the account's) signs the possession message of the participant's account.
    first = Account.create()
    message = ok(
        http.get(
            "/participants/possession-message",
            params={"address": supplier.id, "credit_code": record.credit_code},
            headers=api.operator_headers,
        )
    )["message"]
    proof = first.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    switch = f"/participants/{supplier.id}/self-custody"
    body = {"signer": first.address, "proof": proof}
    assert problem(http.post(switch, json=body, headers=supplier.waiting()), 403)["type"].endswith("forbidden-role")
    someone_else = Account.create().sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    refused = problem(http.post(switch, json={**body, "proof": someone_else}, headers=operator), 422)
    assert refused["type"].endswith("invalid-proof")
    problem(http.post(switch, json={**body, "signer": "0x1234"}, headers=operator), 422)
    problem(http.post(switch, json={**body, "proof": "0xzz"}, headers=operator), 422)
    problem(http.post(f"/participants/{Account.create().address}/self-custody", json=body, headers=operator), 404)

    switched = ok(http.post(switch, json=body, headers=operator))
    assert switched["status"] == "confirmed" and switched["kind"] == "participant.adopt-self-custody"
    view = ok(http.get(f"/participants/{supplier.id}", headers=supplier.headers))
    assert (view["custody"], view["signer"]) == ("self", first.address)
    # The service holds no key of it any more, and the chain refuses the hosted key's own transactions.
    assert supplier.id not in api.service.keystore
    try:
        api.service.keystore.account(supplier.id)
        raise AssertionError("the hosted key is still in the keystore")
    except UnknownAccount:
        pass
    client = api.service.client
    approve = client.codec.encode_call("token", "approve", [client.address_of("receivables"), 1])
    try:
        client.preflight(supplier.id, client.address_of("token"), approve)
        raise AssertionError("the hosted key's own transaction was accepted")
    except ContractRevert as exc:
        assert exc.name == "RegistrySignedActsOnly"
    # No way back, and the operator stays hosted.
    assert problem(http.post(switch, json=body, headers=operator), 409)["type"].endswith("already-self-custody")
    problem(
        http.post(f"/participants/{regulator.id}/key-recovery", json={"signer": first.address}, headers=operator), 409
    )

    # Its requests now answer 428; the new key signs them, the account acts.
    asked = settlement_approval(api, supplier)
    assert asked["typed_data"]["message"]["account"] == supplier.id
    done = ok(http.post("/acts", json=signed_by(first, asked), headers=supplier.waiting()))
    assert done["status"] == "confirmed"

    # Rotation: only a self-custody participant has a key of its own to rotate; it signs with its current key.
    rotation = "/participants/me/key-rotation"
    second = Account.create()
    assert problem(http.post(rotation, json={"new_signer": second.address}, headers=regulator.waiting()), 409)
    problem(http.post(rotation, json={"new_signer": "not an address"}, headers=supplier.waiting()), 422)
    problem(http.post(rotation, json={"new_signer": first.address}, headers=supplier.waiting()), 422)
    asked = problem(http.post(rotation, json={"new_signer": second.address}, headers=supplier.waiting()), 428)
    assert asked["typed_data"]["primaryType"] == "RotateKey"
    assert asked["typed_data"]["message"]["newSigner"] == second.address
    forged = problem(http.post("/acts", json=signed_by(second, asked), headers=supplier.waiting()), 403)
    assert forged["error"] == "SignedActsInvalidSignature"
    rotated = ok(http.post("/acts", json=signed_by(first, asked), headers=supplier.waiting()))
    assert rotated["status"] == "confirmed" and rotated["kind"] == "key.rotate"
    assert ok(http.get(f"/participants/{supplier.id}", headers=supplier.headers))["signer"] == second.address
    asked = settlement_approval(api, supplier)
    old = problem(http.post("/acts", json=signed_by(first, asked), headers=supplier.waiting()), 403)
    assert old["error"] == "SignedActsInvalidSignature"
    ok(http.post("/acts", json=signed_by(second, asked), headers=supplier.waiting()))

    # Lost key: the operator proposes, a regulator approves; neither alone suffices.
    third = Account.create()
    recovery = f"/participants/{supplier.id}/key-recovery"
    approve = f"{recovery}/approve"
    problem(http.post(recovery, json={"signer": third.address}, headers=supplier.waiting()), 403)
    problem(http.post(recovery, json={"signer": "0x12"}, headers=operator), 422)
    early = problem(http.post(approve, json={"signer": third.address}, headers=regulator.waiting()), 409)
    assert early["error"] == "RegistryNoRecoveryProposed"
    proposed = ok(http.post(recovery, json={"signer": third.address}, headers=operator))
    assert proposed["kind"] == "key.recovery.propose"
    alone = problem(http.post(approve, json={"signer": third.address}, headers=operator), 403)
    assert alone["type"].endswith("forbidden-role")
    recovered = ok(http.post(approve, json={"signer": third.address}, headers=regulator.waiting()))
    (event,) = [e for e in recovered["result"]["events"] if e["name"] == "KeyRecovered"]
    assert event["args"]["operator"] == api.service.operator.address and event["args"]["regulator"] == regulator.id
    assert ok(http.get(f"/participants/{supplier.id}", headers=api.operator_headers))["signer"] == third.address
    listed = ok(http.get("/participants", headers=api.operator_headers, params={"size": 200}))["items"]
    assert [p["signer"] for p in listed if p["id"] == supplier.id] == [third.address]
    asked = settlement_approval(api, supplier)
    lost = problem(http.post("/acts", json=signed_by(second, asked), headers=supplier.waiting()), 403)
    assert lost["error"] == "SignedActsInvalidSignature"
    ok(http.post("/acts", json=signed_by(third, asked), headers=supplier.waiting()))


def test_a_self_custody_financier_approves_and_funds_by_its_own_signatures_and_the_dvp_settles(api: Api) -> None:
    http = api.http
    key = Account.create()
    code = synthetic_credit_code(int(time.time() * 1000) % 10**8 + 1)
    factor = onboard_self_custody(api, "Songhua Factoring SC", "financier", key, code)
    agent = api.onboard("Settlement bank SC", "settlement-agent")
    core = api.onboard("FAW SC buyer", "core-firm")
    supplier = api.onboard("Changchun Foam SC", "supplier")

    # Its settlement approval is its own act too (the service approved nothing for it at onboarding).
    asked = settlement_approval(api, factor)
    assert asked["typed_data"]["primaryType"] == "ApproveSettlement"
    assert sign_and_relay(api, factor, key, asked)["kind"] == "settlement.approve"
    ok(
        http.post(
            "/deposits",
            json={"participant": factor.id, "amount": 5_000_000 * YUAN, "bank_reference": f"SC opening {code}"},
            headers=agent.waiting(),
        )
    )
    ok(
        http.post(
            "/credit-lines",
            json={"core_firm": core.id, "limit": 10_000_000 * YUAN},
            headers={**api.operator_headers, **WAIT},
        )
    )
    body = {
        "buyer": core.id,
        "amount": 400_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000):020d}",
        "due_date": due_in(60, api),
    }
    invoice_id = ok(http.post("/invoices", json=body, headers=supplier.waiting()))["result"]["invoice_id"]
    piece_id = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting()))["result"]["piece_id"]
    request_id = ok(
        http.post(
            "/financing-requests",
            json={
                "piece_id": piece_id,
                "amount": 400_000 * YUAN,
                "financier": factor.id,
                "max_discount_rate_bps": 600,
                "max_fee": 500 * YUAN,
            },
            headers=supplier.waiting(),
        )
    )["result"]["request_id"]

    terms = {"discount_rate_bps": 600, "fee": 500 * YUAN}
    asked = problem(http.post(f"/financing-requests/{request_id}/approve", json=terms, headers=factor.waiting()), 428)
    message = asked["typed_data"]["message"]
    assert (message["requestId"], message["discountRateBps"], message["fee"]) == (request_id, 600, 500 * YUAN)
    assert sign_and_relay(api, factor, key, asked)["kind"] == "financing.approve"
    quote = ok(http.get(f"/financing-requests/{request_id}", headers=supplier.headers))["quote"]

    supplier_before = ok(http.get("/balances/me", headers=supplier.headers))["balance"]
    factor_before = ok(http.get("/balances/me", headers=factor.headers))["balance"]
    asked = problem(http.post(f"/financing-requests/{request_id}/fund", headers=factor.waiting()), 428)
    assert asked["typed_data"]["primaryType"] == "FundFinancing"
    assert asked["typed_data"]["message"]["holder"] == supplier.id
    funded = sign_and_relay(api, factor, key, asked)
    assert funded["status"] == "confirmed" and funded["result"]["price"] == quote["price"]
    assert ok(http.get("/balances/me", headers=supplier.headers))["balance"] == supplier_before + quote["price"]
    assert ok(http.get("/balances/me", headers=factor.headers))["balance"] == factor_before - quote["price"]
    held = ok(http.get(f"/receivables/{funded['result']['piece_id']}", headers=factor.headers))
    assert held["owner"] == factor.id and held["value"] == 400_000 * YUAN


def test_a_self_custody_warehouse_issues_and_redeems_a_receipt_by_its_own_signatures(api: Api) -> None:
    key = Account.create()
    code = synthetic_credit_code(int(time.time() * 1000) % 10**8 + 2)
    warehouse = onboard_self_custody(api, "Yingkou Port Warehouse SC", "warehouse", key, code)
    steel = api.onboard("Anshan Steel Trading SC", "supplier")
    body = {
        "owner": steel.id,
        "lot_number": "YK-SC-0001",
        "goods_description": "hot-rolled coil Q235B, 500 t",
        "elements": receipt_elements(),
        "quantity": 500,
        "unit": "t",
        "valuation": 2_000_000 * YUAN,
        "expiry": due_in(90, api),
    }
    asked = problem(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()), 428)
    message = asked["typed_data"]["message"]
    assert asked["typed_data"]["primaryType"] == "IssueReceipt"
    assert (message["owner"], message["valuation"], message["quantity"]) == (steel.id, 2_000_000 * YUAN, 500)
    # What the warehouse signs names the receipt document (仓单) by its SHA-256: the bytes its owner is served.
    document = api.http.get(f"/documents/{message['documentHash'].removeprefix('0x')}", headers=steel.headers)
    assert document.status_code == 200 and json.loads(document.content)["title"] == "仓单"
    assert "0x" + hashlib.sha256(document.content).hexdigest() == message["documentHash"]
    issued = sign_and_relay(api, warehouse, key, asked)
    assert issued["status"] == "confirmed" and issued["kind"] == "receipt.issue"
    receipt = ok(api.http.get(f"/warehouse-receipts/{issued['result']['receipt_id']}", headers=steel.headers))
    assert receipt["owner"] == steel.id and receipt["warehouse"] == warehouse.id and receipt["state"] == "active"
    evidence = ok(api.http.get(f"/acts/{issued['tx_hash']}", headers=steel.headers))
    assert evidence["act"] == "IssueReceipt" and evidence["signer"] == key.address and evidence["digest_matches"]

    # The owner asks for its goods; the warehouse hands them over by its own signature (the receipt is burnt).
    receipt_id = issued["result"]["receipt_id"]
    ok(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=steel.waiting()))
    asked = problem(
        api.http.post(f"/warehouse-receipts/{receipt_id}/redemption/confirm", headers=warehouse.waiting()), 428
    )
    assert asked["typed_data"]["primaryType"] == "ConfirmRedemption"
    assert asked["typed_data"]["message"]["receiptId"] == int(receipt_id)
    confirmed = sign_and_relay(api, warehouse, key, asked)
    assert confirmed["status"] == "confirmed" and confirmed["kind"] == "receipt.redemption-confirm"
    burnt = ok(api.http.get(f"/warehouse-receipts/{receipt_id}", headers=api.operator_headers))
    assert burnt["state"] == "redeemed"


def test_a_two_of_three_safe_core_firm_confirms_only_with_two_owners_signatures(api: Api) -> None:
    """A core firm that is a contract account (a Safe from @safe-global/safe-contracts, 2 of 3 owners): its clerk's
    signature alone (maker) is refused on chain; with the second officer's (checker) the confirmation goes through
    (ERC-1271 `isValidSignature`, checked by the SignedActs contract)."""
    w3 = api.service.w3
    deployer = Account.from_key(dev_key(7))  # not the operator: the service's pipeline owns that nonce sequence
    infra = deploy_safe_infrastructure(w3, deployer, compile_contracts())
    clerk, officer, treasurer = (Account.create() for _ in range(3))
    safe = create_safe(w3, infra, [clerk.address, officer.address, treasurer.address], 2, deployer)

    code = synthetic_credit_code(int(time.time() * 1000) % 10**8 + 7)
    message = ok(
        api.http.get(
            "/participants/possession-message",
            params={"address": safe, "credit_code": code},
            headers=api.operator_headers,
        )
    )
    one_owner = safe_signature(w3, safe, bytes.fromhex(message["hash"][2:]), [clerk]).hex()
    body = {"name": "FAW Safe", "credit_code": code, "roles": ["core-firm"], "address": safe, "proof": "0x" + one_owner}
    problem(api.http.post("/participants", json=body, headers={**api.operator_headers, **WAIT}), 422)
    body["proof"] = "0x" + safe_signature(w3, safe, bytes.fromhex(message["hash"][2:]), [clerk, officer]).hex()
    created = ok(api.http.post("/participants", json=body, headers={**api.operator_headers, **WAIT}), 201)
    core = Participant(safe, {"Authorization": f"Bearer {created['api_key']}"})

    supplier = api.onboard("Safe's supplier", "supplier")
    ok(
        api.http.post(
            "/credit-lines",
            json={"core_firm": core.id, "limit": 1_000_000 * YUAN},
            headers={**api.operator_headers, **WAIT},
        )
    )
    invoice = {
        "buyer": core.id,
        "amount": 250_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000) + 3:020d}",
        "due_date": due_in(60, api),
    }
    invoice_id = ok(api.http.post("/invoices", json=invoice, headers=supplier.waiting()))["result"]["invoice_id"]
    asked = problem(api.http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting()), 428)
    digest = acts.digest(asked["typed_data"])

    maker_only = "0x" + safe_signature(w3, safe, digest, [clerk]).hex()
    refused = problem(
        api.http.post(
            "/acts", json={"typed_data": asked["typed_data"], "signature": maker_only}, headers=core.waiting()
        ),
        403,
    )
    assert refused["error"] == "SignedActsInvalidSignature"

    maker_and_checker = "0x" + safe_signature(w3, safe, digest, [clerk, officer]).hex()
    done = ok(
        api.http.post(
            "/acts", json={"typed_data": asked["typed_data"], "signature": maker_and_checker}, headers=core.waiting()
        )
    )
    assert done["status"] == "confirmed" and done["result"]["piece_id"] >= 1
    evidence = ok(api.http.get(f"/operations/{done['operation_id']}/evidence", headers=core.headers))
    assert evidence["account"] == safe and evidence["signer"] == safe and evidence["digest_matches"]


def _owner_signature(api: Api, safe: str, document: dict[str, Any], owner: LocalAccount) -> str:
    hashed = safe_message_hash(api.service.client.chain_id, safe, acts.digest(document))
    return owner.unsafe_sign_hash(hashed).signature.to_0x_hex()


def test_a_safe_collects_its_owners_approvals_one_by_one_and_relays_at_its_threshold(api: Api) -> None:
    """Maker/checker over REST: the clerk's approval is kept (not relayed), a stranger's signature and a second
    signature of the clerk add nothing, and the officer's approval, the threshold's second, relays the act once:
    the invoice is confirmed on chain under the Safe's account."""
    w3 = api.service.w3
    deployer = Account.from_key(dev_key(8))
    infra = deploy_safe_infrastructure(w3, deployer, compile_contracts())
    clerk, officer, treasurer = (Account.create() for _ in range(3))
    safe = create_safe(w3, infra, [clerk.address, officer.address, treasurer.address], 2, deployer)
    code = synthetic_credit_code(int(time.time() * 1000) % 10**8 + 11)
    message = ok(
        api.http.get(
            "/participants/possession-message",
            params={"address": safe, "credit_code": code},
            headers=api.operator_headers,
        )
    )
    proof = "0x" + safe_signature(w3, safe, bytes.fromhex(message["hash"][2:]), [clerk, officer]).hex()
    body = {"name": "Safe maker-checker", "credit_code": code, "roles": ["core-firm"], "address": safe, "proof": proof}
    created = ok(api.http.post("/participants", json=body, headers={**api.operator_headers, **WAIT}), 201)
    core = Participant(safe, {"Authorization": f"Bearer {created['api_key']}"})
    supplier = api.onboard("Maker-checker's supplier", "supplier")
    line = {"core_firm": core.id, "limit": 1_000_000 * YUAN}
    ok(api.http.post("/credit-lines", json=line, headers={**api.operator_headers, **WAIT}))
    invoice = {
        "buyer": core.id,
        "amount": 120_000 * YUAN,
        "invoice_number": f"{int(time.time() * 1000) + 11:020d}",
        "due_date": due_in(60, api),
    }
    invoice_id = ok(api.http.post("/invoices", json=invoice, headers=supplier.waiting()))["result"]["invoice_id"]
    document = problem(api.http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting()), 428)["typed_data"]

    maker = {"typed_data": document, "signature": _owner_signature(api, safe, document, clerk)}
    kept = ok(api.http.post("/acts/approvals", json=maker, headers=core.headers))
    assert kept["status"] == "awaiting-signatures" and kept["signed_by"] == [clerk.address] and kept["threshold"] == 2
    assert ok(api.http.post("/acts/approvals", json=maker, headers=core.headers))["signed_by"] == [clerk.address]
    stranger = {"typed_data": document, "signature": _owner_signature(api, safe, document, Account.create())}
    assert problem(api.http.post("/acts/approvals", json=stranger, headers=core.headers), 403)["type"].endswith(
        "not-an-owner"
    )
    assert problem(api.http.post("/acts/approvals", json=maker, headers=supplier.headers), 403)["type"].endswith(
        "not-your-act"
    )
    assert api.service.client.invoice(invoice_id).state.name.lower() == "registered"  # nothing relayed yet

    checker = {"typed_data": document, "signature": _owner_signature(api, safe, document, officer)}
    done = ok(api.http.post("/acts/approvals", json=checker, headers=core.waiting()))
    assert done["status"] == "confirmed" and done["result"]["piece_id"] >= 1
    assert api.service.client.invoice(invoice_id).state.name.lower() == "confirmed"
    [listed] = [
        a for a in ok(api.http.get("/acts/approvals", headers=core.headers))["items"] if a["digest"] == kept["digest"]
    ]
    assert listed["status"] == "relayed" and listed["operation_id"] == done["operation_id"]
    assert set(listed["signed_by"]) == {clerk.address, officer.address}
    late = {"typed_data": document, "signature": _owner_signature(api, safe, document, treasurer)}
    assert ok(api.http.post("/acts/approvals", json=late, headers=core.headers))["status"] == "relayed"


def test_the_migrations_create_exactly_the_act_approval_and_financing_offer_models(tmp_path: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ledger.db import Base, make_engine
    from ledger.migrations import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [d for d in differences if "act_approval" in repr(d) or "financing_offers" in repr(d)] == []
    downgrade(url, "0013_self_custody")
    upgrade(url)


def test_service_processes_on_one_database_never_hand_out_one_act_nonce_twice(api: Api) -> None:
    """Each ``SCF_WORKERS`` process has an allocator of its own; the reservations are rows of the one database,
    so acts handed out together by several processes never share a nonce (each would be refused on chain but
    one). Two allocators of one process each, without the database, would both hand out the same first nonce."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from api.signing import NonceAllocator
    from api.store import ActNonceReservation

    client, sessions = api.service.client, api.service.sessions
    account = Account.create().address  # its nonce space is untouched on chain
    alone = [NonceAllocator().next(client, account) for _ in range(2)]
    assert alone[0] == alone[1]

    workers = [NonceAllocator(sessions) for _ in range(3)]
    with ThreadPoolExecutor(6) as pool:
        handed = list(pool.map(lambda i: workers[i % 3].next(client, account), range(30)))
    assert sorted(handed) == list(range(30))

    # A lapsed reservation (its act's deadline passed unsigned) frees its nonce for the next act.
    with sessions() as session, session.begin():
        row = session.get(ActNonceReservation, (account, 7))
        assert row is not None
        row.expires_at = datetime.fromtimestamp(time.time() - 1, UTC)
    assert workers[0].next(client, account) == 7
    assert workers[1].next(client, account) == 30


def test_the_migration_creates_exactly_the_act_nonce_reservation_model(tmp_path: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ledger.db import Base, make_engine
    from ledger.migrations import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [d for d in differences if "act_nonce_reservations" in repr(d)] == []
    downgrade(url, "0022_submission_queue")
    assert "act_nonce_reservations" not in inspect_tables(url)
    upgrade(url)
    assert "act_nonce_reservations" in inspect_tables(url)


def inspect_tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    from ledger.db import make_engine

    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
