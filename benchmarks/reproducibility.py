"""How far retrieval quality moves between two honest runs: the spread the quality tests allow.

    python3 benchmarks/reproducibility.py [--sets cmrc-trial,drcd-test,seeds] [--provisions 2]
                                          [--smoke] [--out DIR]

1. Provisioning from scratch, `--provisions` times, each into a new empty SEMSEARCH_HOME
   (`semsearch provision` in a fresh process, as `make setup` runs it): the SHA-256 of every
   file of each converted model and ONNX export is compared. Identical files mean a fresh
   machine indexes with the same bytes, and provisioning adds no spread.
2. Each set is indexed twice in memory, as tests/test_quality.py indexes it: records in their
   order with one encoding process, then in reverse order with `workers=2` (other batches: the
   token-budget batches and, in the int8 body, the dynamic activation scales they give differ).
   Each build answers every question in dense, bm25 and hybrid mode; the report gives hits@1/5/10
   (questions answered within the first k: `bench.hit_counts`) of each build and the largest
   difference between builds and against the committed baseline (benchmarks/baseline.json).

Writes reproducibility.{json,md} to benchmarks/results/ (or `--out`). `--smoke` (a 20-record
slice of CMRC, no provisioning; seconds) checks that the script runs end to end and writes to a
new temporary directory unless `--out` is given: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from semsearch import bench
from semsearch.index import Index

MODES = ("dense", "bm25", "hybrid")
BASELINE = Path(__file__).resolve().parent / "baseline.json"


def provision_hashes(home: Path) -> dict[str, str]:
    """Provision into `home` in a fresh process; SHA-256 of every file it wrote, by path."""
    env = {**os.environ, "SEMSEARCH_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "semsearch.cli", "provision"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    models = home / "models"
    return {f.relative_to(models).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(models.rglob("*")) if f.is_file()}


def provisions(count: int) -> dict[str, Any]:
    started = time.perf_counter()
    runs = []
    for _ in range(count):
        with tempfile.TemporaryDirectory(prefix="semsearch-home-") as home:
            runs.append(provision_hashes(Path(home)))
    differing = sorted(name for name in set().union(*runs)
                       if len({run.get(name) for run in runs}) > 1)
    return {"runs": count, "files": len(runs[0]), "differing": differing,
            "seconds": round(time.perf_counter() - started, 1)}


def reversed_set(data: bench.RecordSet) -> bench.RecordSet:
    return dataclasses.replace(data, records=dict(reversed(data.records.items())))


def seeds_counts(index: Index) -> dict[str, dict[str, int]]:
    queries = bench.load_qrels(bench.DEFAULT_QRELS)
    return bench.evaluate(index, queries, MODES)["counts"]  # type: ignore[no-any-return]


def set_counts(name: str, smoke: bool) -> dict[str, Any]:
    """hits@k per mode of two builds of the set `name` (see the module docstring)."""
    builds: dict[str, dict[str, dict[str, int]]] = {}
    if name == bench.SEEDS:
        paths = sorted(Path(__file__).resolve().parent.parent.joinpath("seeds").glob("*.txt"))
        for label, order, workers in (("in order, 1 process", paths, 1),
                                      ("reversed, 2 processes", paths[::-1], 2)):
            builds[label] = seeds_counts(Index.build(order, workers=workers, index_type="flat"))
        return {"queries": len(bench.load_qrels(bench.DEFAULT_QRELS)), "builds": builds}
    data = bench.load_dataset(name)
    if smoke:
        keep = list(data.records)[:20]
        qrels = {q: r for q, r in data.qrels.items() if set(r) <= set(keep)}
        data = dataclasses.replace(data, records={r: data.records[r] for r in keep},
                                   queries={q: data.queries[q] for q in qrels}, qrels=qrels)
    for label, variant, workers in (("in order, 1 process", data, 1),
                                    ("reversed, 2 processes", reversed_set(data), 2)):
        index = Index.from_documents(bench.documents(variant), workers=workers,
                                     index_type="flat")
        builds[label] = {mode: bench.hit_counts(
            data.qrels, bench.record_run(index, data.queries, mode, units=data.units))
            for mode in MODES}
    return {"queries": len(data.queries), "builds": builds}


def baseline_counts(name: str) -> dict[str, dict[str, int]]:
    """The committed baseline's counts for `name` (absent: {})."""
    recorded = json.loads(BASELINE.read_text("utf-8"))
    entry = recorded if name == bench.SEEDS else recorded.get("datasets", {}).get(name, {})
    return entry.get("counts", {})  # type: ignore[no-any-return]


def spread(result: dict[str, Any], baseline: dict[str, dict[str, int]]) -> dict[str, int]:
    """Per mode, the largest difference in any hits@k between the builds and the baseline."""
    out = {}
    for mode in MODES:
        values = [build[mode] for build in result["builds"].values()]
        if mode in baseline:
            values.append(baseline[mode])
        out[mode] = max(max(v[k] for v in values) - min(v[k] for v in values)
                        for k in values[0])
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = ["Reproducibility: two honest runs of the same thing, on one machine "
             f"({report['cpus']} CPUs).", ""]
    if report.get("provisions"):
        prov = report["provisions"]
        lines += [f"Provisioning from an empty cache, {prov['runs']} times: {prov['files']} "
                  "files each, " + (f"{len(prov['differing'])} differ: "
                                    + ", ".join(prov["differing"]) if prov["differing"]
                                    else "every file identical (SHA-256)")
                  + f" ({prov['seconds']} s).", ""]
    lines += ["| set | questions | build | mode | hits@1 | hits@5 | hits@10 |",
              "|---|---|---|---|---|---|---|"]
    for name, result in report["sets"].items():
        rows = {**result["builds"], **({"baseline (committed)": result["baseline"]}
                                      if result["baseline"] else {})}
        for label, counts in rows.items():
            for mode in MODES:
                c = counts[mode]
                lines.append(f"| {name} | {result['queries']} | {label} | {mode} | "
                             f"{c['hits@1']} | {c['hits@5']} | {c['hits@10']} |")
    lines += ["", "Largest spread (questions, any hits@k, builds and baseline): "
              + "; ".join(f"{name} " + ", ".join(f"{m} {v}" for m, v in r["spread"].items())
                          for name, r in report["sets"].items())
              + f". Largest overall: **{report['largest_spread']}**.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="cmrc-trial,drcd-test,seeds")
    parser.add_argument("--provisions", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    names = ["cmrc-trial"] if args.smoke else args.sets.split(",")
    report: dict[str, Any] = {"cpus": os.cpu_count(), "smoke": args.smoke, "sets": {}}
    if args.provisions and not args.smoke:
        report["provisions"] = provisions(args.provisions)
        print(f"provisions: {report['provisions']}", flush=True)
    for name in names:
        started = time.perf_counter()
        result = set_counts(name, args.smoke)
        result["baseline"] = {} if args.smoke else baseline_counts(name)
        result["spread"] = spread(result, result["baseline"])
        result["seconds"] = round(time.perf_counter() - started, 1)
        report["sets"][name] = result
        print(f"{name}: {result}", flush=True)
    report["largest_spread"] = max(max(r["spread"].values()) for r in report["sets"].values())
    out = output_dir(args.out, args.smoke, "reproducibility")
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproducibility.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    (out / "reproducibility.md").write_text(markdown(report), "utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
