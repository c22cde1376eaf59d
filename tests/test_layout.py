"""The layout tells the architecture, and these checks keep it so (issue 13).

- The runtime (``ledger`` outside ``ledger/tooling``, and ``api``) imports nothing from the development
  tooling (``ledger.tooling``), the command line and demo client (``scf``), the benchmarks (``bench``) or the
  tests: what the service runs never depends on what only develops or measures it.
- ``ledger`` imports nothing from ``api``: the ledger is usable without the REST service.
- A route module of ``api/routes/`` imports no sibling route module but ``api.routes.common``, where what
  they share lives.

Imports are read from the source (``ast``), those inside functions and ``if TYPE_CHECKING:`` blocks too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import of ``path``."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    return _imports_of(path.read_text(), package)


def _imports_of(source: str, package: list[str]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import of ``source``, a module of ``package``, relative ones resolved;
    ``from a import b`` yields ``a.b`` (``b`` may be a module)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if alias.name != "*" else module


def _files(*folders: str, excluding: tuple[str, ...] = ()) -> list[Path]:
    found = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not any(relative.startswith(prefix) for prefix in excluding):
                found.append(path)
    return found


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in _imports(path)
        if any(_is_under(module, package) for package in forbidden)
    ]


RUNTIME = _files("ledger", "api", excluding=("ledger/tooling/",))


def test_the_runtime_is_found() -> None:
    names = {_module_name(p) for p in RUNTIME}
    assert {"ledger.client", "ledger.node", "api.app", "api.routes.common"} <= names
    assert not any(_is_under(n, "ledger.tooling") for n in names)


def test_the_runtime_imports_no_tooling_command_line_benchmark_or_test() -> None:
    assert _violations(RUNTIME, ("ledger.tooling", "scf", "bench", "tests")) == []


def test_the_ledger_imports_nothing_from_the_service() -> None:
    assert _violations(_files("ledger"), ("api",)) == []


def test_route_modules_share_only_through_common() -> None:
    routes = [p for p in _files("api/routes") if p.name not in ("__init__.py", "common.py")]
    siblings = tuple(f"api.routes.{p.stem}" for p in routes)
    assert routes, "no route modules found"
    assert _violations(routes, siblings) == []
    assert _violations(_files("api/routes/common.py"), siblings) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ledger.tooling.chain import Anvil\n", "ledger.tooling.chain.Anvil"),
        ("import bench.runner\n", "bench.runner"),
        ("def f():\n    from scf import cli\n", "scf.cli"),
        ("from . import receivables\n", "api.routes.receivables"),
        ("from .receivables import paged\n", "api.routes.receivables.paged"),
        ("from ..routes.receivables import paged\n", "api.routes.receivables.paged"),
    ],
)
def test_imports_are_read_however_they_are_written(source: str, expected: str) -> None:
    assert expected in [module for _, module in _imports_of(source, ["api", "routes"])]
