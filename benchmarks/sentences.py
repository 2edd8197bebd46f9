"""Sentence vectors beside passage vectors (stores/sentences.py): quality per mix weight.

Each record set is indexed once, in memory, with granularity "sentence"; the same index then
answers every query as a passage-only index (its manifest told "passage": the passage vectors
are the same) and with sentences mixed in at each weight w (a passage's dense score =
w × its cosine + (1 − w) × its best sentence's), beside the naive sentence-transformers peer,
all in the same run. Writes benchmarks/results/sentences.json and .md.

    python benchmarks/sentences.py xquad-en2zh xquad-zh2en [--weights 0.5 0.6 0.7]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from semsearch import bench
from semsearch.stores import sentences

RESULTS = Path("benchmarks") / "results"
SHOWN = ("recall@1", "recall@5", "mrr@10")


def measure(name: str, weights: list[float], naive: bool) -> dict[str, Any]:
    """Dense and hybrid metrics and hit counts per setting, on one record set."""
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--weights", nargs="*", type=float, default=[0.5, 0.6, 0.7])
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--out", default="sentences")
    args = parser.parse_args()
    path = RESULTS / f"{args.out}.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"sets": {}}
    for name in args.sets:
        results["sets"][name] = measure(name, args.weights, not args.no_naive)
        path.write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(results))
        print(markdown({"sets": {name: results["sets"][name]}}), flush=True)


if __name__ == "__main__":
    main()
