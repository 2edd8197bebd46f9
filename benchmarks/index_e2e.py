"""`semsearch index` end to end against `SentenceTransformer.encode` of the same paragraphs.

    python3 benchmarks/index_e2e.py [--paragraphs 200] [--sets cmrc-trial,drcd-test]
                                    [--granularity passage,sentence] [--rounds 2]
                                    [--smoke] [--out DIR]

What a new user compares (issues 35 and 36): the first `--paragraphs` Wikipedia paragraphs of
each shipped set (CMRC 2018 trial, DRCD test: benchmarks/data, CC BY-SA 4.0, see SOURCES.md)
as JSONL records, then, each in a fresh process and in turn within a round:

- the baseline: `SentenceTransformer(model).encode(["passage: " + p ...], batch_size=32,
  normalize_embeddings=True)` — the seconds of `encode` alone (model loading not counted,
  which favours the baseline), and with its loading;
- `semsearch index FILE --out DIR --text-field text --granularity G` for the default
  granularity of the day and each one asked, every other option its default: wall seconds
  of the whole command (model loading, cleaning, cutting, paragraph vectors, sentence
  vectors, BM25, writing the index).

`× ST` is the baseline's best `encode` seconds over the command's best seconds (best of
`--rounds` interleaved rounds; the JSON also has each round's times and the median of the
per-round ratios). Tokens: what each side encodes (the model's tokenizer, prompt included, no
padding), so the cost of paragraph and sentence vectors is visible beside the speed.

Writes index_e2e.{json,md} to benchmarks/results/ (or `--out`); `--smoke` (12 paragraphs of
one set, 1 round) checks the script end to end into a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from outputs import output_dir, publish  # benchmarks/outputs.py, beside this script
from throughput import machine

# The baseline, run in a fresh process: model load and encode timed apart.
ST_SCRIPT = """
import json, sys, time
started = time.perf_counter()
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
loaded = time.perf_counter()
texts = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf-8")]
prompt = model.prompts.get("passage", "")
model.encode([prompt + t for t in texts], batch_size=32, normalize_embeddings=True)
done = time.perf_counter()
print(json.dumps({"encode": done - loaded, "with_load": done - started}))
"""


def write_records(name: str, limit: int, dest: Path) -> list[str]:
    """The first `limit` distinct paragraphs of the shipped set `name`, as JSONL records."""
    from semsearch import bench

    texts = list(dict.fromkeys(bench.load_dataset(name).records.values()))[:limit]
    with dest.open("w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            out.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    return texts


def run_st(model_dir: Path, records: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", ST_SCRIPT, str(model_dir), str(records)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_index(records: Path, out: Path, granularity: str) -> float:
    command = [sys.executable, "-m", "semsearch.cli", "index", str(records), "--out", str(out),
               "--text-field", "text", "--id-field", "id", "--force",
               "--granularity", granularity]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"semsearch index failed:\n{done.stderr[-3000:]}")
    return seconds


def encoded_tokens(index_dir: Path, paragraphs: list[str]) -> dict[str, int]:
    """Tokens each side encodes: the paragraphs as the baseline gets them; the index's
    passages, its cut paragraphs' whole text (paragraph vectors) and its sentences."""
    import semsearch
    from semsearch import paragraphs as paragraph_module
    from semsearch.index import sentence_rows
    from semsearch.models.encoder import load_encoder
    from semsearch.models.resolve import resolve

    encoder = load_encoder(resolve().location)
    prompt = encoder.info.prompts.get("passage", "")
    limit = encoder.max_tokens

    def count(texts: list[str]) -> int:
        return sum(min(len(ids), limit) for ids in encoder.runner.ids([prompt + t for t in texts]))

    passages = list(semsearch.load(index_dir).passages)
    cut = paragraph_module.split_paragraphs(passages)
    return {"baseline": count(paragraphs),
            "passages": count([p.embedded_text for p in passages]),
            "paragraph_vectors": count([c.text for c in cut]),
            "sentences": count(sentence_rows(passages)[1])}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"`semsearch index` end to end against `SentenceTransformer.encode` ({r['machine']}; "
             f"{r['when']}): the first {r['paragraphs']} paragraphs of each set, each command in "
             f"a fresh process, best of {r['rounds']} interleaved rounds. `× ST`: the baseline's "
             "`encode` seconds (model loading not counted) over the command's wall seconds "
             "(everything counted).", "",
             "| set | command | seconds | × ST encode | × ST with its loading | median ratio |",
             "|---|---|---|---|---|---|"]
    for name, s in r["sets"].items():
        lines.append(f"| {name} | SentenceTransformer.encode | {min(s['st_encode']):.1f} "
                     f"(+ load {min(s['st_with_load']) - min(s['st_encode']):.1f}) | 1.00 | "
                     f"{min(s['st_with_load']) / min(s['st_encode']):.2f} | |")
        for label, row in s["index"].items():
            lines.append(f"| {name} | {label} | {min(row['seconds']):.1f} | "
                         f"{row['x_st_encode']:.2f} | {row['x_st_with_load']:.2f} | "
                         f"{row['median_ratio']:.2f} |")
    lines += ["", "Tokens encoded (prompt included, no padding):", "",
              "| set | baseline | passages | + paragraph vectors | + sentences |",
              "|---|---|---|---|---|"]
    for name, s in r["sets"].items():
        t = s["tokens"]
        lines.append(f"| {name} | {t['baseline']:,} | {t['passages']:,} | "
                     f"{t['paragraph_vectors']:,} | {t['sentences']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--sets", default="cmrc-trial,drcd-test")
    parser.add_argument("--granularity", default="passage,sentence",
                        help="comma list; the default granularity of the day always runs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the script")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.paragraphs, args.sets, args.rounds = 12, "cmrc-trial", 1
    from semsearch.models.resolve import resolve

    model_dir = Path(resolve().location)
    out_dir = output_dir(args.out, args.smoke, "index_e2e")
    from semsearch.index import DEFAULT_GRANULARITY

    kinds = list(dict.fromkeys([DEFAULT_GRANULARITY,
                                *[g for g in args.granularity.split(",") if g]]))
    results: dict[str, Any] = {"smoke": args.smoke, "machine": machine(),
                               "when": time.strftime("%Y-%m-%d %H:%M"),
                               "paragraphs": args.paragraphs, "rounds": args.rounds, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="index-e2e-") as tmp:
        work = Path(tmp)
        for name in args.sets.split(","):
            records = work / f"{name}.jsonl"
            texts = write_records(name, args.paragraphs, records)
            st_encode: list[float] = []
            st_load: list[float] = []
            seconds: dict[str, list[float]] = {}
            for r in range(args.rounds):
                st = run_st(model_dir, records)
                st_encode.append(st["encode"])
                st_load.append(st["with_load"])
                for kind in kinds:
                    label = f"semsearch index --granularity {kind}" + (
                        " (the default)" if kind == DEFAULT_GRANULARITY else "")
                    seconds.setdefault(label, []).append(
                        run_index(records, work / f"{name}-{kind}", kind))
                print(f"{name} round {r + 1}: ST {st['encode']:.1f} s, " + ", ".join(
                    f"{k} {v[-1]:.1f} s" for k, v in seconds.items()), flush=True)
            results["sets"][name] = {
                "st_encode": [round(s, 2) for s in st_encode],
                "st_with_load": [round(s, 2) for s in st_load],
                "tokens": encoded_tokens(work / f"{name}-{DEFAULT_GRANULARITY}", texts),
                "index": {label: {
                    "seconds": [round(s, 2) for s in spent],
                    "x_st_encode": round(min(st_encode) / min(spent), 2),
                    "x_st_with_load": round(min(st_load) / min(spent), 2),
                    "median_ratio": round(statistics.median(
                        b / s for b, s in zip(st_encode, spent, strict=True)), 2)}
                    for label, spent in seconds.items()}}
    publish(out_dir, "index_e2e", results, markdown(results))


if __name__ == "__main__":
    main()
