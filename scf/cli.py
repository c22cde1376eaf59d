"""``scf``: the ledger's command line.

    scf chain start [--port N] [--block-time S]   run the local anvil node in the background
    scf chain status                              is it running, on which chain, at which block
    scf chain stop                                stop it; it saves its state first
    scf deploy [--rpc-url URL] [--fresh]          compile if needed, deploy (or reuse), write the deployment file
    scf serve [--no-chain]                        start the chain if needed and serve the REST API (Ctrl-C
                                                  stops the chain too when this started it)
    scf demo --api-key KEY                        the whole story against the running service (off the local
                                                  chain, also --safe-payer-key for the financier's Safe)
    scf bench [--quick]                           benchmarks -> bench/results/, docs/benchmarks.md and .png
    scf bench-webhooks [--quick]                  webhook delivery beside slow and failing receivers -> same
    scf bench-portal [--sizes 10000]              the portal's first page at a scale, without the whole run -> same
    scf bench-cpu [--quick] [--baseline DIR]      the service's CPU per request (beside another checkout's) -> same
    scf secrets new                               fresh values for SCF_MASTER_SECRET, SCF_KEY_SALT, SCF_OPERATOR_KEY
    scf secrets check                             would these secret settings be accepted on this chain?
    scf secrets rotate                            re-encrypt keys, documents, webhook secrets under the current one
    scf api-key reissue                           a new API key for the operator, the old ones revoked
    scf client ...                                a self-custody participant's own machine: a local encrypted
                                                  key, its acts signed there (scf/client.py)

Settings come from ``SCF_*`` environment variables and ``.env`` (see ``.env.example``). Expected failures (no
node, wrong chain id, a refused secret, an unreachable database, a port taken, a contract that reverts) end
with a one-line ``error:`` message naming the setting to change, and exit code 1; ``scf --debug <command>``
adds the traceback. ``python -m scf.cli`` runs the same commands.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ledger.compiler import CompilationError, compile_contracts
from ledger.deployment import (
    DeploymentError,
    DeploymentProgress,
    ensure_deployment,
    operator_account,
    regulator_account,
)
from ledger.node import ChainError, ChainUnreachable, connect, redact_url
from ledger.settings import PROJECT_ROOT, Settings
from ledger.tooling.chain import Anvil, AnvilError, AnvilStatus
from scf.client import client_app

app = typer.Typer(
    name="scf",
    help="Supply-chain finance ledger: run the local chain, deploy the contracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
chain_app = typer.Typer(help="Run the local anvil node (state kept under SCF_DATA_DIR/chain).", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
secrets_app = typer.Typer(
    help="Make, check and rotate the secret settings (master secret, key salt, operator key).", no_args_is_help=True
)
app.add_typer(secrets_app, name="secrets")
api_key_app = typer.Typer(help="The operator's API key, from the service's machine.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")
app.add_typer(client_app, name="client")

console = Console(highlight=False, markup=False, soft_wrap=True)


class _StderrHandler(logging.Handler):
    """Log lines to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


_debug = False
"""Whether ``--debug`` was given: failures then show their traceback."""

DebugOption = Annotated[bool, typer.Option("--debug", help="show the traceback of a failure")]


@app.callback()
def main(debug: DebugOption = False) -> None:
    """Supply-chain finance ledger."""
    global _debug
    _debug = _debug or debug
    configure_logging()


def configure_logging() -> None:
    """The ledger's and the API's log lines (INFO and up) to stderr; idempotent. The API's request lines are
    ``key=value`` pairs (request id, caller, operation id, transaction hash) after a UTC timestamp."""
    for name, layout in (("ledger", "%(message)s"), ("api", "%(asctime)s %(levelname)s %(name)s %(message)s")):
        named = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in named.handlers):
            handler = _StderrHandler()
            formatter = logging.Formatter(layout)
            formatter.converter = time.gmtime
            handler.setFormatter(formatter)
            named.addHandler(handler)
            named.setLevel(logging.INFO)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(e["loc"], e["msg"]) for e in exc.errors())
        _fail(f"invalid settings: {problems}")


def _setting_problem(location: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    if not location:  # a check of several settings together: its message names them
        return message
    return f"SCF_{'.'.join(map(str, location)).upper()}: {message}"


def _fail(message: str) -> NoReturn:
    """One line, ``error: <message>``, on stderr and exit code 1; with ``--debug``, the traceback of the exception
    being handled first."""
    if _debug and sys.exc_info()[0] is not None:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- scf chain ---------------------------------------------------------------------------------------------

PortOption = Annotated[int | None, typer.Option("--port", help="port to listen on [default: SCF_ANVIL_PORT]")]
BlockTimeOption = Annotated[
    float | None, typer.Option("--block-time", min=0.01, help="seconds per block [default: SCF_BLOCK_TIME]")
]


def _describe(status: AnvilStatus) -> str:
    block = "not answering" if status.block_number is None else f"block {status.block_number}"
    return f"pid {status.pid}, {status.rpc_url}, chain id {status.chain_id}, {block}"


@chain_app.command("start")
def chain_start(port: PortOption = None, block_time: BlockTimeOption = None) -> None:
    """Start anvil in the background (hardfork prague, interval mining, state on disk)."""
    settings = _settings()
    anvil = Anvil.from_settings(settings, port=port, block_time=block_time)
    try:
        status = anvil.start()
    except ChainError as exc:
        _fail(str(exc))
    if status.already_running:
        console.print(f"anvil is already running: {_describe(status)}")
        return
    if status.restored_from is not None:
        console.print(
            f"warning: the state file was unreadable (a crash during a state dump); restarted from the backup "
            f"of the previous start, {_shown(status.restored_from)}: later blocks are lost",
            style="yellow",
        )
    console.print(f"anvil started: {_describe(status)}")
    console.print(f"  block time {anvil.block_time:g} s, block gas limit {anvil.gas_limit:,}")
    console.print(f"  state {_shown(status.state_file)} (saved every second and on stop)")
    console.print(f"  log   {_shown(status.log_file)}")


@chain_app.command("stop")
def chain_stop() -> None:
    """Stop anvil; it saves its state before it exits."""
    settings = _settings()
    anvil = Anvil.from_settings(settings)
    try:
        stopped = anvil.stop()
    except ChainError as exc:
        _fail(str(exc))
    if stopped is None:
        console.print(f"anvil is not running (data folder {_shown(settings.data_dir)})")
        return
    if stopped.killed:
        console.print(f"warning: anvil (pid {stopped.pid}) did not stop in time and was killed", style="yellow")
    saved = "state saved to" if stopped.state_saved else "warning: state not saved on exit; last saved in"
    console.print(f"anvil stopped (pid {stopped.pid}); {saved} {_shown(anvil.state_file)}")


@chain_app.command("status")
def chain_status() -> None:
    """Say whether anvil runs, on which chain id and at which block."""
    settings = _settings()
    status = Anvil.from_settings(settings).status()
    if not status.running:
        console.print(f"anvil is not running (data folder {_shown(settings.data_dir)})")
        return
    console.print(f"anvil is running: {_describe(status)}")
    console.print(f"  state {_shown(status.state_file)}")
    console.print(f"  log   {_shown(status.log_file)}")


# -- scf deploy --------------------------------------------------------------------------------------------


@app.command("deploy")
def deploy_command(
    rpc_url: Annotated[
        str | None, typer.Option("--rpc-url", help="JSON-RPC endpoint [default: SCF_RPC_URL]", show_default=False)
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="deploy anew even when a live deployment exists")] = False,
) -> None:
    """Compile if needed, deploy every contract and wire roles (or reuse the live deployment), and write
    deployments/chain-<chainId>/deployed_addresses.json and the ABIs."""
    configure_logging()
    settings = _settings()
    url = rpc_url or settings.rpc_url
    try:
        with console.status("compiling contracts"):
            artifacts = compile_contracts()
        started = time.perf_counter()
        w3 = connect(url, settings.chain_id, timeout=settings.rpc_timeout)
        operator = operator_account(settings.operator_key, settings.chain_id)
        regulator = regulator_account(settings.regulator_address, settings.chain_id, operator.address)
        console.print(
            f"chain {settings.chain_id} at {redact_url(url)}, operator {operator.address}, "
            f"first regulator {regulator.address}"
        )
        with _DeployProgress() as progress:
            outcome = ensure_deployment(
                w3,
                deployments_dir=settings.deployments_dir,
                artifacts=artifacts,
                deployer=operator,
                regulator=regulator.address,
                fresh=fresh,
                progress=progress,
            )
    except ChainUnreachable as exc:
        local = urlsplit(url).hostname in ("127.0.0.1", "localhost")
        _fail(f"{exc}{'; is anvil running? (`scf chain start`)' if local else ''}")
    except (ChainError, DeploymentError, CompilationError) as exc:
        _fail(str(exc))
    deployment = outcome.deployment
    if outcome.reused:
        console.print(
            f"reusing the deployment of block {deployment.block_number} on chain {deployment.chain_id} "
            f"(nothing sent; --fresh deploys anew)"
        )
    else:
        if outcome.replaced:
            console.print(f"replaced a stale deployment: {outcome.replaced}", style="yellow")
        elapsed = time.perf_counter() - started
        console.print(
            f"deployed {len(deployment.addresses)} contracts to chain {deployment.chain_id} "
            f"by block {deployment.block_number} in {elapsed:.1f} s"
        )
    width = max(len(name) for name in deployment.addresses)
    for name, address in deployment.addresses.items():
        console.print(f"  {name:<{width}}  {address}")
    addresses_file = _shown(outcome.directory / "deployed_addresses.json")
    console.print(
        f"{'deployment file' if outcome.reused else 'written to'} {addresses_file} (and abi/, deployment.json)"
    )


class _DeployProgress:
    """A line per confirmed step, and on a terminal a progress bar over the steps while it waits."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _DeployProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: DeploymentProgress) -> None:
        if self._progress is None and console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("deploying", total=event.total)
        if not event.confirmed:
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, description=f"waiting for {event.label}")
            return
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
        where = f"  {event.address}" if event.address else ""
        mined = f"block {event.block_number}, gas {event.gas_used or 0:,}"
        console.print(f"  [{event.step}/{event.total}] {event.label}{where}  ({mined})")


@app.command("serve")
def serve_command(
    chain: Annotated[bool, typer.Option(help="start the local anvil first (when SCF_RPC_URL is the local one)")] = True,
    debug: DebugOption = False,
) -> None:
    """Run the REST service: check the settings, start the local chain if needed, deploy if needed, index, serve
    the API. A failure to start is one line naming the setting to change (--debug: and its traceback).

    Ctrl-C (SIGINT) or SIGTERM stops the service, then the local chain if this command started it; a chain that
    was already running (`scf chain start`) keeps running."""
    from api.server import check_workers, failure_message, first_line, listening_socket, run, run_workers
    from ledger.secrets import check_secrets

    global _debug
    _debug = _debug or debug
    settings = _settings()
    started: Anvil | None = None
    refused: str | None = None
    try:
        check_secrets(settings)
        check_workers(settings)
        sock = listening_socket(settings.api_host, settings.api_port)
        if chain and urlsplit(settings.rpc_url).hostname in ("127.0.0.1", "localhost"):
            anvil = Anvil.from_settings(settings)
            status = anvil.start()
            console.print(f"chain: {_describe(status)}")
            if status.already_running:
                console.print("  it was running already and keeps running after the service stops (`scf chain stop`)")
            else:
                started = anvil
                console.print("  started for this service: Ctrl-C stops the service, then the chain")
        # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again: SIGTERM must end this
        # process through Python (SystemExit), not by its default action, for the chain to be stopped below.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if settings.workers > 1:
            refused = run_workers(settings, sock)
        else:
            run(settings, sock)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except AnvilError as exc:  # the local chain, which only this command starts
        _fail(f"{first_line(str(exc))} (the local chain: SCF_ANVIL_PORT, SCF_DATA_DIR)")
    except Exception as exc:
        message = failure_message(exc, settings)
        shown = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(message or f"unexpected {type(exc).__name__}: {shown} (`scf --debug serve` shows where)")
    finally:
        if started is not None:
            _stop_started_chain(started)
    if refused is not None:  # a worker could not start: the one line it said
        _fail(refused)


def _stop_started_chain(anvil: Anvil) -> None:
    """Stop the chain `scf serve` started, once the service (and its pipeline) has stopped."""
    try:
        stopped = anvil.stop()
    except ChainError as exc:
        console.print(f"warning: the chain this service started did not stop: {exc}", style="yellow")
        return
    if stopped is None:
        return
    saved = "state saved to" if stopped.state_saved else "warning: state not saved on exit; last saved in"
    console.print(f"chain stopped (pid {stopped.pid}, started by this service); {saved} {_shown(anvil.state_file)}")


@app.command("demo")
def demo_command(
    api_key: Annotated[str, typer.Option(envvar="SCF_API_KEY", help="the operator's API key (printed at first start)")],
    url: Annotated[str | None, typer.Option(help="base URL of the service")] = None,
    safe_payer_key: Annotated[
        str | None,
        typer.Option(
            envvar="SCF_DEMO_SAFE_PAYER_KEY",
            help="a private key with gas money, to pay for the financier's Safe; needed on a chain other than the "
            "local development chain (there, anvil gives a fresh key test ether)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Walk through the whole story against the running service and print a timeline."""
    from scf.demo import Demo, DemoError

    settings = _settings()
    base = url or f"http://{settings.api_host}:{settings.api_port}"
    try:
        Demo(base, api_key, settings.rpc_url, console.print, safe_payer_key).run()
    except (DemoError, OSError) as exc:
        _fail(str(exc))
    console.print("demo complete")


R = TypeVar("R")


def _run_bench(title: str, mode: str, run: Callable[[], R], workdir: Path | None) -> R:
    """Run a benchmark: SIGTERM ends it like Ctrl-C (its anvil and service are stopped on the way out), its
    failures print one line."""
    from bench.load import BenchmarkFailed

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"{title}: {mode} mode")
    try:
        return run()
    except (BenchmarkFailed, ChainError, DeploymentError, CompilationError) as exc:
        _fail(str(exc))


@app.command("bench")
def bench_command(
    quick: Annotated[bool, typer.Option("--quick", help="small sizes: a smoke run of under two minutes")] = False,
    results_dir: Annotated[Path, typer.Option(help="where the results JSON goes")] = PROJECT_ROOT / "bench" / "results",
    markdown: Annotated[Path, typer.Option(help="the Markdown page whose table is rewritten")] = PROJECT_ROOT
    / "docs"
    / "benchmarks.md",
    chart: Annotated[Path, typer.Option(help="the PNG chart")] = PROJECT_ROOT / "docs" / "benchmarks.png",
    workdir: Annotated[
        Path | None, typer.Option(help="keep the run's chain, databases and service log here (default: temporary)")
    ] = None,
    sizes: Annotated[
        str | None, typer.Option(help="scaling sizes instead of the mode's, e.g. 1000,10000 (pieces held)")
    ] = None,
) -> None:
    """Run the benchmarks on a fresh anvil of their own; write the results JSON, the table and the chart."""
    from bench.report import write_results
    from bench.runner import FULL, QUICK, run_benchmarks

    config = QUICK if quick else FULL
    if sizes:
        try:
            config = replace(config, scale_sizes=tuple(sorted(int(size) for size in sizes.split(","))))
        except ValueError:
            _fail(f"--sizes takes whole numbers separated by commas, not {sizes!r}")
    results = _run_bench("scf bench", config.mode, lambda: run_benchmarks(config, console.print, workdir), workdir)
    written = write_results(results, results_dir, markdown, chart)
    console.print(f"wrote {_shown(written)}, {_shown(markdown)} and {_shown(chart)}")


@app.command("bench-portal")
def bench_portal_command(
    quick: Annotated[bool, typer.Option("--quick", help="the quick mode's sizes (100 and 1,000 pieces)")] = False,
    sizes: Annotated[
        str, typer.Option(help="pieces held by the caller at which the portal is timed, e.g. 1000,10000")
    ] = "10000",
    loads: Annotated[int | None, typer.Option(help="fresh loads of each page at each size")] = None,
    results_dir: Annotated[Path, typer.Option(help="where the results JSON goes")] = PROJECT_ROOT / "bench" / "results",
    markdown: Annotated[Path, typer.Option(help="the Markdown page whose portal table is rewritten")] = PROJECT_ROOT
    / "docs"
    / "benchmarks.md",
    workdir: Annotated[
        Path | None, typer.Option(help="keep the run's chain, databases and service log here (default: temporary)")
    ] = None,
) -> None:
    """Only the scaling stage of `scf bench` with the portal's first page (issue 15: under 1 s at 10,000 pieces):
    its own anvil, deployment, cast and service, the pieces populated through the pipeline, then the list routes
    and the portal's list pages in chromium at each size; write the results JSON and the portal's table."""
    from bench.report import write_portal_results
    from bench.runner import FULL, QUICK, run_portal_bench

    config = QUICK if quick else FULL
    try:
        config = replace(config, scale_sizes=tuple(sorted(int(size) for size in sizes.split(","))))
    except ValueError:
        _fail(f"--sizes takes whole numbers separated by commas, not {sizes!r}")
    if quick and sizes == "10000":
        config = replace(config, scale_sizes=QUICK.scale_sizes)
    if loads is not None:
        config = replace(config, portal_loads=loads)
    results = _run_bench(
        "scf bench-portal", config.mode, lambda: run_portal_bench(config, console.print, workdir), workdir
    )
    written = write_portal_results(results, results_dir, markdown)
    console.print(f"wrote {_shown(written)} and {_shown(markdown)}")


@app.command("bench-webhooks")
def bench_webhooks_command(
    quick: Annotated[bool, typer.Option("--quick", help="one short round: a smoke run of about a minute")] = False,
    results_dir: Annotated[Path, typer.Option(help="where the results JSON goes")] = PROJECT_ROOT / "bench" / "results",
    markdown: Annotated[Path, typer.Option(help="the Markdown page whose webhook table is rewritten")] = PROJECT_ROOT
    / "docs"
    / "benchmarks.md",
    workdir: Annotated[
        Path | None, typer.Option(help="keep the run's chain, database and service log here (default: temporary)")
    ] = None,
) -> None:
    """Measure webhook delivery latency to healthy receivers alone and beside a slow and a failing receiver, and
    the ledger's own latency in both; write the results JSON and the table."""
    from bench.webhooks import FULL, QUICK, run_webhook_bench, write_results

    config = QUICK if quick else FULL
    results = _run_bench(
        "scf bench-webhooks", config.mode, lambda: run_webhook_bench(config, console.print, workdir), workdir
    )
    written = write_results(results, results_dir, markdown)
    console.print(f"wrote {_shown(written)} and {_shown(markdown)}")


@app.command("bench-cpu")
def bench_cpu_command(
    quick: Annotated[bool, typer.Option("--quick", help="one short round: a smoke run of about a minute")] = False,
    baseline: Annotated[
        Path | None, typer.Option(help="another checkout (e.g. a worktree of main) whose service is measured beside")
    ] = None,
    results_dir: Annotated[Path, typer.Option(help="where the results JSON goes")] = PROJECT_ROOT / "bench" / "results",
    markdown: Annotated[Path, typer.Option(help="the Markdown page whose CPU table is rewritten")] = PROJECT_ROOT
    / "docs"
    / "benchmarks.md",
    workdir: Annotated[
        Path | None, typer.Option(help="keep the run's chains, databases and service logs here (default: temporary)")
    ] = None,
) -> None:
    """Measure the service's CPU time per request (deposits with and without Prefer: wait, GET /operations/{id},
    GET /balances/me) from /proc; write the results JSON and the table."""
    from bench.cpu import FULL, QUICK, run_cpu_bench, write_results

    config = QUICK if quick else FULL
    results = _run_bench(
        "scf bench-cpu", config.mode, lambda: run_cpu_bench(config, console.print, workdir, baseline), workdir
    )
    written = write_results(results, results_dir, markdown)
    console.print(f"wrote {_shown(written)} and {_shown(markdown)}")


@app.command("bench-batch")
def bench_batch_command(
    quick: Annotated[bool, typer.Option("--quick", help="one short round: a smoke run of under a minute")] = False,
    results_dir: Annotated[Path, typer.Option(help="where the results JSON goes")] = PROJECT_ROOT / "bench" / "results",
    markdown: Annotated[Path, typer.Option(help="the Markdown page whose batch table is rewritten")] = PROJECT_ROOT
    / "docs"
    / "benchmarks.md",
    workdir: Annotated[
        Path | None, typer.Option(help="keep the run's chain, database and service log here (default: temporary)")
    ] = None,
) -> None:
    """Measure confirmed deposits per second through POST /batch against single POST /deposits requests in the
    same run, with the service's CPU per deposit; write the results JSON and the table."""
    from bench.batch import FULL, QUICK, run_batch_bench, write_results

    config = QUICK if quick else FULL
    results = _run_bench(
        "scf bench-batch", config.mode, lambda: run_batch_bench(config, console.print, workdir), workdir
    )
    written = write_results(results, results_dir, markdown)
    console.print(f"wrote {_shown(written)} and {_shown(markdown)}")


@app.command("bench-workers")
def bench_workers_command(
    quick: Annotated[bool, typer.Option("--quick", help="one short round: a smoke run of about a minute")] = False,
    results_dir: Annotated[Path, typer.Option(help="where the results JSON goes")] = PROJECT_ROOT / "bench" / "results",
    markdown: Annotated[Path, typer.Option(help="the Markdown page whose workers table is rewritten")] = PROJECT_ROOT
    / "docs"
    / "benchmarks.md",
    workdir: Annotated[
        Path | None, typer.Option(help="keep the run's chain and service logs here (default: temporary)")
    ] = None,
) -> None:
    """Measure the REST service with one process against several (SCF_WORKERS) on one PostgreSQL database, and its
    indexer in a thread against a process of its own (SCF_INDEXER), in the same run: confirmed split-transfers per
    second under open-loop load and the service's CPU per request."""
    from bench.workers import FULL, QUICK, run_workers_bench, write_results

    config = QUICK if quick else FULL
    results = _run_bench(
        "scf bench-workers", config.mode, lambda: run_workers_bench(config, console.print, workdir), workdir
    )
    written = write_results(results, results_dir, markdown)
    console.print(f"wrote {_shown(written)} and {_shown(markdown)}")


# -- scf secrets, scf api-key --------------------------------------------------------------------------------


@secrets_app.command("new")
def secrets_new() -> None:
    """Print fresh random values for the secret settings, as lines for `.env` (or one file each for *_FILE)."""
    from ledger.secrets import fresh_secrets

    fresh = fresh_secrets()
    console.print("# fresh secrets (32 random bytes each); keep them out of version control")
    console.print("# the master secret derives the keys of hosted signing keys, documents and sign-in tokens")
    console.print(f"SCF_MASTER_SECRET={fresh.master_secret}")
    console.print("# the invoice and lot key salt: choose it once, before launch; it never changes after")
    console.print(f"SCF_KEY_SALT={fresh.key_salt}")
    console.print(f"# the operator's private key; its account {fresh.operator_address} needs gas on your chain")
    console.print(f"SCF_OPERATOR_KEY={fresh.operator_key}")


@secrets_app.command("check")
def secrets_check() -> None:
    """Say whether the secret settings would be accepted on the configured chain (SCF_CHAIN_ID), without starting."""
    from ledger.secrets import SecretRefused, check_secrets, master_secrets

    settings = _settings()
    try:
        warnings = check_secrets(settings)
    except SecretRefused as exc:
        _fail(str(exc))
    secrets = master_secrets(settings)
    console.print(f"the secret settings are accepted on chain {settings.chain_id}")
    console.print(f"  master secret {secrets.current.id} (from {settings.secret_source('master_secret')})")
    for secret in secrets.previous:
        console.print(f"  previous master secret {secret.id}, read only")
    for warning in warnings:
        console.print(f"warning: {warning}", style="yellow")


@secrets_app.command("rotate")
def secrets_rotate(
    batch: Annotated[int, typer.Option(min=1, max=1000, help="documents re-encrypted per transaction")] = 8,
) -> None:
    """Re-encrypt every hosted key, document and webhook signing secret under SCF_MASTER_SECRET, reading them with
    the previous master secrets (SCF_PREVIOUS_MASTER_SECRETS); restart the service with both first. Safe to run
    again: it resumes."""
    from api.admin import AdminError, reencrypt_under_current_secret
    from ledger.db import DatabaseUnavailable
    from ledger.deployment import OperatorKeyMissing
    from ledger.documents import DocumentIntegrityError
    from ledger.keystore import KeystoreError
    from ledger.secrets import SecretRefused, check_secrets, master_secrets

    settings = _settings()
    try:
        check_secrets(settings)
    except SecretRefused as exc:
        _fail(str(exc))
    secrets = master_secrets(settings)
    previous = ", ".join(s.id for s in secrets.previous) or "none"
    console.print(f"re-encrypting under master secret {secrets.current.id} (previous: {previous})")
    try:
        with _RotationProgress() as shown:
            result = reencrypt_under_current_secret(
                settings,
                on_keys=lambda total: shown.begin("hosted keys", total),
                on_key=lambda _address, _changed: shown.advance("hosted keys", 1),
                on_documents=lambda total: shown.begin("documents", total),
                on_document_batch=lambda count: shown.advance("documents", count),
                batch=batch,
            )
    except (AdminError, DatabaseUnavailable, OperatorKeyMissing, DocumentIntegrityError, KeystoreError) as exc:
        _fail(f"{exc}; nothing is lost: fix it and run `scf secrets rotate` again, it resumes")
    console.print(
        f"re-encrypted {result.keys_rewritten} of {result.keys} hosted keys, {result.documents_rewritten} "
        f"documents and {result.webhook_secrets_rewritten} webhook signing secrets under master secret "
        f"{result.secret_id}"
    )
    if result.keys_left or result.documents_left or result.webhook_secrets_left:
        _fail(
            f"{len(result.keys_left)} keys, {result.documents_left} documents and {result.webhook_secrets_left} "
            "webhook signing secrets are still under another secret "
            "(written meanwhile by a service that does not use the new master secret?); run it again"
        )
    console.print(
        "nothing is left under a previous master secret: remove SCF_PREVIOUS_MASTER_SECRETS and restart the "
        f"service (sign-in tokens of the old secret expire {settings.token_ttl_seconds} s after the restart that "
        "brought the new one in any case)"
    )


class _RotationProgress:
    """Progress of ``scf secrets rotate``: bars on a terminal; otherwise a line per tenth of each part."""

    def __init__(self) -> None:
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def __enter__(self) -> _RotationProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bars.stop()

    def begin(self, part: str, total: int) -> None:
        self._tasks[part] = self._bars.add_task(part, total=total)
        self._done[part], self._total[part] = 0, total
        if not console.is_terminal:
            console.print(f"  {part}: {total} to go through")

    def advance(self, part: str, count: int) -> None:
        self._bars.advance(self._tasks[part], count)
        before, self._done[part] = self._done[part], self._done[part] + count
        step = max(1, self._total[part] // 10)
        if not console.is_terminal and (self._done[part] // step > before // step or self._done[part] == count):
            console.print(f"  {part}: {self._done[part]} of {self._total[part]}")


@api_key_app.command("reissue")
def api_key_reissue() -> None:
    """Issue a new API key for the operator (the account of SCF_OPERATOR_KEY) and revoke every earlier one, in
    the service's database; for a lost or leaked key. The running service honours it at once."""
    from api.admin import AdminError, reissue_operator_key
    from ledger.db import DatabaseUnavailable
    from ledger.deployment import OperatorKeyMissing

    settings = _settings()
    try:
        reissued = reissue_operator_key(settings)
    except (AdminError, DatabaseUnavailable, OperatorKeyMissing) as exc:
        _fail(str(exc))
    console.print(f"revoked {reissued.revoked} earlier API key(s) of the operator {reissued.operator}")
    console.print("the operator's new API key (shown once, stored only as a hash):")
    console.print(f"  {reissued.api_key}")


if __name__ == "__main__":  # after every command: `python -m scf.cli serve` reaches them all
    app()
