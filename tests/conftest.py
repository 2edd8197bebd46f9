"""Shared fixtures: tiny random sentence-transformers models the tests make (fast, offline), and
the provisioned real model for integration tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_tiny_model(out: Path, hidden: int = 32, seed: int = 0) -> Path:
    """A random 1-layer BERT with a character tokenizer, saved as a sentence-transformers dir."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    chars = sorted({ch for f in SEEDS.glob("*.txt") for ch in f.read_text("utf-8")} |
                   set("abcdefghijklmnopqrstuvwxyz0123456789:"))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {tok: i for i, tok in enumerate(specials + [c for c in chars if not c.isspace()])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split("", "isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=hidden * 2,
                        max_position_embeddings=128)
    hf_dir = out.parent / f"{out.name}-hf"
    BertModel(config).save_pretrained(hf_dir)
    fast.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=128)
    model = SentenceTransformer(
        modules=[transformer, Pooling(hidden, "mean"), Normalize()],
        prompts={"query": "query: ", "passage": "passage: "}, device="cpu",
    )
    model.save(str(out))
    from semsearch.models.provision.export import export_onnx

    export_onnx(out, quantize=False)  # subprocess tests then start without torch
    return out


def synthetic_store(kind: str, n: int, sources: int, d: int = 16) -> tuple[Any, Any]:
    """A FaissStore of `kind` over n random unit vectors; passage i is from s{i % sources}.txt.
    Returns (store, vectors)."""
    import numpy as np

    from semsearch.models.encoder import ModelInfo
    from semsearch.passages import Passage
    from semsearch.stores.faiss import FaissStore

    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    passages = [Passage(f"passage {i}", f"s{i % sources}.txt", i, 0, 1) for i in range(n)]
    store = FaissStore.create(passages, vectors, ModelInfo("synthetic", "x", d),
                               {f"s{i}.txt": "h" for i in range(sources)}, index_type=kind)
    return store, vectors


def rewrite_manifest(index_dir: Path, **changes: object) -> None:
    """Edit the live manifest as a (newer) semsearch would: CURRENT gets the new checksum."""
    import hashlib
    import json

    from semsearch.stores.generations import CURRENT, live_dir

    file = live_dir(index_dir) / "manifest.json"
    manifest = json.loads(file.read_text("utf-8"))
    manifest.update(changes)
    file.write_text(json.dumps(manifest), encoding="utf-8")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    (index_dir / CURRENT).write_text(f"{file.parent.name} {digest}\n", encoding="utf-8")


@pytest.fixture(autouse=True)
def own_indexes_folders(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's named indexes: each has its own user folder,
    and SEMSEARCH_INDEXES is unset (a test sets it when it needs it)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.delenv("SEMSEARCH_INDEXES", raising=False)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny32", hidden=32, seed=0)


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model with a different dimension, for mismatch checks."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny48", hidden=48, seed=1)


@pytest.fixture(scope="session")
def real_model() -> Path:
    """The provisioned multilingual-e5-small; setup (`make setup`) must have made it."""
    from semsearch.models.provision import is_provisioned
    from semsearch.models.resolve import provisioned_dir

    path = provisioned_dir()
    assert is_provisioned(path), "run `make setup` (semsearch provision) first"
    return path


# Modules that query the shipped seeds index, which needs the provisioned model throughout.
SLOW_MODULES = {"test_seeds", "test_quality"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` = needs the provisioned model: every test using `real_model` (directly or through
    another fixture) or living in SLOW_MODULES, so `pytest -m "not slow"` is the fast set."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "real_model" in fixtures or item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_index(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds indexed with the tiny model: a service or library under test without the real
    model."""
    import semsearch

    out = tmp_path_factory.mktemp("tiny-index") / "index"
    semsearch.build([SEEDS], model=str(tiny_model)).save(out)
    return out


@pytest.fixture
def index_copy(tiny_index: Path, tmp_path: Path) -> Path:
    """A copy of `tiny_index` a test may change or damage."""
    import shutil

    shutil.copytree(tiny_index, tmp_path / "index")
    return tmp_path / "index"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: Any, read_timeout: float | None = None) -> Iterator[tuple[str, int]]:
    """`app` under uvicorn with the service's own protocol settings (`uvicorn_config`), in a
    thread on a loopback port: its URL and port; stopped on exit."""
    import uvicorn

    from semsearch import guard
    from semsearch.serve import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, read_timeout=(
        guard.READ_TIMEOUT if read_timeout is None else read_timeout)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(10)


def make_app(index_dir: Path, **options: Any) -> Any:
    """The service's app over the index at `index_dir`, its encoder warmed up."""
    import semsearch
    from semsearch.serve import create_app

    index = semsearch.load(index_dir)
    index.search("warm up", k=1)
    return create_app(index, **options)
