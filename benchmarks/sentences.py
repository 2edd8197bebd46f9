"""Sentence vectors beside passage vectors (stores/sentences.py): quality per mix weight.

Each record set is indexed once, in memory, with granularity "sentence"; the same index then
answers every query as a passage-only index (its manifest told "passage": the passage vectors
are the same) and with sentences mixed in at each weight w (a passage's dense score =
w × its cosine + (1 − w) × its best sentence's), beside the naive sentence-transformers peer,
all in the same run. Writes benchmarks/results/sentences.json and .md.

    python benchmarks/sentences.py xquad-en2zh xquad-zh2en [--weights 0.5 0.6 0.7]
    python benchmarks/sentences.py --cost    # tokens, vectors, disk, indexing time, latency
    python benchmarks/sentences.py --fusion seeds cmrc-trial drcd-test xquad-en2zh \
        xquad-zh2en xquad-zh xquad-mixed --cache /tmp/sentence-vectors   # sentences-fusion.md

`--fusion` measures, on each set's sentence index, ways of turning the sentence-mixed dense
ranking into hybrid gains (`FUSION_VARIANTS`): the dense/BM25 balance, the mix weight in hybrid
only, the best-sentence cosine as a third fused ranking, and BM25 at sentence level too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import pickle
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import bench
from semsearch import index as index_module
from semsearch import search as search_module
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


FUSION_NOTE = (
    "Fusion variants (`python benchmarks/sentences.py --fusion`, `FUSION_VARIANTS`): each "
    "changes only hybrid search on the sentence index (w = 0.6 unless named); an empty dense "
    "cell is the same as the \"sentence w=0.6\" row's. Dense weight: the dense share of "
    "weighted fusion (0.5 in the library; BM25 has the rest × its coverage of the query). Mix "
    "w in hybrid: SENTENCE_MIX for that run; by BM25 coverage: in hybrid only, from 0.6 at "
    "coverage 0 to 0.4 at coverage 1. Third list: each candidate's best-sentence cosine "
    "fused as a third ranking at that weight (× coverage: scaled by BM25's coverage of the "
    "query, as BM25's own weight is). Dense lists apart: passage and best-sentence "
    "cosines fused as two rankings, 0.6 / 0.4 of the dense share. Sentence BM25 x: a "
    "passage's BM25 = x × its own + (1 − x) × its best sentence's (sentences as their own BM25 "
    "collection).")


def markdown(results: dict[str, Any]) -> str:
    lines = ["Sentence vectors (stores/sentences.py): R@1 / R@5 / MRR@10, hits@1 in brackets; "
             "same index, same run per set.", ""]
    if results.get("note"):
        lines += [results["note"], ""]
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


class _Patched:
    """Hooks the fusion variants set on search.py and the store, undone on exit."""

    def __init__(self, store: Any, sentence_lexical: Any | None) -> None:
        self.store, self.sentence_lexical = store, sentence_lexical
        self.best: list[Any] = []
        self.row = 0

    @contextlib.contextmanager
    def variant(self, dense_weight: float = 0.5, sentence_list: float = 0.0,
                sentence_bm25: float | None = None, mix: float | None = None,
                apart: bool = False, mix_by_coverage: tuple[float, float] | None = None,
                list_by_coverage: bool = False) -> Any:
        """`dense_weight`: the dense share of weighted fusion (BM25 has the rest × coverage);
        `sentence_list`: weight of a third ranking, each passage's best-sentence cosine;
        `sentence_bm25`: a passage's BM25 = this × its own + (1 − this) × its best sentence's
        BM25 (sentences indexed as their own collection); `mix`: SENTENCE_MIX; `apart`: the
        passage cosines and best-sentence cosines fused as two rankings, each normalised on
        its own, with the dense weight split between them as SENTENCE_MIX splits it;
        `mix_by_coverage` (w at coverage 0, w at coverage 1): in hybrid only, each candidate's
        dense score re-mixed with w moving linearly with the query's BM25 coverage (BM25
        already holds the passage-level lexical match, so lean on the best sentence as far as
        BM25 covers the query; the candidates stay those of SENTENCE_MIX);
        `list_by_coverage`: the third ranking's weight scaled by that coverage too."""
        store = self.store
        original = {
            "weights": search_module.fusion_weights, "fuse": search_module.weighted_fusion,
            "sentence_search": store.sentence_search, "lexical_search": store.lexical_search,
            "mix": sentences.SENTENCE_MIX}

        def weights(coverage: float) -> tuple[float, float]:
            return dense_weight, (1 - dense_weight) * min(max(coverage, 0.0), 1.0)

        def sentence_search(*args: Any, **kwargs: Any) -> Any:
            dense, best = original["sentence_search"](*args, **kwargs)
            self.best, self.row = best, 0
            return dense, best

        def fuse(runs: Any, fused_weights: Any) -> Any:
            best = self.best[self.row] if self.row < len(self.best) else {}
            self.row += 1
            (scores, ids), extra = runs[0], []
            if mix_by_coverage is not None:
                w = sentences.SENTENCE_MIX
                dense_w, bm25_w = fused_weights
                coverage = bm25_w / (1 - dense_w) if dense_w < 1 else 0.0
                at0, at1 = mix_by_coverage
                new_w = at0 + (at1 - at0) * coverage
                cosines = np.array([best[int(i)].score if int(i) in best else float(s)
                                    for s, i in zip(scores, ids, strict=True)],
                                   dtype=np.float32)
                held = np.isin(ids, list(best))
                own = np.where(held, (scores - (1 - w) * cosines) / w, scores)
                remixed = np.where(held, new_w * own + (1 - new_w) * cosines, scores)
                runs = [(remixed.astype(np.float32), ids), *runs[1:]]
            if apart:
                w = sentences.SENTENCE_MIX
                cosines = np.array([best[int(i)].score if int(i) in best else float(s)
                                    for s, i in zip(scores, ids, strict=True)],
                                   dtype=np.float32)
                own = np.where(np.isin(ids, list(best)), (scores - (1 - w) * cosines) / w,
                               scores).astype(np.float32)
                dense_w, bm25_w = fused_weights
                return original["fuse"]([(own, ids), (cosines, ids), runs[1]],
                                        [dense_w * w, dense_w * (1 - w), bm25_w])
            if sentence_list:
                cosines = np.array([best[int(i)].score if int(i) in best else float(s)
                                    for s, i in zip(scores, ids, strict=True)],
                                   dtype=np.float32)
                dense_w, bm25_w = fused_weights
                share = (bm25_w / (1 - dense_w) if dense_w < 1 else 0.0) \
                    if list_by_coverage else 1.0
                extra = [((cosines, ids), sentence_list * share)]
            all_runs = list(runs) + [r for r, _ in extra]
            return original["fuse"](all_runs, list(fused_weights) + [w for _, w in extra])

        def lexical_search(queries: Any, k: int, where: Any = None) -> Any:
            return self._sentence_bm25(queries, k, sentence_bm25)

        search_module.fusion_weights = weights  # type: ignore[assignment]
        search_module.weighted_fusion = fuse  # type: ignore[assignment]
        store.sentence_search = sentence_search
        if sentence_bm25 is not None:
            store.lexical_search = lexical_search
        if mix is not None:
            sentences.SENTENCE_MIX = mix
        try:
            yield
        finally:
            search_module.fusion_weights = original["weights"]  # type: ignore[assignment]
            search_module.weighted_fusion = original["fuse"]  # type: ignore[assignment]
            vars(store).pop("sentence_search", None)  # the class's methods again
            vars(store).pop("lexical_search", None)
            sentences.SENTENCE_MIX = original["mix"]

    def _sentence_bm25(self, queries: Any, k: int, own: float) -> Any:
        lexical = self.store.lexical
        units, unit_pids = self.sentence_lexical
        scores = np.zeros((len(queries), k), dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            passage = lexical.scores(query)
            best = np.zeros(int(lexical.ids.max()) + 1, dtype=np.float32)
            np.maximum.at(best, unit_pids, units.scores(query))
            mixed = own * passage + (1 - own) * best[lexical.ids]
            top = np.argsort(-mixed, kind="stable")[:k]
            top = top[mixed[top] > 0]
            ids[row, :len(top)] = lexical.ids[top]
            scores[row, :len(top)] = mixed[top]
        return scores, ids


def sentence_lexical(store: Any) -> tuple[Any, np.ndarray]:
    """BM25 over every passage's sentences (its sentence-vector rows; a passage of one
    sentence is its own), and each unit's passage id."""
    from semsearch.lexical import LexicalIndex

    rows = store.sentences.rows
    held = set(rows[:, 0].tolist())
    texts = [store.passages[pid].text[start:end] for pid, start, end in rows.tolist()]
    pids = rows[:, 0].tolist()
    for pid, passage in store.passages.items():
        if pid not in held:
            texts.append(passage.text)
            pids.append(pid)
    return LexicalIndex.build(texts), np.array(pids, dtype=np.int64)


# label → variant keyword arguments (see _Patched.variant); "passage" and "sentence" first
FUSION_VARIANTS: dict[str, dict[str, Any]] = {
    "dense weight 0.6": {"dense_weight": 0.6},
    "dense weight 0.7": {"dense_weight": 0.7},
    "mix w=0.5 in hybrid": {"mix": 0.5},
    "mix w=0.4 in hybrid": {"mix": 0.4},
    "third list best sentence 0.25": {"sentence_list": 0.25},
    "third list best sentence 0.5": {"sentence_list": 0.5},
    "third list best sentence 0.5 × coverage": {"sentence_list": 0.5,
                                                "list_by_coverage": True},
    "dense weight 0.6 + mix w=0.5": {"dense_weight": 0.6, "mix": 0.5},
    "dense weight 0.7 + mix w=0.4": {"dense_weight": 0.7, "mix": 0.4},
    "mix w=0.6→0.4 by BM25 coverage": {"mix_by_coverage": (0.6, 0.4)},
    "mix w=0.6→0.4 by coverage, dense weight 0.6": {"mix_by_coverage": (0.6, 0.4),
                                                    "dense_weight": 0.6},
    "dense lists apart": {"apart": True},
    "dense lists apart, mix w=0.5": {"apart": True, "mix": 0.5},
    "sentence BM25 0.6": {"sentence_bm25": 0.6},
    "sentence BM25 0.4": {"sentence_bm25": 0.4},
}


def measure_fusion(name: str, variants: list[str]) -> dict[str, Any]:
    """Dense and hybrid per fusion variant on one set's sentence index (built once)."""
    seeds = name == bench.SEEDS
    if seeds:
        index = Index.build([Path("seeds")], granularity=sentences.SENTENCE, index_type="flat")
        labelled = bench.load_qrels(bench.DEFAULT_QRELS)
    else:
        dataset = bench.load_dataset(name)
        index = bench.build_index(dataset, granularity=sentences.SENTENCE)
    store = index.store
    found: dict[str, Any] = {"passages": index.manifest.passage_count,
                             "sentence_vectors": len(store.sentences or ()),  # type: ignore
                             "runs": {}}
    started = time.perf_counter()
    patched = _Patched(store, sentence_lexical(store))
    found["sentence_bm25_seconds"] = round(time.perf_counter() - started, 1)

    def scored(modes: tuple[str, ...]) -> dict[str, Any]:
        if seeds:
            results = bench.evaluate(index, labelled, modes)  # type: ignore[arg-type]
            found["queries"] = results["queries"]
            return {m: {**{k: results["metrics"][m][k] for k in SHOWN},
                        "hits@1": results["counts"][m]["hits@1"]} for m in modes}
        found["queries"] = len(dataset.queries)
        return _scored(dataset, {m: bench.record_run(index, dataset.queries, m,
                                                     units=dataset.units) for m in modes})

    original = store.manifest
    store.manifest = replace(original, granularity="passage")
    found["runs"]["passage"] = scored(("dense", "hybrid"))
    store.manifest = original
    found["runs"][f"sentence w={DEFAULT_MIX}"] = scored(("dense", "hybrid"))
    for label in variants:
        kwargs = FUSION_VARIANTS[label]
        with patched.variant(**kwargs):
            modes = ("dense", "hybrid") if "mix" in kwargs else ("hybrid",)
            found["runs"][label] = scored(modes)  # type: ignore[arg-type]
        print(name, label, {m: v["hits@1"] for m, v in found["runs"][label].items()},
              flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="*")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--fusion", action="store_true",
                        help="measure FUSION_VARIANTS (to sentences-fusion.md unless --out)")
    parser.add_argument("--variants", nargs="*", default=list(FUSION_VARIANTS))
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
    if args.fusion and args.out == "sentences":
        args.out = "sentences-fusion"
    path = RESULTS / f"{args.out}.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"sets": {}}
    if args.cost:
        found = cost(rounds=args.rounds)
        (RESULTS / "sentences-cost.json").write_text(json.dumps(found, indent=2) + "\n")
        print(json.dumps(found, indent=2))
    for name in args.sets:
        blends = {"on": (True,), "off": (False,), "both": (True, False)}[args.blend]
        if args.fusion:  # variants measured before on this set are kept beside the new
            results["note"] = FUSION_NOTE
            earlier = results["sets"].get(name, {}).get("runs", {})
            found = measure_fusion(name, args.variants)
            found["runs"] = {**earlier, **found["runs"]}
            results["sets"][name] = found
        else:
            results["sets"][name] = measure(name, args.weights, not args.no_naive, blends)
        path.write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(results))
        print(markdown({"sets": {name: results["sets"][name]}}), flush=True)


if __name__ == "__main__":
    main()
