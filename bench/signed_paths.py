"""Gas of the three paths a signed act can take to the contract it is performed on, side by side.

The ledger relays a self-custody participant's signed act through ``SignedActs``, a contract of its own that
verifies the act and calls the target with the account appended (ERC-2771). Its overhead over the direct path
is 18,600 to 29,700 gas (``make gas``, ``build/gas-report-signed-acts.md``), over the 15,000 budget. The design
that docs/self-custody.md proposes instead verifies in the target: the relayer's transaction goes to the target,
which hashes the act from its own calldata and has the registry (which it calls anyway on the direct path) check
the signature and spend the nonce. This module measures both against the direct path on the bench contracts of
``contracts/bench/BenchSignedActs.sol`` (never deployed by the ledger), for an act that restates nothing
(cancelling a pledge) and one that restates the terms it approves (confirming an invoice: seller, amount,
currency, due date), from one chain state each, with the nonce's bitmap word already in use (the steady state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from ledger import acts
from ledger.tooling.sandbox import Sandbox

DAY = 86_400
#: Far in the future: the deadline is not what is measured.
DEADLINE = 2**40
AMOUNT = 123_456_789
CURRENCY = b"CNY"
#: A fixed key: a signature's zero bytes cost less calldata than its others, so a random key would move the
#: figures by a few gas from run to run.
SIGNER_KEY = keccak(text="scf bench signed paths: the self-custody signer")


@dataclass(frozen=True)
class PathGas:
    """One act's gas by each path."""

    direct: int
    forwarded: int
    in_target: int

    @property
    def forwarded_overhead(self) -> int:
        return self.forwarded - self.direct

    @property
    def in_target_overhead(self) -> int:
        return self.in_target - self.direct


@dataclass
class SignedPaths:
    """The bench contracts on a sandbox, with a hosted participant (direct path) and a self-custody one."""

    sb: Sandbox
    registry: Contract
    target: Contract
    forwarder: Contract
    key: LocalAccount
    seller: str

    RELAYER = "operator"
    HOSTED = "seatmaker"

    @classmethod
    def deploy(cls, sb: Sandbox) -> SignedPaths:
        registry = sb.deploy("BenchActRegistry", sender=cls.RELAYER)
        target = sb.w3.eth.contract(address=registry.functions.target().call(), abi=sb.artifacts["BenchActTarget"].abi)
        forwarder = sb.deploy("BenchActForwarder", registry.address, sender=cls.RELAYER)
        paths = cls(sb, registry, target, forwarder, Account.from_key(SIGNER_KEY), sb.address("automaker"))
        paths.send(target.functions.setForwarder(forwarder.address))
        hosted = sb.address(cls.HOSTED)
        paths.send(registry.functions.register(hosted, hosted, False))
        paths.send(registry.functions.register(paths.seller, paths.seller, False))
        paths.send(registry.functions.register(paths.own, paths.own, True))
        return paths

    @property
    def own(self) -> str:
        return str(self.key.address)

    def send(self, fn: ContractFunction, sender: str | None = None) -> int:
        receipt = self.sb.send(fn, sender or self.RELAYER)
        return int(receipt["gasUsed"])

    def sign(self, verifier: Contract, act: str, message: dict[str, Any]) -> bytes:
        """``message`` as the ledger's EIP-712 act ``act`` (:mod:`ledger.acts`: the bench contracts declare the same
        types and domain name) in ``verifier``'s domain, signed by the self-custody key."""
        document = acts.typed_data(acts.ACT_TYPES[act], message, self.sb.w3.eth.chain_id, verifier.address)
        return bytes(self.key.sign_message(encode_typed_data(full_message=document)).signature)

    # -- the acts, by each path ----------------------------------------------------------------------------

    def cancel_forwarded(self, pledge_id: int, nonce: int, signature: bytes | None = None) -> int:
        message = {"account": self.own, "pledgeId": pledge_id, "nonce": nonce, "deadline": DEADLINE}
        signature = signature or self.sign(self.forwarder, "CancelPledge", message)
        act = (self.own, pledge_id, nonce, DEADLINE)
        return self.send(self.forwarder.functions.cancelPledge(act, signature))

    def cancel_in_target(self, pledge_id: int, nonce: int, signature: bytes | None = None) -> int:
        message = {"account": self.own, "pledgeId": pledge_id, "nonce": nonce, "deadline": DEADLINE}
        signature = signature or self.sign(self.registry, "CancelPledge", message)
        return self.send(self.target.functions.cancelPledgeSigned(pledge_id, self.own, nonce, DEADLINE, signature))

    def _confirmation(self, invoice_id: int, nonce: int, due: int, amount: int) -> dict[str, Any]:
        return {
            "account": self.own,
            "invoiceId": invoice_id,
            "seller": self.seller,
            "amount": amount,
            "currency": CURRENCY,
            "dueDate": due,
            "nonce": nonce,
            "deadline": DEADLINE,
        }

    def confirm_forwarded(self, invoice_id: int, nonce: int, due: int, amount: int = AMOUNT) -> int:
        message = self._confirmation(invoice_id, nonce, due, amount)
        signature = self.sign(self.forwarder, "ConfirmInvoice", message)
        act = (self.own, invoice_id, self.seller, amount, CURRENCY, due, nonce, DEADLINE)
        return self.send(self.forwarder.functions.confirmInvoice(act, signature))

    def confirm_in_target(self, invoice_id: int, nonce: int, due: int, amount: int = AMOUNT) -> int:
        message = self._confirmation(invoice_id, nonce, due, amount)
        signature = self.sign(self.registry, "ConfirmInvoice", message)
        fn = self.target.functions.confirmInvoiceSigned(
            invoice_id, self.seller, amount, CURRENCY, due, self.own, nonce, DEADLINE, signature
        )
        return self.send(fn)


def measure_signed_paths(sb: Sandbox | None = None) -> dict[str, PathGas]:
    """Each act's gas by the three paths, from one chain state (see the module)."""
    sb = sb or Sandbox.create(with_warehouse=False)
    paths = SignedPaths.deploy(sb)
    hosted, own = sb.address(SignedPaths.HOSTED), paths.own
    for pledge_id, borrower in ((1, hosted), (2, own), (3, own), (4, own)):
        paths.send(paths.target.functions.openPledge(pledge_id, borrower, 100 + pledge_id))
    due = sb.now() + 90 * DAY
    for invoice_id, buyer in ((1, hosted), (2, own)):
        paths.send(paths.target.functions.registerInvoice(invoice_id, paths.seller, buyer, AMOUNT, due))
    # Nonce 0 spent in both verifiers' bitmaps: the measured acts' word is in use, as in the ledger's report.
    paths.cancel_in_target(3, 0)
    paths.cancel_forwarded(4, 0)

    figures: dict[str, PathGas] = {}
    with sb.isolated():
        forwarded = paths.cancel_forwarded(2, 1)
    with sb.isolated():
        in_target = paths.cancel_in_target(2, 1)
    direct = paths.send(paths.target.functions.cancelPledge(1), SignedPaths.HOSTED)
    figures["cancel a pledge (restates nothing)"] = PathGas(direct, forwarded, in_target)

    with sb.isolated():
        forwarded = paths.confirm_forwarded(2, 1, due)
    with sb.isolated():
        in_target = paths.confirm_in_target(2, 1, due)
    direct = paths.send(paths.target.functions.confirmInvoice(1), SignedPaths.HOSTED)
    figures["confirm an invoice (restates seller, amount, currency, due date)"] = PathGas(direct, forwarded, in_target)
    return figures
