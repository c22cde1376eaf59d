"""The benchmark's own participants on a fresh deployment, onboarded through the ledger client.

Before the REST service starts, the operator registers ``holders`` suppliers, a recipient, a core firm and a
financier (accounts derived from fixed seeds, funded with ether for gas); the financier grants the core firm
a credit line; each holder registers a large invoice on the core firm, which confirms it: each holder then
holds one large piece, from which the benchmarks split 1-fen pieces (``transferFrom(uint256,address,uint256)``,
a real ledger operation that creates a piece recording its parent). The operator signs nothing here once the
service runs, so the two never share a nonce sequence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from bench.load import BenchmarkFailed, Call
from ledger import acts
from ledger.client import LedgerClient
from ledger.errors import ErrorDecoder
from ledger.models import Role
from ledger.pipeline import Operation, Pipeline

PIECE_VALUE = 10**15
"""Face value of each holder's invoice, fen: enough for any number of 1-fen splits."""

GAS_MONEY = 10**20
"""Wei sent to each bench account for gas: 100 ether (the operator, an anvil dev account, holds 10,000)."""

SPLIT = "transferFrom(uint256,address,uint256)"


def bench_account(name: str) -> LocalAccount:
    """A bench account derived from a fixed seed (local chain only)."""
    account: LocalAccount = Account.from_key(keccak(text=f"scf-ledger bench account {name}"))
    return account


@dataclass
class BenchCast:
    """The bench's accounts and the piece each holder splits from."""

    operator: LocalAccount
    core_firm: LocalAccount
    financier: LocalAccount
    recipient: LocalAccount
    holders: list[LocalAccount]
    signers: list[LocalAccount] = field(default_factory=list)
    """Self-custody holders: they hold a large piece each too, and move it only by signed acts."""
    signing_keys: dict[str, LocalAccount] = field(default_factory=dict)
    """signer (participant) address → the key it signs its acts with since it adopted self-custody."""
    relayers: list[LocalAccount] = field(default_factory=list)
    """Accounts that relay the signers' acts (they pay the gas; they are not participants)."""
    pieces: dict[str, int] = field(default_factory=dict)
    """holder or signer address → its large piece."""
    act_nonces: dict[str, int] = field(default_factory=dict)
    """signer address → its next act nonce (one word of 256 after another)."""

    def accounts(self) -> dict[str, LocalAccount]:
        every = [self.operator, self.core_firm, self.financier, self.recipient, *self.holders]
        return {str(a.address): a for a in [*every, *self.signers, *self.relayers]}


def split_calls(
    receivables: Contract, cast: BenchCast, count: int, *, to: str | None = None, offset: int = 0
) -> list[Call]:
    """``count`` 1-fen split-transfers, round robin over the holders, each from the holder's piece to ``to``
    (default: the recipient)."""
    target = Web3.to_checksum_address(to or cast.recipient.address)
    # Every split of one holder is the same call (its piece, the target, 1 fen): encoded once per holder.
    by_holder = [
        Call(
            h,
            str(receivables.address),
            bytes.fromhex(receivables.encode_abi(SPLIT, [cast.pieces[str(h.address)], target, 1])[2:]),
        )
        for h in cast.holders
    ]
    return [by_holder[i % len(by_holder)] for i in range(offset, offset + count)]


def signed_split_calls(
    acts_contract: Contract, cast: BenchCast, count: int, chain_id: int, *, to: str | None = None
) -> list[Call]:
    """``count`` 1-fen split-transfers as ``AssignPiece`` acts the signers sign (each with its own nonce),
    round robin over the signers, each relayed by a relayer (round robin too): the signed path of the same
    operation as :func:`split_calls`."""
    target = Web3.to_checksum_address(to or cast.recipient.address)
    address = str(acts_contract.address)
    calls = []
    for i in range(count):
        signer = cast.signers[i % len(cast.signers)]
        account = str(signer.address)
        nonce = cast.act_nonces.get(account, 0)
        cast.act_nonces[account] = nonce + 1
        message = acts.ACTS["receivable.transfer"].message(
            account, [cast.pieces[account], target, 1], None, nonce=nonce, deadline=2**40
        )
        document = acts.typed_data(acts.ACTS["receivable.transfer"], message, chain_id, address)
        signature = acts.sign(document, cast.signing_keys[account])
        arguments = acts.call_arguments(acts.ACTS["receivable.transfer"], message, signature)
        data = bytes.fromhex(acts_contract.encode_abi("assignPiece", arguments)[2:])
        calls.append(Call(cast.relayers[i % len(cast.relayers)], address, data))
    return calls


async def onboard_cast(
    w3: Web3,
    contracts: Mapping[str, Contract],
    decoder: ErrorDecoder,
    pipeline: Pipeline,
    operator: LocalAccount,
    holders: int,
) -> BenchCast:
    """Register, fund and equip the cast (see the module); returns it with each holder's piece."""
    cast = BenchCast(
        operator=operator,
        core_firm=bench_account("core firm"),
        financier=bench_account("financier"),
        recipient=bench_account("recipient"),
        holders=[bench_account(f"holder {i}") for i in range(holders)],
        signers=[bench_account(f"signer {i}") for i in range(holders)],
        relayers=[bench_account(f"relayer {i}") for i in range(holders)],
    )
    cast.signing_keys = {str(s.address): bench_account(f"signer {i} own key") for i, s in enumerate(cast.signers)}
    accounts = cast.accounts()
    client = LedgerClient(w3, contracts, decoder, pipeline, accounts.__getitem__)
    op = str(operator.address)

    async def confirmed(*operations: Operation) -> list[Any]:
        outcomes = await asyncio.gather(*(client.outcome(o, timeout=120) for o in operations))
        return list(outcomes)

    members: list[tuple[LocalAccount, Role]] = [
        (cast.core_firm, Role.CORE_FIRM),
        (cast.financier, Role.FINANCIER),
        (cast.recipient, Role.SUPPLIER),
        *((holder, Role.SUPPLIER) for holder in [*cast.holders, *cast.signers]),
    ]
    await confirmed(
        *[await client.send_ether(op, str(a.address), GAS_MONEY) for a in [*(m for m, _ in members), *cast.relayers]]
    )
    await confirmed(
        *[
            await client.register_participant(op, str(a.address), keccak(text=f"bench {a.address}"), [role])
            for a, role in members
        ]
    )
    core, financier = str(cast.core_firm.address), str(cast.financier.address)
    await confirmed(
        await client.set_credit_line(financier, core, PIECE_VALUE * (len(cast.holders) + len(cast.signers) + 1))
    )
    due = int(w3.eth.get_block("latest")["timestamp"]) + 180 * 86_400
    registered = await confirmed(
        *[
            await client.register_invoice(
                str(h.address),
                keccak(text=f"bench invoice {h.address} {time.time_ns()}"),
                core,
                PIECE_VALUE,
                "CNY",
                due,
                keccak(text="bench document"),
            )
            for h in [*cast.holders, *cast.signers]
        ]
    )
    invoice_ids = [int(outcome.event("InvoiceRegistered")["invoiceId"]) for outcome in registered]
    confirmations = await confirmed(*[await client.confirm_invoice(core, i) for i in invoice_ids])
    for holder, outcome in zip([*cast.holders, *cast.signers], confirmations, strict=True):
        cast.pieces[str(holder.address)] = int(outcome.event("InvoiceConfirmed")["pieceId"])
    if len(cast.pieces) != len(cast.holders) + len(cast.signers):  # pragma: no cover - each names its piece
        raise BenchmarkFailed("a holder did not get its piece")
    # The signers now switch to keys of their own: from here on they act only by acts those keys sign.
    await confirmed(
        *[await client.adopt_self_custody(op, account, str(key.address)) for account, key in cast.signing_keys.items()]
    )
    return cast
