"""The Makefile's targets do what the README says (dry runs: ``make -n`` prints the commands without running them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from ledger.settings import PROJECT_ROOT

if shutil.which("make") is None:  # pragma: no cover - make is a requirement of the project
    pytest.skip("make is not installed", allow_module_level=True)


def dry_run(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *arguments],
        cwd=PROJECT_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_run_does_not_build_the_slither_environment_serving_does_not_need() -> None:
    # -W: as if slither's requirements had just changed, so a target that depends on them would rebuild .venv-slither
    result = dry_run("-W", "scripts/slither-requirements.txt", "run")
    assert result.returncode == 0, result.stderr
    assert "slither" not in result.stdout, result.stdout
    assert result.stdout.strip().splitlines()[-1].endswith("/scf serve"), result.stdout


def test_every_phony_target_has_a_rule() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    assert phony is not None
    for target in phony.group(1).split():
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), f"`make {target}` has no rule"


def test_make_demo_runs_scf_demo_with_the_key_from_scf_api_key() -> None:
    result = dry_run("demo", SCF_API_KEY="scf_test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith("/scf demo"), result.stdout
    # Without the key, the rule says what is missing instead of failing inside the demo.
    missing = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "SCF_API_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0
    assert "set SCF_API_KEY" in missing.stderr
