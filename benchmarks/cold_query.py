"""The main job as a person runs it: a cold `semsearch query "夫妻党员抗疫"`, whole process.

    python3 benchmarks/cold_query.py [--runs 5] [--smoke] [--out DIR]

Each round runs, in a new process each time and in rotating order (so load from other
processes falls on all alike): `python3 -c 'import sentence_transformers'` (the reference:
what any naive use of the model costs before it computes anything), the default table output,
`--json`, `--mode dense --json` and `--mode bm25`. One warm-up round (file cache, bytecode)
is not counted; the report gives each command's median wall time over `--runs` rounds and its
ratio to the reference's median in the same run.

Writes cold_query.{json,md} to benchmarks/results/ (or `--out`). `--smoke` (1 round, no
warm-up) checks that the script runs end to end and writes to a new temporary directory unless
`--out` is given: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

QUERY = "夫妻党员抗疫"
REFERENCE = "import sentence_transformers"
COMMANDS: dict[str, list[str]] = {
    REFERENCE: ["-c", "import sentence_transformers"],
    f'semsearch query "{QUERY}" (table)': ["-m", "semsearch.cli", "query", QUERY],
    f'semsearch query "{QUERY}" --json': ["-m", "semsearch.cli", "query", QUERY, "--json"],
    "--mode dense --json": ["-m", "semsearch.cli", "query", QUERY, "--mode", "dense", "--json"],
    "--mode bm25 (table)": ["-m", "semsearch.cli", "query", QUERY, "--mode", "bm25"],
}


def wall(args: list[str], cwd: Path) -> float:
    """Seconds from start to exit of `python3 ARGS` (which must succeed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HF_HUB_OFFLINE="1", COLUMNS="100")
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=cwd, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int, warmup: int, cwd: Path) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    names = list(COMMANDS)
    for round_ in range(warmup + runs):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            seconds = wall(COMMANDS[name], cwd)
            if round_ >= warmup:
                times[name].append(seconds)
    reference = statistics.median(times[REFERENCE])
    return {name: {"median_s": round(statistics.median(t), 3),
                   "runs_s": [round(x, 3) for x in t],
                   "x_reference": round(statistics.median(t) / reference, 3)}
            for name, t in times.items()}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Cold queries, whole process, median of {report['runs']} rounds after "
             f"{report['warmup']} warm-up round(s), {report['cpus']} CPUs, measured "
             f"{report['date']}; `× reference` is against `python3 -c '{REFERENCE}'` in the "
             "same run.", "", "| command | wall s (median) | × reference |", "|---|---|---|"]
    for name, row in report["commands"].items():
        lines.append(f"| `{name}` | {row['median_s']:.2f} | {row['x_reference']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    runs, warmup = (1, 0) if args.smoke else (args.runs, 1)
    out = output_dir(args.out, args.smoke, "cold_query")
    out.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "runs": runs,
              "warmup": warmup, "commands": measure(runs, warmup, out)}
    (out / "cold_query.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    (out / "cold_query.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
