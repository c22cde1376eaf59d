"""The gas of the signed path: every act measured signed and relayed beside the same act sent directly."""

from __future__ import annotations

import pytest

from ledger.acts import ACTS
from ledger.tooling.sandbox import Sandbox
from tests.contracts.signed_gas import FRESH_WORD, SIGNED_OVERHEAD_BUDGET, SignedGas, measure_signed_acts

#: What the signed path costs today over the direct one (steady-state nonce word), as measured: a regression
#: ceiling, not the budget. Acts that restate chain terms read them in an extra call.
CEILING_PLAIN = 23_500
CEILING_RESTATED = 30_500
RESTATED = {"ConfirmInvoice", "FundFinancing", "FundPledge"}


@pytest.fixture(scope="module")
def measured(sandbox: Sandbox) -> SignedGas:
    return measure_signed_acts(sandbox)


def test_every_act_type_is_measured_signed_beside_direct(measured: SignedGas) -> None:
    assert set(measured.acts.values()) == {act.name for act in ACTS.values()}
    for label, (direct, signed) in measured.pairs.items():
        assert 21_000 < direct < signed, label


def test_signed_path_overhead_stays_within_its_measured_ceiling(measured: SignedGas) -> None:
    over = {
        label: signed - direct
        for label, (direct, signed) in measured.pairs.items()
        if label != FRESH_WORD
        and signed - direct > (CEILING_RESTATED if measured.acts[label] in RESTATED else CEILING_PLAIN)
    }
    assert over == {}


def test_a_fresh_nonce_word_costs_one_storage_word_more(measured: SignedGas) -> None:
    """The first nonce of a bitmap word creates the word (20,000 gas instead of 2,900): the client picks a nonce
    in a word in use when it can (ledger.acts.next_nonce)."""
    fresh_direct, fresh_signed = measured.pairs[FRESH_WORD]
    direct, signed = measured.pairs["confirm invoice (new slot + first piece)"]
    assert fresh_direct == direct
    # 20,000 - 2,900 for the word; the two acts' signatures and deadlines differ in how many zero bytes they
    # carry (4 gas a zero byte of calldata, 16 another), so allow a few of those.
    assert abs(fresh_signed - signed - 17_100) <= 12 * 8


@pytest.mark.xfail(
    strict=True,
    reason="not met: a relayed act costs 18,500-22,600 gas more than the direct call (cold call to the target 2,600, "
    "nonce word 5,000, ecrecover 3,100, ActPerformed 2,400, calldata 2,100, ABI and memory ~3,400); acts that "
    "restate terms 25,000-29,700; a separate forwarder's floor is about 14,000 before any ABI work or evidence "
    "(docs/self-custody.md, Gas)",
)
def test_signed_path_costs_at_most_15000_gas_more_than_direct(measured: SignedGas) -> None:
    over = {
        label: signed - direct
        for label, (direct, signed) in measured.pairs.items()
        if label != FRESH_WORD and signed - direct > SIGNED_OVERHEAD_BUDGET
    }
    assert over == {}
