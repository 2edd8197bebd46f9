"""Where a benchmark script writes: `--out DIR`, else benchmarks/results/ — except a `--smoke`
run, which writes to a new temporary directory so it never overwrites published results."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def output_dir(out: Path | None, smoke: bool, name: str) -> Path:
    """The directory for `name`'s results (see the module docstring)."""
    if out is not None:
        return out
    return Path(tempfile.mkdtemp(prefix=f"{name}-smoke-")) if smoke else RESULTS


def publish(out_dir: Path, name: str, results: dict[str, Any], markdown: str,
            indent: int = 1) -> None:
    """Write `name`.json and `name`.md into `out_dir`, then print the table and where it went."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=indent) + "\n",
                                          encoding="utf-8")
    (out_dir / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {out_dir}/{name}.{{json,md}}")
