"""The regulator's payment-discipline report (issue 18, item 5) against a real chain whose clock the test moves.

One story, on its own chain (it moves the clock a month), gives a core firm eight invoices from two suppliers:

- A (3,000,000 fen, due day 10) and C (1,500,000, due day 12, 500,000 repaid before its due date), confirmed at
  once and never paid in full: overdue at day 31;
- B (due day 10) confirmed at once and repaid in full before its due date; G (due day 10) confirmed at once and
  repaid in full at day 31, after its due date;
- H (due day 120) confirmed at day 29, within the 30 days; D (due day 120) confirmed at day 31, late;
- E registered at day 0 and never confirmed (awaiting for 31 days: late); F registered at day 31 (awaiting, not
  late).

The report is read at day 31 of the chain's clock, and every figure is checked against what the story did.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import WAIT, Api, Participant

DAY = 86_400
ROUTE = "/reports/payment-discipline"
_numbers = itertools.count(time.time_ns() // 1000)

AMOUNTS = {
    "A": 3_000_000,
    "B": 700_000,
    "C": 1_500_000,
    "D": 2_200_000,
    "E": 900_000,
    "F": 400_000,
    "G": 1_100_000,
    "H": 600_000,
}
C_REPAID = 500_000


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def _eventually(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def _due(api: Api, days: int) -> str:
    return (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=days)).isoformat()


def _midnight(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


class Story:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.regulator = api.onboard("Municipal financial regulator", "regulator")
        self.agent = api.onboard("Settlement bank", "settlement-agent")
        self.core = api.onboard("FAW Automotive", "core-firm")
        self.seats = api.onboard("Changchun Seats", "supplier")
        self.foam = api.onboard("Jilin Foam", "supplier")
        self.factor = api.onboard("Northeast Factoring", "financier")
        self.due: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        http = api.http
        _ok(
            http.post(
                "/deposits",
                json={"participant": self.core.id, "amount": 100_000_000, "bank_reference": "core opening"},
                headers=self.agent.waiting(),
            )
        )
        _ok(
            http.post(
                "/credit-lines",
                json={"core_firm": self.core.id, "limit": 100_000_000},
                headers={**api.operator_headers, **WAIT},
            )
        )
        for name, seller, days in (
            ("A", self.seats, 10),
            ("B", self.foam, 10),
            ("C", self.seats, 12),
            ("G", self.foam, 10),
            ("H", self.seats, 120),
            ("D", self.foam, 120),
            ("E", self.seats, 120),
        ):
            self.register(name, seller, days)
        for name in "ABCG":
            self.confirm(name)
        self.repay("B", AMOUNTS["B"])
        self.repay("C", C_REPAID)
        api.travel(29 * DAY)
        self.confirm("H")  # 29 days and some seconds after its registration
        api.travel(2 * DAY)
        self.confirm("D")  # 31 days after
        self.register("F", self.seats, 60)
        self.repay("G", AMOUNTS["G"])  # 21 days after its due date

    def register(self, name: str, seller: Participant, days: int) -> None:
        due = _due(self.api, days)
        body = {
            "buyer": self.core.id,
            "amount": AMOUNTS[name],
            "currency": "CNY",
            "invoice_number": f"{next(_numbers) % 10**20:020d}",
            "due_date": due,
        }
        self.ids[name] = _ok(self.api.http.post("/invoices", json=body, headers=seller.waiting()))["result"][
            "invoice_id"
        ]
        self.due[name] = _midnight(due)

    def confirm(self, name: str) -> None:
        _ok(self.api.http.post(f"/invoices/{self.ids[name]}/confirm", headers=self.core.waiting()))

    def repay(self, name: str, amount: int) -> None:
        path = f"/obligations/{self.ids[name]}/repayments"
        _ok(self.api.http.post(path, json={"amount": amount}, headers=self.core.waiting()))

    def report(self, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        """The report for the story's core firm, once the index holds the story's last payment."""

        def read() -> dict[str, Any]:
            answer = self.api.http.get(
                ROUTE, params={"core_firm": self.core.id, **params}, headers=headers or self.regulator.headers
            )
            return _ok(answer)

        return _eventually(read, lambda body: bool(body["firms"]) and body["firms"][0]["paid_late"] == 1)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def story(api: Api) -> Story:
    return Story(api)


def _days_late(now: int, due: int) -> int:
    return -(-(now - due) // DAY)


def test_an_obligation_past_its_due_date_shows_its_days_past_due_and_what_it_still_owes(story: Story) -> None:
    report = story.report()
    now = report["chain_time"]
    assert now >= story.api.now() - 5 and report["currency"] == "CNY"
    (line,) = report["firms"]
    assert (line["core_firm"], line["name"]) == (story.core.id, "FAW Automotive")
    owed_a, owed_c = AMOUNTS["A"], AMOUNTS["C"] - C_REPAID
    assert (line["overdue"], line["overdue_amount"]) == (2, owed_a + owed_c)
    days_a, days_c = _days_late(now, story.due["A"]), _days_late(now, story.due["C"])
    assert days_a == days_c + 2 and 21 <= days_a <= 22  # due on days 10 and 12, read on day 31
    assert line["max_days_past_due"] == days_a
    # weighted by what each still owes: (3 × days_a + 1 × days_c) / 4 = days_c + 1.5, halves up
    assert line["average_days_past_due"] == days_c + 2
    # A, C (in part), D and H are confirmed and unpaid; B and G are paid in full
    assert line["confirmed"] == 6 and line["outstanding"] == 4
    assert line["outstanding_amount"] == owed_a + owed_c + AMOUNTS["D"] + AMOUNTS["H"]
    assert line["defaulted"] == 0


def test_an_obligation_repaid_is_not_overdue_and_one_repaid_after_its_due_date_counts_as_paid_late(
    story: Story,
) -> None:
    (line,) = story.report()["firms"]
    # B (repaid before its due date) and G (repaid after it) are in none of the overdue figures
    assert line["overdue"] == 2 and line["overdue_amount"] == AMOUNTS["A"] + AMOUNTS["C"] - C_REPAID
    assert line["paid_late"] == 1 and line["repaid_late_amount"] == AMOUNTS["G"]  # C's payment came in time


def test_a_confirmation_after_the_threshold_counts_as_late_and_one_before_it_does_not(story: Story) -> None:
    report = story.report()
    assert report["confirmation_days"] == story.api.settings.late_confirmation_days == 30
    (line,) = report["firms"]
    assert line["registered"] == 8
    # D (31 days) is late; H (29 days) and the four confirmed at once are not
    assert (line["confirmed_late"], line["confirmed_late_amount"]) == (1, AMOUNTS["D"])
    assert line["confirmed_late_share_bps"] == 1_250  # 1 of 8
    # E has waited 31 days; F was registered today
    assert (line["awaiting"], line["awaiting_late"], line["awaiting_late_amount"]) == (2, 1, AMOUNTS["E"])
    assert line["late_share_bps"] == 2_500  # (1 + 1) of 8

    patient = story.report(confirmation_days=32)
    assert patient["confirmation_days"] == 32
    (line,) = patient["firms"]
    assert (line["confirmed_late"], line["awaiting_late"], line["late_share_bps"]) == (0, 0, 0)
    (strict,) = story.report(confirmation_days=1)["firms"]
    # D and H were confirmed after a month, E has waited a month; F was registered seconds ago
    assert (strict["confirmed_late"], strict["awaiting_late"]) == (2, 1)
    assert strict["confirmed_late_share_bps"] == 2_500 and strict["late_share_bps"] == 3_750  # 2 and 3 of 8


def test_only_the_regulator_and_the_operator_read_the_report(story: Story) -> None:
    for caller in (story.seats, story.factor, story.core):
        refused = story.api.http.get(ROUTE, headers=caller.headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "urn:scf:problem:forbidden-role"
    assert story.api.http.get(ROUTE).status_code == 401
    (line,) = story.report(headers=story.api.operator_headers)["firms"]
    assert line["core_firm"] == story.core.id


def test_the_report_takes_strict_integers_and_an_address(story: Story) -> None:
    http, headers = story.api.http, story.regulator.headers
    for bad in ("true", "1.5", "30.0", "0", "-1", "3651", "１"):
        answer = http.get(ROUTE, params={"confirmation_days": bad}, headers=headers)
        assert answer.status_code == 422, (bad, answer.text)
    assert http.get(ROUTE, params={"core_firm": "not an address"}, headers=headers).status_code == 422
    stranger = "0x" + "12" * 20
    assert _ok(http.get(ROUTE, params={"core_firm": stranger}, headers=headers))["firms"] == []


def test_the_report_as_a_file_holds_its_lines_and_sums_the_money(story: Story) -> None:
    (line,) = story.report()["firms"]
    answer = story.api.http.get(
        ROUTE, params={"core_firm": story.core.id, "format": "csv"}, headers=story.regulator.headers
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="payment-discipline-' in answer.headers["content-disposition"]
    header, row, totals = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert header == list(line)
    assert dict(zip(header, row, strict=True)) == {k: "" if v is None else str(v) for k, v in line.items()}
    assert totals[0] == "total: 1 items"
    assert totals[header.index("overdue_amount")] == str(line["overdue_amount"])
    assert totals[header.index("max_days_past_due")] == ""  # days are not summed
    workbook = story.api.http.get(
        ROUTE, params={"core_firm": story.core.id, "format": "xlsx"}, headers=story.regulator.headers
    )
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
