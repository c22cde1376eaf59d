"""A self-custody core firm in the portal: it signs in with its own encrypted keystore, opened in the page (the
key never leaves the browser), sees the payment undertaking it is asked to sign in words and figures, signs it
there, and the act is relayed and performed on chain under its own signature."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from ledger.compiler import compile_contracts
from ledger.identifiers import synthetic_credit_code
from ledger.node import dev_key
from ledger.safe import create_safe, deploy_safe_infrastructure, safe_signature
from scf.cli import app as scf_app
from tests.api.served import Served, serve
from tests.portal.conftest import chain_day, watch

_codes = itertools.count(int.from_bytes(os.urandom(2), "big") * 1000 + 700)
WAIT = {"Prefer": "wait=30"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal-self-custody"), block_time=0.25) as served:
        yield served


def scf(*args: str) -> str:
    result = CliRunner().invoke(scf_app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_self_custody_core_firm_signs_its_confirmation_in_the_page(
    browser: Browser, served: Served, tmp_path: Path, screenshots: Path
) -> None:
    password = tmp_path / "password"
    password.write_text("FAW treasury's password\n")
    keystore = tmp_path / "faw.json"
    account = scf("client", "key", "new", "--keystore", str(keystore), "--password-file", str(password)).strip()
    code = synthetic_credit_code(next(_codes))
    proved = scf(
        "client", "prove", "--keystore", str(keystore), "--password-file", str(password),
        "--credit-code", code, "--url", served.base_url,
    )  # fmt: skip
    proof = json.loads(proved[proved.index("{") :])
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        body = {"name": "FAW self-custody", "roles": ["core-firm"], "login_address": account, **proof}
        created = http.post("/participants", json=body, headers=served.headers("operator", **WAIT))
        assert created.status_code == 201, created.text
        supplier = served.onboard(http, "Seats hosted", "supplier")
        line = {"core_firm": account, "limit": 10_000_000_00}
        assert http.post("/credit-lines", json=line, headers=served.headers("operator", **WAIT)).status_code == 200
        invoice = {
            "buyer": account,
            "amount": 100_000_012,
            "invoice_number": f"25117{next(_codes):015d}",
            "due_date": (datetime.now(UTC).date() + timedelta(days=90)).isoformat(),
        }
        registered = http.post("/invoices", json=invoice, headers=served.headers("Seats hosted", **WAIT))
        invoice_id = registered.json()["result"]["invoice_id"]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch(page, served.base_url)
    page.goto(served.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("自持密钥文件（加密 keystore）").set_input_files(str(keystore))
    page.get_by_label("密钥文件密码").fill("FAW treasury's password")
    page.get_by_role("button", name="用自持密钥登录").click()
    expect(page.locator("main h1")).to_contain_text("欢迎", timeout=60_000)
    expect(page.locator("main")).to_contain_text("自持密钥")
    page.get_by_role("link", name="发票", exact=True).click()
    page.locator("tr", has_text=f"#{invoice_id}").get_by_role("button", name="确认付款承诺").click()

    dialog = page.get_by_role("dialog")
    # The page words the act from the typed data it signs, in the user's language.
    due = invoice["due_date"]
    expect(dialog.locator(".sentence")).to_have_text(
        re.compile(
            rf"^确认发票 #{invoice_id}：承诺于 {due} 向 {supplier} 支付 ¥1,000,000\.12。"
            r"此签名有效期至 \d{4}-\d\d-\d\d \d\d:\d\d UTC$"
        )
    )
    expect(dialog).to_contain_text(account)
    page.screenshot(path=str(screenshots / "sign-act-core-firm.zh-CN.png"), full_page=True)
    dialog.get_by_role("button", name="签署并提交").click()
    first = page.locator("#activity li").first
    expect(first).to_have_attribute("data-status", "confirmed", timeout=60_000)

    onchain = served.service.client.invoice(invoice_id)
    assert onchain.state.name.lower() == "confirmed"
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        operations = http.get("/audit/log", headers=served.headers("operator")).json()
        assert operations  # the relay went through the audited REST path
        seller_view = http.get(f"/invoices/{invoice_id}", headers=served.headers("Seats hosted")).json()
    assert seller_view["state"] == "confirmed" and seller_view["seller"] == supplier
    assert errors == []
    context.close()


def test_a_safe_core_firm_confirms_only_when_its_clerk_and_its_officer_have_signed_in_the_page(
    browser: Browser, served: Served, tmp_path: Path, screenshots: Path
) -> None:
    """Maker/checker (经办/复核) in the portal: the core firm is a 2-of-3 Safe. Its clerk confirms the invoice with
    the clerk's own key: the act waits (1 of 2) and nothing is on chain; its officer, in another browser, finds
    the act awaiting approval, reads it in words and signs it: the confirmation goes on chain."""
    w3 = served.service.w3
    infra = deploy_safe_infrastructure(w3, Account.from_key(dev_key(9)), compile_contracts())
    clerk, officer, treasurer = (Account.create() for _ in range(3))
    safe = create_safe(w3, infra, [clerk.address, officer.address, treasurer.address], 2, Account.from_key(dev_key(9)))
    keystores = {}
    for name, owner in (("clerk", clerk), ("officer", officer)):
        keystores[name] = tmp_path / f"{name}.json"
        keystores[name].write_text(json.dumps(Account.encrypt(owner.key, f"{name}'s password", iterations=2**14)))
    code = synthetic_credit_code(next(_codes))
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        asked = {"address": safe, "credit_code": code}
        message = http.get("/participants/possession-message", params=asked, headers=served.headers("operator"))
        proof = safe_signature(w3, safe, bytes.fromhex(message.json()["hash"][2:]), [clerk, officer]).hex()
        body = {"name": "FAW Safe", "credit_code": code, "roles": ["core-firm"], "address": safe, "proof": "0x" + proof}
        created = http.post("/participants", json=body, headers=served.headers("operator", **WAIT))
        assert created.status_code == 201, created.text
        api_key = created.json()["api_key"]
        served.onboard(http, "Seats for the Safe", "supplier")
        line = {"core_firm": safe, "limit": 10_000_000_00}
        assert http.post("/credit-lines", json=line, headers=served.headers("operator", **WAIT)).status_code == 200
        invoice = {
            "buyer": safe,
            "amount": 25_000_000,
            "invoice_number": f"25117{next(_codes):015d}",
            "due_date": (datetime.now(UTC).date() + timedelta(days=60)).isoformat(),
        }
        registered = http.post("/invoices", json=invoice, headers=served.headers("Seats for the Safe", **WAIT))
        invoice_id = registered.json()["result"]["invoice_id"]

    def person(name: str) -> tuple[Page, list[str]]:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors = watch(page, served.base_url)
        page.goto(served.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.get_by_label("API 密钥").fill(api_key)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page.locator("main h1")).to_contain_text("欢迎")
        page.get_by_label("签名密钥文件（加密 keystore）").set_input_files(str(keystores[name]))
        page.get_by_label("签名密钥密码").fill(f"{name}'s password")
        page.get_by_role("button", name="打开签名密钥").click()
        expect(page.locator("#signing-key")).to_contain_text("已打开签名密钥", timeout=60_000)
        return page, errors

    maker, maker_errors = person("clerk")
    maker.get_by_role("link", name="发票", exact=True).click()
    maker.locator("tr", has_text=f"#{invoice_id}").get_by_role("button", name="确认付款承诺").click()
    dialog = maker.get_by_role("dialog")
    expect(dialog).to_contain_text(f"所有人 {clerk.address} 为账户 {safe} 签署")
    dialog.get_by_role("button", name="以所有人身份签署（复核）").click()
    expect(maker.locator("#activity li").first).to_have_attribute("data-status", "awaiting", timeout=60_000)
    expect(maker.locator("#activity li").first).to_contain_text("1/2")
    assert served.service.client.invoice(invoice_id).state.name.lower() == "registered"

    checker, checker_errors = person("officer")
    checker.get_by_role("link", name="待复核", exact=True).click()
    expect(checker.locator("main")).to_contain_text(f"确认发票 #{invoice_id}")
    checker.screenshot(path=str(screenshots / "approvals-safe-officer.zh-CN.png"), full_page=True)
    checker.get_by_role("button", name="复核并签署").click()
    checker.get_by_role("dialog").get_by_role("button", name="以所有人身份签署（复核）").click()
    expect(checker.locator("#activity li").first).to_have_attribute("data-status", "confirmed", timeout=60_000)
    assert served.service.client.invoice(invoice_id).state.name.lower() == "confirmed"
    assert maker_errors == [] and checker_errors == []


# An EIP-1193 provider in the page, as a browser extension injects it, whose key is held by this test: every request
# of the page (``window.ethereum.request``) reaches InjectedWallet.answer through a function Playwright exposes.
PROVIDER = """
(() => {
  const request = async ({ method, params = [] }) => {
    const answer = await window.scfTestWallet(method, params);
    if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    return answer.result;
  };
  window.ethereum = { request, on: () => {}, removeListener: () => {} };
})();
"""


class InjectedWallet:
    """A wallet as MetaMask answers (EIP-1193, EIP-1474): accounts in lower case, ``personal_sign`` of hex-encoded
    UTF-8 with the account named second, ``eth_signTypedData_v4`` of a JSON text with the account named first. Like
    eth-sig-util, it hashes the domain with the document's own ``types.EIP712Domain``: a document without it, or
    with other fields than its domain, is refused here rather than signed to another digest. ``decline`` makes
    the next signature request fail as the person declining it in the wallet would (4001)."""

    def __init__(self, account: LocalAccount) -> None:
        self.account = account
        self.asked: list[str] = []
        self.typed: list[dict[str, Any]] = []
        self.decline = False

    def answer(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.asked.append(method)
        mine = self.account.address.lower()
        if method in ("eth_requestAccounts", "eth_accounts"):
            return {"result": [mine]}
        if method not in ("personal_sign", "eth_signTypedData_v4"):
            return {"error": {"code": 4200, "message": f"{method} is not supported"}}
        if self.decline:
            self.decline = False
            return {"error": {"code": 4001, "message": "User rejected the request."}}
        if method == "personal_sign":
            data, address = params
            if address.lower() != mine:
                return {"error": {"code": 4100, "message": "not an account of this wallet"}}
            signed = self.account.sign_message(encode_defunct(hexstr=data))
            return {"result": signed.signature.to_0x_hex()}
        address, text = params
        if address.lower() != mine or not isinstance(text, str):
            return {"error": {"code": -32602, "message": "eth_signTypedData_v4 takes [account, JSON text]"}}
        document = json.loads(text)
        order = ["name", "version", "chainId", "verifyingContract", "salt"]
        wanted = [{"name": key, "type": DOMAIN_TYPES[key]} for key in order if key in document["domain"]]
        if document.get("types", {}).get("EIP712Domain") != wanted:
            return {"error": {"code": -32602, "message": "types.EIP712Domain does not describe the domain"}}
        self.typed.append(document)
        signed = self.account.sign_message(encode_typed_data(full_message=document))
        return {"result": signed.signature.to_0x_hex()}


DOMAIN_TYPES = {"name": "string", "version": "string", "chainId": "uint256", "verifyingContract": "address"}
DOMAIN_TYPES["salt"] = "bytes32"


def test_a_core_firm_signs_in_with_an_injected_wallet_and_its_confirmation_is_signed_by_that_wallet(
    browser: Browser, served: Served, screenshots: Path
) -> None:
    """The browser has an EIP-1193 wallet (window.ethereum): the core firm signs in with it (the service's challenge
    signed with personal_sign), confirms an invoice (a 428: the page words the act, the wallet signs its typed data
    with eth_signTypedData_v4; declined once in the wallet, then signed), and the act's evidence, rebuilt by the
    service from the chain, verifies to the wallet's address."""
    key: LocalAccount = Account.create()
    wallet = InjectedWallet(key)
    code = synthetic_credit_code(next(_codes))
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        asked = {"address": key.address, "credit_code": code}
        message = http.get("/participants/possession-message", params=asked, headers=served.headers("operator"))
        proof = key.sign_message(encode_defunct(text=message.json()["message"])).signature.to_0x_hex()
        body = {
            "name": "FAW wallet",
            "roles": ["core-firm"],
            "login_address": key.address,
            "address": key.address,
            "credit_code": code,
            "proof": proof,
        }
        created = http.post("/participants", json=body, headers=served.headers("operator", **WAIT))
        assert created.status_code == 201, created.text
        supplier = served.onboard(http, "Seats for the wallet", "supplier")
        line = {"core_firm": key.address, "limit": 10_000_000_00}
        assert http.post("/credit-lines", json=line, headers=served.headers("operator", **WAIT)).status_code == 200
        invoice = {
            "buyer": key.address,
            "amount": 3_000_000_07,
            "invoice_number": f"25117{next(_codes):015d}",
            "due_date": chain_day(served, 75),
        }
        registered = http.post("/invoices", json=invoice, headers=served.headers("Seats for the wallet", **WAIT))
        invoice_id = registered.json()["result"]["invoice_id"]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.expose_function("scfTestWallet", wallet.answer)
    context.add_init_script(PROVIDER)
    page = context.new_page()
    errors = watch(page, served.base_url)
    page.goto(served.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_role("button", name="用浏览器钱包登录").click()
    expect(page.locator("main h1")).to_contain_text("欢迎，FAW wallet", timeout=60_000)
    expect(page.locator("main")).to_contain_text("自持密钥")
    assert wallet.asked == ["eth_requestAccounts", "personal_sign"]

    page.get_by_role("link", name="发票", exact=True).click()
    page.locator("tr", has_text=f"#{invoice_id}").get_by_role("button", name="确认付款承诺").click()
    dialog = page.get_by_role("dialog")
    due = invoice["due_date"]
    expect(dialog.locator(".sentence")).to_contain_text(
        f"确认发票 #{invoice_id}：承诺于 {due} 向 {supplier} 支付 ¥3,000,000.07。"
    )
    expect(dialog.locator(".hint")).to_have_text(f"签署账户 {key.address}")  # checksum spelling, not the wallet's
    page.screenshot(path=str(screenshots / "sign-act-wallet-core-firm.zh-CN.png"), full_page=True)

    # Declined in the wallet: the page says so and keeps the act open; nothing is sent.
    wallet.decline = True
    dialog.get_by_role("button", name="签署并提交").click()
    expect(dialog.get_by_role("alert")).to_contain_text("钱包中拒绝了签名")
    expect(page.locator("#activity li").first).to_have_attribute("data-status", "pending")
    assert served.service.client.invoice(invoice_id).state.name.lower() == "registered"

    with page.expect_response(lambda r: r.url.endswith("/acts") and r.request.method == "POST") as relayed:
        dialog.get_by_role("button", name="签署并提交").click()
    operation_id = relayed.value.json()["operation_id"]
    expect(page.locator("#activity li").first).to_have_attribute("data-status", "confirmed", timeout=60_000)
    assert served.service.client.invoice(invoice_id).state.name.lower() == "confirmed"
    assert wallet.asked[2:] == ["eth_signTypedData_v4", "eth_signTypedData_v4"]

    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        answer = http.get(f"/operations/{operation_id}/evidence", headers=served.headers("operator"))
    assert answer.status_code == 200, answer.text
    evidence = answer.json()
    assert evidence["act"] == "ConfirmInvoice" and evidence["digest_matches"]
    assert evidence["account"] == key.address and evidence["signer"] == key.address
    signed = encode_typed_data(full_message=evidence["typed_data"])
    assert Account.recover_message(signed, signature=evidence["signature"]) == key.address
    # What went on chain is what the wallet was asked to sign, field for field.
    [what_the_wallet_signed] = wallet.typed
    assert _digest(what_the_wallet_signed) == _digest(evidence["typed_data"]) == evidence["digest"]
    assert errors == []
    context.close()


def _digest(document: dict[str, Any]) -> str:
    signable = encode_typed_data(full_message=document)
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()
