"""The local chain: the anvil node run as a daemon for development, tests and benchmarks.

Connecting to a node (any JSON-RPC node, anvil or a Besu QBFT network) is the runtime's :mod:`ledger.node`,
with the chain errors, the local chain id and the dev keys.

:class:`Anvil` runs the local node from ``node_modules`` in the background, as ``scf chain start|stop|status``
does. Its files live under ``<data_dir>/chain/``:

- ``anvil-state.json``: the chain's state and blocks. anvil reads it at start, rewrites it every second
  (``--state-interval 1``) and once more on a clean exit (SIGTERM). After a crash (SIGKILL) the chain
  restarts from the last dump, so at most about a second of blocks is lost.
- ``anvil-states/``: the last few dumps, copied by a small keeper process (:mod:`ledger.tooling.state_keeper`) that
  runs beside anvil. anvil's dump is not taken at one instant: a dump written while a block is mined can hold
  that block's effects on the accounts but not the block itself, and a chain loaded from it has transactions
  that happened in no block (their nonces used, their events nowhere). anvil also rewrites the state file in
  place (``O_TRUNC``, not a rename), so a crash in the middle of a dump leaves a truncated file. At every start
  :meth:`Anvil.start` checks the state file (:func:`ledger.tooling.state_keeper.inspect_state`); when it is unreadable
  or inconsistent, it is set aside and the newest consistent kept dump takes its place, so a crash loses a
  second or two of blocks (the transaction journal re-sends them), never a block's effects without the block.
- ``anvil-state.json.bak``: the state as it was at the last successful start, the last resort when no kept
  dump is usable; everything after that start is then lost from the chain (the journal re-sends it).
- ``anvil.log`` (anvil's output, appended across starts), ``anvil.pid`` and ``anvil.lock``.

anvil is started with the standard test mnemonic, so its dev accounts and their keys are the same on every
machine and across restarts; they are public and only ever used on the local chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ledger.node import DEV_MNEMONIC, LOCAL_CHAIN_ID, ChainError
from ledger.settings import PROJECT_ROOT, Settings
from ledger.tooling.state_keeper import inspect_state, kept_dumps, newest_consistent

logger = logging.getLogger(__name__)

STATE_INTERVAL: Final = 1
"""Seconds between anvil's state dumps (``--state-interval``): what a crash can lose."""


class AnvilError(ChainError):
    """The local anvil node could not be found, started or stopped."""


# -- the anvil binary ------------------------------------------------------------------------------------


def find_anvil(root: Path = PROJECT_ROOT) -> Path:
    """The anvil executable installed by ``npm ci``.

    Prefers the native binary of this platform's package (``@foundry-rs/anvil-linux-amd64``), because
    ``node_modules/.bin/anvil`` is a Node.js wrapper that adds a process between us and the node (signals
    sent to it must be forwarded); falls back to that wrapper, then to an ``anvil`` on ``PATH``.
    """
    foundry = root / "node_modules" / "@foundry-rs"
    candidates = [foundry / f"anvil-{_platform_tag()}" / "bin" / "anvil", root / "node_modules" / ".bin" / "anvil"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilError(f"anvil is not installed: none of {', '.join(map(str, candidates))} exists; run `npm ci`")


def _platform_tag() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{sys.platform}-{arch}"


# -- the anvil process -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnvilStatus:
    """What :meth:`Anvil.status` (and :meth:`Anvil.start`) found."""

    running: bool
    pid: int | None
    rpc_url: str
    chain_id: int | None
    """``eth_chainId``; None when the process runs but does not answer."""
    block_number: int | None
    state_file: Path
    log_file: Path
    already_running: bool = False
    """Set by :meth:`Anvil.start` when it found the node running and left it alone."""
    restored_from: Path | None = None
    """Set by :meth:`Anvil.start` when the state file was unreadable or inconsistent and the chain restarted from
    this kept dump or backup instead."""


@dataclass(frozen=True)
class AnvilStopped:
    """What :meth:`Anvil.stop` did."""

    pid: int
    state_saved: bool
    """anvil rewrote its state file after it was asked to stop (it does on SIGTERM)."""
    killed: bool = False
    """anvil did not exit in time and was killed; the last interval of blocks may be lost."""


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    host: str
    port: int
    chain_id: int
    started_at: str

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"


#: Processes this Python process started, kept so that they are reaped (no zombies) whichever
#: :class:`Anvil` object stops them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

_UNREADABLE_STATE: Final = re.compile(r"failed to parse json file|invalid value .* for '--state")


class Anvil:
    """The local anvil node, run in the background with its state, log and PID file under ``data_dir/chain``.

    One node per data folder: :meth:`start` leaves a running node alone, :meth:`stop` and :meth:`status`
    find it through the PID file, from any process.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 8545,
        chain_id: int = LOCAL_CHAIN_ID,
        block_time: float = 1.0,
        gas_limit: int = 300_000_000,
        host: str = "127.0.0.1",
        state_interval: int | None = STATE_INTERVAL,
        binary: Path | None = None,
        base_fee: int | None = None,
        gas_price: int | None = None,
        prune_history: bool = False,
    ) -> None:
        if block_time <= 0:
            raise ValueError("block_time must be positive (anvil mines at this interval)")
        self.data_dir = Path(data_dir)
        self.port = port
        self.chain_id = chain_id
        self.block_time = block_time
        self.gas_limit = gas_limit
        self.host = host
        self.state_interval = state_interval
        """Seconds between state dumps; None keeps no state file at all (no ``--state``, no keeper): a throwaway
        chain, as the benchmarks' own."""
        self.prune_history = prune_history
        """Keep no past states (anvil's ``--prune-history``): calls at any block but the latest fail; blocks,
        transactions, receipts and logs are all kept. Without it anvil keeps a copy of the whole state for each
        recent block, so its memory grows by about the state's size every block (8 MB a block with 100,000 storage
        slots; past the machine's 24 GiB in a full benchmark). ``--prune-history N`` did not bound it (anvil 1.7.1):
        with N = 16 memory grew just the same."""
        self._binary = binary
        self.base_fee = base_fee
        """The base fee of the first block (``--base-fee``); 0 with ``gas_price=0`` is a gas-free chain, as a Besu
        network with ``zeroBaseFee`` and ``--min-gas-price=0``. None: anvil's default (1 gwei)."""
        self.gas_price = gas_price
        """anvil's gas price (``--gas-price``); None: its default."""

    @classmethod
    def from_settings(cls, settings: Settings, *, port: int | None = None, block_time: float | None = None) -> Anvil:
        return cls(
            settings.data_dir,
            port=settings.anvil_port if port is None else port,
            chain_id=settings.chain_id,
            block_time=settings.block_time if block_time is None else block_time,
            gas_limit=settings.block_gas_limit,
            prune_history=settings.anvil_prune_history,
        )

    # -- files ----------------------------------------------------------------------------------------

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def state_file(self) -> Path:
        return self.chain_dir / "anvil-state.json"

    @property
    def backup_file(self) -> Path:
        return self.chain_dir / "anvil-state.json.bak"

    @property
    def keep_dir(self) -> Path:
        return self.chain_dir / "anvil-states"

    @property
    def log_file(self) -> Path:
        return self.chain_dir / "anvil.log"

    @property
    def pid_file(self) -> Path:
        return self.chain_dir / "anvil.pid"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = find_anvil()
        return self._binary

    def command(self) -> list[str]:
        """The command line that starts the node."""
        return [
            str(self.binary),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--hardfork",
            "prague",
            "--block-time",
            f"{self.block_time:g}",
            "--gas-limit",
            str(self.gas_limit),
            "--mnemonic",
            DEV_MNEMONIC,
            *(
                []
                if self.state_interval is None
                else ["--state", str(self.state_file), "--state-interval", str(self.state_interval)]
            ),
            *([] if self.base_fee is None else ["--base-fee", str(self.base_fee)]),
            *([] if self.gas_price is None else ["--gas-price", str(self.gas_price)]),
            *(["--prune-history"] if self.prune_history else []),
        ]

    # -- start, stop, status --------------------------------------------------------------------------

    def start(self, *, timeout: float = 30.0) -> AnvilStatus:
        """Start the node in the background and return once it answers JSON-RPC.

        When it already runs, nothing is started and the status says ``already_running``. When the state
        file is unreadable (a crash in the middle of a dump) or inconsistent (accounts ahead of the blocks: a
        crash right after a dump taken while a block was mined), it is set aside as
        ``anvil-state.json.corrupt-<time>`` and the node restarts from the newest consistent dump the keeper
        kept, or else from the backup taken at the previous start (``restored_from``).

        Raises :class:`AnvilError` when the port is taken by another program, or the node exits or does not
        answer within ``timeout`` seconds; the message ends with the last lines of its log.
        """
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            current = self.status()
            if current.running:
                return replace(current, already_running=True)
            if _port_in_use(self.host, self.port):
                raise AnvilError(
                    f"port {self.port} on {self.host} is taken by another program; "
                    "choose another with --port or SCF_ANVIL_PORT"
                )
            chosen = self._choose_state()
            try:
                self._launch(timeout)
            except _StateUnreadable as unreadable:
                backup = self._recover_state(unreadable.log_tail)
                try:
                    self._launch(timeout)
                except _StateUnreadable as again:
                    raise AnvilError(
                        f"anvil cannot read the backup {backup} either; the unreadable state files are kept beside "
                        f"it. anvil said:\n{again.log_tail}"
                    ) from again
                return replace(self.status(), restored_from=backup)
            return replace(self.status(), restored_from=chosen)

    def stop(self, *, timeout: float = 15.0) -> AnvilStopped | None:
        """Ask the node to stop (SIGTERM: it dumps its state, then exits) and wait until it has.

        Returns None when it was not running. A node that does not exit within ``timeout`` seconds is killed.
        """
        if not self.chain_dir.is_dir():
            return None
        with self._lock():
            return self._stop(timeout)

    def _stop(self, timeout: float) -> AnvilStopped | None:
        record = self._running_record()
        if record is None:
            return None
        asked_at = time.time()
        _signal(record.pid, signal.SIGTERM)
        killed = False
        if not _wait_for_exit(record.pid, timeout):
            logger.warning("anvil (pid %d) did not stop within %g s; killing it", record.pid, timeout)
            _signal(record.pid, signal.SIGKILL)
            _wait_for_exit(record.pid, 5.0)
            killed = True
        self.pid_file.unlink(missing_ok=True)
        state_saved = self.state_file.is_file() and self.state_file.stat().st_mtime >= asked_at - 0.01
        return AnvilStopped(pid=record.pid, state_saved=state_saved, killed=killed)

    def kill(self) -> int | None:
        """Kill the node at once (SIGKILL), as a crash would: blocks since its last state dump are lost.

        Returns the PID killed, or None when it was not running.
        """
        record = self._running_record()
        if record is None:
            return None
        _signal(record.pid, signal.SIGKILL)
        if not _wait_for_exit(record.pid, 10.0):
            raise AnvilError(f"anvil (pid {record.pid}) is still alive after SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return record.pid

    def status(self) -> AnvilStatus:
        """Whether the node of this data folder runs, and what it answers (chain id, block number)."""
        record = self._running_record()
        if record is None:
            return AnvilStatus(
                running=False,
                pid=None,
                rpc_url=self.rpc_url,
                chain_id=None,
                block_number=None,
                state_file=self.state_file,
                log_file=self.log_file,
            )
        chain_id = block_number = None
        try:
            chain_id = int(_rpc(record.rpc_url, "eth_chainId", timeout=2.0), 16)
            block_number = int(_rpc(record.rpc_url, "eth_blockNumber", timeout=2.0), 16)
        except (OSError, ValueError, KeyError):
            pass
        return AnvilStatus(
            running=True,
            pid=record.pid,
            rpc_url=record.rpc_url,
            chain_id=chain_id,
            block_number=block_number,
            state_file=self.state_file,
            log_file=self.log_file,
        )

    # -- internals ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise starts and stops of this data folder's node across processes."""
        with (self.chain_dir / "anvil.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _launch(self, timeout: float) -> None:
        """Start the process, write the PID file and wait for the first answer."""
        candidate = self.chain_dir / "anvil-state.json.candidate"
        if self.state_file.is_file():
            # Copied before anvil may rewrite it; becomes the backup once anvil has loaded it.
            shutil.copyfile(self.state_file, candidate)
        command = self.command()
        with self.log_file.open("ab") as log:
            log_offset = log.tell()
            started = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"\n--- {started} scf chain start: {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.chain_dir,
                start_new_session=True,  # its own session and process group: a terminal's signals do not reach it
            )
        _CHILDREN[process.pid] = process
        record = _PidRecord(process.pid, self.host, self.port, self.chain_id, started)
        _write_atomically(self.pid_file, json.dumps(asdict(record)) + "\n")

        deadline = time.monotonic() + timeout
        while True:
            code = process.poll()
            if code is not None:
                _CHILDREN.pop(process.pid, None)
                self.pid_file.unlink(missing_ok=True)
                candidate.unlink(missing_ok=True)
                tail = self._log_tail(log_offset)
                if _UNREADABLE_STATE.search(tail):
                    raise _StateUnreadable(tail)
                raise AnvilError(f"anvil exited at start with code {code}; last lines of {self.log_file}:\n{tail}")
            try:
                answered = int(_rpc(self.rpc_url, "eth_chainId", timeout=1.0), 16)
            except (OSError, ValueError, KeyError):
                answered = None
            if answered is not None:
                break
            if time.monotonic() > deadline:
                _signal(process.pid, signal.SIGKILL)
                _wait_for_exit(process.pid, 5.0)
                self.pid_file.unlink(missing_ok=True)
                candidate.unlink(missing_ok=True)
                raise AnvilError(
                    f"anvil did not answer at {self.rpc_url} within {timeout:g} s and was killed; "
                    f"last lines of {self.log_file}:\n{self._log_tail(log_offset)}"
                )
            time.sleep(0.05)
        if answered != self.chain_id:  # pragma: no cover - anvil honours --chain-id
            raise AnvilError(f"anvil answers chain id {answered}, not {self.chain_id}")
        self._keep_time_moving_forward()
        if candidate.is_file():
            os.replace(candidate, self.backup_file)
        # The dumps kept during an earlier run are older than the state this run started from (the backup), or of
        # a chain set aside since: a crash before the new keeper copies its first dump must restore the backup,
        # not one of them (a dump taken mid-deployment, say, before a clean stop that saved the rest).
        for old in kept_dumps(self.keep_dir):
            old.unlink(missing_ok=True)
        if self.state_interval is not None:
            self._start_keeper(process.pid)

    def _keep_time_moving_forward(self) -> None:
        """Never let a block be older than the one before it (invariant 11), whatever happened to the clock.

        anvil stamps a block with the wall clock plus an offset that ``evm_increaseTime`` moves (the demo, and any
        test of maturities, move it forward by months) and that its state dump does not keep: loaded again, it
        would stamp the next block with the plain wall clock, before the last one, and every rule that counts time
        from a recorded timestamp would see time run backwards. So, at each start, when the last block is not
        older than now, the clock is set to one second after it (``evm_setTime``) before the first new block: the
        offset is back, and blocks go on from there at the pace of the wall clock."""
        latest = _rpc(self.rpc_url, "eth_getBlockByNumber", ["latest", False], timeout=5.0)
        last = int(latest["timestamp"], 16)
        if last >= int(time.time()):
            _rpc(self.rpc_url, "evm_setTime", [last + 1], timeout=5.0)

    def _choose_state(self) -> Path | None:
        """Put a consistent dump in place of an unreadable or inconsistent state file; return where it came from.

        Candidates, newest first: the keeper's dumps, then the backup of the last start. When none is consistent,
        the state file stays as it is (an unreadable one then takes the backup path of :meth:`_launch`).
        """
        if not self.state_file.is_file():
            return None
        check = inspect_state(self.state_file)
        if check.consistent:
            return None
        candidates = [*kept_dumps(self.keep_dir), *([self.backup_file] if self.backup_file.is_file() else [])]
        good = newest_consistent(candidates)
        if good is None:
            logger.warning(
                "anvil's state file %s is %s, and no kept dump or backup is consistent; starting from it as it is",
                self.state_file,
                check.problem,
            )
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        corrupt = self.chain_dir / f"anvil-state.json.corrupt-{stamp}"
        os.replace(self.state_file, corrupt)
        shutil.copyfile(good.path, self.state_file)
        logger.warning(
            "anvil's state file is %s; set aside as %s, restarting from %s (block %s, was %s)",
            check.problem,
            corrupt.name,
            good.path,
            good.best_block,
            check.best_block,
        )
        return good.path

    def _start_keeper(self, anvil_pid: int) -> None:
        """Start the process that keeps anvil's recent dumps (see :mod:`ledger.tooling.state_keeper`); it exits
        with anvil."""
        keeper = Path(__file__).with_name("state_keeper.py")
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(keeper),
                    "--state",
                    str(self.state_file),
                    "--keep-dir",
                    str(self.keep_dir),
                    "--pid",
                    str(anvil_pid),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        threading.Thread(target=process.wait, name=f"reap-state-keeper-{process.pid}", daemon=True).start()

    def _recover_state(self, log_tail: str) -> Path:
        """Set the unreadable state file aside and put the backup in its place; return the backup's path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        corrupt = self.chain_dir / f"anvil-state.json.corrupt-{stamp}"
        os.replace(self.state_file, corrupt)
        if not self.backup_file.is_file():
            raise AnvilError(
                f"anvil cannot read its state file, set aside as {corrupt}, and there is no backup "
                f"({self.backup_file}); `scf chain start` again begins an empty chain. anvil said:\n{log_tail}"
            )
        logger.warning(
            "anvil cannot read its state file (a crash during a state dump?); set aside as %s, "
            "restarting from the backup of the previous start, %s",
            corrupt,
            self.backup_file,
        )
        shutil.copyfile(self.backup_file, self.state_file)
        return self.backup_file

    def _running_record(self) -> _PidRecord | None:
        """The PID file's record when its process is alive and is anvil; a stale PID file is removed."""
        try:
            data = json.loads(self.pid_file.read_text(encoding="utf-8"))
            record = _PidRecord(
                pid=int(data["pid"]),
                host=str(data["host"]),
                port=int(data["port"]),
                chain_id=int(data["chain_id"]),
                started_at=str(data["started_at"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("ignoring unreadable PID file %s", self.pid_file)
            self.pid_file.unlink(missing_ok=True)
            return None
        if not _alive(record.pid) or not _is_anvil(record.pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        return record

    def _log_tail(self, offset: int, lines: int = 15) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])


class _StateUnreadable(Exception):
    def __init__(self, log_tail: str) -> None:
        self.log_tail = log_tail
        super().__init__(log_tail)


# -- process and RPC helpers -----------------------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _rpc(url: str, method: str, params: list[Any] | None = None, *, timeout: float) -> Any:
    """One JSON-RPC call to the local node, without a proxy; raises OSError or ValueError on failure."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise ValueError(f"{method}: {answer['error']}")
    return answer["result"]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process; reaps it when it is our own child that has exited."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X")


def _proc_state(pid: int) -> str | None:
    """The state letter of ``/proc/<pid>/stat`` (``Z`` for a zombie); None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _is_anvil(pid: int) -> bool:
    """Whether ``pid`` runs anvil (guards against a PID reused by another program); True where unknown."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"anvil" in cmdline


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
