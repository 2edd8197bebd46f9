"""Where a benchmark script writes: `--out DIR`, else benchmarks/results/ — except a `--smoke`
run, which writes to a new temporary directory so it never overwrites published results."""

from __future__ import annotations

import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def output_dir(out: Path | None, smoke: bool, name: str) -> Path:
    """The directory for `name`'s results (see the module docstring)."""
    if out is not None:
        return out
    return Path(tempfile.mkdtemp(prefix=f"{name}-smoke-")) if smoke else RESULTS
