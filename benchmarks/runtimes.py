"""Full-int8 encoder runtimes on real text: OpenVINO and CTranslate2 against the indexing default
(onnxruntime, the checked int8 body) and `SentenceTransformer.encode`, all in one run.

    python3 benchmarks/runtimes.py [--passages 384] [--rounds 2]
                                   [--quality seeds,cmrc-trial,drcd-test] [--runtimes a,b]
                                   [--smoke] [--out DIR]

Text: the same real passages as benchmarks/throughput.py (`real_text`: CMRC 2018 trial, DRCD
test and seeds passages as indexing cuts them, a fixed sample of `--passages`). Every runtime
gets the same token ids (semsearch's tokenizer, "passage: " prompt) in the same length-sorted
batches of ≤ 2048 padded tokens, and pools and normalises the same way; only the transformer
body differs:

- `sentence-transformers`: `SentenceTransformer.encode` (torch fp32, batch 32): the baseline.
- `onnxruntime fp32`: the provisioned fp32 body (the quality reference).
- `semsearch index (default)`: what `semsearch index` encodes with on this CPU — the path
  provisioning measured fastest within fp32's quality (models/sessions.py); its profile row is
  the checked int8 body's (`onnxruntime int8 body`).
- `openvino fp32` / `openvino bf16`: the fp32 ONNX body compiled by OpenVINO's CPU plugin with
  inference precision f32 / bf16 (bf16 runs where OpenVINO reports it: AMX or AVX512_BF16).
- `openvino int8`: NNCF post-training quantisation of that body (model type transformer: int8
  MatMuls incl. the attention products, SmoothQuant; calibrated on the seeds passages as
  provisioning's int8 check is), the rest in f32; `openvino int8 checked`: the same with the FFN
  output products of the outlier layers left in float (as the onnxruntime int8 body does).
- `ctranslate2 int8` / `ctranslate2 fp32`: the model converted by CTranslate2's transformers
  converter (BERT encoder), compute type int8 (int8 GEMMs, its own float attention/LayerNorm).

A runtime whose package is not installed is left out of the table (named in "absent").

Measured: passages/s, tokens/s (real tokens), achieved GFLOPS (2 × weights per token plus
attention, real tokens only) of each runtime's best time (chunks of 128 passages, every runtime
encodes a chunk before the next, best round per chunk), as % of a large fp32 GEMM measured here
(benchmarks/indexing.py `cpu_peak`), × sentence-transformers. Quality (`--quality`): Recall@5
and MRR@10 (dense and hybrid) of an index built with each runtime's passage vectors, queries
encoded by the fp32 body (what `semsearch query` loads), against the fp32 reference; "within"
when no metric is more than 0.005 below fp32's. Profile: where each runtime's time goes —
onnxruntime's and OpenVINO's own per-operator profilers on one chunk, grouped by operator type.

Writes runtimes.{json,md} to benchmarks/results/ (or `--out`). `--smoke` (24 passages, 1 round,
no quality; seconds) checks the script end to end into a temporary directory.

`--query` measures the service's warm query path instead (query_path.{json,md}): the latency of
one 10-character query on each path (fp32 onnxruntime, the checked int8 body, OpenVINO bf16 at
fixed widths as `semsearch serve` runs it where OpenVINO runs bf16, the same padded to each
batch's longest row as `--encoder openvino` runs it, and the opt-in int8-weight OpenVINO body
of models/openvino.py) in alternating blocks, queries/s in batches of 8 and 32 real questions
(what the service's micro-batches hand the model), cosines to fp32 over 2,000 real questions,
the drift of a query's vector inside a batch, and retrieval on the seeds, CMRC and DRCD with
only the query path changed (one passage index per set). The int8-weight path alone on one
thread (4.19 vs 4.02 ms p50) and padded to each batch's longest row (batch drift 1.3e-3) were
measured in an earlier run and left out since. Tried and left out (same-run
ratios to fp32 onnxruntime, 2 CPUs under load): onnxruntime MatMulNBits 8-bit weights (block 32
or 128) 0.2-0.3× with accuracy level 0 (weights unpacked each call) and 1.0-1.3× with level 4;
OpenVINO int8 weights with bf16 compute 2.2× and without int8 activations 1.8×, both slower
than the f32 + int8-activation path (3.3×); symmetric weights the same; activation groups of 64
or 128 a little faster under load but further from fp32 (cosine 0.99985 and 0.99972 against
0.9999 on the test query).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from indexing import cpu_peak
from outputs import output_dir, publish  # benchmarks/outputs.py, beside this script
from throughput import QUALITY_MODES, TOLERANCE, flops_per_text, machine, real_text, retrieval

from semsearch.models.onnx import padded, pooled
from semsearch.models.openvino import BF16_WIDTH

CHUNK = 128
PROFILE_PASSAGES = 64
CALIBRATION = 128  # seeds passages NNCF calibrates the int8 activations on
BASELINE, REFERENCE, DEFAULT = ("sentence-transformers", "onnxruntime fp32",
                                "semsearch index (default)")
INT8_BODY = "onnxruntime int8 body"  # the checked int8 body, profiled beside fp32


@dataclass(frozen=True)
class Runtime:
    name: str
    package: str | None  # the optional package it needs
    note: str
    quality: bool = True


RUNTIMES = (
    Runtime(BASELINE, None, "torch fp32, batch 32 (baseline)", quality=False),
    Runtime(REFERENCE, None, "provisioned fp32 body (quality reference)"),
    Runtime(DEFAULT, None, "what `semsearch index` encodes with on this CPU (the path "
                           "provisioning measured: models/sessions.py)"),
    Runtime("openvino fp32", "openvino", "OpenVINO CPU plugin, f32", quality=False),
    Runtime("openvino bf16", "openvino", "OpenVINO CPU plugin, bf16 (AMX or AVX512_BF16)"),
    Runtime("openvino int8", "nncf", "NNCF PTQ: int8 MatMuls incl. attention, SmoothQuant"),
    Runtime("openvino int8 checked", "nncf",
            "as openvino int8, FFN outputs of outlier layers in float"),
    Runtime("openvino int8 bf16", "nncf",
            "as openvino int8, the float operations in bf16"),
    Runtime("ctranslate2 fp32", "ctranslate2", "CTranslate2 Encoder, float32", quality=False),
    Runtime("ctranslate2 int8", "ctranslate2", "CTranslate2 Encoder, int8 GEMMs"),
)


def installed(package: str | None) -> bool:
    return package is None or importlib.util.find_spec(package) is not None


def select(wanted: Sequence[str] | None) -> tuple[list[Runtime], list[str]]:
    """The runtimes to measure (`wanted`, or all; the baseline, the fp32 reference and the
    default always) and the names of those left out because their package is not installed."""
    listed = [r for r in RUNTIMES if wanted is None or r.name in wanted
              or r.name in (BASELINE, REFERENCE, DEFAULT)]
    return ([r for r in listed if installed(r.package)],
            [r.name for r in listed if not installed(r.package)])


# --- runners: token-id batches → unit vectors ------------------------------------------------


class BodyRunner:
    """semsearch's OnnxRunner (tokenizer, embedding table) with another transformer body."""

    def __init__(self, base: Any, body: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.base, self.body = base, body

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def embed_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        ids, mask = padded(batch, self.base.pad_id)
        return pooled(self.body(ids, mask), mask)


def openvino_body(model: Any, table: np.ndarray, precision: str,
                  profile: bool = False) -> tuple[Callable[..., np.ndarray], Any]:
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": os.cpu_count() or 1}
    if profile:
        config["PERF_COUNT"] = True
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def body(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = request.infer({"inputs_embeds": np.asarray(table[ids], dtype=np.float32),
                                "attention_mask": mask})
        return np.asarray(result[0])

    return body, request


def openvino_int8(model: Any, base: Any, prompt: str, checked_layers: Sequence[int],
                  calibration: int = CALIBRATION) -> Any:
    """NNCF post-training quantisation of the OpenVINO model, calibrated on seeds passages."""
    import nncf

    from semsearch.models.provision.export import calibration_texts

    items = []
    for ids in base.ids([prompt + t for t in calibration_texts(calibration)]):
        tokens, mask = padded([ids], base.pad_id)
        items.append({"inputs_embeds": np.asarray(base.table[tokens], dtype=np.float32),
                      "attention_mask": mask})
    ignored = None
    if checked_layers:
        layers = "|".join(str(n) for n in checked_layers)
        ignored = nncf.IgnoredScope(patterns=[rf".*/layer\.({layers})/output/dense/.*"],
                                    validate=False)
    kwargs: dict[str, Any] = {"ignored_scope": ignored} if ignored else {}
    return nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(items), **kwargs)


def ctranslate2_body(model_dir: Path, work: Path,
                     compute_type: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import ctranslate2

    target = work / "ct2"
    if not (target / "model.bin").is_file():
        from ctranslate2.converters import TransformersConverter

        TransformersConverter(str(model_dir)).convert(str(target), quantization="float32")
    encoder = ctranslate2.Encoder(str(target), device="cpu", compute_type=compute_type,
                                  intra_threads=os.cpu_count() or 1, inter_threads=1)

    def body(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        lengths = ctranslate2.StorageView.from_array(mask.sum(axis=1).astype(np.int32))
        out = encoder.forward_batch(ctranslate2.StorageView.from_array(ids.astype(np.int32)),
                                    lengths)
        return np.asarray(out.last_hidden_state)

    return body


# --- the runtimes as encoders ----------------------------------------------------------------


def build(chosen: Sequence[Runtime], model_dir: Path, work: Path,
          calibration: int = CALIBRATION) -> dict[str, Any]:
    """An encoder (encode_passages / encode_queries) for each chosen runtime but the baseline,
    and the baseline as a callable under its name."""
    from semsearch.models.encoder import OnnxEncoder, load_encoder
    from semsearch.models.onnx import BODY, ONNX_DIR, read_export_info

    fp32 = load_encoder(str(model_dir), "onnx")
    base = fp32.runner  # type: ignore[attr-defined]
    base.tokenizer  # load it now, outside the timings  # noqa: B018
    prompt = fp32.info.prompts.get("passage", "")

    def wrap(name: str, body: Callable[..., np.ndarray]) -> Any:
        return OnnxEncoder(info=fp32.info, runner=BodyRunner(base, body),
                           max_tokens=fp32.max_tokens, backend=name)

    out: dict[str, Any] = {}
    ov_model = None
    quantised: dict[bool, Any] = {}  # checked or not → the NNCF int8 model
    for runtime in chosen:
        name = runtime.name
        print(f"  loading {name}", flush=True)
        if name == BASELINE:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(str(model_dir), device="cpu")
            out[name] = st
        elif name == REFERENCE:
            out[name] = fp32
        elif name == DEFAULT:
            out[name] = load_encoder(str(model_dir), for_indexing=True)
        elif name.startswith("openvino"):
            import openvino as ov

            if ov_model is None:
                ov_model = ov.Core().read_model(str(model_dir / ONNX_DIR / BODY))
            model = ov_model
            if "int8" in name:
                checked = "checked" in name
                if checked not in quantised:
                    layers = (read_export_info(model_dir)["int8"]["fp32_ffn_output_layers"]
                              if checked else [])
                    quantised[checked] = openvino_int8(ov_model.clone(), base, prompt, layers,
                                                       calibration)
                    ov.save_model(quantised[checked], str(
                        work / ("openvino-int8-checked.xml" if checked else "openvino-int8.xml")))
                model = quantised[checked]
            body, _ = openvino_body(model, base.table, "bf16" if "bf16" in name else "f32")
            out[name] = wrap(name, body)
        elif name.startswith("ctranslate2"):
            out[name] = wrap(name, ctranslate2_body(
                model_dir, work, "int8" if name.endswith("int8") else "float32"))
    return out


def encode_fn(name: str, encoder: Any) -> Callable[[list[str]], np.ndarray]:
    if name == BASELINE:
        prompt = encoder.prompts.get("passage", "")
        return lambda texts: encoder.encode([prompt + t for t in texts], batch_size=32,
                                            normalize_embeddings=True)
    return encoder.encode_passages


# --- measurements ----------------------------------------------------------------------------


def throughput(fns: dict[str, Callable[[list[str]], np.ndarray]], passages: list[str],
               rounds: int, tokens: int, flops: float, peak: float) -> dict[str, Any]:
    """Best time of each runtime over `passages`, interleaved chunk by chunk."""
    names = list(fns)
    for name in names:
        fns[name](passages[:8])  # warm: threads, allocator, kernels
    chunks = range(0, len(passages), CHUNK)
    best = {(n, c): float("inf") for n in names for c in chunks}
    turn = 0
    for r in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for begin in chunks:
            part = passages[begin : begin + CHUNK]
            turn += 1
            for name in names[turn % len(names):] + names[: turn % len(names)]:
                started = time.perf_counter()
                fns[name](part)
                took = time.perf_counter() - started
                spent[name] += took
                best[name, begin] = min(best[name, begin], took)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {spent[n]:.1f} s" for n in names),
              flush=True)
    fastest = {n: sum(best[n, c] for c in chunks) for n in names}
    return {name: {"best_seconds": round(fastest[name], 3),
                   "passages_per_s": round(len(passages) / fastest[name], 2),
                   "tokens_per_s": round(tokens / fastest[name], 1),
                   "gflops": round(flops / fastest[name] / 1e9, 1),
                   "pct_of_gemm_peak": round(100 * flops / fastest[name] / 1e9 / peak, 1),
                   "x_sentence_transformers": round(fastest[BASELINE] / fastest[name], 3)
                   if BASELINE in fastest else None,
                   "x_default": round(fastest[DEFAULT] / fastest[name], 3)
                   if DEFAULT in fastest else None}
            for name in names}


def grouped(times: dict[str, float], top: int = 6) -> dict[str, float]:
    """Shares of the total, largest first, the rest as "other"."""
    total = sum(times.values()) or 1.0
    ranked = sorted(times.items(), key=lambda kv: -kv[1])
    out = {k: round(v / total, 3) for k, v in ranked[:top]}
    if len(ranked) > top:
        out["other"] = round(sum(v for _, v in ranked[top:]) / total, 3)
    return out


def profile_onnxruntime(model_dir: Path, body_name: str, batches: list[list[list[int]]],
                        base: Any, work: Path) -> dict[str, float]:
    """onnxruntime's own profiler over `batches`: time per operator type."""
    import onnxruntime as ort

    from semsearch.models.onnx import ONNX_DIR

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.enable_profiling = True
    options.profile_file_prefix = str(work / "ort-profile")
    session = ort.InferenceSession(str(model_dir / ONNX_DIR / body_name), options,
                                   providers=["CPUExecutionProvider"])
    for batch in batches:
        ids, mask = padded(batch, base.pad_id)
        session.run(None, {"inputs_embeds": np.asarray(base.table[ids], dtype=np.float32),
                           "attention_mask": mask})
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    times: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            times[event["args"]["op_name"]] += float(event["dur"])
    return grouped(times)


def profile_openvino(model: Any, batches: list[list[list[int]]], base: Any,
                     precision: str) -> dict[str, float]:
    """OpenVINO's per-node counters over `batches`: time per node type (and kernel kind)."""
    body, request = openvino_body(model, base.table, precision, profile=True)
    times: dict[str, float] = defaultdict(float)
    for batch in batches:
        ids, mask = padded(batch, base.pad_id)
        body(ids, mask)
        for node in request.get_profiling_info():
            if node.real_time.total_seconds() > 0:
                kernel = str(node.exec_type)
                kind = ("int8" if "I8" in kernel or "U8" in kernel else
                        "bf16" if "BF16" in kernel.upper() else "f32")
                times[f"{node.node_type} ({kind})"] += node.real_time.total_seconds()
    return grouped(times)


PERF_KINDS = (  # symbol substring → what the time is (CTranslate2's MKL / own CPU kernels)
    ("s8u8s32", "int8 GEMM (MKL)"), ("sgemm", "fp32 GEMM (attention products)"),
    ("softmax", "softmax"), ("dequantize", "dequantise GEMM outputs"),
    ("quantize", "quantise activations"), ("erf", "GELU"), ("gelu", "GELU"),
    ("layer_norm", "LayerNorm"), ("mem", "copies (memmove)"), ("transpose", "transposes"),
    ("add", "adds"))


def profile_perf(encode: Callable[[list[str]], Any], passages: list[str],
                 work: Path) -> dict[str, float] | None:
    """Linux `perf` sampling of this process while `encode` runs (CTranslate2 has no operator
    profiler of its own): sampled time per kind of kernel, by symbol name; None without perf."""
    import shutil
    import signal
    import subprocess

    if shutil.which("perf") is None:
        return None
    data = work / "perf.data"
    recorder = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(os.getpid()), "-o",
                                 str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    encode(passages)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=60)
    report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort",
                             "symbol", "--stdio"], capture_output=True, text=True, check=False)
    times: dict[str, float] = defaultdict(float)
    for line in report.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[0].endswith("%") or line.lstrip().startswith("#"):
            continue
        symbol = parts[2].lower()
        kind = next((k for key, k in PERF_KINDS if key in symbol), "rest (Python, libc, ...)")
        times[kind] += float(parts[0].rstrip("%"))
    return grouped(times, top=8) if times else None


def profiles(chosen: Sequence[Runtime], model_dir: Path, work: Path, passages: list[str],
             encoders: dict[str, Any]) -> dict[str, dict[str, float]]:
    from semsearch.models.encoder import batches as make_batches
    from semsearch.models.onnx import BODY, BODY_INT8

    base = encoders[REFERENCE].runner
    prompt = encoders[REFERENCE].info.prompts.get("passage", "")
    ids = base.ids([prompt + t for t in passages[:PROFILE_PASSAGES]])
    work_batches = [[ids[i] for i in rows]
                    for rows in make_batches([len(x) for x in ids], 32, 2048)]
    out = {REFERENCE: profile_onnxruntime(model_dir, BODY, work_batches, base, work),
           INT8_BODY: profile_onnxruntime(model_dir, BODY_INT8, work_batches, base, work)}
    names = {r.name for r in chosen}
    if any(n.startswith("openvino") for n in names):
        import openvino as ov

        from semsearch.models.onnx import ONNX_DIR

        core = ov.Core()
        ov_files = {"openvino bf16": (model_dir / ONNX_DIR / BODY, "bf16"),
                    "openvino int8": (work / "openvino-int8.xml", "f32"),
                    "openvino int8 checked": (work / "openvino-int8-checked.xml", "f32"),
                    "openvino int8 bf16": (work / "openvino-int8.xml", "bf16")}
        for name, (path, precision) in ov_files.items():
            if name in names and path.is_file():
                out[name] = profile_openvino(core.read_model(str(path)), work_batches, base,
                                             precision)
    if "ctranslate2 int8" in names:
        sampled = profile_perf(encoders["ctranslate2 int8"].encode_passages,
                               passages[:PROFILE_PASSAGES] * 2, work)
        if sampled:
            out["ctranslate2 int8 (perf)"] = sampled
    return out


def quality(chosen: Sequence[Runtime], encoders: dict[str, Any],
            sets: Sequence[str]) -> dict[str, Any]:
    """Recall@5 / MRR@10 per set of an index built with each runtime against fp32's."""
    out: dict[str, Any] = {}
    reference = encoders[REFERENCE]
    for dataset in sets:
        per: dict[str, Any] = {}
        for runtime in [r for r in chosen if r.quality]:
            print(f"  quality {dataset} {runtime.name}", flush=True)
            started = time.perf_counter()
            metrics, vectors = retrieval(encoders[runtime.name], dataset,
                                         None if runtime.name == REFERENCE else reference)
            per[runtime.name] = {"metrics": metrics, "vectors": vectors,  # build + evaluate
                                 "seconds": round(time.perf_counter() - started, 1)}
        ref = per[REFERENCE]
        for row in per.values():
            row["min_cosine"] = round(float((ref["vectors"] * row["vectors"]).sum(1).min()), 6)
            row["worst_delta"] = round(min(row["metrics"][m][k] - ref["metrics"][m][k]
                                           for m in QUALITY_MODES
                                           for k in ("recall@5", "mrr@10")), 4)
            row["within_tolerance"] = row["worst_delta"] >= -TOLERANCE
        for row in per.values():
            del row["vectors"]
        out[dataset] = per
    return out


# --- report ----------------------------------------------------------------------------------


def markdown(r: dict[str, Any]) -> str:
    t, peak = r["throughput"], r["peak"]
    lines = [f"Encoder runtimes on {r['passages']} real passages ({r['tokens']:,} tokens: "
             f"CMRC 2018 trial, DRCD test, seeds, as benchmarks/throughput.py), {r['machine']}; "
             f"best of {r['rounds']} interleaved rounds per chunk of {CHUNK} passages, ratios "
             f"in the same run. GFLOPS against one large fp32 GEMM measured here "
             f"({peak['gemm_fp32_gflops']} GFLOPS; {peak['theoretical_fp32_gflops']} at the "
             "nominal clock).", "",
             "| runtime | passages/s | tokens/s | GFLOPS | % of GEMM peak "
             "| × sentence-transformers | × default | quality within 0.005 | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in t.items():
        sets = r["quality"]
        within = ("—" if not sets or name not in next(iter(sets.values()), {}) else
                  "yes" if all(s[name]["within_tolerance"] for s in sets.values()) else
                  "NO (" + ", ".join(d for d, s in sets.items()
                                     if not s[name]["within_tolerance"]) + ")")
        lines.append(f"| {name} | {row['passages_per_s']:.1f} | {row['tokens_per_s']:,.0f} | "
                     f"{row['gflops']:.0f} | {row['pct_of_gemm_peak']:.0f}% | "
                     f"{row['x_sentence_transformers']:.2f} | {row['x_default']:.2f} | {within} | "
                     f"{r['notes'][name]} |")
    if r["absent"]:
        lines += ["", "Not installed (rows left out): " + ", ".join(r["absent"]) + "."]
    if r["quality"]:
        lines += ["", "Retrieval quality (passages by the runtime, queries by the fp32 body; "
                  f"within = no metric more than {TOLERANCE} below fp32's):", "",
                  "| set | runtime | dense R@5 | dense MRR@10 | hybrid R@5 | hybrid MRR@10 | "
                  "min cosine | worst Δ | within | index + eval s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for dataset, per in r["quality"].items():
            for name, row in per.items():
                m = row["metrics"]
                lines.append(f"| {dataset} | {name} | {m['dense']['recall@5']:.4f} | "
                             f"{m['dense']['mrr@10']:.4f} | {m['hybrid']['recall@5']:.4f} | "
                             f"{m['hybrid']['mrr@10']:.4f} | {row['min_cosine']:.5f} | "
                             f"{row['worst_delta']:+.4f} | "
                             f"{'yes' if row['within_tolerance'] else 'NO'} | "
                             f"{row.get('seconds', '—')} |")
    if r["profile"]:
        lines += ["", f"Where the time goes (each runtime's own profiler, {PROFILE_PASSAGES} "
                  "passages; share of operator time by type):", "",
                  "| runtime | top operators |", "|---|---|"]
        for name, shares in r["profile"].items():
            lines.append(f"| {name} | " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
                         + " |")
    return "\n".join(lines) + "\n"


# --- the service's warm query path (--query) -------------------------------------------------

QUERY = "夫妻党员抗疫的故事"  # 10 characters; 11 tokens with the "query: " prompt
QUERY_REPS, QUERY_BLOCK = 300, 10  # timed calls per path, in alternating blocks of this many
QUERY_COSINE = 2000  # real questions the cosines against fp32 are measured on
QUERY_SETS = ("seeds", "cmrc-trial", "drcd-test")
# questions hits@1 may lose against fp32 (tests/test_quality.py TOLERANCE: run-to-run spread)
HITS1_SLACK = {"seeds": 1, "cmrc-trial": 1, "drcd-test": 4}
FP32, SERVICE_NOW, INT8 = ("onnxruntime fp32", "bf16 fixed widths, OpenVINO (service)",
                          "int8 weights, OpenVINO")
COMPARED = (SERVICE_NOW, INT8)  # paths whose retrieval is compared against fp32's
FLOOR = "fp32 weight products alone"  # timed beside the paths (WeightProducts)
BATCHES = (8, 32)  # questions per model call in the throughput measurement


def query_paths(model_dir: Path, smoke: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Warm encoders (as `serve.run` leaves them) whose only difference is what embeds a
    query, and a note on each; a path whose package or hardware is missing is left out."""
    from semsearch.models.encoder import load_encoder
    from semsearch.models.sessions import QUERY_PATH_ENV, bf16_capable, int8_capable

    asked = os.environ.get(QUERY_PATH_ENV)  # restored below: each path sets it to build

    def warm(backend: Any, path: str = "fp32") -> Any:
        os.environ[QUERY_PATH_ENV] = path
        encoder = load_encoder(str(model_dir), backend)
        encoder.runner.warm()
        return encoder

    paths: dict[str, Any] = {FP32: warm("onnx")}
    notes = {FP32: "SEMSEARCH_QUERY_PATH=fp32; the service's path where OpenVINO runs no bf16",
             "onnxruntime int8 body": "checked int8 body, activations quantised per batch"}
    paths["onnxruntime int8 body"] = warm("onnx-int8")
    if installed("openvino"):
        if bf16_capable():
            paths[SERVICE_NOW] = warm("onnx", "bf16")
            notes[SERVICE_NOW] = ("`semsearch serve` (SEMSEARCH_QUERY_PATH=auto) on a CPU with "
                                  f"bf16: each query padded to a multiple of {BF16_WIDTH} tokens")
        paths["bf16 padded batch, OpenVINO"] = warm("openvino")
        notes["bf16 padded batch, OpenVINO"] = ("`--encoder openvino`: the same body, each batch "
                                                "padded to its longest row")
        if int8_capable():
            paths[INT8] = warm("onnx", "int8")
            notes[INT8] = ("SEMSEARCH_QUERY_PATH=int8: uint8 weights per channel, int8 "
                           "activations per token and 32 inputs, f32 elsewhere")
    if asked is None:
        os.environ.pop(QUERY_PATH_ENV, None)
    else:
        os.environ[QUERY_PATH_ENV] = asked
    return paths, notes


def batch_throughput(paths: dict[str, Any], questions: list[str],
                     rounds: int) -> dict[str, dict[str, float]]:
    """Queries/s of each path embedding `questions` in batches of each size of BATCHES, the
    paths taking turns per round (the same noise for all)."""
    best: dict[str, dict[str, float]] = {name: {} for name in paths}
    for size in BATCHES:
        batches = [questions[i:i + size] for i in range(0, len(questions), size)]
        times: dict[str, list[float]] = {name: [] for name in paths}
        for encoder in paths.values():
            encoder.encode_queries(batches[0])
        for _ in range(rounds):
            for name, encoder in paths.items():
                started = time.perf_counter()
                for batch in batches:
                    encoder.encode_queries(batch)
                times[name].append(time.perf_counter() - started)
        for name, t in times.items():
            best[name][f"batch_{size}_qps"] = round(len(questions) / float(np.median(t)), 1)
    return best


class WeightProducts:
    """The encoder's weight products alone, in fp32 on onnxruntime: per layer the
    query/key/value, output and two feed-forward matrices (random, of the model's shapes),
    chained over a query's tokens. No attention, LayerNorm, GELU, tokenising or pooling: what
    no fp32 path can go below on this CPU."""

    def __init__(self, config: dict[str, Any], tokens: int, threads: int) -> None:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        h, ffn = int(config["hidden_size"]), int(config["intermediate_size"])
        rng = np.random.default_rng(0)
        nodes, weights, x = [], [], "x"
        for layer in range(int(config["num_hidden_layers"])):
            for n, (rows, cols) in enumerate([(h, h)] * 4 + [(h, ffn), (ffn, h)]):
                name = f"w{layer}_{n}"
                weights.append(numpy_helper.from_array(
                    (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32), name))
                nodes.append(helper.make_node("MatMul", [x, name], [f"{name}_out"]))
                x = f"{name}_out"
        graph = helper.make_graph(
            nodes, "weight_products", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [tokens, h])],
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, [tokens, h])], weights)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(
            helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            .SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.feed = {"x": rng.standard_normal((tokens, h)).astype(np.float32)}
        self.flops = 2.0 * tokens * sum(int(w.dims[0]) * int(w.dims[1]) for w in weights)

    def encode_queries(self, _: Sequence[str]) -> Any:
        return self.session.run(None, self.feed)


def query_latency(paths: dict[str, Any], reps: int) -> dict[str, dict[str, float]]:
    """p50/p90 ms of `encode_queries([QUERY])` per path (or the floor, see WeightProducts):
    blocks of QUERY_BLOCK calls, the paths taking turns (the machine is shared: every path
    sees the same noise)."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for encoder in paths.values():
        for _ in range(20):
            encoder.encode_queries([QUERY])
    for _ in range(max(1, reps // QUERY_BLOCK)):
        for name, encoder in paths.items():
            for _ in range(QUERY_BLOCK):
                started = time.perf_counter()
                encoder.encode_queries([QUERY])
                times[name].append(time.perf_counter() - started)
    base = float(np.median(times[FP32]))
    return {name: {"p50_ms": round(float(np.median(t)) * 1e3, 2),
                   "p90_ms": round(float(np.percentile(t, 90)) * 1e3, 2),
                   "best_ms": round(min(t) * 1e3, 2),
                   "x_before": round(base / float(np.median(t)), 2)}
            for name, t in times.items()}


def real_questions(count: int, seed: int = 26) -> list[str]:
    """A fixed sample of `count` questions: every seed query, then CMRC, DRCD and XQuAD
    (zh and en) questions."""
    import random

    from semsearch import bench

    seeds = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)]
    others: list[str] = []
    for name in (*bench.DATASETS, "xquad-zh2en"):  # zh→en: Chinese questions, English ones in
        others += list(bench.load_dataset(name).queries.values())
    others += list(bench.load_dataset("xquad-en2zh").queries.values())
    others = sorted(set(others) - set(seeds))
    return seeds + random.Random(seed).sample(others, max(0, count - len(seeds)))


def batch_drift(encoder: Any, questions: list[str]) -> float:
    """Largest |difference| between QUERY's vector alone and inside a batch of 32 others (at
    its start, middle and end)."""
    alone = encoder.encode_queries([QUERY])[0]
    others = questions[:32]
    return max(float(np.abs(encoder.encode_queries([*others[:at], QUERY, *others[at:]])[at]
                            - alone).max()) for at in (0, 16, 32))


def query_quality(paths: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Hits@1/5/10, Recall@5 and MRR@10 (dense and hybrid) of one passage index per set, its
    queries embedded by fp32 and each COMPARED path (the index, and so the passage vectors,
    shared), and each compared path's verdict against fp32."""
    import warnings

    from semsearch import bench
    from semsearch.index import Index
    from semsearch.stores import DEFAULT_INDEX

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bench.LabelWarning)
        if dataset == bench.SEEDS:
            index, data = Index.open(DEFAULT_INDEX), None
            qrels = bench.load_qrels(bench.DEFAULT_QRELS)
        else:
            data = bench.load_dataset(dataset)
            index = bench.build_index(data)
        out: dict[str, Any] = {}
        for name in (FP32, *(c for c in COMPARED if c in paths)):
            index._encoder = paths[name]  # only the query encoder changes
            if data is None:
                got = bench.evaluate(index, qrels, QUALITY_MODES)
                counts, metrics = got["counts"], got["metrics"]
            else:
                runs = {m: bench.record_run(index, data.queries, m) for m in QUALITY_MODES}
                counts = {m: bench.hit_counts(data.qrels, run) for m, run in runs.items()}
                metrics = bench.score_runs(data, runs)
            out[name] = {m: {**counts[m], "recall@5": metrics[m]["recall@5"],
                             "mrr@10": metrics[m]["mrr@10"]} for m in QUALITY_MODES}
    before, verdicts = out[FP32], {}
    for name in out.keys() - {FP32}:
        now = out[name]
        worst = min(now[m][k] - before[m][k] for m in QUALITY_MODES
                    for k in ("recall@5", "mrr@10"))
        hits1 = min(now[m]["hits@1"] - before[m]["hits@1"] for m in QUALITY_MODES)
        verdicts[name] = {"worst_delta": round(worst, 4), "hits1_delta": hits1,
                          "within": worst >= -TOLERANCE and hits1 >= -HITS1_SLACK[dataset]}
    return {"runs": out, "verdicts": verdicts}


def seed_flips(paths: dict[str, Any]) -> list[dict[str, Any]]:
    """The seed questions whose first dense hit differs between fp32 and another path, with
    fp32's score margin between its first two hits (how near a tie the question was)."""
    from semsearch import bench
    from semsearch.index import Index
    from semsearch.stores import DEFAULT_INDEX

    index = Index.open(DEFAULT_INDEX)
    firsts: dict[str, list[Any]] = {}
    for name, encoder in paths.items():
        index._encoder = encoder
        firsts[name] = [index.search(q.query, k=2, mode="dense")
                        for q in bench.load_qrels(bench.DEFAULT_QRELS)]
    out = []
    for n, query in enumerate(bench.load_qrels(bench.DEFAULT_QRELS)):
        fp32 = firsts[FP32][n]
        flipped = [name for name, per in firsts.items() if per[n][0].id != fp32[0].id]
        if flipped:
            out.append({"query": query.query, "fp32_margin": round(fp32[0].score - fp32[1].score,
                                                                   6), "flipped_by": flipped})
    return out


def query_main(args: argparse.Namespace, model_dir: Path, out_dir: Path) -> None:
    """`--query`: the service's warm query path against the fp32 one (see query_markdown)."""
    paths, notes = query_paths(model_dir, args.smoke)
    print(f"query paths: {', '.join(paths)}", flush=True)
    reps = 20 if args.smoke else QUERY_REPS
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    tokens = len(paths[FP32].runner.ids([paths[FP32].info.prompts.get("query", "") + QUERY])[0])
    floor = WeightProducts(config, tokens, paths[FP32].runner.threads or os.cpu_count() or 1)
    latency = query_latency({**paths, FLOOR: floor}, reps)
    floor_time = latency.pop(FLOOR)
    flops, peak = flops_per_text(config, tokens), cpu_peak()
    questions = real_questions(64 if args.smoke else QUERY_COSINE)
    reference = paths[FP32].encode_queries(questions)
    cosine, drift = {}, {}
    for name, encoder in paths.items():
        cosines = (reference * encoder.encode_queries(questions)).sum(axis=1)
        cosine[name] = {"min": round(float(cosines.min()), 6),
                        "p01": round(float(np.percentile(cosines, 1)), 6),
                        "mean": round(float(cosines.mean()), 6)}
        drift[name] = float(f"{batch_drift(encoder, questions):.3g}")
    throughput = batch_throughput(paths, questions[:64 if args.smoke else 512],
                                  1 if args.smoke else 3)
    compared = any(name in paths for name in COMPARED)
    sets = [] if args.smoke or not compared else [
        d for d in (args.quality or ",".join(QUERY_SETS)).split(",") if d and d != "none"]
    flips = seed_flips(paths) if compared else []
    measured = {}
    for dataset in sets:
        print(f"  quality {dataset}", flush=True)
        measured[dataset] = query_quality(paths, dataset)
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
               "smoke": args.smoke, "query": QUERY, "reps": reps, "tokens": tokens,
               "mflop": round(flops / 1e6), "floor_mflop": round(floor.flops / 1e6),
               "peak": peak, "floor": floor_time,
               "latency": latency, "throughput": throughput, "questions": len(questions),
               "cosine": cosine,
               "batch_drift": drift, "quality": measured, "seed_flips": flips, "notes": notes,
               "versions": versions()}
    publish(out_dir, "query_path", results, query_markdown(results))


def query_markdown(r: dict[str, Any]) -> str:
    lines = [f"The service's warm query path ({r['machine']}): `encode_queries([\"{r['query']}\"])`"
             f" after `OnnxRunner.warm()`, p50/p90 of {r['reps']} calls per path in alternating "
             f"blocks of {QUERY_BLOCK} (same run, same noise). Cosine against fp32 over "
             f"{r['questions']:,} real questions (seeds, CMRC, DRCD, XQuAD zh/en); batch drift: "
             "the largest |difference| of the query's vector alone and inside a batch of 32 "
             "other questions.", "",
             "| query path | p50 ms | p90 ms | best ms | × fp32 (p50) | "
             + " | ".join(f"queries/s, batches of {n}" for n in BATCHES)
             + " | min cosine | 1st pct cosine | batch drift | note |",
             "|---|---|---|---|---|" + "---|" * len(BATCHES) + "---|---|---|---|"]
    for name, row in r["latency"].items():
        c = r["cosine"][name]
        rates = " | ".join(f"{r['throughput'][name][f'batch_{n}_qps']:.0f}" for n in BATCHES)
        lines.append(f"| {name} | {row['p50_ms']:.2f} | {row['p90_ms']:.2f} | "
                     f"{row['best_ms']:.2f} | {row['x_before']:.2f} | {rates} | {c['min']:.5f} | "
                     f"{c['p01']:.5f} | "
                     f"{r['batch_drift'][name]:.1e} | {r['notes'][name]} |")
    floor, fp32, gemm = r["floor"], r["latency"][FP32], r["peak"]["gemm_fp32_gflops"]
    lines += ["", f"The floor: the query is {r['tokens']} tokens, {r['mflop']} MFLOP through the "
              "encoder (weight products and attention). Its weight products alone, chained in "
              f"fp32 on onnxruntime with the same threads (no attention, LayerNorm, GELU, "
              f"tokenising or pooling), take {floor['p50_ms']:.2f} ms p50 and "
              f"{floor['best_ms']:.2f} ms at best in the same blocks as the paths above "
              f"(fp32's whole path: {fp32['p50_ms']:.2f} / {fp32['best_ms']:.2f} ms): "
              f"{r['floor_mflop'] / floor['best_ms']:.0f} GFLOPS at best, against {gemm} GFLOPS on "
              "one large fp32 GEMM here. Products a dozen rows tall reach a fraction of the "
              "large GEMM's rate, so no fp32 path embeds this query in under "
              f"{floor['best_ms']:.1f} ms on this CPU; what goes below it is bf16 or int8."]
    if r["quality"]:
        lines += ["", "Retrieval with only the query path changed (one passage index per set, "
                  f"built as `semsearch index` builds it); within = Recall@5 and MRR@10 at most "
                  f"{TOLERANCE} below fp32's and hits@1 at most the reproducibility tolerance "
                  "(tests/test_quality.py) below:", "",
                  "| set | query path | mode | hits@1 | hits@5 | hits@10 | R@5 | MRR@10 |",
                  "|---|---|---|---|---|---|---|---|"]
        for dataset, per in r["quality"].items():
            for name, run in per["runs"].items():
                for mode, m in run.items():
                    lines.append(f"| {dataset} | {name} | {mode} | {m['hits@1']} | "
                                 f"{m['hits@5']} | {m['hits@10']} | {m['recall@5']:.4f} | "
                                 f"{m['mrr@10']:.4f} |")
        lines += ["", "| set | query path | worst Δ R@5/MRR@10 | Δ hits@1 | within |",
                  "|---|---|---|---|---|"]
        for dataset, per in r["quality"].items():
            for name, v in sorted(per["verdicts"].items()):
                lines.append(f"| {dataset} | {name} | {v['worst_delta']:+.4f} | "
                             f"{v['hits1_delta']:+d} | {'yes' if v['within'] else 'NO'} |")
    if r.get("seed_flips"):
        lines += ["", "Seed questions whose first dense hit is not fp32's (fp32's margin between "
                  "its first two hits):", ""]
        lines += [f"- {f['query']}: margin {f['fp32_margin']:.6f}, flipped by "
                  + ", ".join(f["flipped_by"]) for f in r["seed_flips"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quality", default=None,
                        help="comma-separated sets (seeds, cmrc-trial, drcd-test) or 'none' "
                             "(default: all three; none with --smoke)")
    parser.add_argument("--runtimes", help="comma-separated subset (the baseline, fp32 and the "
                                           "default always run)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny run (seconds): checks the script, numbers mean nothing")
    parser.add_argument("--out", type=Path, help="directory for runtimes.{json,md}")
    parser.add_argument("--query", action="store_true",
                        help="measure the service's warm query path instead (query_path.*)")
    args = parser.parse_args()
    if args.query:
        from semsearch.models.resolve import resolve as resolve_model

        out = output_dir(args.out, args.smoke, "runtimes")
        query_main(args, Path(resolve_model().location), out)
        return
    if args.smoke:
        args.passages, args.rounds = 24, 1
    if args.quality is None:
        args.quality = "none" if args.smoke else "seeds,cmrc-trial,drcd-test"
    out_dir = output_dir(args.out, args.smoke, "runtimes")

    from semsearch.models.resolve import resolve

    model_dir = Path(resolve().location)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    chosen, absent = select(args.runtimes.split(",") if args.runtimes else None)
    peak = cpu_peak()
    with tempfile.TemporaryDirectory(prefix="runtimes-") as tmp:
        work = Path(tmp)
        encoders = build(chosen, model_dir, work, 8 if args.smoke else CALIBRATION)
        reference = encoders[REFERENCE]
        passages, _ = real_text(reference, args.passages)
        prompt = reference.info.prompts.get("passage", "")
        lengths = [len(x) for x in reference.runner.ids([prompt + t for t in passages])]
        flops = sum(flops_per_text(config, n) for n in lengths)
        fns = {name: encode_fn(name, enc) for name, enc in encoders.items()}
        print(f"{len(passages)} passages, {sum(lengths)} tokens, {args.rounds} rounds",
              flush=True)
        table = throughput(fns, passages, args.rounds, sum(lengths), flops,
                           peak["gemm_fp32_gflops"])
        ref_vectors = fns[REFERENCE](passages)
        cosine = {name: round(float((ref_vectors * fn(passages)).sum(1).min()), 6)
                  for name, fn in fns.items()}
        print("  profiling", flush=True)
        profile = profiles(chosen, model_dir, work, passages, encoders)
        sets = [d for d in args.quality.split(",") if d and d != "none"]
        measured = quality(chosen, encoders, sets)
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
               "smoke": args.smoke, "passages": len(passages), "tokens": sum(lengths),
               "rounds": args.rounds, "peak": peak, "throughput": table,
               "min_cosine_sample": cosine, "quality": measured, "profile": profile,
               "notes": {r.name: r.note for r in chosen}, "absent": absent,
               "versions": versions()}
    publish(out_dir, "runtimes", results, markdown(results))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("onnxruntime", "torch", "openvino", "nncf", "ctranslate2"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


if __name__ == "__main__":
    main()
