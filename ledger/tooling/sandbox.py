"""An in-process ledger on eth-tester (py-evm): every contract deployed, a realistic cast onboarded.

Used by the contract tests, the gas report and anything else that needs the real contracts without a node.
The cast follows DOMAIN.md: an automaker (core firm) buys seats from a seat maker (tier 1), which buys foam
from a chemicals firm (tier 2), which buys resin from a trader (tier 3); a city commercial bank and a
factoring company finance; a steel trader pledges coil stored at a licensed warehouse; the regulator audits;
a settlement bank issues the deposit token. Keys are derived from the names and exist only in memory.

eth-tester is slow (tens of transactions a second), so transactions carry an explicit gas limit (estimation
halves throughput) and callers reset state with :meth:`Sandbox.snapshot` / :meth:`Sandbox.revert` rather
than redeploying.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import Nonce, TxParams, TxReceipt, Wei
from web3.utils.address import get_create_address

from ledger import acts
from ledger.abi import Codec
from ledger.compiler import Artifact, compile_contracts
from ledger.errors import ContractRevert, ErrorDecoder, UnknownRevert
from ledger.models import Role

GAS_LIMIT = 5_000_000
DEPLOY_GAS = 10_000_000
CURRENCY = b"CNY"

ROLE_NAMES = tuple(role.role_name for role in Role)


def role_id(role: str) -> bytes:
    """The AccessControl id of a role of ``contracts/Roles.sol``, by its name (:attr:`ledger.models.Role.role_id`)."""
    return Role.named(role).role_id


#: name → roles held. ``outsider`` is never registered.
CAST: Mapping[str, tuple[str, ...]] = {
    "operator": ("operator",),
    "automaker": ("core-firm",),
    "truckmaker": ("core-firm",),
    "seatmaker": ("supplier",),
    "chemicals": ("supplier",),
    "trader": ("supplier",),
    "bank": ("financier",),
    "factor": ("financier",),
    "warehouse": ("warehouse",),
    "warehouse2": ("warehouse",),
    "steel": ("supplier",),
    "regulator": ("regulator",),
    "agent": ("settlement-agent",),
    "outsider": (),
}

#: Opening deposit-token balances in fen.
OPENING_BALANCES: Mapping[str, int] = {
    "automaker": 10_000_000_000,
    "truckmaker": 10_000_000_000,
    "bank": 10_000_000_000,
    "factor": 10_000_000_000,
    "seatmaker": 100_000_000,
    "chemicals": 100_000_000,
    "trader": 100_000_000,
    "steel": 100_000_000,
}


def _key_of(name: str) -> bytes:
    return keccak(text=f"scf-ledger sandbox participant {name}")


def identity_hash(name: str) -> bytes:
    """A stand-in for the hash of a participant's off-chain identity record."""
    return keccak(text=f"identity record of {name}")


@dataclass
class Sandbox:
    """A deployed ledger on an in-process chain. Build one with :meth:`create`."""

    w3: Web3
    tester: EthereumTester
    artifacts: Mapping[str, Artifact]
    accounts: dict[str, str]
    contracts: dict[str, Contract] = field(default_factory=dict)
    decoder: ErrorDecoder = field(init=False)

    _codec: Codec | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.decoder = ErrorDecoder.from_artifacts(self.artifacts)

    @property
    def codec(self) -> Codec:
        """The ABI codec of the contracts deployed so far (the same codec the client and the indexer use)."""
        if self._codec is None or self._codec.contracts != tuple(self.contracts):
            self._codec = Codec({key: list(contract.abi) for key, contract in self.contracts.items()})
        return self._codec

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def create(cls, *, with_warehouse: bool = True) -> Sandbox:
        artifacts = compile_contracts()
        backend = PyEVMBackend(genesis_parameters=PyEVMBackend.generate_genesis_params({"gas_limit": 60_000_000}))
        tester = EthereumTester(backend)
        w3 = Web3(EthereumTesterProvider(tester))
        funder = w3.eth.accounts[0]
        accounts: dict[str, str] = {}
        for name in CAST:
            key = _key_of(name)
            address = Account.from_key(key).address
            tester.add_account("0x" + key.hex())
            w3.eth.send_transaction({"from": funder, "to": address, "value": Wei(10**21), "gas": 21_000})
            accounts[name] = address
        sandbox = cls(w3=w3, tester=tester, artifacts=artifacts, accounts=accounts)
        sandbox._deploy(with_warehouse=with_warehouse)
        return sandbox

    def _deploy(self, *, with_warehouse: bool) -> None:
        operator = self.accounts["operator"]
        # The regulator is named at deployment: the operator cannot grant its role.
        registry = self.deploy(
            "ParticipantRegistry",
            operator,
            identity_hash("operator"),
            self.accounts["regulator"],
            identity_hash("regulator"),
            sender="operator",
        )
        # SignedActs is created last (it holds the others' addresses); they name its address, computed ahead.
        creations = 3 if with_warehouse and "WarehouseReceipts" in self.artifacts else 2
        nonce = self.w3.eth.get_transaction_count(Web3.to_checksum_address(operator)) + creations
        acts_address = get_create_address(Web3.to_checksum_address(operator), Nonce(nonce))
        token = self.deploy(
            "DepositToken", registry.address, "SCF Deposit CNY", "dCNY", CURRENCY, acts_address, sender="operator"
        )
        receivables = self.deploy("Receivables", registry.address, token.address, acts_address, sender="operator")
        self.contracts.update(registry=registry, token=token, receivables=receivables)
        receipts_address = "0x" + "00" * 20
        if creations == 3:
            self.contracts["receipts"] = self.deploy(
                "WarehouseReceipts", registry.address, token.address, acts_address, sender="operator"
            )
            receipts_address = self.contracts["receipts"].address
        acts = self.deploy(
            "SignedActs", registry.address, token.address, receivables.address, receipts_address, sender="operator"
        )
        if acts.address != acts_address:  # pragma: no cover - CREATE addresses follow the nonce
            raise RuntimeError(f"SignedActs was created at {acts.address}, not {acts_address}")
        self.send(registry.functions.setSignedActs(acts.address), "operator")
        for name, roles in CAST.items():
            if name in ("operator", "regulator", "outsider"):
                continue
            self.send(
                registry.functions.register(self.accounts[name], identity_hash(name), [role_id(r) for r in roles]),
                "operator",
            )
        for name, contract in self.contracts.items():
            if name == "registry":
                continue
            self.send(
                registry.functions.register(contract.address, identity_hash(f"contract {name}"), [role_id("system")]),
                "operator",
            )
        if "AuditAnchor" in self.artifacts:  # holds no deposit tokens: not a system participant
            self.contracts["anchor"] = self.deploy("AuditAnchor", registry.address, sender="operator")
        # Holds nothing and is not a participant: it relays signed acts to the contracts above.
        self.contracts["acts"] = acts
        for name, amount in OPENING_BALANCES.items():
            self.send(token.functions.mint(self.accounts[name], amount, keccak(text=f"opening {name}")), "agent")
        for name in OPENING_BALANCES:
            for spender in ("receivables", "receipts"):
                if spender in self.contracts:
                    self.send(token.functions.approve(self.contracts[spender].address, 2**256 - 1), name)

    def deploy(self, contract_name: str, *args: Any, sender: str) -> Contract:
        artifact = self.artifacts[contract_name]
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx_hash = factory.constructor(*args).transact({"from": self.accounts[sender], "gas": DEPLOY_GAS})
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1 or receipt["contractAddress"] is None:
            raise RuntimeError(f"deploying {contract_name} failed")
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)

    # -- transactions -------------------------------------------------------------------------------

    def address(self, who: str) -> str:
        return self.accounts[who] if who in self.accounts else self.contracts[who].address

    def send(self, fn: ContractFunction, sender: str, *, gas: int = GAS_LIMIT) -> TxReceipt:
        """Send ``fn`` from participant ``sender``; raise the decoded contract error if it reverts."""
        receipt = self.send_raw(fn, sender, gas=gas)
        if receipt["status"] != 1:
            raise self.revert_of(fn, sender)
        return receipt

    def send_raw(self, fn: ContractFunction, sender: str, *, gas: int = GAS_LIMIT) -> TxReceipt:
        """Send ``fn`` and return its receipt whatever its status."""
        tx_hash = fn.transact({"from": self.accounts[sender], "gas": gas})
        return self.w3.eth.get_transaction_receipt(tx_hash)

    def revert_of(self, fn: ContractFunction, sender: str) -> ContractRevert:
        """The error ``fn`` reverts with when called now by ``sender`` (a reverted transaction changes nothing,
        so calling again reproduces it)."""
        try:
            fn.call({"from": self.accounts[sender], "gas": GAS_LIMIT})
        except Exception as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is not None:
                return decoded
            return UnknownRevert({"message": str(exc)})
        return UnknownRevert({"message": "the call succeeded when replayed"})

    def call(self, fn: ContractFunction, sender: str | None = None) -> Any:
        params: TxParams = {} if sender is None else {"from": self.accounts[sender]}
        try:
            return fn.call(params)
        except Exception as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is not None:
                raise decoded from exc
            raise

    def read(self, contract: str, function: str, *args: Any) -> Any:
        """Call a view straight on eth-tester, bypassing web3's middleware (about 5 times faster than
        ``contract.functions.f().call()``; for tests that read a lot). Returns the decoded output: a
        single value, or a tuple when the function returns several values or a struct."""
        spec = self.codec.function(contract, function)
        data = "0x" + spec.encode_call(args).hex()
        raw = self.tester.call(
            {"from": self.accounts["operator"], "to": self.contracts[contract].address, "data": data}
        )
        decoded = spec.decode_result(bytes.fromhex(raw[2:]))
        return decoded[0] if len(decoded) == 1 else decoded

    def events(self, receipt: TxReceipt, contract: str, event: str) -> list[dict[str, Any]]:
        """The decoded arguments of every ``event`` of ``contract`` in ``receipt``."""
        spec = self.codec.event_named(contract, event)
        address = self.contracts[contract].address
        return [
            spec.decode([bytes(t) for t in log["topics"]], bytes(log["data"]))
            for log in receipt["logs"]
            if log["address"] == address and log["topics"] and bytes(log["topics"][0]) == spec.topic
        ]

    # -- signed acts --------------------------------------------------------------------------------

    def signing_key(self, name: str, generation: int = 0) -> LocalAccount:
        """The key participant ``name`` signs its acts with after it adopts self-custody (``generation`` counts
        rotations); derived from the name, like the hosted keys, and never added to the chain's accounts."""
        key: LocalAccount = Account.from_key(keccak(text=f"scf-ledger sandbox signing key {name} {generation}"))
        return key

    def adopt_self_custody(self, name: str) -> LocalAccount:
        """Switch ``name`` to self-custody (its hosted key retired) and return the key it signs with now."""
        key = self.signing_key(name)
        self.send(self.contracts["registry"].functions.adoptSelfCustody(self.accounts[name], key.address), "operator")
        return key

    def act_document(
        self, act: str, who: str, call_args: list[Any], *, nonce: int, deadline: int | None = None
    ) -> dict[str, Any]:
        """The EIP-712 document of act ``act`` (its EIP-712 name) by ``who``, restating chain terms as read now;
        the deadline defaults to an hour ahead."""
        act_type = acts.ACT_TYPES[act]
        message = act_type.message(
            self.address(who),
            call_args,
            lambda contract, function, args: self.read(contract, function, *args),
            nonce=nonce,
            deadline=self.now() + 3600 if deadline is None else deadline,
        )
        return acts.typed_data(act_type, message, self.w3.eth.chain_id, self.contracts["acts"].address)

    def act_function(self, document: dict[str, Any], signature: bytes) -> ContractFunction:
        """The ``SignedActs`` call that performs a signed act."""
        act_type = acts.act_of(document)
        arguments = acts.call_arguments(act_type, document["message"], signature)
        return self.contracts["acts"].functions[act_type.function](*arguments)

    def relay(self, document: dict[str, Any], key: LocalAccount, relayer: str = "operator") -> TxReceipt:
        """Sign ``document`` with ``key`` and relay it from ``relayer``; raise the decoded error if refused."""
        return self.send(self.act_function(document, acts.sign(document, key)), relayer)

    # -- chain state --------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel_to(self, timestamp: int) -> None:
        """Mine a block at ``timestamp``: views see that time, the next transaction the second after.

        (py-evm's ``time_travel`` mines its block one second before the time it is given.)
        """
        self.tester.time_travel(timestamp + 1)

    def snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def revert(self, snapshot: Any) -> None:
        self.tester.revert_to_snapshot(snapshot)

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """Run a block of work and throw its chain state away afterwards."""
        snapshot = self.snapshot()
        try:
            yield
        finally:
            self.revert(snapshot)

    def balance(self, who: str) -> int:
        return int(self.contracts["token"].functions.balanceOf(self.address(who)).call())
