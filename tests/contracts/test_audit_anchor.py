"""Audit-log anchor: only an active operator anchors, anchors only move forward and are never overwritten,
each anchor is an event a verifier can read; its ABI is its interface's, and anchoring stays cheap."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import assert_reverts

ANCHOR_GAS_TARGET = 80_000
"""Gas of one anchor: a registry check, one new head slot and the packed latest anchor (two fresh slots)."""


def head(n: int) -> bytes:
    return keccak(text=f"audit log head {n}")


def test_operator_anchors_the_head_and_it_reads_back(ledger: Sandbox) -> None:
    anchor = ledger.contracts["anchor"]
    assert anchor.functions.latest().call() == (b"\x00" * 32, 0, 0)
    receipt = ledger.send(anchor.functions.anchor(100, head(100)), "operator")
    block_time = ledger.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert ledger.events(receipt, "anchor", "AuditLogAnchored") == [
        {"sequence": 100, "head": head(100), "operator": ledger.address("operator")}
    ]
    assert anchor.functions.latest().call() == (head(100), 100, block_time)
    assert anchor.functions.headAt(100).call() == head(100)
    assert anchor.functions.headAt(99).call() == b"\x00" * 32


def test_earlier_anchors_stay_when_the_head_moves_on(ledger: Sandbox) -> None:
    anchor = ledger.contracts["anchor"]
    for sequence in (1, 2, 250):
        ledger.send(anchor.functions.anchor(sequence, head(sequence)), "operator")
    assert [anchor.functions.headAt(s).call() for s in (1, 2, 250)] == [head(1), head(2), head(250)]
    assert anchor.functions.latest().call()[:2] == (head(250), 250)


@pytest.mark.parametrize("sequence", [100, 99, 1])
def test_anchor_reverts_when_it_does_not_move_forward(ledger: Sandbox, sequence: int) -> None:
    anchor = ledger.contracts["anchor"]
    ledger.send(anchor.functions.anchor(100, head(100)), "operator")
    assert_reverts(
        ledger,
        anchor.functions.anchor(sequence, head(sequence + 1000)),
        "operator",
        "AuditAnchorNotAdvancing",
        sequence=sequence,
        latestSequence=100,
    )
    assert anchor.functions.headAt(100).call() == head(100)  # never overwritten
    assert anchor.functions.latest().call()[:2] == (head(100), 100)


def test_anchor_reverts_for_a_zero_head_or_sequence(ledger: Sandbox) -> None:
    anchor = ledger.contracts["anchor"]
    assert_reverts(ledger, anchor.functions.anchor(5, b"\x00" * 32), "operator", "AuditAnchorInvalidHead", sequence=5)
    assert_reverts(ledger, anchor.functions.anchor(0, head(0)), "operator", "AuditAnchorInvalidHead", sequence=0)


@pytest.mark.parametrize("caller", ["regulator", "bank", "automaker", "seatmaker", "warehouse", "agent", "outsider"])
def test_anchor_reverts_when_caller_is_not_an_operator(ledger: Sandbox, caller: str) -> None:
    anchor = ledger.contracts["anchor"]
    assert_reverts(ledger, anchor.functions.anchor(1, head(1)), caller, "RegistryMissingRole")
    assert anchor.functions.latest().call()[1] == 0


def test_a_frozen_operator_cannot_anchor(ledger: Sandbox) -> None:
    anchor, registry = ledger.contracts["anchor"], ledger.contracts["registry"]
    ledger.send(registry.functions.freeze(ledger.address("operator"), b"\x00" * 32), "regulator")
    assert_reverts(ledger, anchor.functions.anchor(1, head(1)), "operator", "RegistryParticipantFrozen")


def test_the_anchor_holds_no_role_and_reads_operators_from_the_registry(ledger: Sandbox) -> None:
    anchor, registry = ledger.contracts["anchor"], ledger.contracts["registry"]
    assert anchor.functions.registry().call() == registry.address
    assert not registry.functions.isActive(anchor.address).call()


def test_the_abi_is_the_interface_and_the_registry(sandbox: Sandbox) -> None:
    def entries(abi: list[dict[str, object]]) -> set[tuple[str, str]]:
        return {(str(e["type"]), str(e.get("name", ""))) for e in abi if e["type"] != "constructor"}

    implementation = entries(sandbox.artifacts["AuditAnchor"].abi)
    interface = entries(sandbox.artifacts["IAuditAnchor"].abi)
    assert implementation == interface | {("function", "registry")}
    assert {("error", "AuditAnchorNotAdvancing"), ("error", "AuditAnchorInvalidHead")} <= interface
    assert ("event", "AuditLogAnchored") in interface


def test_anchoring_gas_stays_within_its_target(ledger: Sandbox) -> None:
    anchor = ledger.contracts["anchor"]
    first = ledger.send(anchor.functions.anchor(100, head(100)), "operator")["gasUsed"]
    later = ledger.send(anchor.functions.anchor(200, head(200)), "operator")["gasUsed"]
    assert first <= ANCHOR_GAS_TARGET, first
    assert later <= ANCHOR_GAS_TARGET - 15_000, later  # the latest anchor's slot is warm from then on
