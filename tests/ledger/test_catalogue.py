"""The catalogue covers the contracts: every function that changes state is a declared operation, or is named
here with the reason it is not one; every operation names a real function, every result field a real event
argument, and the client offers every operation."""

from __future__ import annotations

from typing import Any

from ledger.abi import Codec
from ledger.acts import ACT_TYPES
from ledger.catalogue import CATALOGUE
from ledger.client import LedgerClient, OperationMethod
from ledger.compiler import compile_contracts

CONTRACTS = {
    "registry": "ParticipantRegistry",
    "token": "DepositToken",
    "receivables": "Receivables",
    "receipts": "WarehouseReceipts",
    "anchor": "AuditAnchor",
}

NOT_OPERATIONS = {
    ("registry", "rotateSigner(address,address)"): "only SignedActs calls it, for a RotateKey act (POST /acts)",
    ("registry", "setSignedActs(address)"): "wired once at deployment",
    ("registry", "revokeRole(bytes32,address)"): "operator administration: no route or client test yet",
    ("registry", "updateIdentity(address,bytes32)"): "operator administration: no route or client test yet",
    ("receivables", "setParameters(uint64,uint64,uint64)"): "the market's rule parameters: set at deployment for now",
    ("receipts", "appointReceiptOracle(uint256,address)"): "per-receipt oracles: no route or client test yet",
    ("receipts", "setDefaultAdvanceRate(uint16)"): "the market's rule parameters: set at deployment for now",
    ("receipts", "setMaintenanceRatio(uint16)"): "the market's rule parameters: set at deployment for now",
    ("registry", "renounceRole(bytes32,address)"): "a participant gives up a role itself; the operator revokes",
    ("token", "transfer(address,uint256)"): "cash moves only as the leg of a financing, repayment or pledge",
    ("token", "transferFrom(address,address,uint256)"): "drawn by the ledger's contracts for settlement legs",
    (
        "receivables",
        "transferFrom(address,address,uint256)",
    ): "receivable.transfer moves a whole piece by transferPiece",
    ("receivables", "transferFrom(uint256,address,uint256)"): "receivable.transfer splits a part by transferPiece",
    ("receivables", "transferFrom(uint256,uint256,uint256)"): "ERC-3525 value into an existing piece: no route",
    ("receivables", "approve(address,uint256)"): "ERC-721 approvals: wallets' own, not the service's",
    ("receivables", "approve(uint256,address,uint256)"): "ERC-3525 value approvals: wallets' own",
    ("receivables", "setApprovalForAll(address,bool)"): "ERC-721 operator approvals: wallets' own",
    ("receivables", "safeTransferFrom(address,address,uint256)"): "ERC-721 safe transfer: wallets' own",
    ("receivables", "safeTransferFrom(address,address,uint256,bytes)"): "ERC-721 safe transfer: wallets' own",
    ("receipts", "approve(address,uint256)"): "ERC-721 approvals: wallets' own",
    ("receipts", "setApprovalForAll(address,bool)"): "ERC-721 operator approvals: wallets' own",
    ("receipts", "safeTransferFrom(address,address,uint256)"): "ERC-721 safe transfer: wallets' own",
    ("receipts", "safeTransferFrom(address,address,uint256,bytes)"): "ERC-721 safe transfer: wallets' own",
}


def _codec() -> Codec:
    artifacts = compile_contracts()
    return Codec({key: artifacts[name].abi for key, name in CONTRACTS.items()})


def test_every_state_changing_function_is_an_operation_or_says_why_not() -> None:
    codec = _codec()
    declared = CATALOGUE.functions()
    undeclared = {
        (key, spec.signature)
        for key in CONTRACTS
        for spec in codec.functions(key)
        if spec.changes_state and (key, spec.name) not in declared and (key, spec.signature) not in declared
    }
    assert undeclared == set(NOT_OPERATIONS)


def test_every_operation_names_a_function_its_arguments_fit_and_events_that_exist() -> None:
    codec = _codec()
    for operation in CATALOGUE.values():
        function = codec.function(operation.contract, operation.function)
        assert function.changes_state, operation.name
        if operation.encode is None:  # its arguments go on chain as given, in order
            assert len(operation.params) == len(function.argument_types), operation.name
        for event, fields in operation.results.items():
            arguments = {a for spec in codec.events() if spec.name == event for a in spec.order}
            assert set(fields) <= arguments, (operation.name, event)
        for (contract, event), fields in operation.own_results.items():
            arguments = {
                a for spec in codec.events() if (spec.contract, spec.name) == (contract, event) for a in spec.order
            }
            assert arguments and set(fields) <= arguments, (operation.name, contract, event)


def test_the_client_offers_every_operation_as_a_method() -> None:
    offered = {value.operation for value in vars(LedgerClient).values() if isinstance(value, OperationMethod)}
    assert offered == set(CATALOGUE)


def test_every_state_changing_function_of_signed_acts_performs_a_declared_act_or_says_why_not() -> None:
    """The signed-acts contract's functions are the acts of ledger.acts (relayed by POST /acts), and the two
    that is not an act says why."""
    artifacts = compile_contracts()
    codec = Codec({"acts": artifacts["SignedActs"].abi})
    functions = {spec.name for spec in codec.functions("acts") if spec.changes_state}
    not_acts = {
        "invalidateNonces": "sent by an account's signer itself, from its own wallet",
    }
    assert functions - set(not_acts) == {act.function for act in ACT_TYPES.values()}


class _NoChain:
    """A reader that refuses every read of the chain."""

    def address_of(self, contract: str) -> str:
        return "0x" + "11" * 20

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an encoding read the chain: {name}")


def test_no_operation_is_encoded_from_a_read_of_the_chain() -> None:
    """A choice made from an earlier read (a whole piece or a part of it) can be stale by the time the
    transaction runs: such a choice is the contract's (``transferPiece``), and no encoding reads anything."""
    reader, sender, to = _NoChain(), "0x" + "22" * 20, "0x" + "33" * 20
    for amount in (1_000, 1):
        args = {"piece_id": 7, "to": to, "amount": amount}
        assert CATALOGUE["receivable.transfer"].call(reader, sender, args) == ("transferPiece", [7, to, amount])
