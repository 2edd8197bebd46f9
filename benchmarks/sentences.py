"""Sentence vectors beside passage vectors (stores/sentences.py): quality per mix weight.

Each record set is indexed once, in memory, with granularity "sentence"; the same index then
answers every query as a passage-only index (its manifest told "passage": the passage vectors
are the same) and with sentences mixed in at each weight w (a passage's dense score =
w × its cosine + (1 − w) × its best sentence's), beside the naive sentence-transformers peer,
all in the same run. Writes benchmarks/results/sentences.json and .md.

    python benchmarks/sentences.py xquad-en2zh xquad-zh2en [--weights 0.5 0.6 0.7]
    python benchmarks/sentences.py --cost    # tokens, vectors, disk, indexing time, latency
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from semsearch import bench
from semsearch.index import Index
from semsearch.models.encoder import load_encoder
from semsearch.stores import sentences

RESULTS = Path("benchmarks") / "results"
SHOWN = ("recall@1", "recall@5", "mrr@10")


def measure_seeds(weights: list[float]) -> dict[str, Any]:
    """As `measure`, on the labelled seeds queries over an index of seeds/ built in memory."""
    index = Index.build([Path("seeds")], granularity=sentences.SENTENCE, index_type="flat")
    queries = bench.load_qrels(bench.DEFAULT_QRELS)
    store = index.store
    found: dict[str, Any] = {"records": len(store.manifest.sources), "queries": len(queries),
                             "passages": index.manifest.passage_count,
                             "sentence_vectors": len(store.sentences or ()),  # type: ignore
                             "runs": {}}
    original = store.manifest
    for label, weight in [("passage", None)] + [(f"sentence w={w}", w) for w in weights]:
        store.manifest = replace(original, granularity="passage" if weight is None
                                 else sentences.SENTENCE)
        if weight is not None:
            sentences.SENTENCE_MIX = weight
        results = bench.evaluate(index, queries, ("dense", "hybrid"))
        found["runs"][label] = {mode: {**{m: results["metrics"][mode][m] for m in SHOWN},
                                       "hits@1": results["counts"][mode]["hits@1"]}
                                for mode in ("dense", "hybrid")}
    store.manifest = original
    return found


def measure(name: str, weights: list[float], naive: bool) -> dict[str, Any]:
    """Dense and hybrid metrics and hit counts per setting, on one record set."""
    if name == bench.SEEDS:
        return measure_seeds(weights)
    dataset = bench.load_dataset(name)
    started = time.perf_counter()
    index = bench.build_index(dataset, granularity=sentences.SENTENCE)
    seconds = time.perf_counter() - started
    store = index.store
    found: dict[str, Any] = {"records": len(dataset.records), "queries": len(dataset.queries),
                             "passages": index.manifest.passage_count,
                             "sentence_vectors": len(store.sentences or ()),  # type: ignore
                             "index_seconds": round(seconds, 1), "runs": {}}
    settings: list[tuple[str, float | None]] = [("passage", None)] + \
        [(f"sentence w={w}", w) for w in weights]
    original = store.manifest
    for label, weight in settings:
        store.manifest = replace(original, granularity="passage" if weight is None
                                 else sentences.SENTENCE)
        if weight is not None:
            sentences.SENTENCE_MIX = weight
        runs = {mode: bench.record_run(index, dataset.queries, mode, units=dataset.units)
                for mode in ("dense", "hybrid")}
        found["runs"][label] = _scored(dataset, runs)
    store.manifest = original
    if naive:
        runs = {"naive-dense": bench.naive_dense_run(dataset)}
        found["runs"]["naive"] = _scored(dataset, runs)
    return found


def _scored(dataset: bench.RecordSet, runs: dict[str, Any]) -> dict[str, Any]:
    metrics = bench.score_runs(dataset, runs)
    return {mode: {**{m: metrics[mode][m] for m in SHOWN},
                   "hits@1": bench.hit_counts(dataset.qrels, run)["hits@1"]}
            for mode, run in runs.items()}


def markdown(results: dict[str, Any]) -> str:
    lines = ["Sentence vectors (stores/sentences.py): R@1 / R@5 / MRR@10, hits@1 in brackets; "
             "same index, same run per set.", ""]
    for name, found in results["sets"].items():
        lines += [f"## {name}: {found['queries']} queries, {found['passages']} passages, "
                  f"{found['sentence_vectors']} sentence vectors", "",
                  "| setting | dense | hybrid |", "|---|---|---|"]
        for label, modes in found["runs"].items():
            cells = [" / ".join(f"{modes[m][k]:.3f}" for k in SHOWN) + f" ({modes[m]['hits@1']})"
                     if m in modes else "" for m in ("dense", "hybrid")]
            if label == "naive":
                cells = [" / ".join(f"{modes['naive-dense'][k]:.3f}" for k in SHOWN)
                         + f" ({modes['naive-dense']['hits@1']})", ""]
            lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
        lines.append("")
    return "\n".join(lines)


def _disk(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def cost(paragraphs: int = 200, rounds: int = 3) -> dict[str, Any]:
    """On `paragraphs` CMRC trial paragraphs: tokens and vectors encoded, indexing seconds
    (best of `rounds`, passage and sentence builds alternating in the same run) and index size
    on disk, per granularity; on the seeds: query latency p50 of dense and hybrid search."""
    from semsearch.index import sentence_rows
    from semsearch.passages import prepare

    dataset = bench.load_dataset("cmrc-trial")
    docs = bench.documents(dataset)[:paragraphs]
    encoder = load_encoder(None, None, for_indexing=True)
    prepared = prepare(docs, encoder.count_tokens, min(256, encoder.max_tokens - 16))
    _, texts = sentence_rows(prepared.passages)
    found: dict[str, Any] = {
        "paragraphs": len(docs), "passages": len(prepared.passages),
        "passage_tokens": sum(encoder.count_tokens(p.embedded_text) for p in prepared.passages),
        "sentence_vectors": len(texts),
        "sentence_tokens": sum(encoder.count_tokens(t) for t in texts)}
    seconds: dict[str, list[float]] = {"passage": [], "sentence": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(rounds):
            for granularity in ("passage", "sentence"):
                out = Path(tmp) / f"{granularity}{n}"
                started = time.perf_counter()
                Index.from_documents(docs, index_type="flat", location=out,
                                     granularity=granularity)
                seconds[granularity].append(time.perf_counter() - started)
                found[f"{granularity}_disk_bytes_per_1000_passages"] = round(
                    _disk(out) * 1000 / len(prepared.passages))
        found["index_seconds"] = {g: round(min(s), 2) for g, s in seconds.items()}
        found["index_time_ratio"] = round(min(seconds["sentence"]) / min(seconds["passage"]), 2)
        queries = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)]
        latency: dict[str, float] = {}
        for granularity in ("passage", "sentence"):
            out = Path(tmp) / f"seeds-{granularity}"
            Index.build([Path("seeds")], location=out, granularity=granularity)
            index = Index.open(out)
            index.search(queries[0], mode="dense")  # load the model
            for mode in ("dense", "hybrid"):
                times = []
                for query in queries:
                    started = time.perf_counter()
                    index.search(query, k=10, mode=mode)
                    times.append(time.perf_counter() - started)
                latency[f"{granularity} {mode}"] = round(statistics.median(times) * 1000, 2)
        found["seeds_query_p50_ms"] = latency
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="*")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weights", nargs="*", type=float, default=[0.5, 0.6, 0.7])
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--out", default="sentences")
    args = parser.parse_args()
    path = RESULTS / f"{args.out}.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"sets": {}}
    if args.cost:
        found = cost(rounds=args.rounds)
        (RESULTS / "sentences-cost.json").write_text(json.dumps(found, indent=2) + "\n")
        print(json.dumps(found, indent=2))
    for name in args.sets:
        results["sets"][name] = measure(name, args.weights, not args.no_naive)
        path.write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(results))
        print(markdown({"sets": {name: results["sets"][name]}}), flush=True)


if __name__ == "__main__":
    main()
