"""Problem details chosen by what an error means, not by where it came from."""

from __future__ import annotations

from api.problems import from_contract, out_of_gas, problem_of
from ledger.compiler import compile_contracts
from ledger.errors import ErrorDecoder, OutOfGas
from ledger.pipeline import RpcError


def test_out_of_gas_is_a_503_of_its_own_never_a_contract_problem() -> None:
    problem = out_of_gas(OutOfGas({"gas_limit": 30_000_000, "gas_used": 29_999_000}))
    assert (problem.status, problem.type) == (503, "urn:scf:problem:out-of-gas")
    assert "contract" not in problem.type
    assert problem.body()["arguments"] == {"gas_limit": 30_000_000, "gas_used": 29_999_000}


def test_a_reused_bank_reference_is_a_conflict() -> None:
    decoder = ErrorDecoder.from_artifacts(compile_contracts())  # as the service builds it: errors with their kinds
    for name in ("DepositMintReferenceUsed", "DepositBurnReferenceUsed"):
        problem = from_contract(decoder.exception_class(name)({"bankReference": b"\x01" * 32}))
        assert (problem.status, problem.type) == (409, f"urn:scf:problem:contract:{name}")


def test_a_node_error_that_is_not_a_revert_is_a_retryable_503_not_a_500() -> None:
    problem = problem_of(RpcError(-32602, "BlockOutOfRangeError: block height is 69 but requested was 68"))
    assert (problem.status, problem.type) == (503, "urn:scf:problem:chain-error")
    assert problem.headers["Retry-After"] == "1"
    assert "BlockOutOfRangeError" in problem.body()["detail"]
