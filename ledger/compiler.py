"""Compile the Solidity sources under ``contracts/`` into JSON artifacts.

This is the only module of the project that imports :mod:`solcx`. It drives solc-js (the npm package
``solc``) through ``scripts/solc``, a ``solc``-compatible wrapper, with fixed compiler settings, and writes
one artifact per contract to ``build/contracts/<source hash>/<ContractName>.json`` beside a
``manifest.json``: each contract defined under ``contracts/``, and each of :data:`PACKAGED_CONTRACTS` that a
source there imports (Safe's). The source hash covers every ``contracts/**/*.sol`` file, the compiler settings
and the installed versions of solc-js, OpenZeppelin Contracts and Safe's contracts, so an unchanged tree is
served from the build folder without starting the compiler at all.

The project's contracts compile through the IR pipeline (``viaIR``, :func:`compiler_settings`): it keeps
``Receivables`` (22,132 bytes, from 25,504 with the legacy pipeline; 23,051 with the registration of
docs/rules.md section 3) and ``WarehouseReceipts`` (20,168, from 22,091; 20,777 with it) under the EVM's
24,576-byte code-size limit (EIP-170). The sources of :data:`LEGACY_SOURCES` compile in a
second solc run with the legacy pipeline (:func:`legacy_compiler_settings`): ``SignedActs``, which the IR
pipeline makes larger (31,538 bytes, from 17,428: over the limit), and Safe's contracts (imported by
``contracts/safe/``), whose assembly is not marked memory-safe, so the IR pipeline may not move variables to
memory and ``Safe.execTransaction`` is too deep in the stack.

Run ``python -m ledger.compiler [--root DIR] [--force]`` to compile from the command line: solc's
warnings and errors go to stderr, a one-line summary to stdout, and the exit code is 1 on a compile error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import solcx
from solcx.exceptions import SolcError

logger = logging.getLogger(__name__)

PROJECT_ROOT_ENV: Final = "SCF_PROJECT_ROOT"
"""Environment variable naming the project root for ``python -m ledger.compiler`` (``--root`` wins)."""

CONTRACTS_DIR: Final = "contracts"
BUILD_DIR: Final = Path("build") / "contracts"
MANIFEST_NAME: Final = "manifest.json"
SOLC_WRAPPER: Final = Path("scripts") / "solc"
SOLC_PACKAGE_JSON: Final = Path("node_modules") / "solc" / "package.json"
OPENZEPPELIN_PACKAGE_JSON: Final = Path("node_modules") / "@openzeppelin" / "contracts" / "package.json"
SAFE_PACKAGE_JSON: Final = Path("node_modules") / "@safe-global" / "safe-contracts" / "package.json"

_SAFE_SOURCES: Final = "node_modules/@safe-global/safe-contracts/contracts"
PACKAGED_CONTRACTS: Final[Mapping[str, tuple[str, ...]]] = {
    f"{_SAFE_SOURCES}/Safe.sol": ("Safe",),
    f"{_SAFE_SOURCES}/SafeL2.sol": ("SafeL2",),
    f"{_SAFE_SOURCES}/proxies/SafeProxyFactory.sol": ("SafeProxyFactory",),
    f"{_SAFE_SOURCES}/proxies/SafeProxy.sol": ("SafeProxy",),
    f"{_SAFE_SOURCES}/handler/CompatibilityFallbackHandler.sol": ("CompatibilityFallbackHandler",),
}
"""Contracts of npm packages that get an artifact too, by source unit name (as solc names an import after the
remapping): Safe 1.4.1 (``contracts/safe/SafeImports.sol`` imports them; :mod:`ledger.safe` deploys them).
They are compiled only when a source under ``contracts/`` imports them, with :func:`legacy_compiler_settings`
(the source that imports them is one of :data:`LEGACY_SOURCES`), and their package's version is part of the
source hash."""

LEGACY_SOURCES: Final = (f"{CONTRACTS_DIR}/SignedActs.sol", f"{CONTRACTS_DIR}/safe/")
"""Source unit names (a name ending in ``/``: every source under it) compiled with the legacy pipeline."""

ARTIFACT_FORMAT: Final = 2
"""Version of the artifact layout written here; part of the source hash, so a change rebuilds (2: the NatSpec
``devdoc`` and ``userdoc``, which carry each custom error's sentence and ``@custom:kind``)."""

OUTPUTS: Final = (
    "abi",
    "devdoc",
    "userdoc",
    "evm.bytecode.object",
    "evm.deployedBytecode.object",
    "evm.methodIdentifiers",
)


def compiler_settings() -> dict[str, Any]:
    """The solc settings of the project's contracts, less ``outputSelection`` (which names the source files):
    the IR pipeline, optimised for 200 runs."""
    return {
        "optimizer": {"enabled": True, "runs": 200},
        "viaIR": True,
        "evmVersion": "prague",
        "remappings": [
            "@openzeppelin/=node_modules/@openzeppelin/",
            "@safe-global/safe-contracts/=node_modules/@safe-global/safe-contracts/",
        ],
    }


def legacy_compiler_settings() -> dict[str, Any]:
    """The solc settings of :data:`LEGACY_SOURCES` and the packaged contracts they import (Safe's): the
    project's, with the legacy pipeline."""
    return {**compiler_settings(), "viaIR": False}


def _is_legacy(name: str) -> bool:
    return any(name == legacy or (legacy.endswith("/") and name.startswith(legacy)) for legacy in LEGACY_SOURCES)


def _partition(sources: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the sources compiled through the IR pipeline, those of :data:`LEGACY_SOURCES`), each compiled in a solc
    run of its own; an imported source is read in both runs where both need it, and its artifact comes from
    the run that selects it."""
    ir = {name: text for name, text in sources.items() if not _is_legacy(name)}
    legacy = {name: text for name, text in sources.items() if _is_legacy(name)}
    return ir, legacy


class CompilationError(Exception):
    """The contracts could not be compiled.

    ``messages`` holds solc's formatted messages (each names the file and line, as
    ``--> contracts/Receivables.sol:42:5:``), or a description of what stopped the build before solc ran.
    """

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages: tuple[str, ...] = tuple(message.rstrip() for message in messages)
        super().__init__("\n".join(self.messages))


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, interface or library defined under ``contracts/`` (or one of
    :data:`PACKAGED_CONTRACTS`, whose ``source_name`` is then under ``node_modules/``)."""

    name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    """Creation code, 0x-prefixed hex; ``"0x"`` for an interface or abstract contract."""
    deployed_bytecode: str
    """Runtime code, 0x-prefixed hex; ``"0x"`` for an interface or abstract contract."""
    source_hash: str
    compiler_version: str
    devdoc: dict[str, Any] = field(default_factory=dict)
    """solc's developer NatSpec: ``@dev`` texts and ``@custom:`` tags, by member (``errors`` by signature)."""
    userdoc: dict[str, Any] = field(default_factory=dict)
    """solc's user NatSpec: the ``@notice`` texts, by member (``errors`` by signature)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.name,
            "sourceName": self.source_name,
            "abi": self.abi,
            "devdoc": self.devdoc,
            "userdoc": self.userdoc,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "sourceHash": self.source_hash,
            "compilerVersion": self.compiler_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            name=str(data["contractName"]),
            source_name=str(data["sourceName"]),
            abi=list(data["abi"]),
            bytecode=str(data["bytecode"]),
            deployed_bytecode=str(data["deployedBytecode"]),
            source_hash=str(data["sourceHash"]),
            compiler_version=str(data["compilerVersion"]),
            devdoc=dict(data.get("devdoc") or {}),
            userdoc=dict(data.get("userdoc") or {}),
        )


@dataclass(frozen=True)
class _Toolchain:
    solc_version: str
    openzeppelin_version: str
    safe_contracts_version: str


@dataclass(frozen=True)
class _Build:
    artifacts: dict[str, Artifact]
    cached: bool
    directory: Path


def compile_contracts(root: Path | None = None, *, force: bool = False) -> dict[str, Artifact]:
    """Compile every ``contracts/**/*.sol`` of the project and return its artifacts by contract name.

    ``root`` is the project root (the folder holding ``contracts/``, ``scripts/solc`` and
    ``node_modules/``); by default the repository this module belongs to. When the sources, settings and
    toolchain are unchanged since the last build, the artifacts are read back from ``build/contracts/``
    and solc is not started; ``force`` compiles anyway. Raises :class:`CompilationError` when solc reports
    an error or cannot run; solc's warnings are logged and do not fail the build.
    """
    return _build(root, force=force).artifacts


def _build(root: Path | None, *, force: bool) -> _Build:
    root = (root if root is not None else Path(__file__).resolve().parents[1]).resolve()
    sources = _read_sources(root)
    toolchain = _read_toolchain(root)
    settings = {"ir": compiler_settings(), "legacy": legacy_compiler_settings()}
    source_hash = _source_hash(sources, settings, toolchain)
    directory = root / BUILD_DIR / source_hash

    if not force:
        cached = _load_build(directory, source_hash)
        if cached is not None:
            logger.debug("contracts unchanged, using %s", directory)
            return _Build(cached, cached=True, directory=directory)

    ir, legacy = _partition(sources)
    output = _run_solc(root, ir, settings["ir"])
    if legacy:
        second = _run_solc(root, legacy, settings["legacy"])
        output = {**output, "contracts": {**output.get("contracts", {}), **second.get("contracts", {})}}
    artifacts = _artifacts_from_output(output, sources, source_hash, toolchain.solc_version)
    manifest = {
        "sourceHash": source_hash,
        "artifactFormat": ARTIFACT_FORMAT,
        "compilerVersion": toolchain.solc_version,
        "openzeppelinVersion": toolchain.openzeppelin_version,
        "safeContractsVersion": toolchain.safe_contracts_version,
        "settings": settings,
        "sources": sorted(sources),
        "contracts": {name: f"{name}.json" for name in sorted(artifacts)},
    }
    _write_build(directory, artifacts, manifest)
    return _Build(artifacts, cached=False, directory=directory)


def standard_json_input(root: Path | None = None, *, for_analysis: bool = False) -> dict[str, Any]:
    """The standard-JSON input of the project's contracts at ``root`` for solc: every ``contracts/**/*.sol`` by
    content but those under ``contracts/safe/`` (which define no contract and only import Safe's),
    :func:`compiler_settings` and the contract outputs the artifacts hold. ``for_analysis`` also selects each
    source's AST and the bytecodes' source maps, which analysers read (``scripts/slither.py``, through
    crytic-compile). The build itself compiles :data:`LEGACY_SOURCES` in a run of their own, with the legacy
    pipeline: ``SignedActs`` is analysed here from the same source through the IR pipeline."""
    root = (root if root is not None else Path(__file__).resolve().parents[1]).resolve()
    sources = {name: text for name, text in _read_sources(root).items() if not name.startswith("contracts/safe/")}
    return _standard_input(sources, compiler_settings(), for_analysis=for_analysis)


def _standard_input(
    sources: Mapping[str, str], settings: Mapping[str, Any], *, for_analysis: bool = False
) -> dict[str, Any]:
    selection: dict[str, dict[str, list[str]]]
    if for_analysis:
        # Every source, the imported ones too: an analyser resolves inheritance through their ASTs.
        outputs = [*OUTPUTS, "evm.bytecode.sourceMap", "evm.deployedBytecode.sourceMap"]
        selection = {"*": {"*": outputs, "": ["ast"]}}
    else:
        # The packaged contracts' sources are selected too; solc ignores those no source imports.
        selection = {name: {"*": list(OUTPUTS)} for name in [*sources, *PACKAGED_CONTRACTS]}
    return {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sources.items()},
        "settings": {**settings, "outputSelection": selection},
    }


def _read_sources(root: Path) -> dict[str, str]:
    """Source unit name (``contracts/X.sol``) → content, sorted by name; hidden files are skipped."""
    contracts = root / CONTRACTS_DIR
    sources: dict[str, str] = {}
    for path in sorted(contracts.glob("**/*.sol")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        sources[relative.as_posix()] = path.read_text(encoding="utf-8")
    if not sources:
        raise CompilationError([f"no Solidity sources found under {contracts}"])
    return sources


def _read_toolchain(root: Path) -> _Toolchain:
    return _Toolchain(
        solc_version=_package_version(root / SOLC_PACKAGE_JSON),
        openzeppelin_version=_package_version(root / OPENZEPPELIN_PACKAGE_JSON),
        safe_contracts_version=_package_version(root / SAFE_PACKAGE_JSON),
    )


def _package_version(package_json: Path) -> str:
    try:
        version = json.loads(package_json.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError) as exc:
        raise CompilationError([f"cannot read the version in {package_json} ({exc}); run `npm ci`"]) from exc
    return str(version)


def _source_hash(sources: Mapping[str, str], settings: Mapping[str, Any], toolchain: _Toolchain) -> str:
    document = {
        "artifactFormat": ARTIFACT_FORMAT,
        "sources": sorted(sources.items()),
        "settings": settings,
        "outputs": OUTPUTS,
        "solc": toolchain.solc_version,
        "openzeppelin": toolchain.openzeppelin_version,
        "safeContracts": toolchain.safe_contracts_version,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _load_build(directory: Path, source_hash: str) -> dict[str, Artifact] | None:
    """The artifacts of a complete earlier build, or None when there is none (or it is unreadable)."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest["sourceHash"] != source_hash:
            return None
        artifacts: dict[str, Artifact] = {}
        for name, file_name in manifest["contracts"].items():
            data = json.loads((directory / file_name).read_text(encoding="utf-8"))
            artifacts[name] = Artifact.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("ignoring unreadable build in %s: %s", directory, exc)
        return None
    return artifacts


def _run_solc(root: Path, sources: Mapping[str, str], settings: Mapping[str, Any]) -> dict[str, Any]:
    wrapper = root / SOLC_WRAPPER
    if not os.access(wrapper, os.X_OK):
        raise CompilationError([f"{wrapper} is missing or not executable"])
    standard_input = _standard_input(sources, settings)
    started = time.perf_counter()
    try:
        output: dict[str, Any] = solcx.compile_standard(
            standard_input, solc_binary=wrapper, base_path=root, allow_paths=[root]
        )
    except SolcError as exc:
        diagnostics: list[dict[str, Any]] = exc.error_dict if isinstance(exc.error_dict, list) else []
        _log_warnings(diagnostics)
        errors = [d["formattedMessage"] for d in diagnostics if d.get("severity") == "error"]
        raise CompilationError(errors or [str(exc)]) from exc
    except (OSError, ValueError) as exc:
        raise CompilationError([f"cannot run {wrapper}: {exc}"]) from exc
    logger.debug("solc compiled %d sources in %.2f s", len(sources), time.perf_counter() - started)
    _log_warnings(output.get("errors", []))
    return output


def _log_warnings(diagnostics: Sequence[Mapping[str, Any]]) -> None:
    for diagnostic in diagnostics:
        if diagnostic.get("severity") != "error":
            logger.warning("%s", str(diagnostic.get("formattedMessage", diagnostic)).rstrip())


def _artifacts_from_output(
    output: Mapping[str, Any], sources: Mapping[str, str], source_hash: str, compiler_version: str
) -> dict[str, Artifact]:
    artifacts: dict[str, Artifact] = {}
    for source_name, contracts in sorted(output.get("contracts", {}).items()):
        packaged = PACKAGED_CONTRACTS.get(source_name)
        if source_name not in sources and packaged is None:
            continue
        for name, compiled in sorted(contracts.items()):
            if packaged is not None and name not in packaged:
                continue
            if name in artifacts:
                raise CompilationError(
                    [f"contract {name} is defined twice: {artifacts[name].source_name} and {source_name}"]
                )
            if f"{name}.json" == MANIFEST_NAME:
                raise CompilationError([f"{source_name}: a contract may not be named {name}"])
            evm = compiled.get("evm", {})
            artifacts[name] = Artifact(
                name=name,
                source_name=source_name,
                abi=list(compiled.get("abi", [])),
                bytecode="0x" + evm.get("bytecode", {}).get("object", ""),
                deployed_bytecode="0x" + evm.get("deployedBytecode", {}).get("object", ""),
                source_hash=source_hash,
                compiler_version=compiler_version,
                devdoc=dict(compiled.get("devdoc", {})),
                userdoc=dict(compiled.get("userdoc", {})),
            )
    return artifacts


def _write_build(directory: Path, artifacts: Mapping[str, Artifact], manifest: Mapping[str, Any]) -> None:
    """Write the build to a temporary folder and move it into place, so a reader never sees half of it.

    Whatever is in ``directory`` already (a forced rebuild, or a build that could not be read) is replaced.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name[:16]}-", dir=directory.parent))
    try:
        for name, artifact in artifacts.items():
            _write_json(staging / f"{name}.json", artifact.to_json())
        _write_json(staging / MANIFEST_NAME, manifest)
        shutil.rmtree(directory, ignore_errors=True)
        try:
            staging.rename(directory)
        except OSError:
            if not (directory / MANIFEST_NAME).is_file():
                raise
            logger.debug("%s was written by another build meanwhile", directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.compiler", description="Compile contracts/**/*.sol into build/contracts/."
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=os.environ.get(PROJECT_ROOT_ENV) or None,
        help=f"project root (default: ${PROJECT_ROOT_ENV}, else the repository of this module)",
    )
    parser.add_argument("--force", action="store_true", help="compile even when the build is up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    started = time.perf_counter()
    try:
        build = _build(Path(args.root) if args.root is not None else None, force=args.force)
    except CompilationError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    how = "cached" if build.cached else "compiled"
    count = len(build.artifacts)
    print(f"{count} contract{'' if count == 1 else 's'} {how} in {elapsed:.2f} s: {build.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
