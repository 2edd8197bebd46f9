"""Retrieval quality on labelled queries: Recall@1/5/10, MRR@10 and nDCG@10 per mode.

Two kinds of labelled sets:

- **seeds** (`semsearch/data/qrels/seeds.jsonl`): labels name the source file and a key phrase the
  answering passage must contain (not a passage id), so they survive changes to cleaning and
  splitting. Grade 2 marks a passage that answers the query, grade 1 one that is related: Recall
  and MRR count the answers (ranx's `-l2` level), nDCG uses both grades as gains.
- **record sets**: a corpus of records with ids, queries, and the ids of the records that answer
  each query — the public sets shipped in `benchmarks/data/` (SQuAD layout: each paragraph is a
  record, each question a query answered by its paragraph) or a user's own directory in BEIR
  layout (corpus.jsonl, queries.jsonl, qrels TSV). Each record becomes one document (its id is
  the source), relevance is per record: a record split into several passages counts at its best
  rank. Beside semsearch's own modes, two naive baselines run on the same records: dense
  (sentence-transformers `util.semantic_search`, same model and prompts, raw record text) and
  BM25 (bm25s over jieba words of the raw text).

Metrics come from ranx.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import MissingDependencyError, QueryError
from semsearch.index import BuildProgress, Index
from semsearch.passages import Passage
from semsearch.search import MODES, Mode

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
# ranx names: Recall and MRR over the answers (grade ≥ 2), nDCG over graded relevance
ANSWER_GRADE = 2
RANX_METRICS = {"recall@1": "recall@1-l2", "recall@5": "recall@5-l2",
                "recall@10": "recall@10-l2", "mrr@10": "mrr@10-l2", "ndcg@10": "ndcg@10"}
DEPTH = 10
# The labelled seeds queries ship inside the package, beside the seeds index they label.
DEFAULT_QRELS = Path(__file__).resolve().parent / "data" / "qrels" / "seeds.jsonl"
# Results go to benchmarks/results under the current directory (the checkout's, run from its
# root). The public sets ship in the source checkout; an installed semsearch needs their path.
RESULTS_DIR = Path("benchmarks") / "results"
DATA_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "data"
# The public sets shipped in benchmarks/data (credits and licenses: benchmarks/data/SOURCES.md)
DATASETS = {"cmrc-trial": DATA_DIR / "cmrc2018_trial.json",
            "drcd-test": DATA_DIR / "DRCD_test.json"}
# XQuAD's first half in Chinese and English, parallel paragraph for paragraph: questions of one
# language over paragraphs of the other (or both, "mixed"); the second half is held out
XQUAD = {lang: DATA_DIR / f"xquad_dev_half.{lang}.json" for lang in ("zh", "en")}
XQUAD_SETS = {"xquad-zh": ("zh", "zh"), "xquad-en2zh": ("en", "zh"),
              "xquad-zh2en": ("zh", "en"), "xquad-mixed": ("zh+en", "zh+en")}
SEEDS = "seeds"
# Record sets: passages searched per query, so that ten distinct records remain once the passages
# of each record are merged (records here split into 1–3 passages)
RECORD_SEARCH_DEPTH = 50
NAIVE_MODES = ("naive-dense", "naive-bm25")


class LabelWarning(UserWarning):
    """A label's phrase matches no passage: the label or the cleaning needs a look."""


@dataclass(frozen=True)
class LabelledQuery:
    """A query and the (source, phrase, grade) of each passage that answers it."""

    id: str
    query: str
    kind: str
    relevant: tuple[tuple[str, str, int], ...]


def load_qrels(path: Path) -> list[LabelledQuery]:
    """Read a JSONL query set: {"id", "query", "kind", "relevant": [{source, phrase, grade}]}."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        queries = [
            LabelledQuery(r["id"], r["query"], r.get("kind", ""),
                          tuple((x["source"], x["phrase"], int(x.get("grade", 1)))
                                for x in r["relevant"]))
            for r in records
        ]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise QueryError(f"cannot read the query set {path}: {exc}") from exc
    if not queries:
        raise QueryError(f"the query set {path} is empty")
    return queries


def judge(index: Index, queries: Sequence[LabelledQuery]) -> dict[str, dict[str, int]]:
    """ranx qrels: for each query, the id of the passage holding each labelled phrase."""
    return _judged(index.store.iter_passages(), queries)


def seed_check() -> tuple[list[str], list[str], list[set[int]]]:
    """The shipped seeds index's passages as they are embedded, its labelled queries, and the
    passages (numbers into the first list) answering each: what `semsearch provision` measures
    this CPU's encoder paths on (models/sessions.py)."""
    from semsearch.stores import DEFAULT_INDEX, open_store

    store = open_store(DEFAULT_INDEX)
    try:
        passages = list(store.iter_passages())
    finally:
        store.close()
    queries = load_qrels(DEFAULT_QRELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        qrels = _judged(passages, queries)
    number = {str(pid): n for n, (pid, _) in enumerate(passages)}
    return ([p.embedded_text for _, p in passages], [q.query for q in queries],
            [{number[pid] for pid, grade in qrels[q.id].items() if grade >= ANSWER_GRADE}
             for q in queries])


def _judged(passages: Iterable[tuple[int, Passage]],
            queries: Sequence[LabelledQuery]) -> dict[str, dict[str, int]]:
    squeezed = [(pid, "".join(p.text.split()), p.source) for pid, p in passages]
    qrels: dict[str, dict[str, int]] = {}
    for q in queries:
        judged: dict[str, int] = {}
        for source, phrase, grade in q.relevant:
            key = "".join(phrase.split())
            found = next((pid for pid, text, src in squeezed if src == source and key in text),
                         None)
            if found is None:
                warnings.warn(f"{q.id}: phrase {phrase!r} of {source} is in no passage",
                              LabelWarning, stacklevel=2)
                continue
            judged[str(found)] = max(grade, judged.get(str(found), 0))
        qrels[q.id] = judged
    return qrels


def run(index: Index, queries: Sequence[LabelledQuery], mode: Mode,
        depth: int = DEPTH) -> dict[str, dict[str, float]]:
    """A ranx run: each query's top `depth` passage ids, scored by reciprocal rank."""
    results = index.search_batch([q.query for q in queries], depth, mode)
    return {q.id: {str(h.id): 1.0 / h.rank for h in hits}
            for q, hits in zip(queries, results, strict=True)}


def _ranx() -> Any:
    """ranx's Qrels, Run and evaluate (the `bench` extra)."""
    try:
        from ranx import Qrels, Run, evaluate
    except ImportError as exc:
        raise MissingDependencyError("semsearch bench", "bench") from exc
    return Qrels, Run, evaluate


def evaluate(index: Index, queries: Sequence[LabelledQuery],
             modes: Sequence[Mode] = MODES) -> dict[str, Any]:
    """Metrics per mode, overall and per query kind (Recall@5 and MRR@10)."""
    Qrels, Run, ranx_evaluate = _ranx()

    qrels_dict = judge(index, queries)
    answerable = [q for q in queries if qrels_dict[q.id]]
    qrels = Qrels({q.id: qrels_dict[q.id] for q in answerable})
    overall: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    by_kind: dict[str, dict[str, dict[str, float]]] = {}
    for mode in modes:
        runs = run(index, answerable, mode)
        counts[mode] = hit_counts({q.id: qrels_dict[q.id] for q in answerable}, runs)
        scores = ranx_evaluate(qrels, Run(runs), list(RANX_METRICS.values()))
        overall[mode] = {m: round(float(scores[RANX_METRICS[m]]), 4) for m in METRICS}
        for kind in sorted({q.kind for q in answerable}):
            ids = [q.id for q in answerable if q.kind == kind]
            sub = ranx_evaluate(Qrels({i: qrels_dict[i] for i in ids}),
                                Run({i: runs[i] for i in ids}),
                                [RANX_METRICS["recall@5"], RANX_METRICS["mrr@10"]])
            by_kind.setdefault(kind, {})[mode] = {
                "recall@5": round(float(sub[RANX_METRICS["recall@5"]]), 4),
                "mrr@10": round(float(sub[RANX_METRICS["mrr@10"]]), 4),
            }
    return {"queries": len(answerable), "unanswerable": len(queries) - len(answerable),
            "metrics": overall, "counts": counts, "by_kind": by_kind}


def markdown(results: dict[str, Any]) -> str:
    """A short markdown report: one table per mode, one of Recall@5 by query kind."""
    head = "| mode | " + " | ".join(METRICS) + " |"
    lines = [f"Evaluation on {results['queries']} labelled queries over `seeds/`.", "", head,
             "|" + "---|" * (len(METRICS) + 1)]
    for mode, scores in results["metrics"].items():
        lines.append(f"| {mode} | " + " | ".join(f"{scores[m]:.3f}" for m in METRICS) + " |")
    modes = list(results["metrics"])
    lines += ["", "Recall@5 by query kind:", "", "| kind | " + " | ".join(modes) + " |",
              "|" + "---|" * (len(modes) + 1)]
    for kind, per_mode in results["by_kind"].items():
        lines.append(f"| {kind} | "
                     + " | ".join(f"{per_mode[m]['recall@5']:.3f}" for m in modes) + " |")
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out_dir: Path = RESULTS_DIR,
                  name: str = "quality") -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    md_path.write_text(records_markdown(results) if "records" in results else markdown(results),
                       encoding="utf-8")
    return json_path, md_path


# --- record sets: public benchmarks and the user's own data ---------------------------------


@dataclass(frozen=True)
class RecordSet:
    """A labelled record set: record texts and query texts by id, and for each query the ids of
    the records that answer it (with their grades, ≥ 1)."""

    name: str
    records: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    # records that answer as one: a record id → the id its rank counts under in runs and qrels
    # (xquad-mixed: a paragraph and its translation); records not named count as themselves
    units: dict[str, str] = field(default_factory=dict)


def load_squad(path: Path, name: str | None = None) -> RecordSet:
    """A SQuAD-layout file (data → paragraphs → context + qas) as a record set: each paragraph
    is a record (its `id`, else `<article>-<n>`), each question a query answered by it."""
    records: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        for a, article in enumerate(data["data"]):
            for p, paragraph in enumerate(article["paragraphs"]):
                pid = str(paragraph.get("id") or f"{article.get('id', a)}-{p}")
                if pid in records:
                    raise ValueError(f"paragraph id {pid!r} occurs twice")
                records[pid] = str(paragraph["context"])
                for n, qa in enumerate(paragraph["qas"]):
                    question = " ".join(str(qa["question"]).split())
                    if not question:
                        continue
                    qid = str(qa.get("id") or f"{pid}-q{n}")
                    if qid in queries and queries[qid] != question:
                        raise ValueError(f"question id {qid!r} names two questions")
                    queries[qid] = question
                    qrels.setdefault(qid, {})[pid] = 1
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError,
            ValueError) as exc:
        raise QueryError(f"cannot read {path} as a SQuAD-layout set: {exc}") from exc
    return _checked(RecordSet(name or path.stem, records, queries, qrels), path)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{path.name}: every line must be a JSON object")
    return rows


def load_beir(directory: Path, name: str | None = None) -> RecordSet:
    """A BEIR-layout directory: `corpus.jsonl` ({"_id", "title", "text"}; a title is put on the
    record's first line), `queries.jsonl` ({"_id", "text"}) and `qrels/test.tsv` or `qrels.tsv`
    (tab-separated query-id, corpus-id, score, after a header line; score > 0 is relevant).
    Only queries with a relevant record are evaluated."""
    qrels_path = next((p for p in (directory / "qrels" / "test.tsv", directory / "qrels.tsv")
                       if p.is_file()), None)
    try:
        if qrels_path is None:
            raise ValueError("no qrels/test.tsv or qrels.tsv")
        records: dict[str, str] = {}
        for row in _jsonl(directory / "corpus.jsonl"):
            title, text = str(row.get("title") or "").strip(), str(row["text"])
            records[str(row["_id"])] = f"{title}\n{text}" if title else text
        texts = {str(row["_id"]): " ".join(str(row["text"]).split())
                 for row in _jsonl(directory / "queries.jsonl")}
        qrels: dict[str, dict[str, int]] = {}
        with qrels_path.open(encoding="utf-8", newline="") as handle:
            table = list(csv.reader(handle, delimiter="\t"))
        first = 1
        if table and not table[0][-1].strip().lstrip("-").isdigit():
            table, first = table[1:], 2  # the header: query-id, corpus-id, score
        for line, cells in enumerate(table, first):
            if not cells or not "".join(cells).strip():
                continue
            if len(cells) < 3:
                raise ValueError(f"{qrels_path.name} line {line}: want query-id, corpus-id, "
                                 f"score, got {cells!r}")
            qid, rid, score = cells[0].strip(), cells[1].strip(), int(cells[2])
            if score <= 0:
                continue
            if qid not in texts:
                raise ValueError(f"{qrels_path.name} line {line}: query {qid!r} is not in "
                                 "queries.jsonl")
            if rid not in records:
                raise ValueError(f"{qrels_path.name} line {line}: record {rid!r} is not in "
                                 "corpus.jsonl")
            qrels.setdefault(qid, {})[rid] = score
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise QueryError(f"cannot read {directory} as a BEIR-layout set: {exc}") from exc
    queries = {qid: texts[qid] for qid in qrels if texts[qid]}
    qrels = {qid: qrels[qid] for qid in queries}
    return _checked(RecordSet(name or directory.name, records, queries, qrels), directory)


def _checked(dataset: RecordSet, where: Path) -> RecordSet:
    if not dataset.records:
        raise QueryError(f"{where} holds no records")
    if not dataset.queries:
        raise QueryError(f"{where} holds no labelled queries")
    return dataset


def load_xquad(name: str) -> RecordSet:
    """An XQuAD set by name: `xquad-zh` (Chinese questions, Chinese paragraphs), `xquad-en2zh`
    and `xquad-zh2en` (questions in one language, the parallel paragraphs in the other), or
    `xquad-mixed`: the paragraphs of both languages in one index and the questions of both, each
    answered by its paragraph in either language — a question counts at the rank of the first of
    the two (a paragraph and its translation are one answer)."""
    asked, answered = XQUAD_SETS[name]
    missing = [p for p in XQUAD.values() if not p.is_file()]
    if missing:
        raise QueryError(f"the public set {name} ships in the source checkout (benchmarks/data); "
                         f"{missing[0]} is missing")
    sets = {lang: load_squad(path, f"xquad.{lang}") for lang, path in XQUAD.items()}
    if asked != "zh+en":
        questions, paragraphs = sets[asked], sets[answered]
        if any(rid not in paragraphs.records for labels in questions.qrels.values()
               for rid in labels):
            raise QueryError(f"{XQUAD[asked]} and {XQUAD[answered]} are not parallel")
        return RecordSet(name, paragraphs.records, questions.queries, questions.qrels)
    records, queries, qrels, units = {}, {}, {}, {}
    for lang, data in sets.items():
        for rid, text in data.records.items():
            records[f"{lang}:{rid}"] = text
            units[f"{lang}:{rid}"] = rid
        for qid, question in data.queries.items():
            queries[f"{lang}:{qid}"] = question
            qrels[f"{lang}:{qid}"] = data.qrels[qid]
    return RecordSet(name, records, queries, qrels, units)


def load_dataset(spec: str | Path) -> RecordSet:
    """A shipped set by name (cmrc-trial, drcd-test, xquad-*), a BEIR-layout directory, or a
    SQuAD-layout .json file."""
    if str(spec) in XQUAD_SETS:
        return load_xquad(str(spec))
    if str(spec) in DATASETS:
        if not DATASETS[str(spec)].is_file():
            raise QueryError(f"the public set {spec} ships in the source checkout "
                             f"(benchmarks/data); give the path of its .json file instead")
        return load_squad(DATASETS[str(spec)], str(spec))
    path = Path(spec)
    if path.is_dir():
        return load_beir(path)
    if path.is_file() and path.suffix == ".json":
        return load_squad(path)
    raise QueryError(f"unknown dataset {str(spec)!r}: give {SEEDS}, "
                     f"{', '.join([*DATASETS, *XQUAD_SETS])}, a BEIR-layout directory "
                     "(corpus.jsonl, queries.jsonl, qrels/test.tsv) or a SQuAD-layout .json file")


def documents(dataset: RecordSet) -> list[Any]:
    """One document per record, named by the record id; records are not web pages, so they are
    kept as written (clean="none")."""
    from semsearch.corpus import Document

    return [Document(source=rid, text=text, encoding="utf-8",
                     sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), metadata={},
                     clean="none")
            for rid, text in dataset.records.items()]


def build_index(dataset: RecordSet, model: str | None = None,
                progress: BuildProgress | None = None, granularity: str | None = None) -> Index:
    """An in-memory index of the set's records (flat: exact search, nothing to train)."""
    return Index.from_documents(documents(dataset), model, progress=progress, index_type="flat",
                                granularity=granularity)


RecordRun = dict[str, dict[str, float]]


def _unit_size(dataset: RecordSet) -> int:
    """The most records one answer unit holds: how much deeper than `depth` a run must look
    to find `depth` distinct units."""
    return max(Counter(dataset.units.values()).values(), default=1)
_CHUNK = 64  # queries per search call, so that the progress bar moves


def _start(progress: BuildProgress | None, total: int, what: str) -> Callable[[int], None]:
    if progress is None:
        return lambda n: None
    progress.start(total, what)
    return progress.advance


def _ranked(records: Sequence[str], depth: int,
            units: Mapping[str, str] | None = None) -> dict[str, float]:
    """A ranx run row: the first `depth` distinct records (or answer units, see
    `RecordSet.units`), scored by reciprocal rank."""
    seen: list[str] = []
    for rid in records:
        if units:
            rid = units.get(rid, rid)
        if rid not in seen:
            seen.append(rid)
            if len(seen) == depth:
                break
    return {rid: 1.0 / rank for rank, rid in enumerate(seen, 1)}


def record_run(index: Index, queries: dict[str, str], mode: Mode, depth: int = DEPTH,
               progress: BuildProgress | None = None,
               units: Mapping[str, str] | None = None) -> RecordRun:
    """Each query's first `depth` distinct records (or `units`) in `mode`, a record at its best
    passage."""
    advance = _start(progress, len(queries), f"searching ({mode})")
    ids = list(queries)
    run: RecordRun = {}
    for begin in range(0, len(ids), _CHUNK):
        batch = ids[begin : begin + _CHUNK]
        results = index.search_batch([queries[q] for q in batch], RECORD_SEARCH_DEPTH, mode)
        for qid, hits in zip(batch, results, strict=True):
            run[qid] = _ranked([h.source for h in hits], depth, units)
        advance(len(batch))
    return run


def naive_dense_run(dataset: RecordSet, model: str | None = None, depth: int = DEPTH,
                    progress: BuildProgress | None = None) -> RecordRun:
    """The naive dense baseline: sentence-transformers `util.semantic_search` over the raw record
    texts, with the same model (e5 prompts "query: " / "passage: ")."""
    from semsearch.models.encoder import _load_torch
    from semsearch.models.resolve import resolve

    try:
        from sentence_transformers import util
    except ImportError as exc:
        raise QueryError("the naive dense baseline needs sentence-transformers") from exc
    encoder = _load_torch(resolve(model))
    st = encoder.model
    prompts = encoder.info.prompts
    rids, qids = list(dataset.records), list(dataset.queries)

    def encode(texts: list[str], prompt: str, what: str) -> Any:
        advance = _start(progress, len(texts), what)
        parts = []
        for begin in range(0, len(texts), _CHUNK * 2):
            chunk = texts[begin : begin + _CHUNK * 2]
            parts.append(st.encode(chunk, prompt=prompt, convert_to_tensor=True,
                                   normalize_embeddings=True, batch_size=32,
                                   show_progress_bar=False))
            advance(len(chunk))
        import torch

        return torch.cat(parts)

    corpus = encode([dataset.records[r] for r in rids], prompts.get("passage", ""),
                    "naive dense: encoding records")
    queries = encode([dataset.queries[q] for q in qids], prompts.get("query", ""),
                     "naive dense: encoding queries")
    found = util.semantic_search(queries, corpus, top_k=depth * _unit_size(dataset))
    return {qid: _ranked([rids[int(h["corpus_id"])] for h in hits], depth, dataset.units)
            for qid, hits in zip(qids, found, strict=True)}


def naive_bm25_run(dataset: RecordSet, depth: int = DEPTH,
                   progress: BuildProgress | None = None) -> RecordRun:
    """The naive lexical baseline: bm25s (defaults) over jieba search-mode words of the raw
    record text — no folding, no stopwords."""
    import bm25s
    import numpy as np

    from semsearch.lexical import _full_jieba

    jieba = _full_jieba()

    def words(text: str) -> list[str]:
        return [w for w in jieba.lcut_for_search(text) if w.strip()]

    rids, qids = list(dataset.records), list(dataset.queries)
    advance = _start(progress, len(rids) + len(qids), "naive bm25")
    tokens = []
    for rid in rids:
        tokens.append(words(dataset.records[rid]))
        advance(1)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    run: RecordRun = {}
    for qid in qids:
        known = [w for w in words(dataset.queries[qid]) if w in bm25.vocab_dict]
        if known:
            scores = bm25.get_scores(known)
            top = np.argsort(-scores, kind="stable")[: depth * _unit_size(dataset)]
            run[qid] = _ranked([rids[i] for i in top if scores[i] > 0], depth, dataset.units)
        else:
            run[qid] = {}
        advance(1)
    return run


COUNTS = (1, 5, 10)  # hits@k: questions with a relevant item within the first k


def hit_counts(qrels: dict[str, dict[str, int]], run: RecordRun) -> dict[str, int]:
    """How many questions have a relevant item at rank ≤ k, for k in COUNTS (a run row scores
    its items by reciprocal rank). Counts, not rounded ratios, are what tests compare: one
    question more or less is one, on any machine."""
    counts = dict.fromkeys(COUNTS, 0)
    for qid, relevant in qrels.items():
        ranks = [round(1 / score) for item, score in (run.get(qid) or {}).items()
                 if item in relevant and score > 0]
        for k in COUNTS:
            counts[k] += bool(ranks) and min(ranks) <= k
    return {f"hits@{k}": n for k, n in counts.items()}


def score_runs(dataset: RecordSet, runs: dict[str, RecordRun]) -> dict[str, dict[str, float]]:
    """Recall@1/5/10, MRR@10 and nDCG@10 of each run against the set's labels (ranx)."""
    Qrels, Run, ranx_evaluate = _ranx()

    qrels = Qrels(dataset.qrels)
    scores = {}
    for name, run in runs.items():
        # ranx wants every query in the run: a query with no hit gets a record it cannot match
        filled = {qid: run.get(qid) or {"\ue000none": 0.0} for qid in dataset.qrels}
        got = ranx_evaluate(qrels, Run(filled), list(METRICS))
        scores[name] = {m: round(float(got[m]), 4) for m in METRICS}
    return scores


def evaluate_records(dataset: RecordSet, index: Index | None = None, *,
                     modes: Sequence[Mode] = MODES, naive: bool = True,
                     model: str | None = None,
                     progress: BuildProgress | None = None) -> dict[str, Any]:
    """Build an index of the set's records (unless given one), then measure each mode and,
    with `naive`, the two naive baselines on the same records."""
    from semsearch import fusion, search
    from semsearch.stores import sentences

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if index is None:
        index = build_index(dataset, model, progress)
        seconds["index"] = time.perf_counter() - started
    runs: dict[str, RecordRun] = {}
    for mode in modes:
        started = time.perf_counter()
        runs[mode] = record_run(index, dataset.queries, mode, progress=progress,
                                units=dataset.units)
        seconds[mode] = time.perf_counter() - started
    if naive:
        started = time.perf_counter()
        runs["naive-dense"] = naive_dense_run(dataset, model, progress=progress)
        seconds["naive-dense"] = time.perf_counter() - started
        started = time.perf_counter()
        runs["naive-bm25"] = naive_bm25_run(dataset, progress=progress)
        seconds["naive-bm25"] = time.perf_counter() - started
    if progress is not None:
        progress.start(len(runs), "scoring")
    return {"dataset": dataset.name, "records": len(dataset.records),
            "passages": index.manifest.passage_count, "queries": len(dataset.queries),
            "model": index.manifest.model.name,
            "settings": {"fusion": search.DEFAULT_FUSION, "dense_weight": fusion.DENSE_WEIGHT,
                         "bm25_weight": "(1 - dense_weight) × share of the query's words in "
                                        "the BM25 vocabulary",
                         "candidates": search.CANDIDATES,
                         "granularity": index.manifest.granularity,
                         "sentence_mix": sentences.SENTENCE_MIX},
            "metrics": score_runs(dataset, runs),
            "counts": {name: hit_counts(dataset.qrels, run) for name, run in runs.items()},
            "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def records_markdown(results: dict[str, Any]) -> str:
    """A short markdown report of a record-set run: one row per mode and naive baseline."""
    lines = [f"Retrieval on `{results['dataset']}`: {results['queries']} labelled queries over "
             f"{results['records']} records ({results['passages']} passages); model "
             f"`{results['model']}`. A record counts at its best passage's rank. `naive-*` are "
             "baselines on the same records: sentence-transformers `util.semantic_search` over "
             "the raw text (same model and prompts), and bm25s over jieba words.", "",
             "| mode | " + " | ".join(METRICS) + " |", "|" + "---|" * (len(METRICS) + 1)]
    for mode, scores in results["metrics"].items():
        lines.append(f"| {mode} | " + " | ".join(f"{scores[m]:.3f}" for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def result_name(dataset: str) -> str:
    """The results file stem of a dataset: quality (seeds) or quality-<name>."""
    return "quality" if dataset == SEEDS else f"quality-{dataset}"
