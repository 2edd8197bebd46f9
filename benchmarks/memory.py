"""Peak memory of `semsearch index` as the corpus grows, step by step.

    python3 benchmarks/memory.py [--sizes 4000,40000] [--real-records 4000] [--smoke] [--out DIR]
                                 [--granularity passage|sentence]

Real text: the paragraphs of the two public sets in benchmarks/data (CMRC 2018 trial and DRCD
test, 1,256 Wikipedia paragraphs; credits in benchmarks/data/SOURCES.md), written as JSONL
records and repeated (each copy numbered) up to each size — about 2.4 passages per record
(the real encoder makes 2.0), so 4,000 and 40,000 records are ~10k and ~100k passages. Each size
is indexed in a fresh process with the encoder replaced by a stub that returns random unit
vectors, so what is measured is what grows with the corpus (passages, vectors, BM25 words and
weights, the FAISS index); the whole thing, model included, is measured once with the real
encoder (--real-records, default 4,000: ~8k passages, a few minutes). Peak RSS (ru_maxrss) is
read after each step: passages prepared and encoded, BM25 words made, BM25 weights built,
FAISS built, index saved. `--granularity sentence` builds with sentence vectors (the stub
returns a vector for each sentence too; one more step: sentence vectors added) and writes
memory-sentences.{json,md}; `--real-records 0` skips the real-encoder row.
Writes memory.{json,md} (benchmarks/results/ unless --out; --smoke: tiny, to a temp dir).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from outputs import output_dir  # benchmarks/outputs.py, beside this script

HERE = Path(__file__).resolve()


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def write_corpus(records: int, path: Path) -> None:
    from semsearch import bench

    paragraphs = [text for name in ("cmrc-trial", "drcd-test")
                  for text in bench.load_dataset(name).records.values()]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(records):
            text = f"{paragraphs[i % len(paragraphs)]}（第{i // len(paragraphs) + 1}份）"
            handle.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")


def child(records: int, real: bool, granularity: str = "passage") -> dict[str, Any]:
    """Index `records` records in this process and report peak RSS after each step."""
    from semsearch import index as index_module
    from semsearch import lexical
    from semsearch.models.encoder import ModelInfo
    from semsearch.stores import faiss as faiss_store
    from semsearch.stores import sentences as sentence_store

    steps: dict[str, int] = {"start": peak_mb()}
    encode = index_module.encode_parts

    def encoded(*args: Any, **kwargs: Any) -> Any:
        result = encode(*args, **kwargs)
        steps["passages encoded"] = peak_mb()
        return result

    index_module.encode_parts = encoded  # type: ignore[assignment]

    def wrap(owner: Any, name: str, before: str | None, after: str) -> None:
        original = getattr(owner, name)
        plain = getattr(original, "__func__", original)

        def measured(*args: Any, **kwargs: Any) -> Any:
            if before:
                steps[before] = peak_mb()
            result = plain(*args, **kwargs)
            steps[after] = peak_mb()
            return result

        setattr(owner, name, classmethod(measured) if plain is not original else measured)

    class Stub:
        info = ModelInfo("stub", "0" * 64, 384)
        backend, max_tokens = "stub", 512

        def count_tokens(self, text: str) -> int:
            return len(text) + 2  # about the real tokenizer on Chinese (1 per character)

        def encode_passages(self, texts: Any, progress: Any = None) -> np.ndarray:
            rng = np.random.default_rng(len(texts))
            vectors = rng.normal(size=(len(texts), 384)).astype(np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    if not real:
        index_module.load_encoder = lambda *args, **kwargs: Stub()  # type: ignore[assignment]
    wrap(lexical.LexicalIndex, "from_tokens", "BM25 words made", "BM25 weights built")
    wrap(faiss_store, "build_index", None, "FAISS built")
    if granularity == "sentence":
        wrap(sentence_store.SentenceVectors, "add", None, "sentence vectors added")
    wrap(faiss_store.FaissStore, "save", None, "index saved")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        write_corpus(records, corpus)
        started = time.perf_counter()
        built = index_module.Index.build([corpus], location=Path(tmp) / "index",
                                         granularity=granularity)
        seconds = time.perf_counter() - started
        disk = sum(f.stat().st_size for f in (Path(tmp) / "index").rglob("*") if f.is_file())
    held = getattr(built.store, "sentences", None)
    return {"records": records, "passages": built.manifest.passage_count,
            "sentence_vectors": len(held) if held is not None else 0,
            "encoder": "real" if real else "stub", "seconds": round(seconds, 1),
            "disk_mb": round(disk / 2**20, 1), "peak_rss_mb": peak_mb(), "steps_mb": steps}


def run(records: int, real: bool, granularity: str = "passage") -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE), "--child", str(records),
                           "--granularity", granularity,
                           *(["--real"] if real else [])], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"child {records} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(report: dict[str, Any]) -> str:
    rows = report["runs"]
    steps = list(rows[-1]["steps_mb"])
    sentences = report.get("granularity") == "sentence"
    lines = ["Peak RSS (MB) of `semsearch index"
             + (" --granularity sentence" if sentences else "")
             + "` after each step, on real paragraphs "
             "(benchmarks/memory.py; encoder stubbed except the `real` row).", "",
             "| records | passages | " + ("sentence vectors | " if sentences else "")
             + "encoder | " + " | ".join(steps) + " | peak | s | disk MB |",
             "|" + "---|" * (len(steps) + 6 + sentences)]
    for row in rows:
        lines.append(f"| {row['records']:,} | {row['passages']:,} | "
                     + (f"{row.get('sentence_vectors', 0):,} | " if sentences else "")
                     + f"{row['encoder']} | "
                     + " | ".join(str(row["steps_mb"].get(s, "")) for s in steps)
                     + f" | **{row['peak_rss_mb']}** | {row['seconds']} "
                     f"| {row.get('disk_mb', '')} |")
    per = report.get("mb_per_1000_passages")
    if per is not None:
        lines += ["", f"Growth with the corpus: {per} MB per 1,000 passages (between the two "
                  "largest sizes)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,40000", help="records per run, comma-separated")
    parser.add_argument("--real-records", type=int, default=None,
                        help="records indexed with the real encoder (the model's cost included; "
                             "default 4000, --smoke 100; 0: no real-encoder row)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to a temporary dir")
    parser.add_argument("--granularity", choices=("passage", "sentence"), default="passage",
                        help="build with sentence vectors too (writes memory-sentences.*)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--real", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.real, args.granularity)))
        return
    sizes = [200] if args.smoke else [int(s) for s in args.sizes.split(",")]
    real_records = args.real_records if args.real_records is not None else \
        100 if args.smoke else 4000
    runs = [run(real_records, True, args.granularity)] if real_records > 0 else []
    runs += [run(n, False, args.granularity) for n in sizes]
    report: dict[str, Any] = {"smoke": args.smoke, "granularity": args.granularity,
                              "runs": runs}
    stubbed = [r for r in runs if r["encoder"] == "stub"]
    if len(stubbed) >= 2:
        a, b = stubbed[-2], stubbed[-1]
        report["mb_per_1000_passages"] = round(
            1000 * (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["passages"] - a["passages"]), 2)
    name = "memory-sentences" if args.granularity == "sentence" else "memory"
    out = output_dir(args.out, args.smoke, name)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(markdown(report), encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
