"""ledger.compiler: artifacts, the build cache, compile errors, and the scripts/solc wrapper.

Each test works on a small project of its own in tmp_path: its own contracts/, with node_modules/ and
scripts/ linked to the repository's, so the contracts being written in the real contracts/ don't matter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import solcx

from ledger import compiler
from ledger.compiler import Artifact, compile_contracts

REPO = Path(__file__).resolve().parents[1]
SOLC = REPO / "scripts" / "solc"

TOKEN = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IGreeter} from "./interfaces/IGreeter.sol";

contract Token is ERC20, IGreeter {
    constructor() ERC20("Test", "TST") {}

    function greet() external pure returns (string memory) {
        return "hello";
    }
}
"""

GREETER_INTERFACE = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

interface IGreeter {
    /// @notice Nobody called `name` is known here.
    /// @custom:kind not-found
    error GreeterUnknown(string name);

    function greet() external view returns (string memory);
}
"""

BROKEN = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

contract Broken {
    function f() external pure returns (uint256) {
        return 1
    }
}
"""
BROKEN_LINE = 7  # the line after the missing semicolon, where solc reports it

WARNS = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

contract Warns {
    function f() external pure returns (uint256) {
        uint256 unused = 2;
        return 1;
    }
}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root with a token and an interface in contracts/, and the repository's toolchain."""
    (tmp_path / "node_modules").symlink_to(REPO / "node_modules", target_is_directory=True)
    (tmp_path / "scripts").symlink_to(REPO / "scripts", target_is_directory=True)
    write(tmp_path, "contracts/Token.sol", TOKEN)
    write(tmp_path, "contracts/interfaces/IGreeter.sol", GREETER_INTERFACE)
    return tmp_path


def write(root: Path, name: str, content: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def run_compiler_cli(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.compiler", "--root", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def function_names(artifact: Artifact) -> set[str]:
    return {entry["name"] for entry in artifact.abi if entry["type"] == "function"}


def test_compile_produces_abi_and_bytecode_for_each_contract(project: Path) -> None:
    artifacts = compile_contracts(project)

    assert set(artifacts) == {"Token", "IGreeter"}  # OpenZeppelin's ERC20 is not an artifact of ours
    token, greeter = artifacts["Token"], artifacts["IGreeter"]
    assert token.source_name == "contracts/Token.sol"
    assert greeter.source_name == "contracts/interfaces/IGreeter.sol"
    assert {"transfer", "balanceOf", "greet"} <= function_names(token)
    assert function_names(greeter) == {"greet"}
    assert token.bytecode.startswith("0x") and len(token.bytecode) > 2
    assert token.deployed_bytecode.startswith("0x") and len(token.deployed_bytecode) > 2
    int(token.bytecode, 16)  # plain hex: no unlinked library placeholders
    assert greeter.bytecode == "0x" and greeter.deployed_bytecode == "0x"
    assert token.compiler_version == "0.8.37"

    build = project / "build" / "contracts" / token.source_hash
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["contracts"] == {"IGreeter": "IGreeter.json", "Token": "Token.json"}
    assert manifest["sources"] == ["contracts/Token.sol", "contracts/interfaces/IGreeter.sol"]
    on_disk = json.loads((build / "Token.json").read_text())
    assert set(on_disk) == {
        "contractName",
        "sourceName",
        "abi",
        "devdoc",
        "userdoc",
        "bytecode",
        "deployedBytecode",
        "sourceHash",
        "compilerVersion",
    }
    assert Artifact.from_json(on_disk) == token


def test_artifacts_keep_each_errors_natspec_custom_tags_included(project: Path) -> None:
    """solc puts an error's @notice in userdoc and its @dev and @custom: tags in devdoc, by signature; the
    contract that inherits the error carries them too, and library errors keep their own @dev."""
    artifacts = compile_contracts(project)

    for name in ("IGreeter", "Token"):
        artifact = artifacts[name]
        assert artifact.devdoc["errors"]["GreeterUnknown(string)"] == [{"custom:kind": "not-found"}]
        assert artifact.userdoc["errors"]["GreeterUnknown(string)"] == [
            {"notice": "Nobody called `name` is known here."}
        ]
    (library,) = artifacts["Token"].devdoc["errors"]["ERC20InsufficientBalance(address,uint256,uint256)"]
    assert library["details"].startswith("Indicates an error related to the current `balance` of a `sender`")


def test_second_compile_with_unchanged_sources_does_not_invoke_solc(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = compile_contracts(project)

    def no_solc(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("solc was invoked for an unchanged tree")

    monkeypatch.setattr(solcx, "compile_standard", no_solc)
    monkeypatch.setattr(subprocess, "Popen", no_solc)  # not even `solc --version`
    second = compile_contracts(project)

    assert second == first


def test_changed_source_recompiles(project: Path) -> None:
    first = compile_contracts(project)
    write(project, "contracts/Token.sol", TOKEN.replace("contract Token", "contract Token2"))

    second = compile_contracts(project)

    assert set(second) == {"Token2", "IGreeter"}
    assert second["IGreeter"].source_hash != first["IGreeter"].source_hash
    assert (project / "build" / "contracts" / second["Token2"].source_hash / "manifest.json").is_file()
    assert second["Token2"].abi == first["Token"].abi


def test_compile_error_reports_file_and_line_and_exits_nonzero(project: Path) -> None:
    write(project, "contracts/Broken.sol", BROKEN)

    result = run_compiler_cli(project)

    assert result.returncode == 1, result.stderr
    assert f"contracts/Broken.sol:{BROKEN_LINE}:" in result.stderr
    assert result.stdout == ""
    assert not list((project / "build").glob("contracts/*/manifest.json"))  # nothing cached
    with pytest.raises(compiler.CompilationError) as raised:
        compile_contracts(project)
    assert any(f"contracts/Broken.sol:{BROKEN_LINE}:" in message for message in raised.value.messages)


def test_compile_warning_is_reported_and_does_not_fail(project: Path) -> None:
    write(project, "contracts/Warns.sol", WARNS)

    result = run_compiler_cli(project)

    assert result.returncode == 0, result.stderr
    assert "Warning: Unused local variable" in result.stderr
    assert "contracts/Warns.sol:6:" in result.stderr
    assert "3 contracts compiled" in result.stdout


def test_solc_wrapper_reports_version() -> None:
    result = subprocess.run([SOLC, "--version"], capture_output=True, text=True, timeout=60, check=True)

    assert "Version: 0.8.37" in result.stdout


def test_solc_wrapper_stdout_is_only_json() -> None:
    standard_input = {
        "language": "Solidity",
        "sources": {"contracts/Warns.sol": {"content": WARNS}},
        "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
    }
    result = subprocess.run(
        [SOLC, "--standard-json"],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    output = json.loads(result.stdout)
    assert output["contracts"]["contracts/Warns.sol"]["Warns"]["abi"][0]["name"] == "f"
