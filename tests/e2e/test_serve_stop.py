"""What stopping ``scf serve`` (``make run``) stops, as real processes: Ctrl-C (SIGINT) or SIGTERM stops the service,
then the local anvil and its state keeper when ``scf serve`` started them; a chain that was running before
(``scf chain start``) keeps running, and ``scf chain stop`` stops it."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ledger.settings import PROJECT_ROOT, Settings
from ledger.tooling.chain import Anvil
from tests.e2e.conftest import free_port
from tests.e2e.processes import alive
from tests.e2e.test_demo import SCF, environment


def _anvil(env: dict[str, str]) -> Anvil:
    settings = Settings(
        data_dir=Path(env["SCF_DATA_DIR"]), anvil_port=int(env["SCF_ANVIL_PORT"]), block_time=0.5, _env_file=None
    )
    return Anvil.from_settings(settings)


def _keepers_of(anvil_pid: int) -> list[int]:
    """The state keeper processes watching anvil ``anvil_pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if any(a.endswith(b"state_keeper.py") for a in arguments) and str(anvil_pid).encode() in arguments:
                found.append(int(entry.name))
    return [pid for pid in found if alive(pid)]


def _gone(pids: list[int], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _serve_then_stop(
    env: dict[str, str], log: Path, signum: signal.Signals, while_serving: Callable[[], None] = lambda: None
) -> tuple[int, str]:
    """Start ``scf serve``, wait until it answers, call ``while_serving``, send it ``signum``; its exit code and
    its output."""
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        process = subprocess.Popen([SCF, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[offset:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{env['SCF_API_PORT']}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the service did not come up:\n{log.read_text()[offset:]}")
            time.sleep(0.5)
        while_serving()
        process.send_signal(signum)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log.read_text()[offset:]


def test_stopping_scf_serve_stops_the_chain_it_started_and_leaves_one_that_was_running(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", free_port(), free_port())
    log = tmp_path / "serve.log"
    anvil = _anvil(env)
    pids: list[int] = []

    def note_pids() -> None:
        status = anvil.status()
        assert status.running and status.pid is not None
        pids[:] = [status.pid, *_keepers_of(status.pid)]

    try:
        # SIGINT ends with 130 (0 where this test's process group ignores SIGINT, which the child inherits)
        for signum, codes in ((signal.SIGINT, (0, 130)), (signal.SIGTERM, (143,))):
            assert not anvil.status().running
            pids.clear()
            # The chain is started by `scf serve` itself: stopping the service stops it, and its keeper.
            exit_code, output = _serve_then_stop(env, log, signum, note_pids)
            assert exit_code in codes, output
            assert len(pids) == 2, f"anvil and its state keeper: {pids}"
            assert _gone(pids), f"still running after the service stopped: {pids}\n{output}"
            assert not anvil.status().running
            assert "chain stopped" in output and "started by this service" in output, output

        # A chain started before `scf serve` keeps running when the service stops.
        started = subprocess.run([SCF, "chain", "start"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
        assert started.returncode == 0, started.stderr
        before = anvil.status()
        assert before.running and before.pid is not None
        exit_code, output = _serve_then_stop(env, log, signal.SIGINT)
        assert exit_code in (0, 130), output
        assert "keeps running after the service stops" in output and "chain stopped" not in output, output
        after = anvil.status()
        assert after.running and after.pid == before.pid and after.block_number is not None
        assert _keepers_of(before.pid), "the state keeper of the running chain stopped"
        stopped = subprocess.run([SCF, "chain", "stop"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
        assert stopped.returncode == 0, stopped.stderr
        assert _gone([before.pid])
    finally:
        subprocess.run([SCF, "chain", "stop"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
