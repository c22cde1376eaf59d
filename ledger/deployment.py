"""Deploying the ledger's contracts, recording where they are, and finding them again.

:func:`deploy` puts every contract on a chain and wires them together: the participant registry (with the
operator as its first participant and the first regulator named beside it: the regulator role is outside the
operator's power, so only the deployment names the first one, see :func:`regulator_account`), the deposit
token, the audit-log anchor, the receivables and, when compiled, the warehouse receipts; then the operator
registers each ledger contract that holds deposit tokens in the registry as an active participant with the
``system`` role, since deposit tokens move only between active participants and the contracts hold and pay
them (escrow, repayments, loans). The audit-log anchor (``AuditAnchor``) holds nothing and is not registered:
it only asks the registry who is an operator.
Transactions are signed here, with nonces counted here, and sent raw: a production node has no unlocked
accounts. Like Hardhat Ignition, the work runs in batches, each sent at once and mined in one block: a
transaction goes in the first batch after everything it needs is on chain (the
receivables' constructor reads the token's currency; the registrations need the contracts).

:func:`write_deployment` records the result under ``<deployments_dir>/chain-<chainId>/``:

- ``deployed_addresses.json``: ``{"ScfLedger#Receivables": "0x..."}``, Hardhat Ignition's shape, for tools;
- ``abi/<ContractName>.json``: the plain ABI of each deployed contract, for tools outside Python (Python
  code takes ABIs from :func:`ledger.compiler.compile_contracts`, never from these files);
- ``deployment.json``: what :func:`load_deployment` reads back: addresses, deployer, operator, regulator, the
  block of the deployment and its hash, and the source hash of the compiled contracts.

:func:`load_deployment` checks a recorded deployment against the chain (code at every address, the recorded
block still the chain's block), so that a deployment file left over from an anvil that lost its state is
caught as :class:`StaleDeployment` rather than used. :func:`ensure_deployment` reuses a live deployment of
the same sources and deploys otherwise; it is what ``scf deploy`` and ``scripts/deploy.py`` run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak
from hexbytes import HexBytes
from pydantic import SecretStr
from web3 import Web3
from web3.exceptions import TimeExhausted, Web3Exception
from web3.types import Nonce, TxParams, TxReceipt
from web3.utils.address import get_create_address

from ledger.compiler import Artifact
from ledger.errors import ErrorDecoder
from ledger.models import Role
from ledger.node import LOCAL_CHAIN_ID, dev_key
from ledger.secrets import operator_key_refusal

logger = logging.getLogger(__name__)

MODULE: Final = "ScfLedger"
"""The Ignition module name: the prefix of the keys of ``deployed_addresses.json``."""

DEPLOYMENT_FORMAT: Final = 1
"""Version of the layout of ``deployment.json``."""

SYSTEM_ROLE: Final = Role.SYSTEM.role_id
"""``Roles.SYSTEM`` of ``contracts/Roles.sol``: held by the ledger's own contracts."""

DEFAULT_OPERATOR_IDENTITY: Final = keccak(text="scf-ledger operator identity record")
"""Stand-in hash of the operator's off-chain identity record, registered with the registry's constructor."""

DEFAULT_REGULATOR_IDENTITY: Final = keccak(text="scf-ledger regulator identity record")
"""Stand-in hash of the first regulator's off-chain identity record, registered with the registry's constructor."""

DEV_REGULATOR_INDEX: Final = 9
"""The anvil dev account that is the first regulator on the local chain when ``SCF_REGULATOR_ADDRESS`` is unset
(the last one: tests and tools use the first ones)."""

LEDGER_CONTRACTS: Final = (
    "ParticipantRegistry",
    "SignedActs",
    "DepositToken",
    "AuditAnchor",
    "Receivables",
    "WarehouseReceipts",
)
"""The contracts a deployment holds, in order. ``AuditAnchor`` and ``WarehouseReceipts`` are deployed when they
are compiled."""

UNREGISTERED_CONTRACTS: Final = ("ParticipantRegistry", "SignedActs", "AuditAnchor")
"""The contracts not registered as ``system`` participants: the registry itself, the signed-acts relay and the
audit-log anchor, which hold no deposit tokens."""

GAS_HEADROOM: Final = 1.2
"""Gas limit = estimate × this: an estimate is exact for the state it ran on, and nothing else runs here."""


class DeploymentError(Exception):
    """A deployment could not be made or used. Its message is one line for the user."""


class DeploymentFailed(DeploymentError):
    """A deployment transaction was refused or reverted."""


class StaleDeployment(DeploymentError):
    """A recorded deployment is not on the chain any more (the chain was reset, or lost its state)."""


class OutdatedDeployment(DeploymentError):
    """A recorded deployment is live, but of other contract sources than those compiled now."""


class OperatorKeyMissing(DeploymentError):
    """No usable operator key for this chain."""


class RegulatorMissing(DeploymentError):
    """No usable first regulator for this chain (``SCF_REGULATOR_ADDRESS``)."""


class DeploymentMissing(DeploymentError):
    """A gateway that never deploys (a member's, the regulator's) found no deployment to attach to."""


class GatewayKeyRefused(DeploymentError):
    """The gateway's own key cannot be what its role needs (the regulator's gateway without a regulator's key)."""


@dataclass(frozen=True)
class Deployment:
    """The ledger's contracts on one chain."""

    chain_id: int
    addresses: Mapping[str, ChecksumAddress]
    """Contract name → address, in deployment order."""
    deployer: ChecksumAddress
    operator: ChecksumAddress
    block_number: int
    """The block of the last deployment transaction: the deployment is complete from here on."""
    block_hash: str
    source_hash: str
    """:attr:`ledger.compiler.Artifact.source_hash` of the contracts deployed."""
    compiler_version: str
    deployed_at: str
    transactions: Mapping[str, str] = field(default_factory=dict)
    """Step → transaction hash."""
    regulator: ChecksumAddress | None = None
    """The first regulator, named by the registry's constructor (None in a record written before it was)."""

    def address(self, contract_name: str) -> ChecksumAddress:
        try:
            return self.addresses[contract_name]
        except KeyError:
            raise KeyError(f"{contract_name} is not part of the deployment on chain {self.chain_id}") from None

    def ignition_addresses(self) -> dict[str, str]:
        """``deployed_addresses.json``: ``{"ScfLedger#<ContractName>": address}``."""
        return {f"{MODULE}#{name}": address for name, address in self.addresses.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": DEPLOYMENT_FORMAT,
            "module": MODULE,
            "chainId": self.chain_id,
            "contracts": dict(self.addresses),
            "deployer": self.deployer,
            "operator": self.operator,
            "regulator": self.regulator,
            "blockNumber": self.block_number,
            "blockHash": self.block_hash,
            "sourceHash": self.source_hash,
            "compilerVersion": self.compiler_version,
            "deployedAt": self.deployed_at,
            "transactions": dict(self.transactions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        if data.get("format") != DEPLOYMENT_FORMAT:
            raise ValueError(f"unknown deployment format {data.get('format')!r}")
        return cls(
            chain_id=int(data["chainId"]),
            addresses={str(k): Web3.to_checksum_address(v) for k, v in data["contracts"].items()},
            deployer=Web3.to_checksum_address(data["deployer"]),
            operator=Web3.to_checksum_address(data["operator"]),
            block_number=int(data["blockNumber"]),
            block_hash=str(data["blockHash"]),
            source_hash=str(data["sourceHash"]),
            compiler_version=str(data["compilerVersion"]),
            deployed_at=str(data["deployedAt"]),
            transactions={str(k): str(v) for k, v in data.get("transactions", {}).items()},
            regulator=Web3.to_checksum_address(data["regulator"]) if data.get("regulator") else None,
        )


@dataclass(frozen=True)
class DeploymentProgress:
    """One step of :func:`deploy` sent or confirmed; given to the ``progress`` callback."""

    step: int
    """1-based position among ``total`` steps."""
    total: int
    label: str
    tx_hash: str
    confirmed: bool
    """False when the transaction was just sent; True once it is in a block."""
    address: ChecksumAddress | None = None
    """The contract created by this step, if it deploys one."""
    block_number: int | None = None
    gas_used: int | None = None


ProgressCallback = Callable[[DeploymentProgress], None]


# -- the operator's key ----------------------------------------------------------------------------------


def operator_account(operator_key: SecretStr | None, chain_id: int) -> LocalAccount:
    """The operator, who deploys the contracts and onboards participants, from ``SCF_OPERATOR_KEY``.

    Unset on the local chain (31337), it is anvil's first dev account (a public key), and a log line says
    so. On any other chain the key is required, and anvil's public dev keys and keys that are not random are
    refused (:func:`ledger.secrets.operator_key_refusal`).
    """
    value = None if operator_key is None else operator_key.get_secret_value().strip()
    refusal = operator_key_refusal(value, chain_id)
    if refusal is not None:
        raise OperatorKeyMissing(f"SCF_OPERATOR_KEY {refusal}")
    if not value:  # unset or empty (SCF_OPERATOR_KEY=) on the local chain
        account: LocalAccount = Account.from_key(dev_key(0))
        logger.info("SCF_OPERATOR_KEY is unset: the operator is anvil's first dev account %s", account.address)
        return account
    account = Account.from_key(value)
    return account


def dev_regulator() -> LocalAccount:
    """The first regulator of a local chain when ``SCF_REGULATOR_ADDRESS`` is unset: anvil's dev account
    :data:`DEV_REGULATOR_INDEX`, a public key, whose key the local service hosts (so that the demo and the tests
    have a regulator that admits others and approves recoveries). Never outside the local chain."""
    account: LocalAccount = Account.from_key(dev_key(DEV_REGULATOR_INDEX))
    return account


@dataclass(frozen=True)
class FirstRegulator:
    """The regulator the registry's constructor names: its address and, on the local chain only, its key."""

    address: ChecksumAddress
    hosted: LocalAccount | None
    """Its key when this service holds it (the local chain's dev regulator); None when the regulator keeps its own."""


def regulator_account(regulator_address: str | None, chain_id: int, operator: str) -> FirstRegulator:
    """The first regulator, from ``SCF_REGULATOR_ADDRESS``: an account whose key the operator does not hold.

    Unset on the local chain (31337), it is :func:`dev_regulator`, hosted by the service, and a log line says so.
    On any other chain it is required. It must not be the operator's account (the registry refuses one account
    holding both roles). The service holds no key of a regulator named here.
    """
    value = (regulator_address or "").strip()
    if not value:
        if chain_id != LOCAL_CHAIN_ID:
            raise RegulatorMissing(
                f"SCF_REGULATOR_ADDRESS is required on chain {chain_id}: the first regulator's account, whose key "
                "the regulator keeps (the operator must not hold it)"
            )
        account = dev_regulator()
        logger.info(
            "SCF_REGULATOR_ADDRESS is unset: the first regulator is anvil's dev account %s, hosted by this service "
            "(local chain only)",
            account.address,
        )
        return FirstRegulator(account.address, account)
    if not Web3.is_address(value):
        raise RegulatorMissing(f"SCF_REGULATOR_ADDRESS is not an account address: {value!r}")
    address = Web3.to_checksum_address(value)
    if address == Web3.to_checksum_address(operator):
        raise RegulatorMissing("SCF_REGULATOR_ADDRESS is the operator's account; the regulator must be another party")
    return FirstRegulator(address, None)


# -- deploying -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    label: str
    signer: LocalAccount
    encode: Callable[[Mapping[str, ChecksumAddress]], HexStr]
    """The transaction's data, given the addresses deployed by the earlier batches."""
    contract: str | None = None
    """The contract this step deploys; None for a call."""
    target: str | None = None
    """The contract this step calls; None for a deployment."""
    expected_address: ChecksumAddress | None = None
    """Where the contract must be created: its address was computed beforehand and given to others."""


def deploy(
    w3: Web3,
    *,
    deployer: LocalAccount,
    artifacts: Mapping[str, Artifact],
    operator: LocalAccount | None = None,
    operator_identity_hash: bytes = DEFAULT_OPERATOR_IDENTITY,
    regulator: str | None = None,
    regulator_identity_hash: bytes = DEFAULT_REGULATOR_IDENTITY,
    currency: str = "CNY",
    progress: ProgressCallback | None = None,
    receipt_timeout: float = 120.0,
) -> Deployment:
    """Deploy every ledger contract from ``deployer`` and register them with the registry as ``operator``.

    ``operator`` (default: the deployer) becomes the registry's first operator and signs the registrations.
    ``regulator`` (default: :func:`dev_regulator`'s address, for local chains and tests) becomes the first
    regulator: only the deployment names one, later regulators are admitted by a regulator.
    The deposit token is named ``SCF Deposit <currency>`` with symbol ``d<currency>``. ``progress`` is called
    when each transaction is sent and when it is confirmed. Raises :class:`DeploymentFailed` when a
    transaction is refused, reverts or is not mined within ``receipt_timeout`` seconds.
    """
    operator = operator or deployer
    regulator = Web3.to_checksum_address(regulator or dev_regulator().address)
    if regulator == operator.address:
        raise DeploymentError("the first regulator must be another account than the operator")
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise ValueError(f"currency must be an ISO 4217 code such as CNY, not {currency!r}")
    missing = [
        name for name in ("ParticipantRegistry", "SignedActs", "DepositToken", "Receivables") if name not in artifacts
    ]
    if missing:
        raise DeploymentError(f"no compiled artifact for {', '.join(missing)}")
    names = [name for name in LEDGER_CONTRACTS if name in artifacts]
    first_nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    batches = _plan(
        w3,
        artifacts,
        names,
        deployer,
        operator,
        (operator_identity_hash, regulator, regulator_identity_hash),
        currency,
        first_nonce,
    )
    total = sum(len(batch) for batch in batches)
    chain_id = w3.eth.chain_id
    decoder = ErrorDecoder.from_artifacts(artifacts)
    senders: dict[str, _Sender] = {}
    addresses: dict[str, ChecksumAddress] = {}
    transactions: dict[str, str] = {}
    last_receipt: TxReceipt | None = None
    step = 0

    for batch in batches:
        sent: list[tuple[int, _Step, HexBytes, ChecksumAddress | None]] = []
        for item in batch:
            step += 1
            sender = senders.get(item.signer.address)
            if sender is None:
                sender = senders[item.signer.address] = _Sender(w3, item.signer, chain_id, decoder)
            data = item.encode(addresses)
            to = None if item.target is None else addresses[item.target]
            tx_hash, nonce = sender.send(item.label, to, data)
            created = get_create_address(item.signer.address, nonce) if item.contract else None
            sent.append((step, item, tx_hash, created))
            transactions[item.label] = tx_hash.to_0x_hex()
            if progress:
                progress(DeploymentProgress(step, total, item.label, tx_hash.to_0x_hex(), False, created))
        for number, item, tx_hash, created in sent:
            receipt = _wait(w3, item.label, tx_hash, receipt_timeout)
            if item.contract is not None:
                if receipt["contractAddress"] != created:  # pragma: no cover - CREATE addresses are fixed
                    raise DeploymentFailed(f"{item.label} was created at {receipt['contractAddress']}, not {created}")
                if item.expected_address is not None and created != item.expected_address:
                    raise DeploymentFailed(
                        f"{item.label} was created at {created}, not at {item.expected_address} where the contracts"
                        " before it expect it (did the deployer send another transaction meanwhile?)"
                    )
                assert created is not None
                addresses[item.contract] = created
            last_receipt = receipt
            if progress:
                progress(
                    DeploymentProgress(
                        number,
                        total,
                        item.label,
                        tx_hash.to_0x_hex(),
                        True,
                        created,
                        receipt["blockNumber"],
                        receipt["gasUsed"],
                    )
                )

    assert last_receipt is not None
    _check_wiring(w3, artifacts, addresses)
    source_hash = artifacts["ParticipantRegistry"].source_hash
    return Deployment(
        chain_id=chain_id,
        addresses={name: addresses[name] for name in names},
        deployer=deployer.address,
        operator=operator.address,
        block_number=last_receipt["blockNumber"],
        block_hash=last_receipt["blockHash"].to_0x_hex(),
        source_hash=source_hash,
        compiler_version=artifacts["ParticipantRegistry"].compiler_version,
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        transactions=transactions,
        regulator=regulator,
    )


def _plan(
    w3: Web3,
    artifacts: Mapping[str, Artifact],
    names: Sequence[str],
    deployer: LocalAccount,
    operator: LocalAccount,
    identities: tuple[bytes, ChecksumAddress, bytes],
    currency: str,
    first_nonce: int,
) -> list[list[_Step]]:
    """The deployment's batches: each step's dependencies are mined in an earlier batch.

    SignedActs is created after the contracts it performs acts on (it holds their addresses as immutables),
    and they name it as their trusted forwarder: its address is computed from the deployer's nonce, the
    deployer's ``first_nonce`` plus the contracts created before it; :func:`deploy` checks it landed there.
    ``identities``: the operator's identity hash, the first regulator and its identity hash (the registry's
    constructor arguments after the operator).
    """

    def construct(name: str, arguments: Callable[[Mapping[str, ChecksumAddress]], list[Any]]) -> _Step:
        factory = w3.eth.contract(abi=artifacts[name].abi, bytecode=artifacts[name].bytecode)
        return _Step(
            label=name,
            signer=deployer,
            contract=name,
            encode=lambda addresses: HexStr(factory.constructor(*arguments(addresses)).data_in_transaction),
        )

    registry = w3.eth.contract(abi=artifacts["ParticipantRegistry"].abi)

    def register_system(name: str) -> _Step:
        return _Step(
            label=f"register {name} as system",
            signer=operator,
            target="ParticipantRegistry",
            encode=lambda addresses: registry.encode_abi(
                "register", args=[addresses[name], contract_identity_hash(name), [SYSTEM_ROLE]]
            ),
        )

    no_receipts = "0x" + "00" * 20
    set_signed_acts = _Step(
        label="set SignedActs in the registry",
        signer=operator,
        target="ParticipantRegistry",
        encode=lambda addresses: registry.encode_abi("setSignedActs", args=[addresses["SignedActs"]]),
    )
    ledgers = [
        name for name in names if name not in ("ParticipantRegistry", "SignedActs", "DepositToken", "AuditAnchor")
    ]
    anchors = [name for name in names if name == "AuditAnchor"]
    # Created before SignedActs by the deployer: the registry, the token, the anchor, the ledgers.
    acts_address = get_create_address(deployer.address, Nonce(first_nonce + 2 + len(anchors) + len(ledgers)))
    signed_acts = replace(
        construct(
            "SignedActs",
            lambda a: [
                a["ParticipantRegistry"],
                a["DepositToken"],
                a["Receivables"],
                a.get("WarehouseReceipts", no_receipts),
            ],
        ),
        expected_address=acts_address,
    )
    return [
        [construct("ParticipantRegistry", lambda _: [operator.address, *identities])],
        [
            construct(
                "DepositToken",
                lambda a: [
                    a["ParticipantRegistry"],
                    f"SCF Deposit {currency}",
                    f"d{currency}",
                    currency.encode(),
                    acts_address,
                ],
            ),
            *[construct(name, lambda a: [a["ParticipantRegistry"]]) for name in anchors],
        ],
        [construct(name, lambda a: [a["ParticipantRegistry"], a["DepositToken"], acts_address]) for name in ledgers],
        [signed_acts],
        [*[register_system(name) for name in ["DepositToken", *ledgers]], set_signed_acts],
    ]


def contract_identity_hash(contract_name: str) -> bytes:
    """The identity hash under which a ledger contract is registered as a ``system`` participant."""
    return keccak(text=f"scf-ledger contract {contract_name}")


class _Sender:
    """Signs and sends one account's transactions, counting its nonces (this account sends nothing else
    meanwhile), with fees from the latest block: EIP-1559 where the chain has a base fee, else legacy."""

    def __init__(self, w3: Web3, account: LocalAccount, chain_id: int, decoder: ErrorDecoder) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.decoder = decoder
        self.nonce: int = w3.eth.get_transaction_count(account.address, "pending")

    def send(self, label: str, to: ChecksumAddress | None, data: HexStr) -> tuple[HexBytes, Nonce]:
        call: TxParams = {"from": self.account.address, "data": data}
        if to is not None:
            call["to"] = to
        try:
            estimate = self.w3.eth.estimate_gas(call)
        except (Web3Exception, ValueError) as exc:
            decoded = self.decoder.from_exception(exc)
            reason = str(decoded) if decoded is not None else _first_line(exc)
            raise DeploymentFailed(f"{label} would revert: {reason}") from exc
        transaction: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self.nonce,
            "gas": int(estimate * GAS_HEADROOM),
            "data": data,
            "value": 0,
            **self._fees(),
        }
        if to is not None:
            transaction["to"] = to
        signed = self.account.sign_transaction(transaction)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except (Web3Exception, ValueError) as exc:
            raise DeploymentFailed(f"{label} was refused by the node: {_first_line(exc)}") from exc
        nonce = Nonce(self.nonce)
        self.nonce += 1
        return tx_hash, nonce

    def _fees(self) -> dict[str, int]:
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": self.w3.eth.gas_price}
        tip = self.w3.eth.max_priority_fee
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}


def _wait(w3: Web3, label: str, tx_hash: HexBytes, timeout: float) -> TxReceipt:
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
    except TimeExhausted as exc:
        raise DeploymentFailed(f"{label} ({tx_hash.to_0x_hex()}) was not mined within {timeout:g} s") from exc
    if receipt["status"] != 1:
        raise DeploymentFailed(
            f"{label} reverted in block {receipt['blockNumber']} ({tx_hash.to_0x_hex()}, gas used {receipt['gasUsed']})"
        )
    return receipt


def _check_wiring(w3: Web3, artifacts: Mapping[str, Artifact], addresses: Mapping[str, ChecksumAddress]) -> None:
    registry = w3.eth.contract(address=addresses["ParticipantRegistry"], abi=artifacts["ParticipantRegistry"].abi)
    for name, address in addresses.items():
        if name in UNREGISTERED_CONTRACTS:
            continue
        if not registry.functions.hasRole(SYSTEM_ROLE, address).call():
            raise DeploymentFailed(f"{name} at {address} did not get the system role")
    regulator_role = Role.REGULATOR.role_id
    if registry.functions.getRoleAdmin(regulator_role).call() != regulator_role:
        raise DeploymentFailed("the registry lets another role than the regulator's admit regulators")
    if registry.functions.signedActs().call() != addresses["SignedActs"]:
        raise DeploymentFailed("the registry does not name the SignedActs contract")
    acts = w3.eth.contract(address=addresses["SignedActs"], abi=artifacts["SignedActs"].abi)
    if acts.functions.receivables().call() != addresses["Receivables"]:
        raise DeploymentFailed("SignedActs does not perform acts on the receivables contract")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# -- recording and finding deployments -------------------------------------------------------------------


def deployment_dir(deployments_dir: Path, chain_id: int) -> Path:
    return Path(deployments_dir) / f"chain-{chain_id}"


def write_deployment(deployments_dir: Path, deployment: Deployment, artifacts: Mapping[str, Artifact]) -> Path:
    """Write ``deployment`` under ``<deployments_dir>/chain-<chainId>/``, replacing what was there, and return
    that folder. The files are written to a temporary folder first, so a reader never sees half of them."""
    target = deployment_dir(deployments_dir, deployment.chain_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _write_json(staging / "deployed_addresses.json", deployment.ignition_addresses())
        _write_json(staging / "deployment.json", deployment.to_json())
        (staging / "abi").mkdir()
        for name in deployment.addresses:
            _write_json(staging / "abi" / f"{name}.json", artifacts[name].abi)
        previous = None
        if target.exists():
            previous = target.with_name(f"{staging.name}-previous")
            os.replace(target, previous)
        os.replace(staging, target)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def load_deployment(deployments_dir: Path, chain_id: int, w3: Web3) -> Deployment | None:
    """The deployment recorded for ``chain_id``, checked against the chain ``w3`` is connected to.

    Returns None when none is recorded. Raises :class:`StaleDeployment` when the record does not match the
    chain: a contract has no code, or the recorded deployment block is missing or another block (the chain
    was reset, e.g. an anvil that lost its state, perhaps redeployed since at the same addresses).
    """
    path = deployment_dir(deployments_dir, chain_id) / "deployment.json"
    try:
        deployment = Deployment.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StaleDeployment(f"{path} is unreadable ({exc}); deploy anew") from exc
    if deployment.chain_id != chain_id:
        raise StaleDeployment(f"{path} records chain {deployment.chain_id}, not {chain_id}")
    actual_chain_id = w3.eth.chain_id
    if actual_chain_id != chain_id:
        raise StaleDeployment(f"the node serves chain {actual_chain_id}; the deployment at {path} is for {chain_id}")
    for name, address in deployment.addresses.items():
        if not w3.eth.get_code(address):
            raise StaleDeployment(
                f"no code at {address} ({name}) on chain {chain_id}: the chain was reset after the deployment "
                f"recorded in {path}"
            )
    head = w3.eth.block_number
    if deployment.block_number > head:
        raise StaleDeployment(
            f"the deployment recorded in {path} is in block {deployment.block_number}, "
            f"but the chain is at block {head}: it was reset"
        )
    block_hash = w3.eth.get_block(deployment.block_number)["hash"].to_0x_hex()
    if block_hash != deployment.block_hash:
        raise StaleDeployment(
            f"block {deployment.block_number} is not the block of the deployment recorded in {path}: "
            "the chain was reset and rebuilt"
        )
    return deployment


@dataclass(frozen=True)
class EnsuredDeployment:
    """What :func:`ensure_deployment` did."""

    deployment: Deployment
    directory: Path
    reused: bool
    """True when a live deployment of the same sources was found and nothing was sent."""
    replaced: str | None = None
    """Why the recorded deployment was not reused (stale), when one was recorded."""


def ensure_deployment(
    w3: Web3,
    *,
    deployments_dir: Path,
    artifacts: Mapping[str, Artifact],
    deployer: LocalAccount,
    operator: LocalAccount | None = None,
    regulator: str | None = None,
    fresh: bool = False,
    progress: ProgressCallback | None = None,
) -> EnsuredDeployment:
    """Reuse the live deployment recorded for this chain, or deploy and record a new one.

    A recorded deployment that is stale (see :func:`load_deployment`) is replaced. One of other contract
    sources than ``artifacts`` is refused with :class:`OutdatedDeployment` unless ``fresh``: moving a live
    ledger to new contracts is a decision, not a side effect. ``fresh`` always deploys anew. ``regulator`` is the
    first regulator a new deployment names (see :func:`deploy`); a reused one keeps the regulators it has.
    """
    chain_id = w3.eth.chain_id
    directory = deployment_dir(deployments_dir, chain_id)
    replaced = None
    if not fresh:
        try:
            existing = load_deployment(deployments_dir, chain_id, w3)
        except StaleDeployment as exc:
            existing = None
            replaced = str(exc)
            logger.info("replacing a stale deployment: %s", exc)
        if existing is not None:
            source_hash = artifacts["ParticipantRegistry"].source_hash
            if existing.source_hash != source_hash:
                raise OutdatedDeployment(
                    f"the contracts on chain {chain_id} (block {existing.block_number}) were compiled from other "
                    f"sources than the current ones ({existing.source_hash[:12]} ≠ {source_hash[:12]}); "
                    "deploy anew with --fresh"
                )
            return EnsuredDeployment(existing, directory, reused=True)
    deployment = deploy(
        w3, deployer=deployer, operator=operator, regulator=regulator, artifacts=artifacts, progress=progress
    )
    directory = write_deployment(deployments_dir, deployment, artifacts)
    return EnsuredDeployment(deployment, directory, reused=False, replaced=replaced)


def attach_deployment(w3: Web3, *, deployments_dir: Path, artifacts: Mapping[str, Artifact], role: str) -> Deployment:
    """The deployment a gateway of ``role`` (a member's, the regulator's) attaches to: the one recorded under
    ``deployments_dir`` for this chain (a copy of the operator's ``chain-<id>/`` folder), checked against the chain
    and the compiled sources like :func:`ensure_deployment` checks it, but never deployed anew: such a gateway
    serves the consortium's one ledger or none."""
    chain_id = w3.eth.chain_id
    existing = load_deployment(deployments_dir, chain_id, w3)
    if existing is None:
        raise DeploymentMissing(
            f"SCF_DEPLOYMENTS_DIR ({deployments_dir}) holds no deployment for chain {chain_id}: a {role} gateway "
            f"never deploys; copy the operator's {deployment_dir(Path('deployments'), chain_id)}/ folder there"
        )
    source_hash = artifacts["ParticipantRegistry"].source_hash
    if existing.source_hash != source_hash:
        raise OutdatedDeployment(
            f"the contracts on chain {chain_id} were compiled from other sources than this gateway's "
            f"({existing.source_hash[:12]} ≠ {source_hash[:12]}); run the release the operator deployed"
        )
    return existing


def first_block(w3: Web3, deployment: Deployment) -> int:
    """The block of the deployment's first transaction, where an index of it starts (nothing of the ledger is
    older); 0 when the record names no transactions."""
    blocks = [
        int(w3.eth.get_transaction_receipt(HexStr(tx_hash))["blockNumber"])
        for tx_hash in deployment.transactions.values()
    ]
    return min(blocks, default=0)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


#: The short names the ledger's code uses for the deployed contracts (``client.contracts["receivables"]``).
CONTRACT_KEYS: Final[Mapping[str, str]] = {
    "registry": "ParticipantRegistry",
    "token": "DepositToken",
    "receivables": "Receivables",
    "receipts": "WarehouseReceipts",
    "anchor": "AuditAnchor",
    "acts": "SignedActs",
}


def bind_contracts(w3: Web3, deployment: Deployment, artifacts: Mapping[str, Artifact]) -> dict[str, Any]:
    """Web3 contract objects of a deployment under :data:`CONTRACT_KEYS` (those deployed)."""
    return {
        key: w3.eth.contract(address=deployment.address(name), abi=artifacts[name].abi)
        for key, name in CONTRACT_KEYS.items()
        if name in deployment.addresses
    }
