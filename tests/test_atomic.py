"""atomic_directory: all of a directory or none of it, and an old one kept until the new is in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch import atomic
from semsearch.atomic import atomic_directory, fsync_tree


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_success_publishes_directory_and_leaves_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "out"
    with atomic_directory(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-")
        assert not final.exists()
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
    assert _tree(final) == {"a.txt": "a", "sub/b.txt": "b"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_permissions_follow_umask_not_mkdtemp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "out"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_creates_missing_parents(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "a" / "b" / "out") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "a" / "b" / "out" / "x").read_text() == "x"


def test_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(tmp_path / "out") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_refused_without_replace(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(FileExistsError), atomic_directory(final):
        pytest.fail("the body must not run")
    assert _tree(final) == {"old.txt": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_exception_keeps_old_directory(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(ZeroDivisionError), atomic_directory(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        _ = 1 / 0
    assert _tree(final) == {"old.txt": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_replace_swaps_content(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_directory(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        assert _tree(final) == {"old.txt": "old"}  # readers see the old one meanwhile
    assert _tree(final) == {"new.txt": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_replace_restores_old_directory_when_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name.startswith(".out.tmp-"):
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"), \
            atomic_directory(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _tree(final) == {"old.txt": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_everything_is_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(atomic, "fsync_path", lambda path: synced.append(path.name))
    final = tmp_path / "out"
    with atomic_directory(final) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.bin").write_bytes(b"b")
        (tmp / "a.bin").write_bytes(b"a")
    assert sorted(synced) == sorted(["a.bin", "b.bin", "sub", tmp.name, tmp_path.name])
    assert synced.index("b.bin") < synced.index("sub") < synced.index(tmp.name)  # deepest first
    assert synced[-1] == tmp_path.name  # the parent, after the rename


def test_fsync_tree_on_real_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    fsync_tree(tmp_path)  # no error, symlinks skipped
