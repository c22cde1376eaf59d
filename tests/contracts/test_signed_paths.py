"""The design proposed for the signed-act gas budget (docs/self-custody.md, "Gas"), measured on the bench
contracts (``contracts/bench/BenchSignedActs.sol``, :mod:`bench.signed_paths`): verifying in the target keeps
each act within the budget, a forwarder like the ledger's ``SignedActs`` does not, and both verify what they
are measured verifying (a figure for a check that does not hold would be no figure)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account

from bench.signed_paths import DAY, DEADLINE, SignedPaths, measure_signed_paths
from ledger.errors import ContractRevert
from ledger.tooling.sandbox import Sandbox
from tests.contracts.signed_gas import SIGNED_OVERHEAD_BUDGET
from tests.contracts.support import assert_reverts


@pytest.fixture(scope="module")
def paths() -> SignedPaths:
    sb = Sandbox.create(with_warehouse=False)
    paths = SignedPaths.deploy(sb)
    for pledge_id in (1, 2, 3):
        paths.send(paths.target.functions.openPledge(pledge_id, paths.own, 100 + pledge_id))
    due = sb.now() + 90 * DAY
    paths.send(paths.target.functions.registerInvoice(1, paths.seller, paths.own, 1_000, due))
    return paths


def test_verifying_in_the_target_keeps_each_bench_act_within_the_signed_budget_where_a_forwarder_does_not() -> None:
    figures = measure_signed_paths()
    assert set(figures) == {
        "cancel a pledge (restates nothing)",
        "confirm an invoice (restates seller, amount, currency, due date)",
    }
    for act, gas in figures.items():
        assert gas.in_target_overhead <= SIGNED_OVERHEAD_BUDGET, (act, gas)
        assert gas.forwarded_overhead > SIGNED_OVERHEAD_BUDGET, (act, gas)
        assert gas.in_target < gas.forwarded, (act, gas)


def refused(error: str, call: Callable[[], object]) -> None:
    with pytest.raises(ContractRevert) as raised:
        call()
    assert raised.value.name == error, raised.value


def test_the_bench_verifiers_refuse_replays_other_signers_changed_terms_and_direct_calls(paths: SignedPaths) -> None:
    sb = paths.sb
    with sb.isolated():
        paths.cancel_in_target(1, 5)
        refused("BenchNonceUsed", lambda: paths.cancel_in_target(2, 5))  # the nonce is spent, whatever the act
    with sb.isolated():
        paths.cancel_forwarded(1, 5)
        refused("BenchNonceUsed", lambda: paths.cancel_forwarded(2, 5))

    message = {"account": paths.own, "pledgeId": 1, "nonce": 6, "deadline": DEADLINE}
    stranger = SignedPaths(sb, paths.registry, paths.target, paths.forwarder, Account.create(), paths.seller)
    for verifier, send in ((paths.registry, paths.cancel_in_target), (paths.forwarder, paths.cancel_forwarded)):
        forged = stranger.sign(verifier, "CancelPledge", message)
        refused("BenchInvalidSignature", lambda: send(1, 6, forged))  # noqa: B023 - called at once
        honest = paths.sign(verifier, "CancelPledge", message)
        refused("BenchInvalidSignature", lambda: send(2, 6, honest))  # noqa: B023 - signed for pledge 1

    due = paths.target.functions.invoices(1).call()[1]
    refused("BenchTermsChanged", lambda: paths.confirm_in_target(1, 7, due, amount=999))  # the invoice is 1,000
    refused("BenchTermsChanged", lambda: paths.confirm_forwarded(1, 7, due, amount=999))

    outsider = sb.address("outsider")
    paths.send(paths.registry.functions.register(outsider, outsider, True))  # signs its own acts
    assert_reverts(sb, paths.target.functions.cancelPledge(3), "outsider", "BenchSignedActsOnly")
    zero = b"\x00" * 32
    use_act = paths.registry.functions.useAct(paths.own, zero, zero, 9, DEADLINE, b"")
    assert_reverts(sb, use_act, "operator", "BenchNotTarget")  # only the target spends nonces at the registry
