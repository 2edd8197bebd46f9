"""Retrieval quality on a labelled query set: Recall@1/5/10, MRR@10 and nDCG@10 per mode.

Labels name the source file and a key phrase the answering passage must contain (not a passage
id), so they survive changes to cleaning and splitting. Grade 2 marks a passage that answers the
query, grade 1 one that is related: Recall and MRR count the answers (ranx's `-l2` level), nDCG
uses both grades as gains. Metrics come from ranx.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semsearch.errors import QueryError
from semsearch.search import MODES, Index, Mode

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
# ranx names: Recall and MRR over the answers (grade ≥ 2), nDCG over graded relevance
RANX_METRICS = {"recall@1": "recall@1-l2", "recall@5": "recall@5-l2",
                "recall@10": "recall@10-l2", "mrr@10": "mrr@10-l2", "ndcg@10": "ndcg@10"}
DEPTH = 10
DEFAULT_QRELS = Path(__file__).resolve().parent.parent / "benchmarks" / "qrels" / "seeds.jsonl"
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


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
    squeezed = [(pid, "".join(p.text.split()), p.source)
                for pid, p in index.store.iter_passages()]
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


def evaluate(index: Index, queries: Sequence[LabelledQuery],
             modes: Sequence[Mode] = MODES) -> dict[str, Any]:
    """Metrics per mode, overall and per query kind (Recall@5 and MRR@10)."""
    try:
        from ranx import Qrels, Run
        from ranx import evaluate as ranx_evaluate
    except ImportError as exc:
        raise QueryError("semsearch bench needs ranx: pip install 'semsearch[bench]'") from exc

    qrels_dict = judge(index, queries)
    answerable = [q for q in queries if qrels_dict[q.id]]
    qrels = Qrels({q.id: qrels_dict[q.id] for q in answerable})
    overall: dict[str, dict[str, float]] = {}
    by_kind: dict[str, dict[str, dict[str, float]]] = {}
    for mode in modes:
        runs = run(index, answerable, mode)
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
            "metrics": overall, "by_kind": by_kind}


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
    md_path.write_text(markdown(results), encoding="utf-8")
    return json_path, md_path
