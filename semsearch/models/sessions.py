"""Which runtime runs the exported body on this CPU: the one module that chooses (issue 36).

Three paths run the body: "fp32" (onnxruntime, the fp32 body: the quality reference), "int8"
(onnxruntime, the checked int8 body: int8 dot products where the CPU has VNNI) and "bf16"
(OpenVINO, the fp32 body in bf16). bf16 is decided by what OpenVINO reports, not by a flag
list: BF16 among the CPU plugin's OPTIMIZATION_CAPABILITIES, which it reports for AMX tiles and
for AVX-512 BF16 alike (an AMD EPYC without AMX reports it; the old `amx_bf16` test switched
bf16 off there).

Passages (`--encoder auto` when indexing): `semsearch provision` measures the paths that can
run here on the seeds (`calibrate`: their 62 passages, one thread's CPU time, which a shared
machine disturbs far less than wall time) and records, per CPU, the fastest one whose seeds
dense Recall@5 and MRR@10 stay within QUALITY_TOLERANCE of fp32's (a less faithful path must
be CLEARLY_FASTER than a more faithful one). On the AMD EPYC (AVX512_BF16, VNNI, no AMX):
bf16 2.26 s, int8 2.36 s, fp32 4.71 s of CPU time on the seeds, and int8's Recall@5 0.838
against fp32's 0.846 (bf16: 0.846), so bf16 (on 96 real passages: 2.68× and 2.64×
SentenceTransformer.encode). Without a record for this CPU (another model, or a cache copied
to another machine): the checked int8 body where the CPU has int8 dot products, else fp32.

Queries in the service (`OnnxRunner.warm`): SEMSEARCH_QUERY_PATH, see `query_session`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from semsearch.atomic import atomic_write_text
from semsearch.errors import ModelError

PATHS = ("bf16", "int8", "fp32")  # the indexing paths, most faithful first among equals
BACKENDS = {"bf16": "openvino", "int8": "onnx-int8", "fp32": "onnx"}  # load_encoder's names
# what embeds the service's queries once warm, by SEMSEARCH_QUERY_PATH: "auto" (default): bf16
# on OpenVINO where it runs bf16, else fp32 on onnxruntime. bf16 gave the same hits as fp32 on
# the seeds and CMRC (+1 on DRCD) and 212 / 242 queries/s in batches of 8 / 32 real questions
# against fp32's 105 / 95 with AMX (benchmarks/results/query_path.md); "fp32", "bf16"; "int8":
# int8 weights on OpenVINO, opt-in: one query in 5.1 vs 8.4 ms, but a seed question tied with
# another to 2e-5 drops from rank 1 to 2 (dense MRR@10 on the seeds -0.0073, over the 0.005
# bar) and DRCD loses 7 at rank 1
QUERY_PATH_ENV = "SEMSEARCH_QUERY_PATH"
QUERY_PATHS = ("auto", "fp32", "bf16", "int8")
PATH_NAMES = {"fp32": "fp32 (onnxruntime)", "bf16": "bf16 (OpenVINO)",
              "int8": "int8 weights (OpenVINO)"}
# int8 dot-product instructions: the int8 body and the int8-weight query path gain only there
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# the flags that name a CPU's kind for the record (with its model name)
KEY_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
FEATURES_ENV = "SEMSEARCH_CPU_FEATURES"
RECORD = "paths.json"  # in the export's onnx/ folder: what `calibrate` measured, per CPU
QUALITY_TOLERANCE = 0.005  # Recall@5 / MRR@10 below fp32's that a faster path may lose
CLEARLY_FASTER = 1.10  # a less faithful path must beat a more faithful one by this much
FAITHFUL = ("fp32", "bf16", "int8")  # closest to the reference vectors first

log = logging.getLogger(__name__)


class Encodes(Protocol):
    """What `calibrate` needs of an encoder (models.encoder.Encoder has it)."""

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, passages: Sequence[str]) -> np.ndarray: ...


# --- what this CPU can do ----------------------------------------------------------------------


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@functools.cache
def cpu_name() -> str:
    """The CPU's model name, as lscpu shows it."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_key() -> str:
    """This CPU's kind, as records are keyed: model name and the flags that change a choice."""
    return " ".join([cpu_name(), *sorted(set(KEY_FLAGS) & cpu_flags())])


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


@functools.cache
def openvino_capabilities() -> tuple[str, ...]:
    """What OpenVINO's CPU plugin reports it can run here (e.g. BF16, INT8, FP32), or ()."""
    if not openvino_installed():
        return ()
    try:
        import openvino as ov

        return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception as exc:  # a broken install: bf16 is off, said once
        log.info("semsearch: OpenVINO reports no capabilities (%s)", exc)
        return ()


def allowed(feature: str) -> bool:
    """False when SEMSEARCH_CPU_FEATURES (a comma list of bf16, int8; or "none") leaves
    `feature` out: how a machine with both is run as one without, to test the fallbacks."""
    listed = os.environ.get(FEATURES_ENV)
    return listed is None or feature in {f.strip().lower() for f in listed.split(",")}


def bf16_capable() -> bool:
    """True when OpenVINO is installed and runs bf16 on this CPU (AMX or AVX-512 BF16)."""
    return allowed("bf16") and "BF16" in openvino_capabilities()


def int8_capable() -> bool:
    """True when this CPU has int8 dot-product instructions (VNNI or AMX)."""
    return allowed("int8") and bool(cpu_flags() & set(INT8_FLAGS))


# --- sessions ----------------------------------------------------------------------------------


def body_session(body: Path, threads: int | None = None, *, runtime: str = "onnxruntime",
                 prepack: bool = True, spinning: bool | None = None) -> Any:
    """A session with `run(outputs, feeds)` on the body file `body`: onnxruntime's (see
    OnnxRunner.open for `prepack` and `spinning`) or OpenVINO's in bf16."""
    if runtime == "openvino":
        from semsearch.models.openvino import OpenVinoSession

        return OpenVinoSession(body, threads)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not prepack:
        options.add_session_config_entry("session.disable_prepacking", "1")
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if spinning else "0")
    return ort.InferenceSession(str(body), options, providers=["CPUExecutionProvider"])


def query_path_unavailable(path: str) -> str | None:
    """Why the "bf16" or "int8" query path cannot run here, or None when it can."""
    if not openvino_installed():
        return "OpenVINO is not installed (pip install 'semsearch[openvino]')"
    if path == "bf16" and not bf16_capable():
        return "OpenVINO reports no bf16 on this CPU (it needs AMX or AVX-512 BF16)"
    if path == "int8" and not int8_capable():
        return "this CPU has no int8 dot-product instructions (VNNI or AMX)"
    return None


def query_session(fp32_body: Path, threads: int | None, *, dimension: int,
                  max_batch: int, streams: int = 1) -> tuple[Any, str]:
    """What embeds the service's queries, by SEMSEARCH_QUERY_PATH: (a session, its
    PATH_NAMES name), or (None, the fp32 name) when onnxruntime's fp32 body does. Where the
    chosen path cannot run here, the fp32 body does, with a log line saying why unless the
    choice was "auto"."""
    choice = os.environ.get(QUERY_PATH_ENV, "auto").strip().lower() or "auto"
    if choice not in QUERY_PATHS:
        raise ModelError(f"{QUERY_PATH_ENV} must be one of {', '.join(QUERY_PATHS)}; "
                         f"got {choice!r}")
    path = "bf16" if choice == "auto" else choice
    if path == "fp32":
        return None, PATH_NAMES["fp32"]
    reason = query_path_unavailable(path)
    if reason is None:
        from semsearch.models import openvino

        try:
            session: Any = openvino.Bf16QuerySession(
                fp32_body, threads, dimension=dimension, warm_rows=max_batch,
                streams=streams) \
                if path == "bf16" else openvino.QuerySession(fp32_body, threads)
        except Exception as exc:  # OpenVINO could not compile it: the fp32 path works
            reason = f"OpenVINO could not compile it ({type(exc).__name__}: {exc})"
    if reason is not None:
        (log.info if choice == "auto" else log.warning)(
            "semsearch: queries are embedded by the fp32 body, not %s: %s",
            PATH_NAMES[path], reason)
        return None, PATH_NAMES["fp32"]
    log.info("semsearch: queries are embedded by %s", PATH_NAMES[path])
    return session, PATH_NAMES[path]


# --- the indexing path -------------------------------------------------------------------------


def runnable(int8_checked: bool) -> list[str]:
    """The indexing paths that can run here, in PATHS order (`int8_checked`: the export has
    the quality-checked int8 body; it runs anywhere, but gains only with int8 dot products)."""
    return [*(["bf16"] if bf16_capable() else []),
            *(["int8"] if int8_checked and int8_capable() else []), "fp32"]


def read_record(folder: Path) -> dict[str, Any] | None:
    """What `calibrate` recorded for this CPU in the export's folder `folder`, or None."""
    try:
        records = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        record = records.get(cpu_key()) if isinstance(records, dict) else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("chosen") in PATHS else None


def indexing_path(folder: Path, int8_checked: bool) -> tuple[str, str]:
    """The path that embeds passages here with `--encoder auto` for the export in `folder`,
    and why (see `choose`)."""
    return choose(read_record(folder), int8_checked)


def choose(record: dict[str, Any] | None, int8_checked: bool) -> tuple[str, str]:
    """The indexing path given this CPU's `record` (read_record), and why: the recorded
    choice when it can still run; unmeasured, the checked int8 body where the CPU has int8
    dot products, else fp32 (bf16 only where measured: its speed differs most from CPU to
    CPU)."""
    can = runnable(int8_checked)
    if record is not None and record["chosen"] in can:
        return record["chosen"], f"measured fastest within fp32's quality on {cpu_name()}"
    return ("int8" if "int8" in can else "fp32",
            f"not measured on {cpu_name()} (semsearch provision --measure)")


def calibrate(folder: Path, int8_checked: bool, passages: Sequence[str], queries: Sequence[str],
              relevant: Sequence[set[int]], *, open_path: Callable[[str], Encodes],
              rounds: int = 2) -> dict[str, Any]:
    """Measure each runnable path on `passages` (one thread's CPU time of embedding them, the
    best of `rounds` interleaved rounds) and its dense Recall@5 / MRR@10 for `queries` (whose
    answers are the passages numbered in `relevant`; queries embedded by fp32) against fp32's;
    choose the fastest within QUALITY_TOLERANCE (a less faithful path must be CLEARLY_FASTER
    than a more faithful one), and record it for this CPU in RECORD in the export's `folder`.
    `open_path(path)` gives that path's encoder, on one thread."""
    paths = runnable(int8_checked)
    encoders = {path: open_path(path) for path in paths}
    seconds: dict[str, list[float]] = {path: [] for path in paths}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for path in paths:
            began = time.process_time()
            vectors[path] = encoders[path].encode_passages(passages)
            seconds[path].append(time.process_time() - began)
    query_vectors = encoders["fp32"].encode_queries(queries)
    reference = _recall_mrr(vectors["fp32"], query_vectors, relevant)
    measured: dict[str, Any] = {}
    for path in paths:
        quality = _recall_mrr(vectors[path], query_vectors, relevant)
        measured[path] = {
            "cpu_seconds": round(min(seconds[path]), 3),
            "recall@5": quality[0], "mrr@10": quality[1],
            "min_cosine": round(float((vectors[path] * vectors["fp32"]).sum(axis=1).min()), 6),
            "within": all(q >= r - QUALITY_TOLERANCE for q, r in zip(quality, reference,
                                                                    strict=True)),
        }
    within = [path for path in paths if measured[path]["within"]]  # fp32 always is
    fastest = min(measured[path]["cpu_seconds"] for path in within)
    chosen = next(path for path in FAITHFUL if path in within
                  and measured[path]["cpu_seconds"] <= CLEARLY_FASTER * fastest)
    record = {"cpu": cpu_name(), "flags": sorted(set(KEY_FLAGS) & cpu_flags()),
              "openvino": list(openvino_capabilities()), "passages": len(passages),
              "queries": len(queries), "measured": measured, "chosen": chosen,
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    target = folder / RECORD
    try:
        records = json.loads(target.read_text(encoding="utf-8"))
        records = records if isinstance(records, dict) else {}
    except (OSError, ValueError):
        records = {}
    records[cpu_key()] = record
    atomic_write_text(target, json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    return record


def _recall_mrr(passages: np.ndarray, queries: np.ndarray,
                relevant: Sequence[set[int]]) -> tuple[float, float]:
    """Dense Recall@5 and MRR@10 as ranx computes them: per query (its answers found in the
    top 5 over its answers; 1 / the rank of the first in the top 10), averaged over the
    queries that have answers."""
    order = np.argsort(-(queries @ passages.T), axis=1, kind="stable")[:, :10]
    recalls, reciprocals = [], []
    for ranked, wanted in zip(order.tolist(), relevant, strict=True):
        if not wanted:
            continue
        recalls.append(len(wanted & set(ranked[:5])) / len(wanted))
        first = next((rank for rank, pid in enumerate(ranked, 1) if pid in wanted), None)
        reciprocals.append(1.0 / first if first else 0.0)
    return (round(float(np.mean(recalls)), 4) if recalls else 0.0,
            round(float(np.mean(reciprocals)), 4) if reciprocals else 0.0)
