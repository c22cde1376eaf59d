"""The project's documentation stands alone in a clone: every relative link of the README and of docs/ names a file
of the repository, and none leads outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.settings import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(page.read_text()) if not re.match(r"[a-z]+:|#", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_relative_link_names_a_file_of_the_repository(page: Path) -> None:
    for target in _relative_links(page):
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(PROJECT_ROOT), f"{page.name} links outside the repository: {target}"
        assert resolved.exists(), f"{page.name} links to a missing file: {target}"


def test_the_design_is_in_the_repository_and_linked_from_the_readme() -> None:
    assert (PROJECT_ROOT / "docs" / "design.md").is_file()
    assert "docs/design.md" in _relative_links(PROJECT_ROOT / "README.md")
