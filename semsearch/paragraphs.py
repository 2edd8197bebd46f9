"""Passage vectors that keep their paragraph's context.

A paragraph longer than the passage budget is cut into several passages, and a piece alone
loses what the rest of the paragraph says (a question may name the subject of one sentence and
ask about the next). Each passage of such a paragraph gets the mean of its own vector and its
whole paragraph's, (v_passage + v_paragraph) / 2 — its inner product with a query is the mean of
the two cosines — where the paragraph's text is its heading line and
all its passages (the model reads up to its own limit, as a plain user of the model does when
embedding whole paragraphs). Still one vector per passage: the same index format on every store.
Paragraphs that fit one passage keep their vector as it was, at no extra cost.

On by default (`index.BLEND_PARAGRAPHS`). Measured with `semsearch bench` (int8 indexing body,
fp32 queries as a saved index runs them), questions answered at rank 1 of 632, dense / hybrid,
off → on: XQuAD en→zh 504 → 509 / 505 → 509 (naive whole-paragraph sentence-transformers 507),
zh→en 459 → 467 / 466 → 473 (naive 470), zh→zh 582 → 584 / 605 → 605, mixed (of 1,264)
1180 → 1186 / 1210 → 1211; CMRC, DRCD and the seeds: benchmarks/results/quality-*.md (the seeds
have no cut paragraph). normalize(v_passage + v_paragraph) instead lost 45 dense questions on
zh→en: e5's cosines sit close together, and the renormalised sum lifted every split paragraph
above the rest. Giving the paragraph 0.55, 0.6, 0.65 or 0.8 of the weight instead of 1/2 moved
hybrid by -1 to -5 questions on en→zh and +1 to +3 on zh→en: no better split. What is left to
the naive peer on zh→en is the max over a cut paragraph's passages, two or more chances to rank
first: in 8 of the 11 questions naive answers at rank 1 and dense does not, dense's first is a
cut paragraph (1 of 8 the other way round). A larger passage budget cuts fewer paragraphs but
moves the two directions apart (hybrid hits@1, blending on, passages.MAX_TOKENS 256 → 384 →
496): zh→en 473 → 476 → 479, en→zh 509 → 505 → 496 (naive 507): no budget wins both.
Two more ways to spend a cut paragraph's chances, dense / hybrid hits@1 on the same saved
indexes: each piece's score pulled halfway to its paragraph's mean (between max and mean over
the pieces) zh→en 467 → 471 / 473 → 477 but zh→zh 584 → 582, mixed 1186 → 1179, CMRC
959 → 955 / 982 → 979, en→zh 509 → 508 / 509 → 508 (the plain mean lost more: zh→zh 571,
CMRC 948); each piece embedded with one sentence of its neighbours on either side (overlap in
the vector only) zh→en 467 → 470 / 473 → 475 (hits@5 595 → 591), en→zh 509 → 512 / 509 → 509,
but zh→zh 584 → 582, mixed 1186 → 1180, CMRC 959 → 957: neither kept.
Cost: the paragraphs add 27–31% to the tokens encoded on XQuAD, 78–83% on CMRC and DRCD (most
of their paragraphs are cut). The paragraph vector cannot be had for free from its passages'
vectors: their token-weighted mean (no extra encoding) kept less than half of the gain, hybrid
hits@1 encoded / mean / no blending, same run (2026-12-07, bf16 passages): en→zh 514 / 512 /
510, zh→en 472 / 466 / 463, CMRC 982 / 980 / 980 (dense zh→en 467 / 461 / 457) — the passages
must be read together.
Nor read together once for both ("late chunking", tried and left out:
benchmarks/late_chunking.py, results/late_chunking.md): each cut paragraph encoded once, a
member's vector the mean of its own tokens' states in that pass (members past the 512-token
window, 4-12%, encoded alone), reads 0.56× the blend's tokens on CMRC and DRCD, 0.78× on XQuAD.
But such a span mean sits at cosine 0.997-0.998 to its paragraph's vector on every set (the
member read alone: 0.94-0.97), so every member gets its paragraph's vector and loses what it
says itself. Hybrid hits@1 / hits@5, blend → late+blend (late alone), same run (2026-12-07, bf16
indexing, AMD EPYC): DRCD 3257 / 3477 → 3235 / 3473 (3236 / 3474; dense hits@1 2892 → 2787),
XQuAD zh→en 471 / 595 → 476 / 587 (473 / 589), en→zh 513 / 615 → 509 / 614 (505 / 614), CMRC
982 / 998 → 982 / 996 (981 / 998), zh→zh and mixed within 1; hybrid hits@1 over the seven shared
sets 7097 → 7075 (7068), below no paragraph context at all (7078). Pooling the prompt and
heading tokens into each span moved no set by more than 4 questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semsearch.passages import HEADING_SEPARATOR, Passage


@dataclass(frozen=True)
class Paragraph:
    """The text of one paragraph cut into several passages, and those passages' positions."""

    text: str
    members: tuple[int, ...]


def split_paragraphs(passages: Sequence[Passage]) -> list[Paragraph]:
    """Paragraphs cut into more than one passage: runs of consecutive passages of the same
    source, paragraph number and heading."""
    found: list[Paragraph] = []
    begin = 0
    for end in range(1, len(passages) + 1):
        if end < len(passages) and _same(passages[begin], passages[end]):
            continue
        if end - begin > 1:
            run = passages[begin:end]
            text = " ".join(p.text for p in run)
            heading = run[0].heading
            found.append(Paragraph(f"{heading}{HEADING_SEPARATOR}{text}" if heading else text,
                                   tuple(range(begin, end))))
        begin = end
    return found


def _same(a: Passage, b: Passage) -> bool:
    return (a.source, a.paragraph, a.heading) == (b.source, b.paragraph, b.heading)


def blend(vectors: np.ndarray, paragraphs: Sequence[Paragraph],
          paragraph_vectors: np.ndarray) -> np.ndarray:
    """`vectors` with each member of a split paragraph replaced by (v + v_paragraph) / 2."""
    out = np.array(vectors, dtype=np.float32, copy=True)
    for paragraph, whole in zip(paragraphs, paragraph_vectors, strict=True):
        rows = list(paragraph.members)
        out[rows] = (out[rows] + whole) / 2
    return out
