"""``/docs`` works in a closed network: the page and everything it loads come from the service's own origin.

No chain: the documentation routes need no ledger, so the app is driven without its lifespan.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api import docs
from api.app import create_app
from ledger.settings import PROJECT_ROOT

if docs.swagger_ui_version() is None:  # pragma: no cover - depends on `npm ci`
    pytest.skip("swagger-ui-dist is not installed (npm ci)", allow_module_level=True)


class _References(HTMLParser):
    """Every URL an HTML page makes the browser load: ``src`` and ``href`` of its elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value is not None]
        self._in_script_without_src = tag == "script" and "src" not in values
        if tag == "style" or "style" in values:
            self.inline += 1  # an inline style needs 'unsafe-inline' under a CSP just as a script does

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


@pytest.fixture(scope="module")
def http() -> TestClient:
    return TestClient(create_app())  # no `with`: the lifespan (chain, pipeline, indexer) does not run


def _references(http: TestClient) -> tuple[str, _References]:
    page = http.get("/docs")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    parser = _References()
    parser.feed(page.text)
    return page.text, parser


def test_the_docs_page_references_no_other_host_and_no_inline_script(http: TestClient) -> None:
    text, page = _references(http)
    assert page.urls, "the page loads nothing"
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{url} is not on the service's origin"
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), text
    assert page.inline == 0, "an inline script or style would need 'unsafe-inline' under a CSP"
    initializer = http.get("/docs/swagger-initializer.js")
    assert not re.search(r"https?://", initializer.text), initializer.text
    assert 'data-openapi-url="/openapi.json"' in text


def test_every_asset_the_docs_page_references_answers_200_with_its_media_type(http: TestClient) -> None:
    _, page = _references(http)
    expected = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
    for url in page.urls:
        response = http.get(url)
        assert response.status_code == 200, (url, response.text[:200])
        assert response.headers["content-type"].startswith(expected[Path(url).suffix]), url
        assert response.content, url
    assert any(url.endswith("swagger-ui-bundle.js") for url in page.urls)
    assert any(url.endswith("swagger-ui.css") for url in page.urls)
    assert http.get("/openapi.json").status_code == 200


def test_only_the_swagger_ui_files_the_page_uses_are_served_and_redoc_is_off(http: TestClient) -> None:
    # The package's own index.html loads a demo document from the internet: not served.
    for name in ("index.html", "swagger-initializer.js", "package.json", "..%2Fpackage.json"):
        response = http.get(f"{docs.ASSETS_PATH}/{name}")
        assert response.status_code == 404, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert http.get("/redoc").status_code == 404
    assert http.get("/docs/oauth2-redirect").status_code == 404


def test_without_swagger_ui_installed_the_docs_page_says_so_and_the_api_document_still_answers(tmp_path: Path) -> None:
    app = create_app()
    for route in list(app.router.routes):  # the routes of api.docs, installed again on an empty folder
        if getattr(route, "path", "").startswith("/docs"):
            app.router.routes.remove(route)
    docs.install(app, directory=tmp_path)
    http = TestClient(app)
    missing = http.get("/docs")
    assert missing.status_code == 503
    assert missing.json()["type"] == "urn:scf:problem:docs-unavailable"
    assert "make setup" in missing.json()["detail"]
    assert http.get(f"{docs.ASSETS_PATH}/swagger-ui.css").status_code == 503
    assert http.get("/openapi.json").status_code == 200


def test_swagger_ui_is_pinned_exactly_and_installed_at_that_version() -> None:
    package = json.loads((PROJECT_ROOT / "package.json").read_text())
    pinned = package["dependencies"]["swagger-ui-dist"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"swagger-ui-dist {pinned!r} is not an exact version"
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/swagger-ui-dist"]["version"] == pinned
    assert docs.swagger_ui_version() == pinned
