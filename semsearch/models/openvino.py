"""The provisioned ONNX body on OpenVINO's CPU plugin, in bf16 (`--encoder openvino`).

Where OpenVINO reports BF16 among the CPU's OPTIMIZATION_CAPABILITIES (AMX tiles, or AVX-512
BF16 dot products) it runs the weight products and its fused attention subgraph in bf16. With
AMX: 3.04× `SentenceTransformer.encode` and 1.29× the checked int8 body on real passages
(benchmarks/results/runtimes.md); on an AMD EPYC with AVX512_BF16 and no AMX: 2.68× and 1.01×,
on one thread's CPU time (sessions.py). Vectors at cosine ≥ 0.99999 of fp32 and Recall@5 /
MRR@10 within 0.005 of fp32 on the seeds, CMRC and DRCD, where the int8 body is not (seeds dense
Recall@5 -0.022). Without bf16 hardware OpenVINO falls back to f32. Which runtime runs what is
chosen in sessions.py, not here. Optional: the `openvino` extra.

`Bf16QuerySession`: how the service embeds its queries where OpenVINO runs bf16
(SEMSEARCH_QUERY_PATH=auto, the default; sessions.query_session). In bf16 a query's vector moved by
up to 3e-4 with the width its batch was padded to, so every query runs padded to a fixed width
(a multiple of BF16_WIDTH tokens), alone or in any batch: the same vector either way, and few
distinct shapes for OpenVINO to prepare kernels for. Batches of 8 and 32 real questions: 212
and 242 queries/s against fp32's 105 and 95 (benchmarks/results/query_path.md); hits and
metrics within 0.005 of fp32 on the seeds, CMRC, DRCD and XQuAD.

`QuerySession`: the service's opt-in int8 query path (SEMSEARCH_QUERY_PATH=int8). For
one short query the time is reading the weights, so the fp32 body gets uint8 weights per output
channel (`int8_weights`, 21 MB instead of 84) and OpenVINO multiplies them by int8 activations
quantised per token and 32 inputs — rows never mix, unlike onnxruntime's dynamic int8 (per
batch). A 10-character query: p50 5.1 ms against 8.4 ms for the fp32 body in the same run
(1.7×; an earlier run 4.0 vs 7.5 ms, best calls 3.1 vs 4.8 ms; 2-CPU shared machine): short of
the 3 ms goal, since even the best call is over it. Cosine ≥ 0.9997 to fp32 over 2,000 real
questions, the same vector alone and in a batch; but on the seeds two questions whose first two
hits tie within 4e-5 in fp32 swap them (bf16 swaps one of them too, not the one with the
answer): dense MRR@10 -0.0073, over the 0.005 bar, and DRCD loses 7 questions at rank 1; in
batches it gains little (148 vs 95 queries/s in batches of 32). Hence opt-in (query_path.md).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import ModelError
from semsearch.models.body import EMBEDS_INPUT, MASK_INPUT

PRECISION = "bf16"  # OpenVINO uses f32 instead where the CPU has no bf16


class OpenVinoSession:
    """What OnnxRunner needs of an onnxruntime session (`run`), on an OpenVINO compiled model."""

    def __init__(self, body: Path, threads: int | None = None, streams: int = 1) -> None:
        """`threads` in all (default: every core); `streams` > 1 splits them into that many
        streams, each running its own batch on its own threads at the same time."""
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError("--encoder openvino needs OpenVINO: pip install "
                             "'semsearch[openvino]' (or choose --encoder auto)") from exc
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISION,
                                  "PERFORMANCE_HINT": "LATENCY",
                                  "INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1}
        if streams > 1:
            # unpinned: on a shared machine a pinned stream waits for its busy core (1 client,
            # 2 streams on the 2-core AMD EPYC: 21 requests/s pinned, 32 unpinned)
            config |= {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams,
                       "ENABLE_CPU_PINNING": False}
        self._compiled = ov.Core().compile_model(str(body), "CPU", config)
        # one infer request per stream: a batch takes a free one (SimpleQueue: thread-safe)
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(streams):
            self._requests.put(self._compiled.create_infer_request())
        self.streams = streams

    @contextmanager
    def _request(self) -> Iterator[Any]:
        """A free infer request, held for one batch (waits while every stream runs one)."""
        request = self._requests.get()
        try:
            yield request
        finally:
            self._requests.put(request)

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._request() as request:
            result = request.infer(feeds)
            return [np.array(result[0], dtype=np.float32)]


# --- the service's warm query body ---------------------------------------------------------------

QUERY_LEVELS = 255  # asymmetric uint8 weights, per output channel (NNCF's INT8_ASYM scheme)
QUERY_GROUP = 32  # activations quantised per token, per this many inputs (OpenVINO's CPU default)
def int8_weights(model: Any, float_layers: Sequence[int] = ()) -> int:
    """Replace each MatMul's constant 2-D weight by uint8 codes with a per-output-channel scale
    and zero point (range including 0, as `nncf.compress_weights` INT8_ASYM does), in the
    Constant → Convert → Subtract → Multiply → Convert form OpenVINO's CPU plugin runs as int8;
    returns how many products it changed. The FFN output products of `float_layers` (the layers
    whose inputs carry outliers, as export.json records for the int8 body) stay float, and so
    do activations and attention."""
    import openvino.opset13 as ops

    changed = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "MatMul" or node.get_attributes().get("transpose_b"):
            continue
        if any(f"/layer.{n}/output/dense/" in node.get_friendly_name() for n in float_layers):
            continue
        source = node.input(1).get_source_output().get_node()
        if source.get_type_name() != "Constant" or len(source.get_output_shape(0)) != 2:
            continue
        weight = np.asarray(source.data, dtype=np.float32)  # [inputs, outputs]
        low = np.minimum(weight.min(axis=0, keepdims=True), 0.0)
        high = np.maximum(weight.max(axis=0, keepdims=True), 0.0)
        scale = np.where(high > low, (high - low) / QUERY_LEVELS, 1.0).astype(np.float32)
        zero = np.clip(np.round(-low / scale), 0, QUERY_LEVELS)
        codes = np.clip(np.round(weight / scale) + zero, 0, QUERY_LEVELS).astype(np.uint8)
        unpacked = ops.multiply(
            ops.subtract(ops.convert(ops.constant(codes), "f16"),
                         ops.convert(ops.constant(zero.astype(np.uint8)), "f16")),
            ops.constant(scale.astype(np.float16)))
        node.input(1).replace_source_output(ops.convert(unpacked, "f32").output(0))
        changed += 1
    return changed


# tokens; each row runs padded to a multiple of it. 8, not 32 as before: the seeds' questions are
# 8-26 tokens (median 16), so at 32 most rows were half padding. Service CPU per request, same
# run, 8 / 32 clients (2-core AMD EPYC, bf16; machine shared, so CPU time is what compares):
# 32 → 8 tokens 13.4 → 11.6 / 11.7 → 8.2 ms; in-process model CPU per query in batches of 8 / 32
# 9.4 → 7.0 / 8.4 → 5.7 ms (16 tokens: 8.4 / 6.6).
BF16_WIDTH = 8
# widths prepared when a session opens, and for how many rows: every batch size at the widths
# most questions need, the first rows at the longer ones (preparing is mostly running them: on
# a busy 2-core machine all 32 row counts at 8, 16, 24 and 32 tokens took 12.5 s, these shapes
# 5.0 s, 32 row counts at 32 tokens before 3.5 s)
WARM_WIDTHS = {8: None, 16: None, 24: 8, 32: 8}  # width → rows prepared (None: every batch size)


class Bf16QuerySession(OpenVinoSession):
    """The fp32 body in bf16 on OpenVINO, for query batches: each row runs padded to the next
    multiple of BF16_WIDTH tokens, with zeros at its masked positions, so its vector does not
    depend on the batch it came in (see the module docstring). OpenVINO prepares kernels for
    each new input shape on its first call: ~17 ms (up to 60) per shape, which stalled whole
    batches in the service; so opening it runs the shapes of WARM_WIDTHS once (batches of up to
    `warm_rows` rows, the caller's largest batch); other shapes prepare on first use.

    Tried and left out (2026-12-01): a second compilation with the one static shape of a lone
    query, [1, BF16_WIDTH]. Its hidden states are bit-identical to the dynamic model's, and
    OpenVINO skips a dynamic model's shape work: a model call of p50 3.3 ms instead of 5.6
    (five rounds of 100, 2 threads), and `encode_queries` of a 10-character query 6.6 ms
    instead of 8.0 in the service's warm path (median of three alternating runs). But it added
    150-230 MB of resident memory to a warm service that holds ~600 MB for its query path.
    Even on one thread at 16 tokens a static call took 3.0 ms, so it would not reach the 3 ms
    goal either."""

    def __init__(self, body: Path, threads: int | None = None, *, dimension: int,
                 warm_rows: int, streams: int = 1) -> None:
        super().__init__(body, threads, streams)
        held = [self._requests.get() for _ in range(streams)]
        for request in held:  # each stream prepares its own kernels
            for width, most in WARM_WIDTHS.items():
                for rows in range(1, min(warm_rows, most or warm_rows) + 1):
                    request.infer({EMBEDS_INPUT: np.zeros((rows, width, dimension), np.float32),
                                   MASK_INPUT: np.ones((rows, width), np.int64)})
        for request in held:
            self._requests.put(request)

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        lengths = feeds[MASK_INPUT].sum(axis=1)
        with self._request() as request:
            return [at_widths(request, feeds,
                              np.maximum(-(-lengths // BF16_WIDTH), 1) * BF16_WIDTH)]


class QuerySession:
    """The fp32 body with int8 weights (`int8_weights`) on OpenVINO: `run` like an onnxruntime
    session, for short query batches. Each row runs at its own length (rows of one length
    together, without padding): the int8 rounding of activations amplifies the last-bit
    differences a padded width makes, so this keeps a query's vector the same alone or in any
    batch (rows never mix: activations are quantised per token)."""

    def __init__(self, body: Path, threads: int | None = None, *,
                 float_layers: Sequence[int] = (), group: int = QUERY_GROUP) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(body))
        if not int8_weights(model, float_layers):
            raise ModelError(f"{body} has no weight products to compress")
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1,
                  "DYNAMIC_QUANTIZATION_GROUP_SIZE": group}
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            return [at_widths(self._request, feeds, np.maximum(feeds[MASK_INPUT].sum(axis=1), 1))]


def at_widths(request: Any, feeds: dict[str, np.ndarray], widths: np.ndarray) -> np.ndarray:
    """Hidden states of a padded batch, each row run at its own `widths` entry instead: the
    rows of one width together in one call, their masked positions zeroed and padded with
    zeros past the batch's width, so a row's result does not depend on its batch."""
    embeds, mask = feeds[EMBEDS_INPUT], feeds[MASK_INPUT]
    hidden = np.zeros((*mask.shape, embeds.shape[-1]), dtype=np.float32)
    for width in (int(w) for w in np.unique(widths)):
        rows = np.flatnonzero(widths == width)
        used = min(width, mask.shape[1])
        part_mask = np.zeros((len(rows), width), dtype=mask.dtype)
        part_mask[:, :used] = mask[rows, :used]
        part = np.zeros((len(rows), width, embeds.shape[-1]), dtype=np.float32)
        part[:, :used] = embeds[rows, :used] * part_mask[:, :used, None]
        out = request.infer({EMBEDS_INPUT: part, MASK_INPUT: part_mask})[0]
        hidden[rows, :used] = out[:, :used]
    return hidden
