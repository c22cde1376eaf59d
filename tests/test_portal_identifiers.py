"""The portal's credit-code check (api/portal/identifiers.js) says what the service's (ledger.identifiers) says,
on the same codes: node runs the page's very module (it imports nothing) over thousands of codes, well-formed and
not, and every answer is compared with Python's."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from api import portal
from ledger.identifiers import (
    CREDIT_CODE_ALPHABET,
    InvalidIdentifier,
    credit_code_check_character,
    synthetic_credit_code,
    validate_credit_code,
)

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (`make setup` needs it for npm ci)")

DRIVER = """
const lines = [];
process.stdin.on("data", (chunk) => lines.push(chunk));
process.stdin.on("end", () => {
  const { bodies, codes } = JSON.parse(Buffer.concat(lines).toString("utf8"));
  process.stdout.write(JSON.stringify({
    checks: bodies.map((body) => creditCodeCheckCharacter(body)),
    valid: codes.map((code) => creditCodeValid(code)),
  }));
});
"""


def _python_valid(code: str) -> bool:
    try:
        validate_credit_code(code)
    except InvalidIdentifier:
        return False
    return True


def _python_check(body: str) -> str | None:
    try:
        return credit_code_check_character(body)
    except InvalidIdentifier:
        return None


def _run_page_module(bodies: list[str], codes: list[str]) -> dict[str, list[object]]:
    """The page's module, as served, with a driver appended, run by node as an ES module (no file is written)."""
    source = (portal.PORTAL_DIR / "identifiers.js").read_text() + DRIVER
    script = subprocess.run(
        [str(NODE), "--input-type=module", "--eval", source],
        input=json.dumps({"bodies": bodies, "codes": codes}).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    answer: dict[str, list[object]] = json.loads(script.stdout)
    return answer


def test_the_page_computes_the_same_check_character_and_validity_as_the_service_for_every_code() -> None:
    rng = random.Random(32100)
    bodies = ["".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(17)) for _ in range(3000)]
    valid = [body + credit_code_check_character(body) for body in bodies]
    synthetic = [synthetic_credit_code(seed) for seed in range(0, 200_000, 97)]
    wrong_check = [code[:17] + rng.choice(CREDIT_CODE_ALPHABET.replace(code[17], "")) for code in valid[:1000]]
    malformed = [
        "91310000MA1FL8XQ3",  # 17 characters
        "91310000MA1FL8XQ30X",  # 19
        "91310000ma1fl8xq30",  # lower case
        "91310000MA1FL8XQ3I",  # I is not in the alphabet
        "９1310000MA1FL8XQ30",  # a full-width digit
        "",
    ]
    codes = valid + synthetic + wrong_check + malformed
    assert sum(map(_python_valid, codes)) == len(valid) + len(synthetic)  # the sample has both kinds, in numbers
    bodies = [*bodies, "91310000MA1FL8XQ", "I" * 17]  # 16 characters; a letter outside the alphabet
    page = _run_page_module(bodies, codes)
    assert page["checks"] == [_python_check(body) for body in bodies]
    assert page["valid"] == [_python_valid(code) for code in codes]
