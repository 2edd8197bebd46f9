"""Late chunking of cut paragraphs (issues 35/36, paragraphs.py): quality and tokens, same run.

    python benchmarks/late_chunking.py [SET ...] [--cache /tmp/lc-vectors] [--records N]
                                       [--out DIR] [--smoke]

Each set is indexed in memory (flat) once per recipe, every recipe in the same run on the same
encoder (the default indexing one): `blend` (today: each member of a cut paragraph encoded
alone, averaged with its paragraph's vector), `late+blend` and `late` (each member's vector the
mean of its own tokens' states in the paragraph's one pass, averaged with the paragraph's vector
or alone), and each late recipe again with the tokens before the first member (start token,
prompt, heading) pooled into every member (`… ctx`); and `no blend` (members encoded alone, no
paragraph vector) for scale. Members beyond the model's 512-token window
fall back to `blend`. Vectors are kept per text in `--cache` (benchmarks/sentences.py's
CachedEncoder, plus the late passes), so a rerun encodes nothing again. Writes
late_chunking.json and .md to benchmarks/results/ (or `--out`; `--smoke`: 16 CMRC records, a
temporary directory): dense and hybrid hits@1 / hits@5 (counts of questions) and MRR@10, tokens
the model reads per recipe (prompt and specials included, at most 512 per text), members that
fell back, and how close a member's vector is to its paragraph's, alone and late-chunked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outputs import output_dir, publish  # benchmarks/, beside this script
from sentences import CachedEncoder
from throughput import machine

from semsearch import bench, paragraphs
from semsearch import index as index_module
from semsearch.checkpoint import encode_resumable
from semsearch.index import Index
from semsearch.models.body import EMBEDS_INPUT, MASK_INPUT
from semsearch.models.encoder import batches
from semsearch.models.onnx import padded, pooled
from semsearch.passages import HEADING_SEPARATOR, Passage, Prepared, prepare

SETS = ("seeds", "cmrc-trial", "xquad-en2zh", "xquad-zh2en", "xquad-zh", "xquad-mixed",
        "drcd-test")
RECIPES = (("no blend", "", False), ("blend", "blend", False), ("late+blend", "late+blend", False),
           ("late", "late", False), ("late+blend ctx", "late+blend", True),
           ("late ctx", "late", True))


# The recipe `_embed` follows: "blend" (index.py as it is), "late+blend" or "late", and whether
# late pools take the tokens before the first member too
RECIPE = {"name": "blend", "context": False}
_EMBED = index_module._embed


def late(vectors: np.ndarray, split: list[paragraphs.Paragraph], whole: np.ndarray,
         members: list[np.ndarray], mix: bool = True) -> np.ndarray:
    """`vectors` with each member of a cut paragraph that its paragraph's pass reached replaced
    by its late-chunked vector (`members`: one row per member, all zero where the pass did not
    reach it), averaged with the paragraph's with `mix`; the members not reached blended as
    paragraphs.blend does (they were encoded alone)."""
    out = paragraphs.blend(vectors, split, whole)
    for paragraph, mean, rows in zip(split, whole, members, strict=True):
        for row, vector in zip(paragraph.members, rows, strict=True):
            if np.any(vector):
                out[row] = (vector + mean) / 2 if mix else vector
    return out


def _embed(documents: Any, encoder: Any, max_tokens: int, progress: Any,
           checkpoint: Path | None = None, *, sentences: bool = False,
           ) -> tuple[Prepared, np.ndarray, int, None]:
    """index._embed, late-chunked per RECIPE: each cut paragraph read once (encode_late), its
    members' vectors pooled from that pass; the other passages, and the members the 512-token
    window did not reach, encoded alone (passage vectors only: no sentences)."""
    if RECIPE["name"] == "blend" or not index_module.BLEND_PARAGRAPHS:
        return _EMBED(documents, encoder, max_tokens, progress, checkpoint,  # type: ignore
                      sentences=sentences)
    assert not sentences, "late chunking is measured on passage vectors"
    budget = min(max_tokens, encoder.max_tokens - 16)
    prepared = prepare(documents, encoder.count_tokens, budget)
    split = paragraphs.split_paragraphs(prepared.passages)
    passages = prepared.passages
    dimension = encoder.info.dimension
    if not split:
        vectors = encoder.encode_passages([p.embedded_text for p in passages])
        return prepared, vectors, 0, None
    read = encoder.encode_late([p.text for p in split],
                               [member_spans(p, passages) for p in split],
                               contexts=(bool(RECIPE["context"]),))
    whole = np.stack([v[0] for v in read])
    members = [v[1:] for v in read]
    reached = {row for p, rows in zip(split, members, strict=True)
               for row, v in zip(p.members, rows, strict=True) if np.any(v)}
    alone = [n for n in range(len(passages)) if n not in reached]
    vectors, _ = encode_resumable([passages[n].embedded_text for n in alone],
                                  encoder.encode_passages, None, "", dimension)
    out = np.zeros((len(passages), dimension), dtype=np.float32)
    out[alone] = vectors
    return prepared, late(out, split, whole, members, RECIPE["name"] == "late+blend"), 0, None


# --- the late pass: a cut paragraph read once, each member pooled from its own tokens ---------


def member_spans(paragraph: paragraphs.Paragraph,
                 passages: Sequence[Passage]) -> tuple[tuple[int, int], ...]:
    """Each member's text as [start, end) in `paragraph.text` (split_paragraphs' heading line,
    then the members joined by single spaces)."""
    heading = passages[paragraph.members[0]].heading
    at = len(heading) + len(HEADING_SEPARATOR) if heading else 0
    spans = []
    for row in paragraph.members:
        size = len(passages[row].text)
        spans.append((at, at + size))
        at += size + 1
    return tuple(spans)


def token_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]],
                shift: int = 0) -> list[tuple[int, int] | None]:
    """Token positions [first, last + 1) of each character span [start, end) of a text that
    was tokenised after `shift` characters of prompt, from the tokenizer's `offsets` (special
    tokens: empty): the tokens whose last character lies in the span (a "▁" piece covering
    the space between two spans belongs to neither). None for a span the tokens stop short of
    (the model reads its first max_tokens only), or that holds no token."""
    ends = np.array([e - 1 if e > s else -1 for s, e in offsets], dtype=np.int64)
    reached = int(ends.max(initial=-1)) + 1
    out: list[tuple[int, int] | None] = []
    for start, end in spans:
        inside = np.flatnonzero((ends >= start + shift) & (ends < end + shift))
        out.append((int(inside[0]), int(inside[-1]) + 1)
                   if len(inside) and reached >= end + shift else None)
    return out


def embed_spans(runner: Any, batch: Sequence[Sequence[int]],
                spans: Sequence[Sequence[Sequence[tuple[int, int]]]]) -> np.ndarray:
    """One body run over a batch of token-id lists, pooled more than whole: for each row, its
    vector (as OnnxRunner.embed_ids) followed by one vector per entry of `spans[row]`, the mean
    of the states of the tokens in that entry's [start, end) position ranges, L2-normalised.
    Rows in order: row 0, its spans, row 1, ..."""
    ids, mask = padded(batch, runner.pad_id)
    embeds = np.asarray(runner.table[ids], dtype=np.float32)
    (hidden,) = runner.session.run(None, {EMBEDS_INPUT: embeds, MASK_INPUT: mask})
    rows: list[int] = []
    masks: list[np.ndarray] = []
    for row, entries in enumerate(spans):
        rows.append(row)
        masks.append(mask[row])
        for ranges in entries:
            span = np.zeros(mask.shape[1], dtype=mask.dtype)
            for start, end in ranges:
                span[start:end] = 1
            rows.append(row)
            masks.append(span * mask[row])
    return pooled(np.asarray(hidden)[rows], np.stack(masks))


def encode_late(encoder: Any, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                *, contexts: Sequence[bool] = (False,)) -> list[np.ndarray]:
    """Each text read once by the ONNX `encoder` (passage prompt, as encode_passages): an array
    of its vector, then per `contexts` flag one row per character span of `spans[i]` — the mean
    of the span's own token states, with the flag also of the tokens before the first span
    (start token, prompt, heading) — all zero for a span the model's window does not reach."""
    prompt = encoder.info.prompts.get("passage", "")
    runner = encoder.runner
    encodings = runner.tokenizer.encode_batch([(prompt + t)[:runner.max_chars] for t in texts])
    ids = [e.ids for e in encodings]
    wanted: list[list[list[tuple[int, int]]]] = []
    for encoding, text_spans in zip(encodings, spans, strict=True):
        found = token_spans(encoding.offsets, text_spans, len(prompt))
        prefix = min((s[0] for s in found if s is not None), default=0)
        wanted.append([[] if s is None else [s, (0, prefix)] if context else [s]
                       for context in contexts for s in found])
    out: list[np.ndarray] = [np.zeros(0)] * len(texts)
    for rows in batches([len(x) for x in ids], encoder.batch_size, encoder.batch_tokens):
        vectors = embed_spans(runner, [ids[i] for i in rows], [wanted[i] for i in rows])
        at = 0
        for row in rows:
            out[row] = vectors[at : at + 1 + len(wanted[row])]
            at += 1 + len(wanted[row])
    return out


class LateCached(CachedEncoder):
    """CachedEncoder that also keeps the late passes (both pools, with and without the
    tokens before the first member, from one pass)."""

    def __init__(self, inner: Any, folder: Path) -> None:
        super().__init__(inner, folder)
        self.late_path = folder / f"{inner.info.fingerprint[:16]}-{inner.backend}-late.pkl"
        self.late_known: dict[str, Any] = (pickle.loads(self.late_path.read_bytes())
                                           if self.late_path.exists() else {})

    def encode_late(self, texts: Any, spans: Any, progress: Any = None, *,
                    contexts: Any = (False,)) -> list[np.ndarray]:
        keys = [hashlib.sha1(f"{t}\0{s}".encode()).hexdigest()
                for t, s in zip(texts, spans, strict=True)]
        missing = [n for n, k in enumerate(keys) if k not in self.late_known]
        if missing:
            fresh = encode_late(self.inner, [texts[n] for n in missing],
                                [spans[n] for n in missing], contexts=(False, True))
            self.late_known.update({keys[n]: v for n, v in zip(missing, fresh, strict=True)})
            self.late_path.write_bytes(pickle.dumps(self.late_known))
        out = []
        for key, span in zip(keys, spans, strict=True):
            both = self.late_known[key]
            k = len(span)
            parts = [both[:1]] + [both[1 + k * (1 if c else 0): 1 + k * (2 if c else 1)]
                                  for c in contexts]
            out.append(np.concatenate(parts))
        return out


def patch(folder: Path) -> None:
    """index.py's encoder from now on: the default indexing encoder, cached (LateCached)."""
    loaded: dict[Any, LateCached] = {}
    original = index_module.load_encoder

    def load(*args: Any, **kwargs: Any) -> Any:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = LateCached(original(*args, **kwargs), folder)
        return loaded[key]

    index_module.load_encoder = load  # type: ignore[assignment]
    index_module._embed = _embed  # type: ignore[assignment]


def tokens(documents: Any) -> dict[str, int]:
    """Tokens the model reads per recipe, and the cut paragraphs' members that fall back."""
    encoder = index_module.load_encoder(None, None, for_indexing=True)
    runner = encoder.inner.runner
    prompt = encoder.info.prompts.get("passage", "")
    prepared = prepare(documents, encoder.count_tokens, min(256, encoder.max_tokens - 16))
    passages = prepared.passages
    split = paragraphs.split_paragraphs(passages)

    def read(texts: list[str]) -> list[int]:
        return [min(len(ids), encoder.max_tokens)
                for ids in runner.ids([prompt + t for t in texts])]

    each = read([p.embedded_text for p in passages])
    whole = read([p.text for p in split])
    members = {row for p in split for row in p.members}
    fallback = set()
    for p in split:
        encoding = runner.tokenizer.encode(prompt + p.text)
        found = token_spans(encoding.offsets, member_spans(p, passages), len(prompt))
        for row, span in zip(p.members, found, strict=True):
            if span is None:
                fallback.add(row)
    today = sum(each) + sum(whole)
    late = sum(whole) + sum(n for row, n in enumerate(each)
                            if row not in members or row in fallback)
    return {"passages": len(passages), "cut_paragraphs": len(split),
            "members": len(members), "fallback_members": len(fallback),
            "tokens_blend": today, "tokens_late": late,
            "tokens_passages_alone": sum(each)}


def closeness(documents: Any) -> dict[str, float]:
    """Mean cosine of a cut paragraph's member to its paragraph's vector, the member encoded
    alone and late-chunked (members the window reached; vectors from the cache)."""
    encoder = index_module.load_encoder(None, None, for_indexing=True)
    prepared = prepare(documents, encoder.count_tokens, min(256, encoder.max_tokens - 16))
    split = paragraphs.split_paragraphs(prepared.passages)
    if not split:
        return {}
    read = encoder.encode_late([p.text for p in split],
                               [member_spans(p, prepared.passages) for p in split])
    alone = encoder.encode_passages([p.embedded_text for p in prepared.passages])
    pairs = [(v[0], v[1 + i], alone[row]) for p, v in zip(split, read, strict=True)
             for i, row in enumerate(p.members) if np.any(v[1 + i])]
    return {"cos_alone_to_paragraph": round(float(np.mean([w @ a for w, _, a in pairs])), 4),
            "cos_late_to_paragraph": round(float(np.mean([w @ v for w, v, _ in pairs])), 4)}


def first(dataset: bench.RecordSet, records: int | None) -> bench.RecordSet:
    """The set with only its first `records` records and the questions they answer."""
    if records is None:
        return dataset
    kept = dict(list(dataset.records.items())[:records])
    qrels = {q: r for q, r in dataset.qrels.items() if set(r) <= set(kept)}
    return replace(dataset, records=kept, qrels=qrels,
                   queries={q: t for q, t in dataset.queries.items() if q in qrels})


def measure(name: str, records: int | None = None) -> dict[str, Any]:
    """Every recipe on one set (its first `records` records): dense and hybrid counts and
    MRR@10, tokens, closeness to the paragraph vector."""
    if name == bench.SEEDS:
        from semsearch.corpus import scan

        documents = list(scan([Path("seeds")]).documents)
    else:
        dataset = first(bench.load_dataset(name), records)
        documents = bench.documents(dataset)
    found: dict[str, Any] = {**tokens(documents), "runs": {}}
    for label, recipe, context in RECIPES:
        index_module.BLEND_PARAGRAPHS = bool(recipe)
        RECIPE.update(name=recipe or "blend", context=context)
        if name == bench.SEEDS:
            index = Index.build([Path("seeds")], index_type="flat")
            results = bench.evaluate(index, bench.load_qrels(bench.DEFAULT_QRELS),
                                     ("dense", "hybrid"))
            found["queries"] = results["queries"]
            found["runs"][label] = {m: {"hits@1": results["counts"][m]["hits@1"],
                                        "hits@5": results["counts"][m]["hits@5"],
                                        "mrr@10": results["metrics"][m]["mrr@10"]}
                                    for m in ("dense", "hybrid")}
        else:
            index = bench.build_index(dataset)
            found["queries"] = len(dataset.queries)
            runs = {m: bench.record_run(index, dataset.queries, m, units=dataset.units)
                    for m in ("dense", "hybrid")}
            metrics = bench.score_runs(dataset, runs)
            found["runs"][label] = {m: {**{k: v for k, v in bench.hit_counts(
                dataset.qrels, run).items() if k in ("hits@1", "hits@5")},
                "mrr@10": metrics[m]["mrr@10"]} for m, run in runs.items()}
        print(name, label, found["runs"][label], flush=True)
    RECIPE.update(name="blend", context=False)
    found.update(closeness(documents))
    index_module.BLEND_PARAGRAPHS = True
    return found


def markdown(results: dict[str, Any]) -> str:
    lines = ["Late chunking of cut paragraphs (benchmarks/late_chunking.py): questions answered "
             "at rank 1 / within 5, MRR@10; every recipe in the same run, same encoder "
             f"({results.get('encoder', '')}).", "",
             "| set | recipe | dense hits@1 / @5 / MRR@10 | hybrid hits@1 / @5 / MRR@10 |",
             "|---|---|---|---|"]
    for name, found in results["sets"].items():
        for label, modes in found["runs"].items():
            cells = [f"{modes[m]['hits@1']} / {modes[m]['hits@5']} / {modes[m]['mrr@10']:.4f}"
                     for m in ("dense", "hybrid")]
            lines.append(f"| {name} ({found['queries']}) | {label} | {cells[0]} | {cells[1]} |")
    lines += ["", "| set | passages | cut paragraphs | their members | members past 512 tokens "
              "(fall back) | tokens read: blend | late | passages alone |",
              "|---|---|---|---|---|---|---|---|"]
    for name, f in results["sets"].items():
        lines.append(f"| {name} | {f['passages']} | {f['cut_paragraphs']} | {f['members']} | "
                     f"{f['fallback_members']} | {f['tokens_blend']:,} | {f['tokens_late']:,} "
                     f"({f['tokens_late'] / f['tokens_blend']:.2f}×) | "
                     f"{f['tokens_passages_alone']:,} |")
    lines += ["", "Mean cosine of a reached member's vector to its paragraph's: "
              + "; ".join(f"{name} alone {f['cos_alone_to_paragraph']}, late "
                          f"{f['cos_late_to_paragraph']}" for name, f in results["sets"].items()
                          if "cos_late_to_paragraph" in f) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="*", default=list(SETS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lc-vectors"),
                        help="keep encoded vectors in this folder")
    parser.add_argument("--records", type=int, default=None,
                        help="only the first N records of each set (and their questions)")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument("--smoke", action="store_true",
                        help="16 CMRC records into a temporary directory: the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.sets, args.records = ["cmrc-trial"], 16
        args.cache = Path(tempfile.mkdtemp(prefix="late-chunking-cache-"))
    out = output_dir(args.out, args.smoke, "late_chunking")
    patch(args.cache)
    path = out / "late_chunking.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"sets": {}}
    encoder = index_module.load_encoder(None, None, for_indexing=True)
    results["encoder"] = f"{encoder.backend}, indexing default"
    results["cpu"] = machine()
    for name in args.sets:
        results["sets"][name] = measure(name, args.records)
        publish(out, "late_chunking", results, markdown(results), indent=2)


if __name__ == "__main__":
    main()
