"""Indexing at scale on real text: `semsearch index` against `SentenceTransformer.encode`.

    python3 benchmarks/indexing.py --sentences DIR [DIR ...] [--passages 100000]
                                   [--sample 384] [--rounds 2] [--smoke] [--out DIR]

Corpus (JSONL records, one passage each for the sentences): every Wikipedia paragraph of the
two public sets shipped in benchmarks/data (CMRC 2018 trial, DRCD test; CC BY-SA 4.0, see
SOURCES.md), then distinct sentences from the public Chinese sentence-pair corpora in the
checkouts given with `--sentences`, in a fixed order (files as listed below, lines in file
order), up to `--passages` records — at 100,000 SimCLUE's files alone fill the corpus:

- CLUEbenchmark/SimCLUE (https://github.com/CLUEbenchmark/SimCLUE, commit 96bdefe):
  datasets/test_public.json, train_pair_1w.json, train_pair_postive_1w.json,
  train_rank_1w.json, triclue_small/{train,dev,test}.json, corpus_1w.txt. The repository has
  no license file; its README describes a merge of public similarity and NLI sets.
- shibing624/text2vec (https://github.com/shibing624/text2vec, Apache-2.0, commit 8e90a0f):
  examples/data/STS-B/STS-B.{train,valid,test}.data, SOHU/{dc,dd}-test.jsonl.

They are read as text to time the indexer, never shipped; `git clone` them (any machine with
GitHub access) and pass the two directories.

One run reports:
1. Encoder throughput on the same passages (a fixed sample of `--sample` Wikipedia passages
   as semsearch cuts them, and as many sentences), best of `--rounds` interleaved rounds:
   `SentenceTransformer.encode` (torch, batch 32, its defaults) — the baseline — against
   semsearch's encoder as `semsearch index` runs it, with `--workers 2`, and the int8 export;
   tokens/s (real tokens, prompt included), passages/s, achieved GFLOPS against the CPU's peak
   (cores × nominal clock × 32 fp32 FMAs a cycle) and against a large fp32 GEMM measured here.
2. `semsearch index` end to end on the whole corpus in a fresh process: seconds, passages/s,
   tokens/s, peak RSS (the kernel's high-water mark, read every 0.2 s), index size on disk.
3. The same command killed with SIGKILL once half its checkpoint chunks are on disk, then run
   again: passages resumed, and whether the index equals the uninterrupted one (passages,
   vectors bit for bit, BM25 answers).
4. Query latency at that size (warm, in-process): p50/p99 per mode over real questions.

`--granularity sentence` builds sentence vectors too (issue 35), kills at half of all the
checkpointed texts (passages and sentences), also compares the sentence rows, the sentence
vectors bit for bit and the dense hits with their best sentences, and writes
indexing-sentences.{json,md,png} instead.
Writes indexing.{json,md,png} to benchmarks/results/ (or `--out`); `--smoke` (a few hundred
passages from the shipped sets alone, seconds) checks the script end to end into a temporary
directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from outputs import output_dir  # benchmarks/outputs.py, beside this script
from throughput import flops_per_text, machine

SENTENCE_FILES = {
    "SimCLUE": ["datasets/test_public.json", "datasets/train_pair_1w.json",
                "datasets/train_pair_postive_1w.json", "datasets/train_rank_1w.json",
                "datasets/triclue_small/train.json", "datasets/triclue_small/dev.json",
                "datasets/triclue_small/test.json", "datasets/corpus_1w.txt"],
    "text2vec": ["examples/data/STS-B/STS-B.train.data", "examples/data/STS-B/STS-B.valid.data",
                 "examples/data/STS-B/STS-B.test.data", "examples/data/SOHU/dc-test.jsonl",
                 "examples/data/SOHU/dd-test.jsonl"],
}
NOT_TEXT = {"id", "label", "score"}
QUERIES = 300  # questions timed at the end
SAMPLE_EVERY = 0.2  # seconds between RSS samples


# --- corpus ----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in NOT_TEXT:
                yield from _strings(item)


def sentences(path: Path) -> Iterator[str]:
    """The texts of one corpus file: string fields of JSON lines, the two sentence columns of
    STS-B's tab-separated `.data`, or lines of a `.txt`."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if path.suffix in (".json", ".jsonl"):
            try:
                yield from _strings(json.loads(line))
            except json.JSONDecodeError:
                continue
        elif path.suffix == ".data":
            yield from line.split("\t")[:2]
        else:
            yield line


def find_files(dirs: Sequence[Path]) -> list[tuple[str, Path]]:
    """(corpus name, file) of every expected file under the given checkouts."""
    found: list[tuple[str, Path]] = []
    for name, files in SENTENCE_FILES.items():
        for directory in dirs:
            if all((directory / f).is_file() for f in files):
                found += [(name, directory / f) for f in files]
                break
        else:
            if dirs:
                raise SystemExit(f"no checkout of {name} among {', '.join(map(str, dirs))} "
                                 f"(it needs {files[0]} …)")
    return found


def write_corpus(dirs: Sequence[Path], limit: int, dest: Path) -> dict[str, Any]:
    """JSONL records: the shipped Wikipedia paragraphs, then distinct sentences, up to
    `limit` records; returns what went in from where."""
    from semsearch import bench

    seen: set[str] = set()
    counts: dict[str, int] = {}
    with dest.open("w", encoding="utf-8") as out:
        def put(text: str, origin: str) -> None:
            text = text.strip()
            if len(text) < 2 or text in seen or len(seen) >= limit:
                return
            seen.add(text)
            counts[origin] = counts.get(origin, 0) + 1
            out.write(json.dumps({"id": len(seen), "text": text}, ensure_ascii=False) + "\n")

        for name in ("cmrc-trial", "drcd-test"):
            for text in bench.load_dataset(name).records.values():
                put(text, f"{name} (Wikipedia paragraphs)")
        for name, path in find_files(dirs):
            for text in sentences(path):
                put(text, f"{name} sentences")
    return {"records": len(seen), "from": counts}


# --- encoder throughput ----------------------------------------------------------------------


def sample_passages(corpus: Path, size: int, encoder: Any, seed: int = 15) -> list[str]:
    """`size` Wikipedia passages as semsearch cuts them and `size` sentences, shuffled."""
    from semsearch import corpus as corpus_module
    from semsearch.passages import MAX_TOKENS, prepare

    documents = corpus_module.scan([corpus], options=corpus_module.Options(
        text_field="text", id_field="id")).documents
    wiki = [d for d in documents if len(d.text) > 120]
    short = [d for d in documents if len(d.text) <= 120]
    rng = random.Random(seed)
    budget = min(MAX_TOKENS, encoder.max_tokens - 16)
    long_passages = [p.text for p in prepare(wiki, encoder.count_tokens, budget).passages]
    picked = rng.sample(long_passages, min(size, len(long_passages)))
    picked += [d.text for d in rng.sample(short, min(size, len(short)))]
    rng.shuffle(picked)
    return picked


def cpu_peak() -> dict[str, Any]:
    """Theoretical fp32 peak (cores × clock × 2 AVX-512 FMA units × 16 lanes × 2) and a large
    fp32 matrix product measured with onnxruntime here (MLAS, the kernels the encoder uses)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    m, k, n = 4096, 384, 1536  # an encoder FFN product at 4096 tokens
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
        [helper.make_tensor("b", TensorProto.FLOAT, [k, n],
                            np.random.default_rng(0).standard_normal(k * n).tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    session.run(None, {"a": a})
    best = float("inf")
    for _ in range(20):
        started = time.perf_counter()
        session.run(None, {"a": a})
        best = min(best, time.perf_counter() - started)
    theoretical = cores * mhz * 1e6 * 64 / 1e9 if mhz else None
    return {"cores": cores, "mhz": mhz, "gemm_fp32_gflops": round(2 * m * k * n / best / 1e9),
            "theoretical_fp32_gflops": theoretical and round(theoretical),
            "onnx": onnx.__version__}


def throughput(encoders: dict[str, Callable[[list[str]], Any]], passages: list[str],
               tokens: int, flops: float, rounds: int) -> dict[str, Any]:
    """Best seconds of each encoder over `passages`, rounds interleaved (load from other
    processes falls on all alike)."""
    for encode in encoders.values():
        encode(passages[:8])  # warm: threads, allocator, tokenizer
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    for r in range(rounds):
        names = list(encoders)
        for name in names[r % len(names):] + names[: r % len(names)]:
            started = time.perf_counter()
            encoders[name](passages)
            seconds[name].append(time.perf_counter() - started)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {s[-1]:.1f} s" for n, s in seconds.items()), flush=True)
    base = min(seconds["sentence-transformers"])
    return {name: {"seconds": [round(s, 2) for s in spent], "passages_per_s": round(
        len(passages) / min(spent), 1), "tokens_per_s": round(tokens / min(spent)),
        "gflops": round(flops / min(spent) / 1e9, 1), "x_sentence_transformers": round(
            base / min(spent), 2), "median_ratio": round(statistics.median(
                b / s for b, s in zip(seconds["sentence-transformers"], spent, strict=True)), 2)}
        for name, spent in seconds.items()}


def encoders_to_compare(model_dir: Path) -> tuple[dict[str, Callable[[list[str]], Any]], Any]:
    from sentence_transformers import SentenceTransformer

    from semsearch.models import parallel
    from semsearch.models.encoder import load_encoder

    st = SentenceTransformer(str(model_dir), device="cpu")
    prompt = st.prompts.get("passage", "")
    default = load_encoder(str(model_dir), for_indexing=True)  # what `semsearch index` uses
    fp32 = load_encoder(str(model_dir), "onnx")
    pool = parallel.pool_encoder(default, 2)
    return {
        "sentence-transformers": lambda texts: st.encode(
            [prompt + t for t in texts], batch_size=32, normalize_embeddings=True),
        "semsearch --encoder onnx (fp32)": fp32.encode_passages,
        f"semsearch index default ({default.backend})": default.encode_passages,
        f"semsearch index --workers 2 ({default.backend})": pool.encode_passages,
    }, pool


# --- end to end ------------------------------------------------------------------------------


GRANULARITY = "passage"  # --granularity of every `semsearch index` this run starts


def run_index(corpus: Path, out: Path, kill_at_chunks: int | None = None) -> dict[str, Any]:
    """`semsearch index` in a fresh process; peak RSS sampled and from the kernel; with
    `kill_at_chunks`, SIGKILL once that many checkpoint chunks are on disk."""
    command = [sys.executable, "-m", "semsearch.cli", "index", str(corpus), "--out", str(out),
               "--text-field", "text", "--id-field", "id", "--granularity", GRANULARITY]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    samples: list[tuple[float, float]] = []
    high = [0.0]  # the kernel's high-water mark of the process's RSS (VmHWM), as last read
    stop = threading.Event()

    def sample() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while not stop.is_set():
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
                now = time.perf_counter() - started
                samples.append((now, int(fields["VmRSS"].split()[0]) / 1024))
                high[0] = max(high[0], int(fields["VmHWM"].split()[0]) / 1024)
            except (OSError, KeyError, ValueError):  # the process is gone
                pass
            if kill_at_chunks is not None:
                checkpoint = out / ".checkpoint"
                if checkpoint.is_dir() and len(list(checkpoint.glob("chunk-*.npy"))) >= \
                        kill_at_chunks:
                    process.send_signal(signal.SIGKILL)
                    return
            stop.wait(SAMPLE_EVERY)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    process.wait()
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - started
    stderr = process.stderr.read() if process.stderr else ""
    killed = process.returncode == -signal.SIGKILL
    if process.returncode and not killed:
        raise SystemExit(f"semsearch index failed:\n{stderr[-3000:]}")
    # the peak is VmHWM, not wait4's ru_maxrss: a forked child starts with its parent's
    # (this script's, with two models loaded) maximum
    return {"seconds": round(seconds, 1), "killed": killed, "peak_rss_mb": round(
        max(high[0], *(s[1] for s in samples))) if samples else 0,
        "rss_mb": [(round(t, 1), round(m)) for t, m in samples[:: max(1, len(samples) // 400)]],
        "stderr_tail": " ".join(stderr.split())[-400:]}


def disk_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def same_index(a_dir: Path, b_dir: Path, queries: list[str]) -> dict[str, bool]:
    import semsearch

    a, b = semsearch.load(a_dir), semsearch.load(b_dir)
    ids = np.array(sorted(a.store.passages))
    same = {"passages": a.passages == b.passages,
            "vectors_bit_for_bit": bool(np.array_equal(a.store.vectors(ids), b.store.vectors(ids))),
            "bm25_answers": all(
                [h.id for h in x] == [h.id for h in y] for x, y in zip(
                    a.search_batch(queries[:50], k=10, mode="bm25"),
                    b.search_batch(queries[:50], k=10, mode="bm25"), strict=True))}
    ours, theirs = getattr(a.store, "sentences", None), getattr(b.store, "sentences", None)
    if ours is not None and theirs is not None:  # granularity "sentence"
        same["sentence_rows"] = bool(np.array_equal(ours.rows, theirs.rows))
        same["sentence_vectors_bit_for_bit"] = len(ours) == len(theirs) and bool(
            np.array_equal(ours.index.reconstruct_n(0, len(ours)),
                           theirs.index.reconstruct_n(0, len(theirs))))
        same["dense_answers_and_best_sentences"] = all(
            [h.to_dict() for h in x] == [h.to_dict() for h in y] for x, y in zip(
                a.search_batch(queries[:50], k=10, mode="dense"),
                b.search_batch(queries[:50], k=10, mode="dense"), strict=True))
    return same


def latency(index_dir: Path, queries: list[str]) -> dict[str, dict[str, float]]:
    import semsearch

    index = semsearch.load(index_dir)
    out: dict[str, dict[str, float]] = {}
    for mode in ("dense", "bm25", "hybrid"):
        index.search(queries[0], k=10, mode=mode)  # type: ignore[arg-type]
        times = []
        for query in queries:
            started = time.perf_counter()
            index.search(query, k=10, mode=mode)  # type: ignore[arg-type]
            times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                     "p99_ms": round(float(np.percentile(times, 99)), 2)}
    return out


# --- report ----------------------------------------------------------------------------------


def markdown(r: dict[str, Any]) -> str:
    t, peak = r["throughput"], r["peak"]
    lines = [f"Indexing on real text ({r['machine']}; {r['date']}). Corpus: "
             f"{r['corpus']['records']:,} records → {r['index']['passages']:,} passages "
             f"({r['index']['tokens']:,} tokens): " + ", ".join(
                 f"{n:,} {k}" for k, n in r["corpus"]["from"].items()) + ".", "",
             f"Encoder throughput on the same {t['passages']} passages ({t['tokens']:,} "
             f"tokens, half Wikipedia passages, half sentences), best of {t['rounds']} "
             "interleaved rounds; GFLOPS against the CPU's fp32 peak "
             f"({peak['theoretical_fp32_gflops']} at the nominal clock, "
             f"{peak['gemm_fp32_gflops']} measured on one large GEMM):", "",
             "| encoder | passages/s | tokens/s | GFLOPS | % of GEMM peak "
             "| × sentence-transformers |",
             "|---|---|---|---|---|---|"]
    for name, row in t["encoders"].items():
        lines.append(f"| {name} | {row['passages_per_s']} | {row['tokens_per_s']:,} | "
                     f"{row['gflops']} | {100 * row['gflops'] / peak['gemm_fp32_gflops']:.0f}% | "
                     f"{row['x_sentence_transformers']:.2f} |")
    i, k = r["index"], r["resume"]
    lines += ["", "`semsearch index` end to end on the whole corpus (fresh process, model "
              "loading included):", "",
              "| passages | seconds | passages/s | tokens/s | peak RSS | index on disk |",
              "|---|---|---|---|---|---|",
              f"| {i['passages']:,} | {i['seconds']} | {i['passages_per_s']} | "
              f"{i['tokens_per_s']:,} | {i['peak_rss_mb']:,} MB | {i['disk_mb']} MB |", "",
              *([f"`--granularity sentence`: {i['sentence_vectors']:,} sentence vectors beside "
                 "the passage vectors.", ""] if i.get("sentence_vectors") else []),
              f"Killed with SIGKILL after {k['killed_after_s']} s ({k['chunks_at_kill']} "
              f"checkpoint chunks on disk), then rerun: {k['resumed']:,} passages resumed, "
              f"the rerun took {k['rerun_seconds']} s; equal to the uninterrupted index: "
              + ", ".join(f"{n} {'yes' if v else 'NO'}" for n, v in k["same"].items()) + ".", "",
              f"Query latency at {i['passages']:,} passages (warm, in-process, k=10, "
              f"{r['queries']} real questions):", "", "| mode | p50 ms | p99 ms |",
              "|---|---|---|"]
    for mode, row in r["latency"].items():
        lines.append(f"| {mode} | {row['p50_ms']} | {row['p99_ms']} |")
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    rows = r["throughput"]["encoders"]
    names = list(rows)
    left.barh(names, [rows[n]["tokens_per_s"] for n in names], color="#4c72b0")
    for y, n in enumerate(names):
        left.text(rows[n]["tokens_per_s"], y, f" {rows[n]['x_sentence_transformers']:.2f}×",
                  va="center")
    target = 3 * rows["sentence-transformers"]["tokens_per_s"]
    left.axvline(target, color="grey", linestyle="--", linewidth=1,
                 label="3× sentence-transformers")
    left.legend(loc="lower right")
    left.set_xlabel("tokens/s (same passages, same run)")
    left.invert_yaxis()
    for label, run in (("uninterrupted", r["index"]), ("killed, then resumed", r["resume"])):
        if run.get("rss_mb"):
            t, m = zip(*run["rss_mb"], strict=True)
            right.plot(t, m, label=label)
    right.axhline(1536, color="grey", linestyle="--", linewidth=1, label="1.5 GB")
    right.set_xlabel("seconds")
    right.set_ylabel("RSS MB")
    right.set_title(f"semsearch index, {r['index']['passages']:,} passages")
    right.legend()
    fig.tight_layout()
    fig.savefig(dest, dpi=110)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=Path, nargs="*", default=[],
                        help="checkouts of CLUEbenchmark/SimCLUE and shibing624/text2vec")
    parser.add_argument("--passages", type=int, default=100_000, help="records in the corpus")
    parser.add_argument("--sample", type=int, default=384,
                        help="Wikipedia passages (and as many sentences) timed per encoder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the script")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--granularity", choices=("passage", "sentence"), default="passage",
                        help="what `semsearch index` builds (sentence: issue 35's sentence "
                             "vectors too)")
    args = parser.parse_args()
    global GRANULARITY
    GRANULARITY = args.granularity
    if args.smoke:
        args.passages, args.sample, args.rounds, args.sentences = 300, 8, 1, []
    elif not args.sentences:
        parser.error("give --sentences SIMCLUE_DIR TEXT2VEC_DIR (see the module docstring)")

    from semsearch import bench, checkpoint
    from semsearch.models.encoder import load_encoder
    from semsearch.models.resolve import resolve

    model_dir = Path(resolve().location)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    out_dir = output_dir(args.out, args.smoke, "indexing")
    queries = [q for name in bench.DATASETS for q in bench.load_dataset(name).queries.values()]
    queries = random.Random(0).sample(queries, min(QUERIES, len(queries)))
    with tempfile.TemporaryDirectory(prefix="indexing-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        made = write_corpus(args.sentences, args.passages, corpus)
        print(f"corpus: {made}", flush=True)
        encoder = load_encoder(str(model_dir))
        prompt = encoder.info.prompts.get("passage", "")

        def token_counts(texts: list[str]) -> list[int]:
            return [len(x) for x in encoder.runner.ids([prompt + t for t in texts])]

        sample = sample_passages(corpus, args.sample, encoder)
        lengths = token_counts(sample)
        flops = sum(flops_per_text(config, n) for n in lengths)
        peak = cpu_peak()
        compared, pool = encoders_to_compare(model_dir)
        with pool:
            table = throughput(compared, sample, sum(lengths), flops, args.rounds)
        del compared
        print(json.dumps(table, indent=1), flush=True)

        whole = run_index(corpus, work / "whole")
        import semsearch

        built = semsearch.load(work / "whole")
        texts = [p.text for p in built.passages]
        tokens = sum(token_counts(texts))
        held = getattr(built.store, "sentences", None)
        sentence_vectors = len(held) if held is not None else 0
        index = {**whole, "passages": len(texts), "tokens": tokens,
                 "sentence_vectors": sentence_vectors,
                 "passages_per_s": round(len(texts) / whole["seconds"], 1),
                 "tokens_per_s": round(tokens / whole["seconds"]),
                 "disk_mb": disk_mb(work / "whole")}
        print(f"index: {index['seconds']} s, {index['peak_rss_mb']} MB", flush=True)
        # the checkpoint's texts: passages, then (granularity sentence) their sentences
        chunks = -(-(len(texts) + sentence_vectors) // checkpoint.CHUNK)
        half = max(1, chunks // 2)
        killed = run_index(corpus, work / "resumed", kill_at_chunks=half)
        rerun = run_index(corpus, work / "resumed")
        resumed_line = rerun["stderr_tail"]
        resumed = 0
        if "resumed:" in resumed_line:
            resumed = int(resumed_line.split("resumed:")[1].split("passages")[0].strip()
                          .replace(",", ""))
        resume = {"killed_after_s": killed["seconds"], "was_killed": killed["killed"],
                  "chunks_at_kill": half, "chunk": checkpoint.CHUNK, "resumed": resumed,
                  "rerun_seconds": rerun["seconds"], "peak_rss_mb": max(
                      killed["peak_rss_mb"], rerun["peak_rss_mb"]),
                  "rss_mb": killed["rss_mb"] + [(t + killed["seconds"], m)
                                                for t, m in rerun["rss_mb"]],
                  "same": same_index(work / "whole", work / "resumed", queries)}
        times = latency(work / "whole", queries)
    results = {"machine": machine(),
               "date": time.strftime("%Y-%m-%d %H:%M"), "smoke": args.smoke, "corpus": made,
               "granularity": args.granularity,
               "peak": peak, "throughput": {"passages": len(sample), "tokens": sum(lengths),
                                            "rounds": args.rounds, "encoders": table},
               "index": index, "resume": resume, "queries": len(queries), "latency": times}
    name = "indexing-sentences" if args.granularity == "sentence" else "indexing"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n",
                                          encoding="utf-8")
    (out_dir / f"{name}.md").write_text(markdown(results), encoding="utf-8")
    plot(results, out_dir / f"{name}.png")
    print(markdown(results))
    print(f"wrote {out_dir}/{name}.{{json,md,png}}")


if __name__ == "__main__":
    main()
