"""Encoder backends and cold CLI latency, measured in one run as ratios against the baseline.

    python3 benchmarks/encoders.py [--passages 512] [--cli-runs 5] [--smoke] [--out DIR]
                                   [--index DIR]

1. Indexing throughput (passages/s) on seed-like text — the seed passages, repeated to
   `--passages` — for `SentenceTransformer.encode` (the baseline) and our backends: torch with
   length bucketing, ONNX fp32, ONNX int8. Equivalence: cosine of each backend's vectors against
   the baseline's; quality: `semsearch bench` metrics of an index built with each backend.
2. Cold CLI query: wall time of `semsearch query "夫妻党员抗疫"` in a new process with the
   sentence-transformers backend (baseline) and with the default (ONNX) backend, plus the top-5
   agreement of the two on every labelled query.

The seed passages, and the index the labelled queries run against, come from the seeds index
(or `--index`), opened with `semsearch.load`. Writes encoders.{json,md,png} to
benchmarks/results/ (or `--out`). `--smoke` checks that the script runs end to end (8 passages,
1 cold run per backend, 8 labelled queries, quality of the ONNX backend on one seed file; under
a minute) and writes to a new temporary directory unless `--out` is given: its numbers mean
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
QUERY = "夫妻党员抗疫"
BACKENDS = ("torch", "onnx", "onnx-int8")


def seed_passages(n: int, index_path: Path) -> list[str]:
    import semsearch

    texts = [p.text for p in semsearch.load(index_path).passages]
    return [texts[i % len(texts)] for i in range(n)]


def throughput(passages: list[str]) -> dict[str, Any]:
    """passages/s per backend, cosine against the baseline, on the same texts."""
    from sentence_transformers import SentenceTransformer

    from semsearch.models.encoder import load_encoder
    from semsearch.models.resolve import resolve

    ref = resolve()
    baseline_model = SentenceTransformer(ref.location, device="cpu")
    runs: dict[str, Any] = {}
    start = time.perf_counter()
    baseline = baseline_model.encode(passages, prompt_name="passage", normalize_embeddings=True,
                                     batch_size=32)
    seconds = time.perf_counter() - start
    runs["sentence-transformers encode (baseline)"] = {"seconds": seconds, "cosine_min": 1.0}
    for backend in BACKENDS:
        encoder = load_encoder(ref, backend)  # type: ignore[arg-type]
        # warm-up: lazy tokenizer, first-run allocations (8 passages; fewer in a smoke run)
        encoder.encode_passages(passages[:max(1, min(8, len(passages) // 4))])
        start = time.perf_counter()
        vectors = encoder.encode_passages(passages)
        seconds = time.perf_counter() - start
        cosine = (vectors * baseline).sum(axis=1)
        runs[f"semsearch {backend}"] = {"seconds": seconds, "cosine_min": float(cosine.min()),
                                        "cosine_mean": float(cosine.mean())}
    base = runs["sentence-transformers encode (baseline)"]["seconds"]
    for run in runs.values():
        run["passages_per_s"] = len(passages) / run["seconds"]
        run["speedup"] = base / run["seconds"]
    return runs


def quality_per_backend(files: list[Path] | None = None, max_queries: int | None = None,
                        backends: tuple[str, ...] = BACKENDS) -> dict[str, dict[str, float]]:
    """Hybrid and dense metrics of the seeds index (or an index of some seed `files`, with the
    labelled queries about them) built with each backend."""
    import semsearch
    from semsearch import bench

    queries = bench.load_qrels(bench.DEFAULT_QRELS)
    if files is not None:
        names = {f.name for f in files}
        queries = [q for q in queries if any(r[0] in names for r in q.relevant)]
    queries = queries[:max_queries]
    out = {}
    for backend in backends:
        index = semsearch.build(files or [REPO / "seeds"], encoder=backend)  # type: ignore[arg-type]
        metrics = bench.evaluate(index, queries, modes=("dense", "hybrid"))["metrics"]
        out[backend] = {f"{mode} {m}": metrics[mode][m] for mode in metrics
                        for m in ("recall@5", "mrr@10", "ndcg@10")}
    return out


def cold_cli(runs: int, index_path: Path) -> dict[str, Any]:
    """Median wall time of a cold `semsearch query` per backend (new process each time)."""
    exe = [sys.executable, "-m", "semsearch.cli", "query", QUERY, "--json", "--index",
           str(index_path)]
    out: dict[str, Any] = {}
    for label, backend in (("sentence-transformers (baseline)", "torch"), ("onnx", "auto")):
        env = {**os.environ, "SEMSEARCH_ENCODER": backend, "HF_HUB_OFFLINE": "1"}
        times, top = [], []
        for _ in range(runs):
            start = time.perf_counter()
            result = subprocess.run(exe, capture_output=True, text=True, env=env, check=True)
            times.append(time.perf_counter() - start)
            top = [h["source"] + f":{h['paragraph']}" for h in json.loads(result.stdout)["hits"]]
        out[label] = {"median_s": statistics.median(times), "runs_s": times, "top5": top}
    base = out["sentence-transformers (baseline)"]["median_s"]
    for run in out.values():
        run["speedup"] = base / run["median_s"]
    return out


def top5_agreement(index_path: Path, max_queries: int | None = None) -> dict[str, Any]:
    """Do the ONNX and torch query encoders give the same top 5 on every labelled query?"""
    import semsearch
    from semsearch import bench
    from semsearch.models.encoder import load_encoder
    from semsearch.models.resolve import resolve

    queries = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)][:max_queries]
    index = semsearch.load(index_path)
    results = {}
    for backend in ("torch", "onnx"):
        index._encoder = load_encoder(resolve(), backend)  # type: ignore[arg-type]
        for mode in ("dense", "hybrid"):
            hits = index.search_batch(queries, 5, mode)  # type: ignore[arg-type]
            results[backend, mode] = [[(h.source, h.start) for h in row] for row in hits]
    same = {mode: sum(a == b for a, b in zip(results["torch", mode], results["onnx", mode],
                                              strict=True))
            for mode in ("dense", "hybrid")}
    return {"queries": len(queries), "identical_top5": same}


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "encoders.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    lines = [f"Measured {report['date']} on {report['cpus']} CPUs; ratios are against the "
             "baseline measured in the same run.", "",
             f"Indexing {report['passages']} seed passages:", "",
             "| encoder | passages/s | speedup | min cosine vs baseline |", "|---|---|---|---|"]
    for name, run in report["throughput"].items():
        lines.append(f"| {name} | {run['passages_per_s']:.1f} | {run['speedup']:.2f}× | "
                     f"{run['cosine_min']:.5f} |")
    lines += ["", "Retrieval quality of the seeds index built with each backend:", "",
              "| backend | " + " | ".join(next(iter(report["quality"].values()))) + " |",
              "|---|" + "---|" * len(next(iter(report["quality"].values())))]
    for backend, metrics in report["quality"].items():
        lines.append(f"| {backend} | " + " | ".join(f"{v:.3f}" for v in metrics.values()) + " |")
    lines += ["", f"Cold `semsearch query \"{QUERY}\"` (median of {report['cli_runs']} runs):", "",
              "| query encoder | wall s | speedup |", "|---|---|---|"]
    for name, run in report["cold_cli"].items():
        lines.append(f"| {name} | {run['median_s']:.2f} | {run['speedup']:.1f}× |")
    agree = report["top5"]
    lines += ["", f"ONNX vs torch query encoder, identical top 5 on {agree['queries']} labelled "
              f"queries: dense {agree['identical_top5']['dense']}, "
              f"hybrid {agree['identical_top5']['hybrid']}.", ""]
    (out / "encoders.md").write_text("\n".join(lines), encoding="utf-8")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["throughput"])
    values = [report["throughput"][n]["passages_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(names, values, color=["#999"] + ["#3b7dd8"] * (len(names) - 1))
    ax.set_xlabel("passages / s (higher is better)")
    ax.set_title(f"Encoding throughput, {report['passages']} seed passages, {report['cpus']} CPUs")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.0f}", va="center")
    fig.tight_layout()
    fig.savefig(out / "encoders.png", dpi=120)


def main() -> None:
    from semsearch.stores import DEFAULT_INDEX

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                        help="8 passages, 1 cold run, 8 queries, quality on 1 file: checks it runs")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX,
                        help="index to query and take passages from (default: the seeds index)")
    parser.add_argument("--out", type=Path, help="directory for encoders.{json,md,png} "
                        "(default: benchmarks/results; with --smoke a new temporary directory)")
    args = parser.parse_args()
    max_queries, quality_files, quality_backends = None, None, BACKENDS
    if args.smoke:
        args.passages, args.cli_runs, max_queries = 8, 1, 8
        quality_files, quality_backends = sorted((REPO / "seeds").glob("*.txt"))[:1], ("onnx",)
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    args.out = output_dir(args.out, args.smoke, "encoders")
    if args.passages < 8 or args.cli_runs < 1:
        parser.error("--passages must be at least 8 and --cli-runs at least 1")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()

    def log(step: str, result: Any) -> None:
        print(f"[{time.perf_counter() - started:.0f} s] {step}", result, flush=True)

    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
        "passages": args.passages, "cli_runs": args.cli_runs,
    }
    report["cold_cli"] = cold_cli(args.cli_runs, args.index)
    log("cold CLI", {k: round(v["median_s"], 2) for k, v in report["cold_cli"].items()})
    report["throughput"] = throughput(seed_passages(args.passages, args.index))
    log("throughput", {k: round(v["passages_per_s"], 1) for k, v in report["throughput"].items()})
    report["top5"] = top5_agreement(args.index, max_queries)
    log("top5", report["top5"])
    report["quality"] = quality_per_backend(quality_files, max_queries, quality_backends)
    log("quality", report["quality"])
    write(report, args.out)
    print("wrote", args.out / "encoders.md")


if __name__ == "__main__":
    main()
