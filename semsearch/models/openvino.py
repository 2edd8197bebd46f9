"""The provisioned ONNX body on OpenVINO's CPU plugin, in bf16 (`--encoder openvino`).

On a CPU with AMX (bf16 tiles) OpenVINO runs the weight products and its fused attention
subgraph in bf16: 3.04× `SentenceTransformer.encode` and 1.29× the checked int8 body on real
passages, vectors at cosine ≥ 0.99999 of fp32 and Recall@5 / MRR@10 within 0.005 of fp32 on the
seeds, CMRC and DRCD (benchmarks/results/runtimes.md). Without bf16 hardware OpenVINO falls
back to f32 (no faster than onnxruntime's int8), so it is a choice, not the default. Optional:
the `openvino` extra.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import ModelError

PRECISION = "bf16"  # OpenVINO uses f32 instead where the CPU has no bf16


class OpenVinoSession:
    """What OnnxRunner needs of an onnxruntime session (`run`), on an OpenVINO compiled model."""

    def __init__(self, body: Path, threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError("--encoder openvino needs OpenVINO: pip install "
                             "'semsearch[openvino]' (or choose --encoder auto)") from exc
        config = {"INFERENCE_PRECISION_HINT": PRECISION, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1}
        self._compiled = ov.Core().compile_model(str(body), "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: one batch at a time

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            result = self._request.infer(feeds)
            return [np.array(result[0], dtype=np.float32)]
