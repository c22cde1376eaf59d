"""An act in words: what a signer reads before it signs (the 428's `sentence`, `scf client`, the demo)."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger import acts

SELLER = "0x" + "22" * 20
ACCOUNT = "0x" + "11" * 20


def _confirmation(amount: int, due: int) -> str:
    act = acts.ACTS["invoice.confirm"]
    invoice = (SELLER, due, 0, ACCOUNT, 0, amount, 0, 0, b"\x00" * 32)

    def read(contract: str, function: str, args: object) -> object:
        return invoice if function == "invoice" else b"CNY"

    return acts.sentence(act, act.message(ACCOUNT, [7], read, nonce=1, deadline=2))


def test_an_act_shows_money_in_yuan_with_the_exact_fen_and_a_due_date_as_a_date() -> None:
    due = int(datetime(2027, 3, 4, 23, 59, tzinfo=UTC).timestamp())
    text = _confirmation(100_000_012, due)
    assert (
        text
        == f"Confirm invoice 7: pay ¥1,000,000.12 (100000012 fen) to {acts.to_checksum_address(SELLER)} on 2027-03-04"
    )


def test_an_amount_below_one_yuan_keeps_its_fen() -> None:
    assert "¥0.30 (30 fen)" in _confirmation(30, 0)


def test_an_unlimited_allowance_reads_as_any_amount() -> None:
    act = acts.ACTS["settlement.approve"]
    message = act.message(ACCOUNT, [SELLER, acts.MAX_UINT256], None, nonce=1, deadline=2)
    assert acts.sentence(act, message) == f"Allow {acts.to_checksum_address(SELLER)} to draw any amount in cash legs"


def test_every_act_has_a_sentence_that_names_no_field_it_lacks() -> None:
    for act in acts.ACT_TYPES.values():
        message = {
            name: (b"\x01" * int(kind[5:]) if kind.startswith("bytes") else (ACCOUNT if kind == "address" else 1))
            for name, kind in act.all_fields
        }
        assert acts.sentence(act, message), act.name
