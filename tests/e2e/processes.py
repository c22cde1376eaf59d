"""Helpers of the tests that run ``scf`` as real processes: an environment of their own, ``scf serve`` until it
answers, the one-line failure, sign-in tokens made as the service makes them."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from ledger.secrets import MasterSecret
from tests.e2e.conftest import free_port

SCF = str(Path(sys.executable).parent / "scf")
KEY = re.compile(r"(scf_[A-Za-z0-9_-]{43})")


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def strong() -> str:
    return secrets.token_hex(32)


def run_scf(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCF, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def base_environment(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of an ``scf`` process: no SCF_* setting of the caller's, a data folder of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCF_")}
    env.update(
        SCF_DATA_DIR=str(data_dir),
        SCF_DEPLOYMENTS_DIR=str(data_dir / "deployments"),
        SCF_API_PORT=str(free_port()),
        SCF_AUDIT_ANCHOR_EVERY="0",
        SCF_AUDIT_ANCHOR_SECONDS="0",
    )
    env.update(settings)
    return env


def one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The failure is one line on stderr (``error: ...``) naming what to change, exit code 1, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@dataclass
class Served:
    base_url: str
    stdout: Path
    stderr: Path
    process: subprocess.Popen[bytes] | None = None
    """The ``scf serve`` process (for a test that kills it)."""

    def operator_key(self) -> str:
        found = KEY.search(self.stdout.read_text())
        assert found, self.stdout.read_text() + self.stderr.read_text()
        return found.group(1)

    def headers(self, bearer: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {bearer}"}


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path, *args: str) -> Iterator[Served]:
    """``scf serve --no-chain`` until ``/health`` answers; stopped with SIGINT on the way out."""
    out, err = cwd / f"serve-{env['SCF_API_PORT']}.out", cwd / f"serve-{env['SCF_API_PORT']}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([SCF, "serve", "--no-chain", *args], env=env, cwd=cwd, stdout=stdout, stderr=stderr)
    served = Served(f"http://127.0.0.1:{env['SCF_API_PORT']}", out, err, process)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, out.read_text() + err.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{served.base_url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            pytest.fail(f"the service did not come up:\n{out.read_text()}{err.read_text()}")
        yield served
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def token(secret: MasterSecret | str, subject: str, *, lifetime: float = 600, kid: str | None = "auto") -> str:
    """A sign-in token for ``subject`` signed with ``secret``'s token key, as the service signs them."""
    master = secret if isinstance(secret, MasterSecret) else MasterSecret.of(secret)
    now = datetime.now(UTC)
    claims = {"sub": subject, "aud": "scf-ledger", "iat": now, "exp": now + timedelta(seconds=lifetime)}
    headers = None if kid is None else {"kid": master.id if kid == "auto" else kid}
    return jwt.encode(claims, master.token_key, algorithm="HS256", headers=headers)
