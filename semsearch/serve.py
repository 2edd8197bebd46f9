"""The HTTP service: `POST /search` and `GET /health` over one index, the model loaded once.

    curl -s localhost:8000/search -H 'content-type: application/json' \\
         -d '{"query": "夫妻党员抗疫", "k": 3, "mode": "hybrid", "where": "paragraph > 2"}'

Responses are JSON; bad input gets a 4xx with `{"error": "..."}` (400 for a query the search
refuses, 422 for a body that is not the right shape), never a stack trace.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from semsearch.errors import QueryError, SemsearchError
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Index


class SearchRequest(BaseModel):
    """The body of POST /search."""

    query: str = Field(description="What to search for.")
    k: int = Field(5, description="How many hits.")
    mode: Literal["dense", "bm25", "hybrid"] = DEFAULT_MODE
    fusion: Literal["weighted", "rrf"] = DEFAULT_FUSION
    where: str | None = Field(None, description='A filter, e.g. source == "a.txt".')


def create_app(index: Index) -> FastAPI:
    """A FastAPI app answering from `index` (whose encoder should already be loaded)."""
    app = FastAPI(title="semsearch", version="1", docs_url="/docs", redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=422)

    @app.exception_handler(QueryError)
    async def bad_query(_: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(SemsearchError)
    async def unavailable(_: Request, exc: SemsearchError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.get("/health")
    def health() -> dict[str, Any]:
        manifest = index.manifest
        return {"status": "ok", "passages": manifest.passage_count,
                "model": manifest.model.name, "dimension": manifest.model.dimension,
                "index_type": manifest.index_type, "generation": manifest.generation}

    @app.post("/search")
    def search(request: SearchRequest) -> dict[str, Any]:
        hits = index.search(request.query, request.k, request.mode, request.fusion,
                            request.where)
        return {"query": request.query, "hits": [asdict(h) for h in hits]}

    return app


def run(index: Index, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the index's model, then serve until interrupted."""
    import uvicorn

    index.search("warm up", k=1)  # load the encoder and the lexical dictionary now, not later
    uvicorn.run(create_app(index), host=host, port=port, log_level="warning")
