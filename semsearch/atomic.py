"""Write a directory (or one file) so that readers, and a crash, see either none of it or all of
it: build it under a hidden temporary name beside its final place, fsync it, then rename it into
place."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_directory", "atomic_write_text", "fsync_path", "fsync_tree"]


def fsync_path(path: Path) -> None:
    """Flush one file's or directory's data and metadata to disk (a no-op for directories where
    the platform cannot open them, i.e. Windows)."""
    if path.is_dir() and not hasattr(os, "O_DIRECTORY"):
        return
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file and directory under `path` (itself included), deepest first, so that a
    rename published afterwards cannot outlive the contents after a power loss."""
    for root, dirs, files in os.walk(path, topdown=False):
        folder = Path(root)
        for name in files:
            if not (folder / name).is_symlink():
                fsync_path(folder / name)
        for name in dirs:
            if not (folder / name).is_symlink():
                fsync_path(folder / name)
    fsync_path(path)


def _sibling(final: Path, tag: str) -> Path:
    """A fresh hidden name `.NAME.TAG-XXXXXXXX` beside `final` (not created)."""
    while True:
        candidate = final.parent / f".{final.name}.{tag}-{secrets.token_hex(4)}"
        if not os.path.lexists(candidate):
            return candidate


def _make_temp(final: Path) -> Path:
    """Create the temporary sibling with a plain mkdir, so the umask gives it (and so the final
    directory) ordinary permissions rather than mkdtemp's 0700."""
    while True:
        tmp = _sibling(final, "tmp")
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp


def _publish(tmp: Path, final: Path, replace: bool) -> None:
    """Rename `tmp` to `final`; an existing `final` (only when `replace`) is moved aside first,
    put back if the rename fails, and deleted once the new one is in place."""
    if not os.path.lexists(final):
        tmp.rename(final)
        fsync_path(final.parent)
        return
    if not replace:
        raise FileExistsError(f"{final} already exists")
    old = _sibling(final, "old")
    final.rename(old)
    try:
        tmp.rename(final)
    except BaseException:
        old.rename(final)
        raise
    try:
        fsync_path(final.parent)
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_directory(final: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory to fill; on normal exit it becomes `final` atomically.

    The temporary directory is `.NAME.tmp-XXXXXXXX` in `final`'s parent (created with its
    parents if need be), so the rename never crosses file systems. On exit every file and
    directory in it is fsynced, it is renamed to `final`, and the parent is fsynced. An existing
    `final` raises FileExistsError (before any work) unless `replace` is true; then it is swapped
    out only at the very end and restored if the swap fails. On any exception the temporary
    directory is removed, `final` is left as it was, and the exception propagates.
    """
    final = Path(final)
    if os.path.lexists(final) and not replace:
        raise FileExistsError(f"{final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp(final)
    try:
        yield tmp
        fsync_tree(tmp)
        _publish(tmp, final, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(final: Path, text: str) -> None:
    """Replace the file `final` by `text` (UTF-8) atomically: written and fsynced as a hidden
    sibling, then renamed over it, so an interrupted write (a full disk, a crash) leaves the old
    file whole and no temporary behind."""
    final = Path(final)
    tmp = _sibling(final, "tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(final.parent)
