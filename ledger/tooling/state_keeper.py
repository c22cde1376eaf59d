"""Keep the local chain's recent state dumps, and tell a consistent dump from an inconsistent one.

anvil (1.7) writes its state file every ``--state-interval`` seconds while it mines, and the dump is not taken at
one instant: the accounts can be read after a block was executed while the block list and ``best_block_number``
were read before it was stored. Loaded after a ``kill -9``, such a dump gives a chain whose accounts hold the
effects (nonces used, storage written) of transactions that are in no block: no receipt, no event, nothing to
index, and a nonce the journal can never send again. The next dump, a second later, is consistent again, so
the cure is to keep a few recent dumps and, at start, load the newest one that is consistent.

Two parts, both without third-party imports (the keeper runs as its own small process):

- :func:`inspect_state` reads a dump and checks it: every transaction in a block at or below the best block,
  and every externally owned account's nonce equal to the number of transactions it sent. The check is exact:
  every change to the state comes from a transaction, and every transaction moves its sender's nonce.
- :func:`keep` (``python -m ledger.tooling.state_keeper``) runs beside anvil: each time the state file has been
  rewritten and stays unchanged for a moment, it copies it into the keep folder, keeping the newest few, and it
  exits when anvil does. :meth:`ledger.tooling.chain.Anvil.start` starts it and, at the next start, chooses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

KEEP_DEFAULT: Final = 4
"""How many recent dumps the keeper holds."""
POLL_SECONDS: Final = 0.2
"""How often the keeper looks at the state file; a dump is copied once it stayed unchanged for one look."""
PREFIX: Final = "state-"


@dataclass(frozen=True)
class StateCheck:
    """What :func:`inspect_state` found in one dump."""

    path: Path
    readable: bool
    consistent: bool
    best_block: int | None
    problem: str | None = None
    """Why the dump is unreadable or inconsistent; None when it is fine."""


def inspect_state(path: Path) -> StateCheck:
    """Read anvil's state dump at ``path`` and check that its accounts match its blocks (see the module)."""
    try:
        state = json.loads(path.read_bytes())
        best = int(state["best_block_number"])
        transactions = state.get("transactions") or []
        accounts = state["accounts"]
        blocks = state.get("blocks") or []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return StateCheck(path, False, False, None, f"unreadable: {type(exc).__name__}: {exc}")
    try:
        numbers = [_int(block["header"]["number"]) for block in blocks]
        above = [n for n in numbers if n > best]
        if above:
            return StateCheck(path, True, False, best, f"block {min(above)} is above the best block {best}")
        sent: Counter[str] = Counter()
        for transaction in transactions:
            number = _int(transaction["block_number"])
            if number > best:
                return StateCheck(
                    path, True, False, best, f"a transaction of block {number} is above the best block {best}"
                )
            sent[str(transaction["info"]["from"]).lower()] += 1
        for address, account in accounts.items():
            if _has_code(account):
                continue  # a contract's nonce counts the contracts it created, not transactions
            nonce = _int(account.get("nonce", 0))
            if nonce != sent[address.lower()]:
                return StateCheck(
                    path,
                    True,
                    False,
                    best,
                    f"account {address} has nonce {nonce} but sent {sent[address.lower()]} transactions in blocks "
                    f"up to {best}",
                )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return StateCheck(path, True, False, best, f"unexpected layout: {type(exc).__name__}: {exc}")
    return StateCheck(path, True, True, best)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 16) if text.startswith(("0x", "0X")) else int(text)


def _has_code(account: Any) -> bool:
    code = account.get("code") if isinstance(account, dict) else None
    return bool(code) and code not in ("0x", "0x0")


def kept_dumps(keep_dir: Path) -> list[Path]:
    """The kept dumps, newest first."""
    if not keep_dir.is_dir():
        return []
    return sorted(keep_dir.glob(f"{PREFIX}*.json"), key=lambda p: p.name, reverse=True)


def newest_consistent(candidates: list[Path]) -> StateCheck | None:
    """The first of ``candidates`` (newest first) that is readable and consistent, or None."""
    for candidate in candidates:
        check = inspect_state(candidate)
        if check.consistent:
            return check
    return None


# -- the keeper process -----------------------------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # "pid (comm) S ...": the state follows the last ')'; a zombie (Z) or dead (X) process has exited.
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _copy(state_file: Path, keep_dir: Path, stamp: int) -> Path:
    target = keep_dir / f"{PREFIX}{stamp:020d}.json"
    temporary = keep_dir / f".{target.name}.tmp"
    shutil.copyfile(state_file, temporary)
    os.replace(temporary, target)
    return target


def keep(state_file: Path, keep_dir: Path, pid: int, *, count: int = KEEP_DEFAULT, poll: float = POLL_SECONDS) -> None:
    """Copy each new dump of ``state_file`` into ``keep_dir`` while process ``pid`` lives (see the module)."""
    keep_dir.mkdir(parents=True, exist_ok=True)
    copied: tuple[int, int] | None = None
    previous: tuple[int, int] | None = None
    while _process_alive(pid):
        try:
            stat = state_file.stat()
            current: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            current = None
        if current is not None and current == previous and current != copied and current[1] > 0:
            try:
                _copy(state_file, keep_dir, current[0])
            except OSError as exc:  # a full disk, say: keep trying, the chain itself is unaffected
                print(f"state keeper: cannot copy {state_file}: {exc}", file=sys.stderr, flush=True)
            else:
                copied = current
                for old in kept_dumps(keep_dir)[count:]:
                    old.unlink(missing_ok=True)
        previous = current
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="anvil's state file")
    parser.add_argument("--keep-dir", type=Path, required=True, help="folder for the kept dumps")
    parser.add_argument("--pid", type=int, required=True, help="anvil's process id; the keeper exits with it")
    parser.add_argument("--count", type=int, default=KEEP_DEFAULT, help="how many dumps to keep")
    arguments = parser.parse_args(argv)
    keep(arguments.state, arguments.keep_dir, arguments.pid, count=arguments.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
