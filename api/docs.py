"""The interactive API documentation at ``/docs``: Swagger UI served by the service itself, from its own origin.

Banks run such services in closed networks, so the page loads nothing from another host. FastAPI's own
``/docs`` takes Swagger UI's script and stylesheet from a CDN and its icon from FastAPI's site (a blank page
offline); this one serves them from the npm package ``swagger-ui-dist``, which ``make setup`` installs into
``node_modules/`` (pinned exactly in ``package.json``, its integrity hash in ``package-lock.json``), as it does
anvil and solc-js. Why that package: it is Swagger UI's own distribution, published by the Swagger UI project
with every release, and the project already installs and pins its other JavaScript pieces from npm; the PyPI
packages that carry the same files are repackagings by third parties that follow Swagger UI's releases late,
or wrap FastAPI's application class.

- ``GET /docs``: the page. It has no inline script or style: Swagger UI is started by
  ``/docs/swagger-initializer.js``, which reads the OpenAPI document's URL from the page, so that a
  Content-Security-Policy of ``'self'`` allows everything the page needs.
- ``GET /docs/assets/{name}``: the few files of ``swagger-ui-dist`` the page uses (:data:`ASSETS`), and nothing
  else of the package (its ``index.html`` would load a demo document from the internet).
- ReDoc (FastAPI's ``/redoc``) is off: its bundle loads web fonts from another host; Swagger UI covers the same.

When ``node_modules/swagger-ui-dist`` is missing (``make setup`` was not run), ``/docs`` answers 503 and says so;
the API itself is unaffected.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.problems import Problem
from ledger.settings import PROJECT_ROOT

SWAGGER_UI_DIR: Final = PROJECT_ROOT / "node_modules" / "swagger-ui-dist"
"""Where ``npm ci`` puts the package ``swagger-ui-dist`` (the version in ``package.json``)."""

ASSETS_PATH: Final = "/docs/assets"

ASSETS: Final = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
"""The files of ``swagger-ui-dist`` that ``/docs`` uses, with their media types."""

INITIALIZER: Final = """\
// Starts Swagger UI on /docs (served by the ledger's service; no inline script on the page).
window.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    persistAuthorization: false,
    validatorUrl: null, // no badge fetched from the public validator
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""


def _page(title: str, openapi_url: str) -> str:
    asset = f"{ASSETS_PATH}/"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title>
<link rel="stylesheet" type="text/css" href="{asset}swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="{asset}favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{asset}favicon-16x16.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{asset}swagger-ui-bundle.js"></script>
<script src="/docs/swagger-initializer.js"></script>
</body>
</html>
"""


def swagger_ui_version(directory: Path = SWAGGER_UI_DIR) -> str | None:
    """The installed ``swagger-ui-dist`` version, or None when it is not installed."""
    try:
        version = json.loads((directory / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return str(version)


def _not_installed() -> Problem:
    return Problem(
        503,
        "docs-unavailable",
        "API documentation unavailable",
        f"Swagger UI is not installed in {SWAGGER_UI_DIR} (`make setup`, or `npm ci`, installs it); "
        "the API itself works, and its document is at /openapi.json",
    )


def install(app: FastAPI, *, directory: Path = SWAGGER_UI_DIR) -> None:
    """Serve ``/docs`` from ``directory`` (an installed ``swagger-ui-dist``); create ``app`` with ``docs_url`` and
    ``redoc_url`` None, so that FastAPI's CDN pages are not there."""
    openapi_url = app.openapi_url or "/openapi.json"
    page = _page(f"{app.title} - API documentation", openapi_url)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        if not (directory / "swagger-ui-bundle.js").is_file():
            raise _not_installed()
        return HTMLResponse(page)

    @app.get("/docs/swagger-initializer.js", include_in_schema=False)
    def swagger_initializer() -> Response:
        return Response(INITIALIZER, media_type="text/javascript; charset=utf-8")

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise Problem(404, "not-found", "Not found", f"no documentation asset {name}")
        path = directory / name
        if not path.is_file():
            raise _not_installed()
        return FileResponse(path, media_type=media_type)
