"""The search page of `semsearch serve`: `GET /` (one HTML page), its script and style sheet
under `/static/`, and `GET /fields` (what the filter box offers: the fields a filter may name and
the index's sources; and a few example queries from the index's own text for the empty page).
`/fields` is computed once per loaded index generation, off the search workers, so a slow
search never holds it up (before: it waited for a worker and timed out with the search, and the
page lost its field buttons). Plain HTML, CSS and JavaScript shipped in the package: no CDN, no
build step, nothing fetched from outside (the page's Content-Security-Policy allows only this
origin). The page talks to the documented JSON API (`POST /search`, `GET /health`) like any client.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from itertools import islice
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
EXAMPLES = 3  # example queries /fields offers
EXAMPLE_SCAN = 200  # passages read (in store order) to find them: cheap on any store
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CLAUSE = re.compile(r"[^。！？；，、：,.;:!?()（）「」“”\"'\n]+")
NUMBERS = frozenset({"paragraph", "start", "end"})
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


def example(text: str) -> str | None:
    """A query-sized piece of `text`: its first clause of 4+ characters, cut to its first
    space-separated part and 12 characters when it has CJK, else to 5 words; None if none."""
    for clause in _CLAUSE.findall(text):
        words = clause.split()
        if len("".join(words)) < 4:
            continue
        if _CJK.search(clause):
            return next((w for w in words if len(w) >= 4), words[0])[:12]
        return " ".join(words[:5])
    return None


def examples(index: Index, count: int = EXAMPLES) -> list[str]:
    """Up to `count` example queries from the index's own text: headings first (what its
    documents are about), then the opening words of passages, one per source, in store order
    (only the first EXAMPLE_SCAN passages are read)."""
    headings: list[str] = []
    openings: dict[str, str] = {}
    for _, passage in islice(index.store.iter_passages(), EXAMPLE_SCAN):
        heading = example(passage.heading or "")
        if heading and heading not in headings:
            headings.append(heading)
        opening = example(passage.text)
        if opening and passage.source not in openings:
            openings[passage.source] = opening
    found = list(dict.fromkeys(headings + list(openings.values())))
    return found[:count]


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
        "examples": examples(index),
    }


def install(app: FastAPI, served: Callable[[], Index]) -> None:
    """Add the page's routes to `app`; `served()` is the index the service answers from now
    (without waiting for a reload: /fields follows it as /health does)."""
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

    cache: list[tuple[Index, dict[str, Any]]] = []  # (index, its /fields answer): the last one

    @app.get("/fields")
    async def list_fields() -> dict[str, Any]:
        """The fields a filter (`where`) may name, the index's sources, example queries."""
        index = served()
        if not cache or cache[0][0] is not index:
            answer = await asyncio.to_thread(fields, index)  # not on a search worker
            cache[:] = [(index, answer)]
        return cache[0][1]

