"""The search page of `semsearch serve`: `GET /` (one HTML page), its script and style sheet
under `/static/`, and `GET /fields` (what the filter box offers: the fields a filter may name and
the index's sources). Plain HTML, CSS and JavaScript shipped in the package: no CDN, no build
step, nothing fetched from outside (the page's Content-Security-Policy allows only this origin).
The page talks to the documented JSON API (`POST /search`, `GET /health`) like any client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from semsearch.filters import FIELDS
from semsearch.index import Index

STATIC = Path(__file__).parent / "static"
FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
         "icon.svg": "image/svg+xml"}
MAX_SOURCES = 1000  # sources listed by /fields (an index may hold many more)
NUMBERS = frozenset({"paragraph", "start", "end"})
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}

Run = Callable[[Callable[[Index], Any]], Awaitable[Any]]


def fields(index: Index) -> dict[str, Any]:
    """What a filter may name here (passage fields, then record metadata keys such as a PDF's
    `page`) and the first MAX_SOURCES sources by name; metadata keys are unknown (null) on
    a store that cannot list them without reading every row (Milvus)."""
    names = index.store.fields()
    meta = None if names is None else sorted(set(names) - set(FIELDS))
    sources = sorted(index.manifest.sources)
    return {
        "fields": [{"name": name, "type": "number" if name in NUMBERS else "text"}
                   for name in FIELDS],
        "metadata": meta,
        "sources": sources[:MAX_SOURCES],
        "source_count": len(sources),
    }


def install(app: FastAPI, run: Run) -> None:
    """Add the page's routes to `app`; `run(job)` runs `job(index)` on a search worker under
    the service's time limit (as /search does) and returns its result."""
    page = (STATIC / "index.html").read_bytes()
    assets = {name: (STATIC / name).read_bytes() for name in FILES}

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no file {name!r} here")
        return Response(assets[name], media_type=FILES[name], headers=HEADERS)

    @app.get("/fields")
    async def list_fields() -> dict[str, Any]:
        """The fields a filter (`where`) may name and the index's sources."""
        return dict(await run(fields))

