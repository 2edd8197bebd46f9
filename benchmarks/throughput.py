"""ONNX encoder throughput on real text: each variant against the fp32 baseline, in one run.

    python3 benchmarks/throughput.py [--passages 384] [--rounds 3] [--quality seeds,cmrc-trial]
                                     [--smoke] [--out DIR]

Text: the passages semsearch's indexing makes (same cleaning and splitting, 256-token budget)
of the public Wikipedia paragraphs in benchmarks/data (CMRC 2018 trial, DRCD test; see
SOURCES.md) and of seeds/*.txt, a fixed sample of `--passages` of them, mixed; queries: the
labelled seed queries and a sample of the sets' questions (1,500 in all).

Variants (int8 and fused bodies are built from the provisioned `onnx/model.onnx` into a
temporary directory):

- `fp32` (the baseline): the export as provisioned, batches of 32 length-sorted texts — the
  default before token budgets; `fp32-tok<N>`: batched by a budget of N padded tokens instead
  (at most 32 texts; the default is now 2048: `encoder.BATCH_TOKENS`);
  `fp32-nospin`: onnxruntime's idle threads do not busy-wait (`session.intra_op.allow_spinning`).
- `fp32-fused`: onnxruntime's transformer optimiser applied (`fuse_body`).
- `int8-tensor`: int8 weights as the `onnx-int8` backend shipped them before issue 15
  (per-tensor scales); `int8-channel`: per-output-channel scales, full int8 range;
  `int8-channel-fused`: the same on the fused graph; `int8-checked`: the int8 body provisioning
  now ships (per-channel, the FFN output products of the outlier layers kept fp32: see
  models/provision/export.py).
- `default`: what `semsearch index` encodes passages with now
  (`load_encoder(for_indexing=True)`); its retrieval quality is measured as a user gets it:
  passages from it, queries from the fp32 body (what `semsearch query` loads).

Each round encodes the same passages with every variant, chunk by chunk (every variant
encodes a chunk of 128 passages, in rotating order, before the next chunk: load from other
processes on a shared machine then falls on all variants alike); the table
gives passages/s, tokens/s (real tokens, prompt and specials included, no padding) and achieved
GFLOPS (2 × weights per token plus attention, real tokens only) of each variant's best time: the
sum over chunks of the fastest round of that chunk, the least disturbed by other load; `× fp32`
is fp32's best time over the variant's (the JSON has each round's time and the median per-round
ratio too). Equivalence: the minimum cosine of each variant's
vectors against `fp32`'s over the passages and the queries. Retrieval quality (`--quality`):
Recall@5 and MRR@10 of dense and hybrid search on each named set (seeds, cmrc-trial,
drcd-test) for the baseline, the default and the int8 variants, built with that variant's
encoder, with the minimum cosine over all of that set's passages too; a variant is "within"
when no metric is more than TOLERANCE below fp32's (a gain is not a loss of quality).

Writes throughput.{json,md} to benchmarks/results/ (or `--out`). `--smoke` (24 passages, 1
round, no retrieval quality unless `--quality` names sets; seconds) checks that the script runs
end to end and writes to a new temporary directory unless `--out` is given: its numbers mean
nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.search import Mode

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SEEDS_DIR = REPO / "seeds"
QUALITY_MODES: tuple[Mode, ...] = ("dense", "hybrid")
CHUNK = 128  # passages each variant encodes in turn (see `throughput`)
QUERIES = 1500  # queries the cosines are measured on (all the seed queries among them)
TOLERANCE = 0.005  # Recall@5 / MRR@10 against fp32
MIN_COSINE = 0.999


@dataclass(frozen=True)
class Variant:
    name: str
    body: str  # "raw", "fused", "int8-tensor", "int8-channel", "int8-channel-fused",
    # "int8-checked", "default"
    batch_tokens: int | None = None
    threads: int | None = None
    spinning: bool | None = None
    quality: bool = False
    note: str = ""


VARIANTS = (
    Variant("fp32", "raw", quality=True, note="raw torch export, 32 texts a batch (baseline)"),
    Variant("fp32-tok2048", "raw", batch_tokens=2048, note="+ batches of ≤ 2048 padded tokens"),
    Variant("fp32-tok4096", "raw", batch_tokens=4096, note="+ batches of ≤ 4096 padded tokens"),
    Variant("fp32-nospin", "raw", spinning=False, note="+ idle threads do not busy-wait"),
    Variant("fp32-fused", "fused", note="transformer optimiser: fused attention, skip-LN, GELU"),
    Variant("int8-tensor", "int8-tensor", quality=True,
            note="int8 as `onnx-int8` shipped before: per-tensor weights"),
    Variant("int8-channel", "int8-channel", quality=True,
            note="int8, per-channel weights, full range (VNNI)"),
    Variant("int8-channel-fused", "int8-channel-fused",
            note="int8, per-channel weights, fused graph"),
    Variant("int8-checked", "int8-checked", batch_tokens=2048, quality=True,
            note="int8 as provisioning ships it now: per-channel, outlier layers' FFN out fp32"),
    Variant("default", "default", quality=True,
            note="what `semsearch index` encodes with now (queries: fp32)"),
)


# --- text ------------------------------------------------------------------------------------


def real_text(encoder: Any, passages: int, seed: int = 15) -> tuple[list[str], list[str]]:
    """A fixed mixed sample of `passages` real passages (as indexing cuts them) and all
    queries of the public sets and seeds."""
    from semsearch import bench, corpus
    from semsearch.passages import MAX_TOKENS, prepare

    budget = min(MAX_TOKENS, encoder.max_tokens - 16)
    pools: list[list[str]] = []
    queries: list[str] = []
    for name in bench.DATASETS:
        data = bench.load_dataset(name)
        prepared = prepare(bench.documents(data), encoder.count_tokens, budget)
        pools.append([p.text for p in prepared.passages])
        queries += list(data.queries.values())
    seeds = corpus.scan([SEEDS_DIR]).documents
    pools.append([p.text for p in prepare(seeds, encoder.count_tokens, budget).passages])
    rng = random.Random(seed)
    # an equal share of each pool (all of a pool that has fewer), then shuffled together
    share = max(1, passages // len(pools))
    sample = [t for pool in pools for t in rng.sample(pool, min(share, len(pool)))]
    rest = [t for pool in pools for t in pool if t not in set(sample)]
    sample += rng.sample(rest, max(0, min(passages - len(sample), len(rest))))
    rng.shuffle(sample)
    seed_queries = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)]
    others = rng.sample(queries, min(len(queries), max(0, QUERIES - len(seed_queries))))
    return sample[:passages], seed_queries + [q for q in others if q not in seed_queries]


# --- variants --------------------------------------------------------------------------------


def build_bodies(model_dir: Path, work: Path, names: set[str]) -> dict[str, Path]:
    """The model bodies the variants need, made from the raw export in `work`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from semsearch.models import onnx

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    raw = model_dir / onnx.ONNX_DIR / onnx.BODY
    bodies = {"raw": raw, "int8-checked": model_dir / onnx.ONNX_DIR / onnx.BODY_INT8}
    if not onnx.has_checked_int8(model_dir):
        raise SystemExit("the provisioned int8 body predates the checked scheme: run "
                         "`semsearch provision`")
    if names & {"fused", "int8-channel-fused"}:
        bodies["fused"] = work / "fused.onnx"
        fuse_body(raw, bodies["fused"], heads=int(config["num_attention_heads"]),
                  hidden=int(config["hidden_size"]))
    if "int8-tensor" in names:  # as `export_onnx` quantised before issue 15
        bodies["int8-tensor"] = work / "int8-tensor.onnx"
        quantize_dynamic(str(raw), str(bodies["int8-tensor"]), weight_type=QuantType.QInt8)
    if "int8-channel" in names:
        bodies["int8-channel"] = work / "int8-channel.onnx"
        quantize_per_channel(raw, bodies["int8-channel"])
    if "int8-channel-fused" in names:
        bodies["int8-channel-fused"] = work / "int8-channel-fused.onnx"
        quantize_per_channel(bodies["fused"], bodies["int8-channel-fused"])
    return bodies


def fuse_body(raw: Path, dest: Path, *, heads: int, hidden: int) -> None:
    """onnxruntime's transformer optimiser on the body: attention, skip-LayerNorm and bias-GELU
    fused into single kernels (onnxruntime's own graph optimisation, at session load, already
    fuses GELU and LayerNorm but not attention). Checked against the raw body on a padded batch."""
    import logging

    import onnxruntime as ort
    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    model = optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden,
                           opt_level=0, use_gpu=False)
    if not (model.get_fused_operator_statistics() or {}).get("Attention"):
        raise SystemExit("the transformer optimiser fused no attention in this model")
    model.save_model_to_file(str(dest))
    rng = np.random.default_rng(0)
    mask = np.ones((2, 7), dtype=np.int64)
    mask[1, 4:] = 0
    feed = {"inputs_embeds": (rng.standard_normal((2, 7, hidden)) * 0.05).astype(np.float32),
            "attention_mask": mask}
    a, b = (ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
            * mask[..., None] for path in (raw, dest))
    if not np.allclose(a, b, atol=1e-3):
        raise SystemExit("the fused body's outputs differ from the raw body's")


def quantize_per_channel(src: Path, dest: Path) -> None:
    """int8 dynamic quantisation with per-output-channel weight scales and the full int8 range
    (onnxruntime runs the u8 × s8 products on VNNI)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=False,
                     # the fused Attention op is outside shape inference's domain
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})


class TimedSession:
    """An onnxruntime session that adds up the seconds spent in `run`."""

    def __init__(self, session: Any) -> None:
        self.session, self.seconds = session, 0.0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.session.run(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def make_encoder(variant: Variant, model_dir: Path, bodies: dict[str, Path]) -> Any:
    from semsearch.models.encoder import BATCH_SIZE, OnnxEncoder, load_encoder
    from semsearch.models.onnx import OnnxRunner
    from semsearch.models.resolve import resolve

    default = load_encoder(resolve(), for_indexing=variant.body == "default")
    if variant.body != "default":
        runner = OnnxRunner.open(model_dir, threads=variant.threads, spinning=variant.spinning,
                                 body_name=str(bodies[variant.body]))
        runner._tokenizer = default.runner._tokenizer  # type: ignore[attr-defined]
        default = OnnxEncoder(info=default.info, runner=runner, max_tokens=runner.max_tokens,
                              backend=variant.name, batch_size=BATCH_SIZE,
                              batch_tokens=variant.batch_tokens)
    default.runner.session = TimedSession(default.runner.session)  # type: ignore[attr-defined]
    return default


# --- measurements ----------------------------------------------------------------------------


def flops_per_text(config: dict[str, Any], tokens: int) -> float:
    """Multiply-adds × 2 of one text of `tokens` tokens through the encoder body: the weight
    matrices (4h² + 2h·ffn per layer per token) plus attention scores and mixing (4·n²·h)."""
    h, ffn, layers = (int(config["hidden_size"]), int(config["intermediate_size"]),
                      int(config["num_hidden_layers"]))
    return float(layers * (2 * tokens * (4 * h * h + 2 * h * ffn) + 4 * tokens * tokens * h))


def throughput(encoders: dict[str, Any], passages: list[str], rounds: int,
               config: dict[str, Any], chunk: int = CHUNK) -> dict[str, Any]:
    """Seconds of each variant over `passages`, interleaved finely: every variant encodes one
    chunk of passages before the next chunk, so load from other processes falls on all."""
    lengths = [len(x) for x in next(iter(encoders.values())).runner.ids(
        ["passage: " + t for t in passages])]
    tokens = sum(lengths)
    flops = sum(flops_per_text(config, n) for n in lengths)
    names = list(encoders)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    in_ort: dict[str, list[float]] = {n: [] for n in names}
    for name in names:
        encoders[name].encode_passages(passages[:8])  # warm: allocator, thread pool, tokenizer
    chunks = range(0, len(passages), chunk)
    best = {(n, c): float("inf") for n in names for c in chunks}  # each chunk's best round
    turn = 0
    for r in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for enc in encoders.values():
            enc.runner.session.seconds = 0.0
        for begin in chunks:
            part = passages[begin : begin + chunk]
            turn += 1
            for name in names[turn % len(names):] + names[: turn % len(names)]:
                started = time.perf_counter()
                encoders[name].encode_passages(part)
                took = time.perf_counter() - started
                spent[name] += took
                best[name, begin] = min(best[name, begin], took)
        for name in names:
            seconds[name].append(spent[name])
            in_ort[name].append(encoders[name].runner.session.seconds / spent[name])
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {spent[n]:.1f} s" for n in names),
              flush=True)
    fastest = {n: sum(best[n, c] for c in chunks) for n in names}
    out = {}
    for name in names:
        ratios = [b / s for b, s in zip(seconds["fp32"], seconds[name], strict=True)]
        out[name] = {"seconds": [round(s, 3) for s in seconds[name]],
                     "best_seconds": round(fastest[name], 3),
                     "passages_per_s": round(len(passages) / fastest[name], 2),
                     "tokens_per_s": round(tokens / fastest[name], 1),
                     "gflops": round(flops / fastest[name] / 1e9, 1),
                     "speedup_vs_fp32": round(fastest["fp32"] / fastest[name], 3),
                     "median_round_speedup_vs_fp32": round(statistics.median(ratios), 3),
                     "share_in_onnxruntime": round(statistics.median(in_ort[name]), 3)}
    return {"passages": len(passages), "tokens": tokens, "rounds": rounds, "chunk": chunk,
            "mean_tokens": round(tokens / len(passages), 1), "variants": out}


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


@contextlib.contextmanager
def encoder_for_indexing(encoder: Any, queries: Any = None) -> Iterator[list[np.ndarray]]:
    """Make index builds use `encoder` (and `queries`, if given, for the queries); yields the
    list each passage batch's vectors go to."""
    from semsearch import index

    seen: list[np.ndarray] = []

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(encoder, name)

        def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
            return (queries or encoder).encode_queries(texts)

        def encode_passages(self, texts: Sequence[str], progress: Any = None) -> np.ndarray:
            vectors = encoder.encode_passages(texts, progress)
            seen.append(vectors)
            return vectors

    original = index.load_encoder
    index.load_encoder = lambda *args, **kwargs: Recording()  # type: ignore[assignment]
    try:
        yield seen
    finally:
        index.load_encoder = original


def retrieval(encoder: Any, dataset: str,
              queries: Any = None) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """Recall@5 / MRR@10 per mode of an index built with `encoder` (queries encoded by
    `queries` if given), and the passage vectors."""
    from semsearch import bench
    from semsearch.index import Index

    with encoder_for_indexing(encoder, queries) as seen, warnings.catch_warnings():
        warnings.simplefilter("ignore", bench.LabelWarning)
        if dataset == bench.SEEDS:
            index = Index.build([SEEDS_DIR])
            got = bench.evaluate(index, bench.load_qrels(bench.DEFAULT_QRELS),
                                 QUALITY_MODES)["metrics"]
        else:
            data = bench.load_dataset(dataset)
            index = bench.build_index(data)
            runs: dict[str, bench.RecordRun] = {
                m: bench.record_run(index, data.queries, m) for m in QUALITY_MODES}
            got = bench.score_runs(data, runs)
    metrics: dict[str, dict[str, float]] = {
        m: {"recall@5": got[m]["recall@5"], "mrr@10": got[m]["mrr@10"]} for m in QUALITY_MODES}
    return metrics, np.vstack(seen)


# --- report ----------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    t = results["throughput"]
    lines = [f"ONNX encoder throughput on {t['passages']} real passages ({t['tokens']} tokens, "
             f"{t['mean_tokens']} a passage: CMRC 2018 trial, DRCD test, seeds), "
             f"{results['machine']}; best of {t['rounds']} rounds per chunk of {t['chunk']} "
             "passages, ratios against `fp32` in the same run. Min cosine: against `fp32` "
             f"over these passages and {results['queries']} queries (and every passage of "
             "the quality sets).", "",
             "| variant | passages/s | tokens/s | GFLOPS | × fp32 | in ORT | min cosine | note |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in t["variants"].items():
        lines.append(f"| {name} | {row['passages_per_s']:.1f} | {row['tokens_per_s']:.0f} | "
                     f"{row['gflops']:.0f} | {row['speedup_vs_fp32']:.2f} | "
                     f"{row['share_in_onnxruntime']:.0%} | {results['min_cosine'][name]:.5f} | "
                     f"{results['notes'][name]} |")
    if results["quality"]:
        lines += ["", f"Retrieval quality (Recall@5 / MRR@10; a faster default may lose at most "
                  f"{TOLERANCE} of fp32's on any of them):", "",
                  "| set | variant | dense R@5 | dense MRR@10 | hybrid R@5 | hybrid MRR@10 "
                  "| min cosine | within |", "|---|---|---|---|---|---|---|---|"]
        for dataset, per in results["quality"].items():
            for name, row in per.items():
                m = row["metrics"]
                lines.append(f"| {dataset} | {name} | {m['dense']['recall@5']:.4f} | "
                             f"{m['dense']['mrr@10']:.4f} | {m['hybrid']['recall@5']:.4f} | "
                             f"{m['hybrid']['mrr@10']:.4f} | {row['min_cosine']:.5f} | "
                             f"{'yes' if row['within_tolerance'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality", default=None,
                        help="comma-separated sets for retrieval quality (seeds, cmrc-trial, "
                             "drcd-test), or 'none' (default seeds,cmrc-trial; none with "
                             "--smoke)")
    parser.add_argument("--variants", help="comma-separated subset of the variants (fp32 is "
                                           "always run)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny run (seconds): checks the script, numbers mean nothing")
    parser.add_argument("--out", type=Path, help="directory for throughput.{json,md} "
                                                 "(default benchmarks/results/)")
    args = parser.parse_args()
    if args.smoke:
        args.passages, args.rounds = 24, 1
    if args.quality is None:
        args.quality = "none" if args.smoke else "seeds,cmrc-trial"
    from outputs import output_dir, publish  # benchmarks/outputs.py, beside this script

    out_dir = output_dir(args.out, args.smoke, "throughput")

    from semsearch.models.encoder import load_encoder
    from semsearch.models.resolve import resolve

    model_dir = Path(resolve().location)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    chosen = [v for v in VARIANTS if v.name == "fp32" or args.variants is None
              or v.name in args.variants.split(",")]
    passages, queries = real_text(load_encoder(resolve(), "onnx"), args.passages)
    if args.smoke:
        queries = queries[:8]
    with tempfile.TemporaryDirectory(prefix="throughput-") as work:
        bodies = build_bodies(model_dir, Path(work), {v.body for v in chosen})
        encoders = {v.name: make_encoder(v, model_dir, bodies) for v in chosen}
        print(f"{len(passages)} passages, {len(queries)} queries, {args.rounds} rounds", flush=True)
        table = throughput(encoders, passages, args.rounds, config)
        reference = {"passages": encoders["fp32"].encode_passages(passages),
                     "queries": encoders["fp32"].encode_queries(queries)}
        cosine = {name: min(min_cosine(reference["passages"], enc.encode_passages(passages)),
                            min_cosine(reference["queries"], enc.encode_queries(queries)))
                  for name, enc in encoders.items()}
        quality: dict[str, dict[str, Any]] = {}
        for dataset in [d for d in args.quality.split(",") if d and d != "none"]:
            per: dict[str, Any] = {}
            for v in [v for v in chosen if v.quality]:
                print(f"  quality {dataset} {v.name}", flush=True)
                metrics, vectors = retrieval(encoders[v.name], dataset, encoders["fp32"]
                                             if v.body == "default" else None)
                per[v.name] = {"metrics": metrics, "vectors": vectors}
            base = per["fp32"]
            for name, row in per.items():
                row["min_cosine"] = round(min_cosine(base["vectors"], row["vectors"]), 6)
                row["within_tolerance"] = all(
                    row["metrics"][m][k] >= base["metrics"][m][k] - TOLERANCE
                    for m in QUALITY_MODES for k in ("recall@5", "mrr@10"))
                cosine[name] = min(cosine[name], row["min_cosine"])
            for row in per.values():
                del row["vectors"]
            quality[dataset] = per
    results = {"machine": machine(), "queries": len(queries), "throughput": table,
               "min_cosine": {k: round(v, 6) for k, v in cosine.items()},
               "notes": {v.name: v.note for v in chosen},
               "bodies": {k: str(p.name) for k, p in bodies.items()}, "quality": quality,
               "smoke": args.smoke}
    publish(out_dir, "throughput", results, markdown(results), indent=2)


def machine() -> str:
    """The CPU a figure was measured on: model, the flags that change which encoder path runs
    (AMX, AVX-512 BF16, VNNI) and the CPU count (models/sessions.py reads the same)."""
    from semsearch.models.sessions import KEY_FLAGS, cpu_flags, cpu_name

    flags = [f for f in KEY_FLAGS if f in cpu_flags()]
    return f"{os.cpu_count()} CPUs ({cpu_name()}, {platform.machine()}: {' '.join(flags)})"


if __name__ == "__main__":
    main()
