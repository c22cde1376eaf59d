"""Production safety with real processes: ``scf serve`` on a production chain (anvil started with chain id 4242)
refuses every development default and weak secret, and every start-up failure, in one line and exit code 1;
a correct production configuration starts and refuses sign-in tokens signed with the development key.

The secret checks look at the configured chain id (``SCF_CHAIN_ID``) before anything connects: the service
refuses to run on a node that answers another chain id, so the configured one is the chain's, and a service
refused for its secrets never reaches the chain. The refusals are nevertheless run against an anvil that really
serves chain 4242, the chain a correct configuration then starts on.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from ledger.deployment import dev_regulator
from ledger.node import dev_key
from ledger.settings import DEV_MASTER_SECRET
from ledger.tooling.chain import Anvil, find_anvil
from tests.e2e.conftest import free_port
from tests.e2e.processes import base_environment, one_error_line, run_scf, serving, strong, token

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

PRODUCTION_CHAIN = 4242


@dataclass
class Production:
    """An anvil serving chain 4242 and an operator key funded on it (not one of anvil's dev keys)."""

    anvil: Anvil
    operator_key: str
    regulator: str = "0x00000000000000000000000000000000000Fe9a1"
    """The first regulator's account: named at deployment, its key the regulator's (none here)."""

    def environment(self, data_dir: Path, **settings: str) -> dict[str, str]:
        """A correct production configuration (secrets as files of mode 0600), with ``settings`` on top."""
        data_dir.mkdir(parents=True, exist_ok=True)
        files = data_dir / "secrets"
        files.mkdir(mode=0o700, exist_ok=True)
        for name, value in (("master_secret", strong()), ("key_salt", strong())):
            path = files / name
            path.write_text(value + "\n")
            path.chmod(0o600)
        return base_environment(
            data_dir,
            SCF_CHAIN_ID=str(PRODUCTION_CHAIN),
            SCF_RPC_URL=self.anvil.rpc_url,
            SCF_MASTER_SECRET_FILE=str(files / "master_secret"),
            SCF_KEY_SALT_FILE=str(files / "key_salt"),
            SCF_OPERATOR_KEY=self.operator_key,
            SCF_REGULATOR_ADDRESS=self.regulator,
            **settings,
        )


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    anvil = Anvil(tmp_path_factory.mktemp("chain-4242"), port=free_port(), chain_id=PRODUCTION_CHAIN, block_time=0.25)
    anvil.start()
    try:
        operator = Account.create()
        answer = httpx.post(
            anvil.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [operator.address, hex(10**22)]},
        ).json()
        assert "error" not in answer, answer
        yield Production(anvil, operator.key.to_0x_hex())
    finally:
        with contextlib.suppress(Exception):
            anvil.kill()


# -- refused secrets -----------------------------------------------------------------------------------------------


def _readable_file(directory: Path, name: str, mode: int) -> str:
    path = directory / name
    path.write_text(strong() + "\n")
    path.chmod(mode)
    return str(path)


REFUSALS: dict[str, tuple[Callable[[Path], dict[str, str | None]], tuple[str, ...]]] = {
    "master secret: development default": (
        lambda _: {"SCF_MASTER_SECRET_FILE": None},
        ("SCF_MASTER_SECRET holds the public development default", "scf secrets new"),
    ),
    "master secret: development default given explicitly": (
        lambda _: {"SCF_MASTER_SECRET_FILE": None, "SCF_MASTER_SECRET": DEV_MASTER_SECRET},
        ("SCF_MASTER_SECRET holds the public development default",),
    ),
    "master secret: too short": (
        lambda _: {"SCF_MASTER_SECRET_FILE": None, "SCF_MASTER_SECRET": secrets.token_hex(16)},
        ("SCF_MASTER_SECRET holds 16 bytes, fewer than 32", "scf secrets new"),
    ),
    "master secret: a passphrase": (
        lambda _: {"SCF_MASTER_SECRET_FILE": None, "SCF_MASTER_SECRET": "our supply chain ledger's secret 2026"},
        ("SCF_MASTER_SECRET is not random bytes",),
    ),
    "master secret: file readable by others": (
        lambda d: {"SCF_MASTER_SECRET_FILE": _readable_file(d, "master", 0o644)},
        ("SCF_MASTER_SECRET_FILE", "other users (mode 0644)", "chmod 600"),
    ),
    "key salt: development default": (
        lambda _: {"SCF_KEY_SALT_FILE": None},
        ("SCF_KEY_SALT holds the public development default", "scf secrets new"),
    ),
    "key salt: a pattern": (
        lambda _: {"SCF_KEY_SALT_FILE": None, "SCF_KEY_SALT": "ab" * 32},
        ("SCF_KEY_SALT repeats a few byte values",),
    ),
    "key salt: file readable by its group": (
        lambda d: {"SCF_KEY_SALT_FILE": _readable_file(d, "salt", 0o640)},
        ("SCF_KEY_SALT_FILE", "other users (mode 0640)"),
    ),
    "operator key: unset": (
        lambda _: {"SCF_OPERATOR_KEY": None},
        ("SCF_OPERATOR_KEY is required on chain 4242",),
    ),
    "operator key: anvil's dev key": (
        lambda _: {"SCF_OPERATOR_KEY": "0x" + dev_key(0).hex()},
        ("SCF_OPERATOR_KEY is one of anvil's public dev keys",),
    ),
    "operator key: file readable by others": (
        lambda d: {"SCF_OPERATOR_KEY": None, "SCF_OPERATOR_KEY_FILE": _readable_file(d, "operator", 0o604)},
        ("SCF_OPERATOR_KEY_FILE", "other users (mode 0604)"),
    ),
    "first regulator: unset": (
        lambda _: {"SCF_REGULATOR_ADDRESS": None},
        ("SCF_REGULATOR_ADDRESS is required on chain 4242",),
    ),
    "previous master secrets: file readable by others": (
        lambda d: {"SCF_PREVIOUS_MASTER_SECRETS_FILE": _readable_file(d, "previous", 0o644)},
        ("SCF_PREVIOUS_MASTER_SECRETS_FILE", "other users (mode 0644)"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refused_secret_stops_scf_serve_on_a_production_chain_in_one_line(
    production: Production, tmp_path: Path, case: str
) -> None:
    change, needles = REFUSALS[case]
    env = production.environment(tmp_path / "data")
    for name, value in change(tmp_path).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    result = run_scf("serve", "--no-chain", env=env, cwd=tmp_path)
    one_error_line(result, *needles)
    assert not (tmp_path / "data" / "ledger.sqlite3").exists()  # refused before anything was touched
    assert result.stdout == ""


# -- a correct production configuration ------------------------------------------------------------------------


def test_a_correct_production_configuration_starts_and_refuses_tokens_of_the_development_key(
    production: Production, tmp_path: Path
) -> None:
    env = production.environment(tmp_path / "data")
    operator = Account.from_key(production.operator_key).address
    master = Path(env["SCF_MASTER_SECRET_FILE"]).read_text().strip()
    with serving(env, tmp_path) as served:
        key = served.operator_key()
        listed = httpx.get(f"{served.base_url}/participants", headers=served.headers(key))
        assert listed.status_code == 200, listed.text
        assert [p["id"] for p in listed.json()["items"]] == [operator]
        # A token signed with the production key is accepted: the refusals below are the key's doing.
        ok = httpx.get(f"{served.base_url}/participants", headers=served.headers(token(master, operator)))
        assert ok.status_code == 200, ok.text
        for forged in (token(DEV_MASTER_SECRET, operator), token(DEV_MASTER_SECRET, operator, kid=None)):
            refused = httpx.get(f"{served.base_url}/participants", headers=served.headers(forged))
            assert refused.status_code == 401, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
    # Moving off the development default: it may be a previous secret (to read what it encrypted), but a
    # token signed with it is still refused.
    env["SCF_PREVIOUS_MASTER_SECRETS"] = DEV_MASTER_SECRET
    with serving(env, tmp_path) as served:
        forged = token(DEV_MASTER_SECRET, operator)
        refused = httpx.get(f"{served.base_url}/participants", headers=served.headers(forged))
        assert refused.status_code == 401 and "not trusted for tokens" in refused.json()["detail"], refused.text
        assert "is weak or the development default" in served.stderr.read_text()


# -- start-up failures ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def port_taken() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_every_start_up_failure_is_one_line_naming_the_setting_and_exit_code_1(
    production: Production, tmp_path: Path
) -> None:
    # stated, so that no log line says it is the default
    local = {"SCF_OPERATOR_KEY": "0x" + dev_key(0).hex(), "SCF_REGULATOR_ADDRESS": dev_regulator().address}
    cases: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
        (
            "wrong chain id",
            {"SCF_RPC_URL": production.anvil.rpc_url, **local},
            ("serves chain id 4242, but chain id 31337 is configured (SCF_CHAIN_ID)",),
        ),
        (
            "unreachable node",
            {"SCF_RPC_URL": f"http://127.0.0.1:{free_port()}", **local},
            ("no JSON-RPC node answers", "check SCF_RPC_URL"),
        ),
        ("bad operator key", {"SCF_OPERATOR_KEY": "0x1234"}, ("SCF_OPERATOR_KEY is not a valid private key",)),
        ("refused secret", {"SCF_CHAIN_ID": str(PRODUCTION_CHAIN)}, ("SCF_MASTER_SECRET", "scf secrets new")),
        (
            "database unreachable",
            {
                "SCF_RPC_URL": production.anvil.rpc_url,
                "SCF_DATABASE_URL": f"postgresql+psycopg://scf:hunter2@127.0.0.1:{free_port()}/scf",
                **local,
            },
            ("the database postgresql+psycopg://scf:***@127.0.0.1", "check SCF_DATABASE_URL"),
        ),
        (
            "database folder not writable",
            {"SCF_DATABASE_URL": "sqlite:////proc/scf-ledger/ledger.sqlite3", **local},
            ("the database sqlite:////proc/scf-ledger/ledger.sqlite3 cannot be used", "SCF_DATABASE_URL"),
        ),
        ("invalid setting", {"SCF_CHAIN_ID": "forty-two"}, ("invalid settings: SCF_CHAIN_ID",)),
        ("workers on SQLite", {"SCF_WORKERS": "2", **local}, ("SCF_WORKERS=2 needs a PostgreSQL database",)),
    ]
    for name, settings, needles in cases:
        env = base_environment(tmp_path / name.replace(" ", "-"), **settings)
        line = one_error_line(run_scf("serve", "--no-chain", env=env, cwd=tmp_path), *needles)
        assert "hunter2" not in line, name
    with port_taken() as port:
        env = base_environment(tmp_path / "port", SCF_API_PORT=str(port), SCF_RPC_URL=production.anvil.rpc_url, **local)
        one_error_line(run_scf("serve", env=env, cwd=tmp_path), f"port {port} on 127.0.0.1 is taken", "SCF_API_PORT")
        assert not (tmp_path / "port" / "chain").exists()  # found before the local chain was started


def test_debug_shows_the_traceback_of_a_start_up_failure(tmp_path: Path) -> None:
    env = base_environment(tmp_path / "data", SCF_RPC_URL=f"http://127.0.0.1:{free_port()}")
    for args in (("--debug", "serve", "--no-chain"), ("serve", "--no-chain", "--debug")):
        result = run_scf(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr and "ChainUnreachable" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: no JSON-RPC node answers")
