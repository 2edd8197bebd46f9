"""Benchmark semsearch's ANN index types (flat, hnsw, ivf-pq, sq8) from 10k to 1M passages.

    python3 benchmarks/ann.py [--sizes 10000 100000 1000000] [--quick | --smoke] [--out DIR]
                              [--index DIR]

Vectors are synthetic but shaped like real multilingual-e5-small embeddings (see `make_vectors`),
made from the seed passages' vectors, read from the seeds index (or `--index`) through
`FaissStore.load`; recall@10 is against exact flat search on the same data. Writes ann.json,
ann.md and ann.png (latency vs recall at the largest size) to benchmarks/results/ (or `--out`).
`--smoke` checks that the script runs end to end in seconds (1,000 vectors, 50 queries, 1 thread)
and writes to a new temporary directory unless `--out` is given: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from semsearch.stores import DEFAULT_INDEX, base  # noqa: E402
from semsearch.stores import faiss as ann  # noqa: E402
from semsearch.stores.faiss import FaissStore  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
K = 10
# Noise scales, calibrated so that 62 synthetic vectors have the same pairwise- and nearest-
# neighbour-cosine distribution as the 62 real seed embeddings (reported in the output).
TOPIC_NOISE = 0.12
PASSAGE_NOISE = 0.20
SPECTRUM_DECAY = 0.5
EF_SWEEP = (16, 24, 32, 48, 64, 96, 128, 256)
NPROBE_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128)
SMOKE_SIZE, SMOKE_QUERIES = 1_000, 50  # --smoke: the fewest vectors ivf-pq trains on
SINGLE_BUDGET_S = 20.0  # per measurement: stop timing single queries after this long (flat 1M)


def load_seeds(path: Path = DEFAULT_INDEX) -> np.ndarray:
    """The real unit vectors of an index's passages (the seeds: 62 x 384-d), in passage-id order,
    reconstructed from its FAISS index as the public loader opens it."""
    store = FaissStore.load(path)
    ids = sorted(store.passages)
    if not ids:
        raise SystemExit(f"index {path} has no passages to shape synthetic vectors from")
    return np.stack([store.faiss_index.reconstruct(i) for i in ids]).astype(np.float32)


def make_vectors(seeds: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n clustered unit vectors shaped like the seeds: mean direction + topic + passage noise.

    Topics (10*sqrt(n) of them) are Dirichlet mixtures of 3 random seed residuals plus noise;
    passages are a topic plus noise. Noise is anisotropic (a random rotation of a spectrum
    decaying as i^-0.5), like the decaying PCA spectrum of real embeddings.
    """
    d = seeds.shape[1]
    mean = seeds.mean(axis=0)
    residuals = seeds - mean
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    spectrum = np.arange(1, d + 1) ** -SPECTRUM_DECAY
    spectrum /= np.sqrt((spectrum**2).sum())
    shape = (spectrum[:, None] * rotation).astype(np.float32)
    n_topics = max(50, int(10 * np.sqrt(n)))
    picks = rng.integers(0, len(seeds), (n_topics, 3))
    weights = rng.dirichlet([0.5] * 3, n_topics)
    topics = np.einsum("tk,tkd->td", weights, residuals[picks]) + TOPIC_NOISE * (
        rng.standard_normal((n_topics, d)).astype(np.float32) @ shape)
    topic_of = rng.integers(0, n_topics, n)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 200_000):
        stop = min(start + 200_000, n)
        noise = rng.standard_normal((stop - start, d), dtype=np.float32) @ shape
        out[start:stop] = mean + topics[topic_of[start:stop]] + PASSAGE_NOISE * noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def cosine_stats(x: np.ndarray) -> dict[str, list[float]]:
    """5/50/95th percentiles of pairwise and nearest-neighbour cosine within a small set."""
    sims = x @ x.T
    np.fill_diagonal(sims, -1.0)
    upper = sims[np.triu_indices(len(x), 1)]
    return {"pair_cosine_p5_p50_p95": np.percentile(upper, [5, 50, 95]).round(3).tolist(),
            "nn_cosine_p5_p50_p95": np.percentile(sims.max(1), [5, 50, 95]).round(3).tolist()}


def rss_probe(path: str, mmap: bool, queries: str) -> None:
    """Child process: RSS (MB) before/after opening an index, and after 200 queries."""
    import faiss

    def status() -> dict[str, float]:
        out = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
        return out

    q = np.load(queries)
    faiss.omp_set_num_threads(1)
    before = status()
    index = ann.load_index(Path(path), mmap=mmap)
    loaded = status()
    ann.set_search_params(index, k=K)
    for i in range(min(200, len(q))):
        ann.search_index(index, q[i:i + 1], K)
    queried = status()
    print(json.dumps({
        "rss_mb": round(loaded["VmRSS"] - before["VmRSS"], 1),
        "anon_mb": round(loaded["RssAnon"] - before["RssAnon"], 1),
        "rss_after_200_queries_mb": round(queried["VmRSS"] - before["VmRSS"], 1),
        "anon_after_200_queries_mb": round(queried["RssAnon"] - before["RssAnon"], 1),
    }))


def measure_rss(path: Path, mmap: bool, queries: Path) -> dict[str, float]:
    """Run rss_probe in a fresh interpreter so nothing else in this process skews the numbers."""
    out = subprocess.run([sys.executable, __file__, "--rss-probe", str(path), str(int(mmap)),
                          str(queries)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-k ids that appear among the found top-k."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def single_latency(index: Any, queries: np.ndarray, limit: int | None = None,
                   plain: bool = False) -> dict[str, float]:
    """p50/p99 ms of one-query-at-a-time search on one thread (time-boxed for slow indexes)."""
    import faiss

    faiss.omp_set_num_threads(1)
    times: list[float] = []
    started = time.perf_counter()
    for i in range(len(queries) if limit is None else min(limit, len(queries))):
        q = queries[i:i + 1]
        t0 = time.perf_counter()
        if plain:
            index.search(q, K)
        else:
            ann.search_index(index, q, K)
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - started > SINGLE_BUDGET_S and len(times) >= 50:
            break
    faiss.omp_set_num_threads(THREADS)
    return {"p50_ms": round(float(np.percentile(times, 50)), 4),
            "p99_ms": round(float(np.percentile(times, 99)), 4), "single_queries": len(times)}


def batch_search(index: Any, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """All queries in one call on THREADS threads: (ids, ms per query)."""
    t0 = time.perf_counter()
    _, ids = ann.search_index(index, queries, K)
    return ids, (time.perf_counter() - t0) * 1e3 / len(queries)


THREADS = 2


def run_size(n: int, kinds: list[str], seeds: np.ndarray, nq: int, workdir: Path,
             progress: Any) -> dict[str, Any]:
    """Every measurement for one collection size."""
    rng = np.random.default_rng(n)
    t0 = time.perf_counter()
    data = make_vectors(seeds, n + nq, rng)
    x, queries = data[:n], np.ascontiguousarray(data[n:])
    qpath = workdir / f"queries_{n}.npy"
    np.save(qpath, queries)
    sample = x[rng.choice(n, len(seeds), replace=False)]
    result: dict[str, Any] = {"n": n, "queries": nq,
                              "generate_s": round(time.perf_counter() - t0, 1),
                              "synthetic_62_sample": cosine_stats(sample), "types": {}}
    truth: np.ndarray | None = None
    flat_p50 = flat_batch = None
    for kind in kinds:
        task = progress.add_task(f"{n:>9,} {kind:<6} build", total=n)
        t0 = time.perf_counter()
        index = ann.build_index(kind, x, functools.partial(progress.advance, task))
        build_s = time.perf_counter() - t0
        progress.update(task, description=f"{n:>9,} {kind:<6} measure")
        path = workdir / f"{kind}_{n}.faiss"
        ann.write_index(index, path)
        row: dict[str, Any] = {"build_s": round(build_s, 2),
                               "disk_mb": round(path.stat().st_size / 1e6, 1),
                               "description": ann.describe_index(index)}
        ids, row["batch_ms_per_query"] = batch_search(index, queries)
        if kind == "flat":
            truth = ids
            scores = index.search(queries, K)[0]
            result["query_nn_cosine_p5_p50_p95"] = np.percentile(scores[:, 0], [5, 50, 95]).round(
                3).tolist()
            result["query_10th_cosine_p50"] = round(float(np.median(scores[:, -1])), 3)
        assert truth is not None, "flat must run first: it is the ground truth"
        row["recall_at_10"] = round(recall_at_k(ids, truth), 4)
        row.update(single_latency(index, queries))
        if kind == "hnsw":
            row["p50_ms_without_selector"] = single_latency(index, queries, 300, plain=True)[
                "p50_ms"]
        if kind == "flat":
            flat_p50, flat_batch = row["p50_ms"], row["batch_ms_per_query"]
        row["speedup_p50_vs_flat"] = round(flat_p50 / row["p50_ms"], 1) if flat_p50 else None
        row["speedup_batch_vs_flat"] = (round(flat_batch / row["batch_ms_per_query"], 1)
                                        if flat_batch else None)
        sweep = []
        values = EF_SWEEP if kind == "hnsw" else NPROBE_SWEEP if kind != "flat" else ()
        for value in values:
            if kind == "hnsw":
                ann.set_search_params(index, k=K, ef_search=value)
            else:
                ann.set_search_params(index, k=K, nprobe=value)
            sids, batch_ms = batch_search(index, queries)
            lat = single_latency(index, queries, 300)
            sweep.append({"ef_search" if kind == "hnsw" else "nprobe": value,
                          "recall_at_10": round(recall_at_k(sids, truth), 4),
                          "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"],
                          "batch_ms_per_query": round(batch_ms, 4)})
        ann.set_search_params(index, k=K)
        row["sweep"] = sweep
        del index
        row["rss"] = measure_rss(path, False, qpath)
        row["rss_mmap"] = measure_rss(path, True, qpath)
        path.unlink()
        row["batch_ms_per_query"] = round(row["batch_ms_per_query"], 4)
        result["types"][kind] = row
        progress.update(task, description=f"{n:>9,} {kind:<6} done", completed=n)
    return result


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """The short human-readable summary: one table row per size and type."""
    lines = [
        "# ANN index benchmark",
        "",
        f"{report['machine']}; single queries on 1 thread (k=10), batch = "
        f"{report['queries']} queries in one call on {report['threads']} threads. Recall@10 is "
        "against exact flat search; speedups are flat's p50 (or batch) time over the type's, "
        "measured in the same run.",
        "",
        f"Data: {report['data']}",
        "",
        "| size | type | build s | MB on disk | RSS MB | RSS MB (mmap) | p50 ms | p99 ms "
        "| batch ms/q | recall@10 | speedup p50 | speedup batch |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in report["sizes"]:
        for kind, r in size["types"].items():
            lines.append(
                f"| {size['n']:,} | {kind} | {r['build_s']:.1f} | {r['disk_mb']:.0f} "
                f"| {r['rss']['rss_mb']:.0f} | {r['rss_mmap']['rss_mb']:.0f} "
                f"| {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['batch_ms_per_query']:.3f} "
                f"| {r['recall_at_10']:.3f} | {r['speedup_p50_vs_flat']}x "
                f"| {r['speedup_batch_vs_flat']}x |")
    lines += ["", "Defaults: " + report["defaults"], "",
              "RSS = growth of a fresh process's resident memory on opening the index; with mmap "
              "the vectors stay in the (shared, evictable) page cache and only pages a query "
              "touches become resident. After 200 single queries with mmap:", ""]
    for size in report["sizes"]:
        cells = ", ".join(f"{k} {r['rss_mmap']['rss_after_200_queries_mb']:.0f} MB "
                          f"(anon {r['rss_mmap']['anon_after_200_queries_mb']:.0f})"
                          for k, r in size["types"].items())
        lines.append(f"- {size['n']:,}: {cells}")
    largest = report["sizes"][-1]
    lines += ["", f"Latency-recall sweep at {largest['n']:,} (see ann.png):", "",
              "| type | param | recall@10 | p50 ms | p99 ms | batch ms/q |",
              "|---|---:|---:|---:|---:|---:|"]
    for kind, r in largest["types"].items():
        for s in r["sweep"]:
            key = "ef_search" if "ef_search" in s else "nprobe"
            lines.append(f"| {kind} | {key}={s[key]} | {s['recall_at_10']:.3f} | {s['p50_ms']:.3f} "
                         f"| {s['p99_ms']:.3f} | {s['batch_ms_per_query']:.3f} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency (log-x) vs recall@10 per type at the largest size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    largest = report["sizes"][-1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind, r in largest["types"].items():
        if r["sweep"]:
            key = "ef_search" if "ef_search" in r["sweep"][0] else "nprobe"
            xs = [s["p50_ms"] for s in r["sweep"]]
            ys = [s["recall_at_10"] for s in r["sweep"]]
            ax.plot(xs, ys, marker="o", label=f"{kind} ({key})")
            for s, xv, yv in zip(r["sweep"], xs, ys, strict=True):
                ax.annotate(str(s[key]), (xv, yv), fontsize=7, xytext=(2, -8),
                            textcoords="offset points")
        else:
            ax.plot([r["p50_ms"]], [r["recall_at_10"]], marker="s", linestyle="", label=kind)
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.axvline(5.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("single-query p50 latency, ms (1 thread, log scale)")
    ax.set_ylabel("recall@10 vs exact")
    ax.set_title(f"{largest['n']:,} x {report['dim']}-d vectors: latency vs recall")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="10k and 100k only (< 3 min)")
    parser.add_argument("--smoke", action="store_true",
                        help="1,000 vectors, 50 queries, 1 thread: checks that it runs")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX,
                        help="index whose vectors shape the synthetic data (default: the seeds)")
    parser.add_argument("--types", nargs="+", default=list(ann.INDEX_TYPES),
                        choices=list(ann.INDEX_TYPES))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None,
                        help="FAISS threads for builds and batch search (default: 2; --smoke: 1)")
    parser.add_argument("--out", type=Path, help="directory for ann.{json,md,png} "
                        "(default: benchmarks/results; with --smoke a new temporary directory)")
    parser.add_argument("--rss-probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe[0], args.rss_probe[1] == "1", args.rss_probe[2])
        return

    import faiss
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    THREADS = args.threads or (1 if args.smoke else min(2, os.cpu_count() or 1))
    faiss.omp_set_num_threads(THREADS)
    sizes = [s for s in args.sizes if s <= 100_000] if args.quick else args.sizes
    if args.quick and not sizes:
        sizes = [10_000, 100_000]
    if args.smoke:
        sizes, args.queries = [SMOKE_SIZE], min(args.queries, SMOKE_QUERIES)
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    args.out = output_dir(args.out, args.smoke, "ann")
    kinds = ["flat", *[k for k in args.types if k != "flat"]]
    seeds = load_seeds(args.index)
    console = Console(stderr=True)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}, "
                   f"numpy {np.__version__}, python {platform.python_version()}",
        "threads": THREADS, "queries": args.queries, "k": K, "dim": seeds.shape[1],
        "data": (f"synthetic, from the {len(seeds)} real seed embeddings (multilingual-e5-small): "
                 f"mean seed direction + ~10*sqrt(n) topics, each a Dirichlet(0.5) mix of 3 seed "
                 f"residuals + noise (scale {TOPIC_NOISE}), passages = topic + noise (scale "
                 f"{PASSAGE_NOISE}); noise is anisotropic (random rotation, spectrum i^-"
                 f"{SPECTRUM_DECAY}); unit-normalised. {args.queries} held-out queries made the "
                 "same way. 62-vector samples match the seeds' pairwise/NN cosine distribution "
                 "(see ann.json)."),
        "seeds_62": cosine_stats(seeds),
        "defaults": (f"hnsw M={ann.HNSW_M}, efConstruction={ann.HNSW_EF_CONSTRUCTION}, "
                     f"efSearch={ann.DEFAULT_EF_SEARCH}; ivf nlist=4*sqrt(n) (~4000 at 1M), "
                     f"nprobe={ann.DEFAULT_NPROBE}; ivf-pq PQ{384 // 4}x8; training sample "
                     f"<= {ann.MAX_TRAIN:,}; auto = flat below {base.FLAT_MAX:,}, else sq8"),
        "sizes": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ann-bench-") as tmp, Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console) as progress:
        for n in sizes:
            report["sizes"].append(run_size(n, kinds, seeds, args.queries, Path(tmp), progress))
            report["total_s"] = round(time.perf_counter() - started, 1)
            (args.out / "ann.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, args.out / "ann.md")
    plot(report, args.out / "ann.png")
    console.print(f"done in {report['total_s']:.0f} s -> {args.out}/ann.{{json,md,png}}")


if __name__ == "__main__":
    main()
