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
import hashlib
import json
import pickle
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from semsearch import bench
from semsearch import index as index_module
from semsearch.index import Index
from semsearch.models.encoder import load_encoder
from semsearch.stores import sentences

RESULTS = Path("benchmarks") / "results"
SHOWN = ("recall@1", "recall@5", "mrr@10")
DEFAULT_MIX = sentences.SENTENCE_MIX


_KNOWN: dict[Path, dict[str, Any]] = {}


class CachedEncoder:
    """An encoder whose vectors are kept per (backend, prompt, text) in a pickle under
    `folder`, so a rerun that only changes weights, fusion or blending encodes nothing again
    (DRCD's passages, paragraphs and sentences take minutes on 2 shared cores)."""

    def __init__(self, inner: Any, folder: Path) -> None:
        self.inner = inner
        self.info, self.max_tokens, self.backend = inner.info, inner.max_tokens, inner.backend
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{inner.info.fingerprint[:16]}-{inner.backend}.pkl"
        if self.path not in _KNOWN:  # one dict per file, however many encoders share it
            _KNOWN[self.path] = (pickle.loads(self.path.read_bytes())
                                 if self.path.exists() else {})
        self.known: dict[str, Any] = _KNOWN[self.path]
        self.encoded = 0

    def _cached(self, texts: Any, kind: str, encode: Any) -> Any:
        import numpy as np

        keys = [hashlib.sha1(f"{kind}\0{t}".encode()).hexdigest() for t in texts]
        missing = [n for n, k in enumerate(keys) if k not in self.known]
        if missing:
            fresh = encode([texts[n] for n in missing])
            self.known.update({keys[n]: v for n, v in zip(missing, fresh, strict=True)})
            self.encoded += len(missing)
            self.path.write_bytes(pickle.dumps(self.known))
        return np.stack([self.known[k] for k in keys]) if keys else \
            np.zeros((0, self.info.dimension), dtype=np.float32)

    def encode_queries(self, queries: Any) -> Any:
        return self._cached(list(queries), "query", self.inner.encode_queries)

    def encode_passages(self, passages: Any, progress: Any = None) -> Any:
        out = self._cached(list(passages), "passage", self.inner.encode_passages)
        if progress is not None:
            progress(len(passages))
        return out

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))


def cache_vectors(folder: Path) -> None:
    """Every encoder index.py loads from now on keeps its vectors in `folder` (see
    CachedEncoder)."""
    loaded: dict[tuple[Any, ...], CachedEncoder] = {}
    original = index_module.load_encoder

    def load(*args: Any, **kwargs: Any) -> Any:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = CachedEncoder(original(*args, **kwargs), folder)
        return loaded[key]

    index_module.load_encoder = load  # type: ignore[assignment]


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


def tokens(dataset: bench.RecordSet) -> dict[str, int]:
    """Tokens encoded to index the set: passages, whole cut paragraphs (the blend) and
    sentences, as index._embed cuts them."""
    from semsearch import paragraphs
    from semsearch.index import sentence_rows
    from semsearch.passages import prepare

    encoder = index_module.load_encoder(None, None, for_indexing=True)
    prepared = prepare(bench.documents(dataset), encoder.count_tokens,
                       min(256, encoder.max_tokens - 16))
    _, texts = sentence_rows(prepared.passages)
    count = encoder.count_tokens
    return {"passage_tokens": sum(count(p.embedded_text) for p in prepared.passages),
            "paragraph_tokens": sum(count(p.text)
                                    for p in paragraphs.split_paragraphs(prepared.passages)),
            "sentence_tokens": sum(count(t) for t in texts)}


def measure(name: str, weights: list[float], naive: bool,
            blends: tuple[bool, ...] = (True,)) -> dict[str, Any]:
    """Dense and hybrid metrics and hit counts per setting, on one record set; with two
    `blends`, the index built with the paragraph blend on and off (labels "no-blend …")."""
    if name == bench.SEEDS:
        return measure_seeds(weights)
    dataset = bench.load_dataset(name)
    found: dict[str, Any] = {"records": len(dataset.records), "queries": len(dataset.queries),
                             **tokens(dataset), "runs": {}}
    for blend in blends:
        index_module.BLEND_PARAGRAPHS = blend
        prefix = "" if blend else "no-blend "
        started = time.perf_counter()
        index = bench.build_index(dataset, granularity=sentences.SENTENCE)
        found[f"{prefix}index_seconds"] = round(time.perf_counter() - started, 1)
        store = index.store
        found["passages"] = index.manifest.passage_count
        found["sentence_vectors"] = len(store.sentences or ())  # type: ignore
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
            found["runs"][prefix + label] = _scored(dataset, runs)
            print(name, prefix + label, {m: found["runs"][prefix + label][m]["hits@1"]
                                         for m in runs}, flush=True)
        store.manifest = original
    index_module.BLEND_PARAGRAPHS = True
    sentences.SENTENCE_MIX = DEFAULT_MIX
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
    parser.add_argument("--blend", choices=("on", "off", "both"), default="on",
                        help="the paragraph blend (paragraphs.py) on, off, or each in turn")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep encoded vectors in this folder (e.g. /tmp/sentence-vectors)")
    args = parser.parse_args()
    if args.cache is not None:
        cache_vectors(args.cache)
    path = RESULTS / f"{args.out}.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"sets": {}}
    if args.cost:
        found = cost(rounds=args.rounds)
        (RESULTS / "sentences-cost.json").write_text(json.dumps(found, indent=2) + "\n")
        print(json.dumps(found, indent=2))
    for name in args.sets:
        blends = {"on": (True,), "off": (False,), "both": (True, False)}[args.blend]
        results["sets"][name] = measure(name, args.weights, not args.no_naive, blends)
        path.write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(results))
        print(markdown({"sets": {name: results["sets"][name]}}), flush=True)


if __name__ == "__main__":
    main()
