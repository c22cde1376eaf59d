"""``scf client``: a self-custody participant's own side of the ledger, on its own machine.

A self-custody participant's key never reaches the service. This sub-app keeps it in a local keystore (the
Ethereum keystore v3 JSON, scrypt-encrypted, mode 0600) and talks to the REST API over HTTP; it sends the
service signatures, never the key::

    scf client key new --keystore FILE           a new key, encrypted; prints its address (never overwrites)
    scf client key address --keystore FILE       the address of a keystore's key (no password needed)
    scf client prove --keystore FILE --credit-code CODE
                                                 the proof of possession the operator onboards this key with
    scf client act METHOD PATH [--json BODY]     any request; a 428 signature-required answer is checked,
                                                 shown in words, confirmed, signed here and posted to /acts
    scf client confirm-invoice ID                POST /invoices/{ID}/confirm, signed
    scf client assign-piece PIECE --to ADDR --amount FEN
                                                 POST /receivables/{PIECE}/transfers, signed
    scf client fund-financing REQUEST            POST /financing-requests/{REQUEST}/fund, signed
    scf client approve-settlement receivables|receipts
                                                 POST /settlement-approvals, signed

Where the service is and who calls it: ``--url`` (or ``SCF_URL``, default ``http://127.0.0.1:8000``) and
``--api-key`` (or ``SCF_API_KEY``, the key the operator gave this participant). The keystore's password:
``--password-file`` (its first line), or ``SCF_KEY_PASSWORD``, or asked for without echo.

Before it signs, the client checks the act the service asks for (:func:`check_act`): a known act type with its
declared fields, of this participant's account, not expired, and whose EIP-712 digest, computed here, is the
one the service announced; then it shows the act in words (built here from the typed data, not taken from the
service) and its fields, and asks for confirmation unless ``--yes``. The result (the operation, as JSON) goes to
stdout; the act in words and the prompt to stderr. Failures end with ``error: ...`` and exit code 1.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import httpx
import typer
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from ledger import acts

DEFAULT_URL = "http://127.0.0.1:8000"
SIGNATURE_REQUIRED = "urn:scf:problem:signature-required"
REGISTRY = "ParticipantRegistry"
"""The registry's name among the contracts ``GET /health`` lists."""
HTTP_TIMEOUT_SECONDS = 60.0
"""Longer than the longest ``Prefer: wait`` the service grants by default (30 s)."""


class ClientError(RuntimeError):
    """An expected failure of ``scf client`` (a keystore, a password, the service, a refused act)."""


class ActRefused(ClientError):
    """The act the service asked to sign is not the one this client should sign."""


client_app = typer.Typer(
    help="A self-custody participant's side: a local encrypted key, its acts signed here and sent to the REST API.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="The participant's local keystore (keystore v3 JSON, scrypt).", no_args_is_help=True)
client_app.add_typer(key_app, name="key")

KeystoreOption = Annotated[Path, typer.Option("--keystore", help="the keystore file (keystore v3 JSON)")]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option("--password-file", help="the keystore's password file (else SCF_KEY_PASSWORD, else asked)"),
]
UrlOption = Annotated[str, typer.Option("--url", envvar="SCF_URL", help="the ledger's REST API")]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="SCF_API_KEY", help="this participant's API key", show_default=False)
]
AccountOption = Annotated[
    str | None,
    typer.Option("--account", help="the account this key signs for, when it is not the key's own (after a rotation)"),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="sign without asking for confirmation")]
WaitOption = Annotated[
    float | None, typer.Option("--wait", help="wait up to N seconds for the operation to be final (Prefer: wait=N)")
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Idempotency-Key of the request; the signed act is posted with KEY:act, so a retry with the same "
        "key never performs a second act",
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _say(message: str) -> None:
    typer.echo(message, err=True)


# -- the keystore -------------------------------------------------------------------------------------------


def read_password(password_file: Path | None, *, new: bool = False) -> str:
    """The keystore's password: the first line of ``password_file``, or ``SCF_KEY_PASSWORD``, or asked for."""
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ClientError(f"cannot read the password file {password_file}: {exc.strerror}") from None
        password = lines[0] if lines else ""
    elif "SCF_KEY_PASSWORD" in os.environ:
        password = os.environ["SCF_KEY_PASSWORD"]
    else:
        password = str(typer.prompt("Keystore password", hide_input=True, confirmation_prompt=new, err=True))
    if not password:
        raise ClientError("the keystore password is empty")
    return password


def create_keystore(path: Path, password: str) -> str:
    """A new key in a new keystore file at ``path`` (mode 0600; never overwrites): its address."""
    key = Account.create()
    document = Account.encrypt(key.key, password)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ClientError(f"{path} exists: a keystore is never overwritten (choose another file)") from None
    except OSError as exc:
        raise ClientError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(document, file)
    return str(key.address)


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientError(f"cannot read the keystore {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise ClientError(f"{path} is not a keystore (not JSON)") from None
    if not isinstance(document, dict) or ("crypto" not in document and "Crypto" not in document):
        raise ClientError(f"{path} is not a keystore (no crypto section)")
    return document


def keystore_address(path: Path) -> str:
    """The address a keystore declares (read without the password)."""
    document = _read_keystore(path)
    address = document.get("address")
    if not isinstance(address, str) or not is_address(address if address.startswith("0x") else "0x" + address):
        raise ClientError(f"{path} does not declare its address: decrypt it to learn it")
    return to_checksum_address(address if address.startswith("0x") else "0x" + address)


def load_key(path: Path, password: str) -> LocalAccount:
    """The key of a keystore; a wrong password is a :class:`ClientError`."""
    document = _read_keystore(path)
    try:
        secret = Account.decrypt(document, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise ClientError(f"wrong password for the keystore {path}") from None
        raise ClientError(f"cannot decrypt the keystore {path}: {exc}") from None
    key: LocalAccount = Account.from_key(secret)
    return key


# -- the service ----------------------------------------------------------------------------------------------


@dataclass
class Service:
    """The REST API, as this participant."""

    url: str
    api_key: str | None

    def http(self) -> httpx.Client:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return httpx.Client(base_url=self.url.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_SECONDS)

    def request(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return http.request(method.upper(), path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ClientError(f"the service at {self.url} did not answer: {exc}") from None


def _json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _problem_line(response: httpx.Response) -> str:
    content = _json_of(response)
    if isinstance(content, dict) and ("title" in content or "detail" in content):
        name = f" ({content['error']})" if content.get("error") else ""
        return f"{response.status_code} {content.get('title', '')}{name}: {content.get('detail', '')}".strip()
    return f"{response.status_code} {response.reason_phrase}: {response.text[:300]}"


# -- the check before signing ---------------------------------------------------------------------------------


def check_act(
    answer: Mapping[str, Any], account: str, *, now: float | None = None
) -> tuple[acts.ActType, dict[str, Any]]:
    """The act a 428 ``signature-required`` answer asks ``account`` to sign, once checked: a known act type with
    its declared fields, in the ledger's domain, of ``account``, not expired, and whose digest (computed here)
    is the ``digest`` the service announced. :class:`ActRefused` otherwise, before anything is signed."""
    document = answer.get("typed_data")
    if not isinstance(document, dict) or not isinstance(document.get("message"), dict):
        raise ActRefused("the answer carries no typed data to sign")
    try:
        act = acts.act_of(document)
        computed = acts.digest(document)
    except (ValueError, KeyError, TypeError) as exc:
        raise ActRefused(f"the typed data is not one of the ledger's acts: {exc}") from None
    message = document["message"]
    signed_for = message.get("account")
    if not isinstance(signed_for, str) or not is_address(signed_for):
        raise ActRefused("the act names no account")
    if to_checksum_address(signed_for) != to_checksum_address(account):
        raise ActRefused(f"the act is of account {signed_for}, not {to_checksum_address(account)}")
    announced = str(answer.get("digest", ""))
    if announced.lower() != "0x" + computed.hex():
        raise ActRefused(
            f"the digest of the typed data is 0x{computed.hex()}, the service announced {announced or 'none'}: "
            "not signed"
        )
    deadline = message.get("deadline")
    if not isinstance(deadline, int) or deadline <= (time.time() if now is None else now):
        raise ActRefused(f"the act's deadline {deadline} has passed")
    return act, document


def describe(act: acts.ActType, document: Mapping[str, Any]) -> str:
    """The act in words (from the typed data itself) and its fields, one a line."""
    message = document["message"]
    domain = document["domain"]
    where = f"chain {domain['chainId']}, contract {domain['verifyingContract']}"
    lines = [acts.sentence(act, message), f"  act: {act.name} ({where})"]
    lines += [f"  {name}: {message[name]}" for name, _ in act.all_fields]
    return "\n".join(lines)


def _print_json(content: Any) -> None:
    typer.echo(json.dumps(content, indent=2, sort_keys=False))


def run_act(
    service: Service,
    method: str,
    path: str,
    body: Any,
    *,
    key: LocalAccount,
    account: str | None,
    yes: bool,
    wait: float | None,
    idempotency_key: str | None,
) -> None:
    """Send a request; sign the act of a 428 answer here and post it to /acts; print the outcome."""
    headers: dict[str, str] = {}
    if wait is not None:
        headers["Prefer"] = f"wait={wait:g}"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    with service.http() as http:
        response = service.request(http, method, path, body=body, headers=headers)
        content = _json_of(response)
        if response.status_code != 428 or not isinstance(content, dict) or content.get("type") != SIGNATURE_REQUIRED:
            _finish(response)
            return
        act, document = check_act(content, account or key.address)
        _say(describe(act, document))
        if not yes and not typer.confirm("Sign this act?", default=False, err=True):
            raise ClientError("not signed")
        signature = "0x" + acts.sign(document, key).hex()
        if idempotency_key is not None:
            headers["Idempotency-Key"] = f"{idempotency_key}:act"
        relayed = service.request(
            http, "POST", "/acts", body={"typed_data": document, "signature": signature}, headers=headers
        )
        problem = _json_of(relayed)
        if (
            idempotency_key is not None
            and relayed.status_code == 422
            and isinstance(problem, dict)
            and str(problem.get("type", "")).endswith("idempotency-key-reused")
        ):
            # The service keeps the act it handed out under the request's key, so a retry signs the same act and
            # the relay replays its outcome; a different act under the same key (the first act's answer was
            # lost and had expired, say) is refused: the first one was posted, and is not performed twice.
            raise ClientError(
                f"an act was already posted with Idempotency-Key {idempotency_key}:act; this one was not posted "
                "(the first is performed once: see GET /operations)"
            )
        _finish(relayed)


def _finish(response: httpx.Response) -> None:
    content = _json_of(response)
    if content is not None:
        _print_json(content)
    elif response.text:
        typer.echo(response.text)
    if response.status_code >= 400:
        raise ClientError(_problem_line(response))


# -- commands -------------------------------------------------------------------------------------------------


@key_app.command("new")
def key_new(keystore: KeystoreOption, password_file: PasswordFileOption = None) -> None:
    """Create a new key in an encrypted keystore; prints its address."""
    try:
        if keystore.exists():
            raise ClientError(f"{keystore} exists: a keystore is never overwritten (choose another file)")
        typer.echo(create_keystore(keystore, read_password(password_file, new=True)))
    except ClientError as exc:
        _fail(str(exc))


@key_app.command("address")
def key_address(keystore: KeystoreOption) -> None:
    """The address of the keystore's key."""
    try:
        typer.echo(keystore_address(keystore))
    except ClientError as exc:
        _fail(str(exc))


@client_app.command("prove")
def prove_command(
    keystore: KeystoreOption,
    credit_code: Annotated[str, typer.Option("--credit-code", help="the participant's unified social credit code")],
    password_file: PasswordFileOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """The proof of possession of this key (JSON: address, credit_code, proof), for the operator to onboard the
    participant with (POST /participants with `address` and `proof`)."""
    try:
        key = load_key(keystore, read_password(password_file))
        message = possession_message(Service(url, api_key), key.address, credit_code)
        _say(message)
        proof = key.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
        _print_json({"address": key.address, "credit_code": credit_code, "proof": proof})
    except ClientError as exc:
        _fail(str(exc))


def possession_message(service: Service, address: str, credit_code: str) -> str:
    """The text to sign: from ``GET /participants/possession-message`` with an API key; before onboarding (no
    key yet), built here from what ``GET /health`` says of the chain and the registry, as the service builds it."""
    with service.http() as http:
        if service.api_key:
            params = {"address": address, "credit_code": credit_code}
            response = service.request(http, "GET", "/participants/possession-message", params=params)
            if response.status_code != 200:
                raise ClientError(_problem_line(response))
            return str(response.json()["message"])
        response = service.request(http, "GET", "/health")
        content = _json_of(response)
        if not isinstance(content, dict) or REGISTRY not in content.get("contracts", {}):
            raise ClientError(f"GET /health did not say where the {REGISTRY} is: {_problem_line(response)}")
        registry = content["contracts"][REGISTRY]
        return acts.possession_message(address, int(content["chain_id"]), registry, credit_code)


@client_app.command("act")
def act_command(
    method: Annotated[str, typer.Argument(help="POST, PUT, DELETE ...")],
    path: Annotated[str, typer.Argument(help="the route, e.g. /invoices/7/confirm")],
    keystore: KeystoreOption,
    json_body: Annotated[str | None, typer.Option("--json", help="the request's JSON body")] = None,
    password_file: PasswordFileOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    account: AccountOption = None,
    yes: YesOption = False,
    wait: WaitOption = None,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Send a request as this participant, signing here the act the service asks for (a 428)."""
    try:
        body = None if json_body is None else json.loads(json_body)
    except json.JSONDecodeError as exc:
        _fail(f"--json is not JSON: {exc}")
    _act(method, path, body, keystore, password_file, url, api_key, account, yes, wait, idempotency_key)


def _act(
    method: str,
    path: str,
    body: Any,
    keystore: Path,
    password_file: Path | None,
    url: str,
    api_key: str | None,
    account: str | None,
    yes: bool,
    wait: float | None,
    idempotency_key: str | None,
) -> None:
    try:
        if account is not None and not is_address(account):
            raise ClientError(f"--account {account} is not an address")
        if not api_key:
            raise ClientError("no API key: give --api-key or set SCF_API_KEY")
        key = load_key(keystore, read_password(password_file))
        run_act(
            Service(url, api_key),
            method,
            path if path.startswith("/") else "/" + path,
            body,
            key=key,
            account=account,
            yes=yes,
            wait=wait,
            idempotency_key=idempotency_key,
        )
    except ClientError as exc:
        _fail(str(exc))


@client_app.command("confirm-invoice")
def confirm_invoice(
    invoice_id: Annotated[int, typer.Argument(help="the invoice's id", min=1)],
    keystore: KeystoreOption,
    password_file: PasswordFileOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    account: AccountOption = None,
    yes: YesOption = False,
    wait: WaitOption = 30.0,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Confirm an invoice as its buyer: undertake to pay it at maturity."""
    path = f"/invoices/{invoice_id}/confirm"
    _act("POST", path, None, keystore, password_file, url, api_key, account, yes, wait, idempotency_key)


@client_app.command("assign-piece")
def assign_piece(
    piece_id: Annotated[int, typer.Argument(help="the receivable piece's id", min=1)],
    to: Annotated[str, typer.Option("--to", help="the participant receiving the value")],
    amount: Annotated[int, typer.Option("--amount", help="fen to assign (the whole piece or part of it)", min=1)],
    keystore: KeystoreOption,
    password_file: PasswordFileOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    account: AccountOption = None,
    yes: YesOption = False,
    wait: WaitOption = 30.0,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Assign all or part of a receivable piece to another participant."""
    path = f"/receivables/{piece_id}/transfers"
    body = {"to": to, "amount": amount}
    _act("POST", path, body, keystore, password_file, url, api_key, account, yes, wait, idempotency_key)


@client_app.command("fund-financing")
def fund_financing(
    request_id: Annotated[int, typer.Argument(help="the financing request's id", min=1)],
    keystore: KeystoreOption,
    password_file: PasswordFileOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    account: AccountOption = None,
    yes: YesOption = False,
    wait: WaitOption = 30.0,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Fund an approved financing request as its financier (pays the holder, takes the piece)."""
    path = f"/financing-requests/{request_id}/fund"
    _act("POST", path, None, keystore, password_file, url, api_key, account, yes, wait, idempotency_key)


@client_app.command("approve-settlement")
def approve_settlement(
    spender: Annotated[
        Literal["receivables", "receipts"],
        typer.Argument(help="receivables (funding, repayments) or receipts (pledge loans)"),
    ],
    keystore: KeystoreOption,
    password_file: PasswordFileOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    account: AccountOption = None,
    yes: YesOption = False,
    wait: WaitOption = 30.0,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Let a ledger contract draw this participant's cash legs (once, before funding or repaying)."""
    body = {"spender_contract": spender}
    path = "/settlement-approvals"
    _act("POST", path, body, keystore, password_file, url, api_key, account, yes, wait, idempotency_key)
