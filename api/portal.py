"""The web portal at ``/``: a client of this same REST API, served from this origin only.

The portal is static: an HTML page, ES modules and a stylesheet in ``api/portal/`` (written by hand, no build
step) and one vendored library, ethers (``node_modules/ethers``, pinned exactly in ``package.json`` and installed
by ``make setup``), which the page uses to open an encrypted keystore in the browser and sign challenges and
EIP-712 acts. Everything the page shows it reads from the API with the caller's own credentials; nothing here
reads the ledger, so the portal can do nothing that a ``curl`` with the same API key could not.

- ``GET /``: the page (the same page for every role; the navigation follows the caller's roles).
- ``GET /portal/{name}``: the page's own scripts and stylesheet (:data:`FILES`), nothing else of the folder.
- ``GET /portal/vendor/ethers.js``: ethers' ES module build, from ``node_modules``; 503 when ``make setup`` was
  not run (the portal then signs nothing, and says so; API-key sign-in still works).

The security headers (:mod:`api.edge`) give these paths :data:`api.edge.PORTAL_CSP`: scripts, styles and API
calls to this origin only, no inline script and no ``eval``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse

from api.problems import Problem
from ledger.settings import PROJECT_ROOT

PORTAL_DIR: Final = Path(__file__).with_name("portal")
"""The portal's own files."""

ETHERS: Final = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"
"""ethers' ES module build, as ``npm ci`` installs it."""

PORTAL_PREFIX: Final = "/portal"

FILES: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "acts.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "einvoice.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "identifiers.js": "text/javascript; charset=utf-8",
    "money.js": "text/javascript; charset=utf-8",
    "ofd.js": "text/javascript; charset=utf-8",
    "regulator.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "wallet.js": "text/javascript; charset=utf-8",
    "warehouse.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}
"""The files of :data:`PORTAL_DIR` that are served, with their media types."""

CACHE: Final = "no-cache"
"""Revalidate every time: a new version of the service serves its own portal at once."""


def install(app: FastAPI, *, directory: Path = PORTAL_DIR, ethers: Path = ETHERS) -> None:
    """Serve the portal at ``/`` and its files under ``/portal/``."""

    @app.get("/", include_in_schema=False)
    def portal_page() -> FileResponse:
        return FileResponse(directory / "index.html", media_type="text/html; charset=utf-8", headers=_cache())

    @app.get(PORTAL_PREFIX + "/vendor/ethers.js", include_in_schema=False)
    def portal_ethers() -> FileResponse:
        if not ethers.is_file():
            raise Problem(
                503,
                "portal-signing-unavailable",
                "Signing library unavailable",
                f"ethers is not installed in {ethers.parent} (`make setup`, or `npm ci`, installs it)",
            )
        return FileResponse(ethers, media_type="text/javascript; charset=utf-8", headers=_cache())

    @app.get(PORTAL_PREFIX + "/{name}", include_in_schema=False)
    def portal_file(name: str) -> FileResponse:
        media_type = FILES.get(name)
        if media_type is None:
            raise Problem(404, "not-found", "Not found", f"no portal file {name}")
        return FileResponse(directory / name, media_type=media_type, headers=_cache())


def _cache() -> dict[str, str]:
    return {"Cache-Control": CACHE}
