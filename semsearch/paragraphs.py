"""Passage vectors that keep their paragraph's context.

A paragraph longer than the passage budget is cut into several passages, and a piece alone
loses what the rest of the paragraph says (a question may name the subject of one sentence and
ask about the next). Each passage of such a paragraph gets the mean of its own vector and its
whole paragraph's, (v_passage + v_paragraph) / 2 — its inner product with a query is the mean of
the two cosines — where the paragraph's text is its heading line and
all its passages (the model reads up to its own limit, as a plain user of the model does when
embedding whole paragraphs). Still one vector per passage: the same index format on every store.
Paragraphs that fit one passage keep their vector as it was, at no extra cost.

Measured (dense / hybrid questions answered at rank 1, of 632, int8 indexing body, before →
after): XQuAD zh→en 452 → 469 / 459 → 475 (naive whole-paragraph sentence-transformers 470),
en→zh 506 → 508 / 505 → 505 (naive 507), zh→zh 583 → 583 / 605 → 605. normalize(v_passage +
v_paragraph) instead lost 45 dense questions on zh→en: e5's cosines sit close together, and the
renormalised sum lifted every split paragraph above the rest. Cost: the paragraphs add 27–31%
to the tokens encoded on XQuAD, 78–83% on CMRC and DRCD (most of their paragraphs are cut).
fp32 passages instead of the int8 body (`--encoder onnx`) moved dense by -2 (en→zh) and +5
(zh→en): the int8 body is not the gap to the naive peer. Hybrid R@1/R@5/R@10 before → after
elsewhere: XQuAD mixed 1211/1264/1264 → 1212/1264/1264 of 1,264, CMRC 980/998/998 →
982/998/999 of 1,000, DRCD 3252/3474/3484 → 3252/3480/3484 of 3,493 (MRR@10 equal or up on
all); dense alone fell on DRCD (R@1 2896 → 2877) and mixed R@5 (1258 → 1256). Off by default
(`index.BLEND_PARAGRAPHS`): on en→zh hybrid stays 3 questions below dense at rank 1 (505 vs
508), which tests/test_quality.py does not allow, and turning it on means re-running every
set's `semsearch bench` and the recorded baselines.
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
