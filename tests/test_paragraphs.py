"""Passages of a paragraph cut in several are embedded blended with the whole paragraph."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from semsearch import index as index_module
from semsearch.corpus import Document
from semsearch.models.encoder import load_encoder
from semsearch.models.onnx import padded
from semsearch.paragraphs import blend, split_paragraphs, token_spans
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


def test_members_know_their_place_in_the_paragraph_text() -> None:
    """Late chunking (benchmarks/late_chunking.py) pools each member's own characters out of
    the paragraph's text: the spans must cut exactly the member's text, heading or not."""
    passages = [Passage("一二。", "a", 1, 0, 3, "题"), Passage("三四五。", "a", 1, 3, 7, "题"),
                Passage("x", "b", 1, 0, 1), Passage("yz", "b", 1, 1, 3)]
    found = split_paragraphs(passages)
    for paragraph in found:
        assert [paragraph.text[s:e] for s, e in paragraph.spans] == \
            [passages[m].text for m in paragraph.members]
    assert found[0].spans == ((2, 5), (6, 10))


def test_token_spans_take_the_tokens_ending_in_each_member() -> None:
    """Offsets as `tokenizers` gives them for "passage: 题\\n北京。 上海。" (a "▁" piece
    carrying the space between two members belongs to neither; specials are empty)."""
    offsets = [(0, 0), (0, 7), (7, 8), (8, 9), (9, 10), (10, 11), (11, 13), (13, 14),
               (14, 15), (15, 17), (17, 18), (0, 0)]
    # the text after the 9-character prompt: "题\n北京。 上海。", members at 2-5 and 6-9
    assert token_spans(offsets, [(2, 5), (6, 9)], shift=9) == [(6, 8), (9, 11)]
    # the model read only up to "北京" (truncated): the first member is cut, both fall back
    assert token_spans([*offsets[:7], (0, 0)], [(2, 5), (6, 9)], shift=9) == [None, None]


def test_embed_spans_pools_each_span_of_the_one_pass() -> None:
    """A fake body whose hidden states are its input embeddings: each span's vector is the
    normalised mean of exactly its tokens' rows, and the row's own vector comes first."""
    from semsearch.models.onnx import OnnxRunner

    class Identity:
        calls = 0

        def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            Identity.calls += 1
            return [feeds["inputs_embeds"]]

    table = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    runner = OnnxRunner(Path("."), table, Identity(), max_tokens=16, pad_id=1)
    ids = [[0, 5, 6, 7, 8, 2], [0, 9, 2]]
    got = runner.embed_spans(ids, [[[(1, 3)], [(3, 5), (0, 1)]], []])
    assert Identity.calls == 1 and got.shape == (4, 4)

    def unit(rows: list[int]) -> np.ndarray:
        mean = table[rows].mean(axis=0)
        return mean / np.linalg.norm(mean)

    np.testing.assert_allclose(got[0], unit(ids[0]), atol=1e-6)
    np.testing.assert_allclose(got[1], unit([5, 6]), atol=1e-6)
    np.testing.assert_allclose(got[2], unit([7, 8, 0]), atol=1e-6)
    np.testing.assert_allclose(got[3], unit(ids[1]), atol=1e-6)
    np.testing.assert_allclose(got[[0, 3]], runner.embed_ids(ids), atol=1e-6)


def test_encode_late_reads_a_paragraph_once_and_pools_its_members(tiny_model: Path) -> None:
    """Through the ONNX encoder (tiny model, 128 tokens): one body run for the paragraph;
    its vector is the paragraph's own; each member's is the mean of its own tokens' states;
    a member past the window comes back all zero (it falls back to being encoded alone)."""
    encoder = load_encoder(str(tiny_model), "onnx")
    runner = encoder.runner
    passages = [Passage("一二三四五。", "a", 1, 0, 6, "题"),
                Passage("六七八九十。", "a", 1, 6, 12, "题"),
                Passage("天" * 200 + "。", "a", 1, 12, 213, "题")]
    (paragraph,) = split_paragraphs(passages)
    runs = []
    real_run = runner.session.run
    runner.session.run = lambda outputs, feeds: runs.append(1) or real_run(outputs, feeds)
    (got,) = encoder.encode_late([paragraph.text], [paragraph.spans])
    runner.session.run = real_run
    assert len(runs) == 1 and got.shape == (4, encoder.info.dimension)
    np.testing.assert_allclose(got[0], encoder.encode_passages([paragraph.text])[0], atol=1e-5)
    ids = runner.ids(["passage: " + paragraph.text])
    hidden = runner._hidden(runner.session, *padded(ids, runner.pad_id))[0]
    encoding = runner.tokenizer.encode("passage: " + paragraph.text)
    for row, (start, end) in enumerate(paragraph.spans[:2], 1):
        tokens = [n for n, (s, e) in enumerate(encoding.offsets)
                  if e > s and start + 9 <= e - 1 < end + 9]
        mean = hidden[tokens].mean(axis=0)
        np.testing.assert_allclose(got[row], mean / np.linalg.norm(mean), atol=1e-5)
    assert not np.any(got[3])
