"""Passages of a paragraph cut in several are embedded blended with the whole paragraph."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from semsearch import index as index_module
from semsearch.corpus import Document
from semsearch.models.encoder import load_encoder
from semsearch.paragraphs import blend, split_paragraphs
from semsearch.passages import Passage


def _doc(source: str, text: str) -> Document:
    return Document(source=source, text=text, encoding="utf-8", clean="none",
                    sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def test_only_paragraphs_cut_in_several_are_found() -> None:
    passages = [Passage("一。", "a", 1, 0, 2), Passage("二。", "a", 1, 2, 4),
                Passage("三。", "a", 2, 6, 8), Passage("四。", "b", 2, 0, 2, "题"),
                Passage("五。", "b", 2, 2, 4, "题"), Passage("六。", "b", 2, 4, 6, "另")]
    found = split_paragraphs(passages)
    assert [(p.text, p.members) for p in found] == [("一。 二。", (0, 1)),
                                                   ("题\n四。 五。", (3, 4))]


def test_blend_is_the_mean_and_leaves_the_rest() -> None:
    vectors = np.eye(3, dtype=np.float32)
    passages = [Passage("x", "a", 1, 0, 1), Passage("y", "a", 1, 1, 2),
                Passage("z", "a", 2, 3, 4)]
    whole = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    got = blend(vectors, split_paragraphs(passages), whole)
    np.testing.assert_allclose(got, [[0.5, 0, 0.5], [0, 0.5, 0.5], [0, 0, 1]], atol=1e-6)
    np.testing.assert_array_equal(vectors, np.eye(3))  # the input is not changed


def test_index_vectors_blend_split_paragraphs(tiny_model: Path) -> None:
    """Through indexing, by default (tiny model: passages of at most 112 tokens): a long
    paragraph's passages get (v + v_paragraph) / 2, a short paragraph keeps its own vector."""
    assert index_module.BLEND_PARAGRAPHS
    long = "".join(f"第{i}句话讲的是一件不同的事情。" for i in range(30))
    docs = [_doc("long.txt", f"{long}\n"), _doc("short.txt", "短的一段话，只有一个段落。\n")]
    encoder = load_encoder(str(tiny_model), for_indexing=True)
    prepared, vectors, _, _ = index_module._embed(docs, encoder, 256, None)
    split = split_paragraphs(prepared.passages)
    assert len(split) == 1 and len(split[0].members) > 1
    assert split[0].members == tuple(range(len(prepared.passages) - 1))
    plain = encoder.encode_passages([p.embedded_text for p in prepared.passages])
    whole = encoder.encode_passages([split[0].text])[0]
    for row in split[0].members:
        np.testing.assert_allclose(vectors[row], (plain[row] + whole) / 2, atol=1e-5)
        assert not np.allclose(vectors[row], plain[row], atol=1e-3)
    np.testing.assert_allclose(vectors[-1], plain[-1], atol=1e-5)


def test_blending_off_keeps_passage_vectors(tiny_model: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "BLEND_PARAGRAPHS", False)
    long = "".join(f"第{i}句话讲的是一件不同的事情。" for i in range(30))
    encoder = load_encoder(str(tiny_model), for_indexing=True)
    prepared, vectors, _, _ = index_module._embed([_doc("long.txt", f"{long}\n")], encoder, 256,
                                               None)
    assert len(prepared.passages) > 1
    plain = encoder.encode_passages([p.embedded_text for p in prepared.passages])
    np.testing.assert_allclose(vectors, plain, atol=1e-5)

