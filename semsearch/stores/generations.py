"""A directory of index generations, swapped atomically, with one writer at a time.

    DIR/CURRENT               the live generation and its manifest's sha256, swapped
                              atomically (rename)
    DIR/.lock                 held by the one writer (flock); says who holds it
    DIR/gen-00000007/         one complete generation (what is in it is the store's business)

A write builds a whole new generation in a temporary directory, fsyncs it, renames it into
place (atomic.atomic_directory) and only then points CURRENT at it, so a reader sees the old
index or the new one — never a mix — and a crash or a full disk at any point leaves the previous
index answering as before.
The previous generation is kept one write longer, for readers that opened it just before a swap.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from semsearch.atomic import fsync_path
from semsearch.errors import IndexLoadError, IndexLockedError, IndexWriteError, disk_full
from semsearch.stores.base import failpoint

CURRENT = "CURRENT"
LOCK = ".lock"
CHECKPOINT = ".checkpoint"  # encoded chunks of an unfinished build (see checkpoint.py)
MANIFEST = "manifest.json"
_GEN_PREFIX = "gen-"
_TMP_PREFIX = f".{_GEN_PREFIX}"  # atomic.atomic_directory's temporaries: .gen-N.tmp-XXXXXXXX


def write_error(target: Path, exc: BaseException, reason: str | None = None) -> IndexWriteError:
    """The IndexWriteError for an OS failure while writing index `target`: one line naming the
    cause, with "(disk full?)" for a full disk or quota and a hint for permissions."""
    code = getattr(exc, "errno", None)
    reason = reason or (os.strerror(code) if code else str(exc))
    where = getattr(exc, "filename", None)
    hint = disk_full(exc) or disk_full(reason)
    if not hint and code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = " (check the directory's permissions, or whether it is read-only)"
    named = f" ({where})" if where and str(where) != str(target) else ""
    return IndexWriteError(f"could not write the index to {target}: {reason}{named}{hint}; the "
                           "previous index is unchanged")


def point_at(target: Path, generation: int, manifest_sha: str) -> None:
    """Make `generation` (already complete on disk, see atomic.atomic_directory) the live one:
    CURRENT is replaced atomically by a file naming it and its manifest's sha256."""
    failpoint("before-current")
    pointer = target / f".{CURRENT}.tmp-{os.getpid()}"
    pointer.write_text(f"{generation_path(target, generation).name} {manifest_sha}\n",
                       encoding="utf-8")
    fsync(pointer)
    os.replace(pointer, target / CURRENT)
    fsync(target)
    failpoint("after-current")


def abandon(target: Path, generation: int) -> None:
    """Clean up after a failed write of `generation`: nothing of it stays, CURRENT unchanged."""
    remove(target / f".{CURRENT}.tmp-{os.getpid()}")
    if (target / CURRENT).is_file() and live_generation(target) != generation:
        shutil.rmtree(generation_path(target, generation), ignore_errors=True)


def _pointer(directory: Path) -> tuple[int, str] | None:
    """(live generation, sha256 of its manifest) from CURRENT; None where there is none."""
    pointer = directory / CURRENT
    try:
        fields = pointer.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexLoadError(f"cannot read {pointer}: {exc}") from exc
    name = fields[0] if fields else ""
    digest = fields[1] if len(fields) > 1 else ""
    if (len(fields) != 2 or not name.startswith(_GEN_PREFIX)
            or not name[len(_GEN_PREFIX):].isdigit() or len(digest) != 64):
        raise IndexLoadError(f"{pointer} is corrupt (it says {' '.join(fields)[:40]!r}); it "
                             f"should name a {_GEN_PREFIX}NNNNNNNN directory of {directory}")
    return int(name[len(_GEN_PREFIX):]), digest


def live_pointer(directory: Path) -> tuple[int, str] | None:
    """What CURRENT says — (live generation, its manifest's sha256), None for no index yet —
    for readers that follow an index as it is rewritten (the service)."""
    return _pointer(Path(directory))


def generation_path(directory: Path, generation: int) -> Path:
    """The directory of one generation of index `directory`."""
    return Path(directory) / f"{_GEN_PREFIX}{generation:08d}"


def live_generation(directory: Path) -> int | None:
    """The number of the generation CURRENT names, or None for a directory without one."""
    pointer = _pointer(directory)
    return pointer[0] if pointer else None


def live_dir(directory: Path) -> Path:
    """The directory of the generation an index directory currently serves."""
    if not directory.is_dir():
        raise IndexLoadError(f"no index at {directory}; build one with "
                             f"`semsearch index PATH... --out {directory}`")
    live = live_generation(directory)
    if live is None:
        if (directory / MANIFEST).is_file():  # a format-1 index kept its files at the top
            return directory
        raise IndexLoadError(f"{directory} is not a semsearch index (no {CURRENT})")
    return directory / f"{_GEN_PREFIX}{live:08d}"


def check_target(target: Path) -> None:
    """Refuse to write into a directory that holds something other than an index."""
    if target.exists() and not target.is_dir():
        raise IndexWriteError(f"{target} exists and is not a directory")
    legacy = (target / MANIFEST).is_file()  # a format-1 index: replaced by generations
    if target.is_dir() and not (target / CURRENT).exists() and not legacy:
        # a crashed first write, or an interrupted build's encoded chunks (checkpoint.py)
        ours = (LOCK, _TMP_PREFIX, f".{CURRENT}.tmp-", _GEN_PREFIX, CHECKPOINT)
        try:
            others = [p.name for p in target.iterdir() if not p.name.startswith(ours)]
        except OSError as exc:
            raise write_error(target, exc) from exc
        if others:
            raise IndexWriteError(f"{target} exists and is not a semsearch index (it holds "
                                  f"{', '.join(sorted(others)[:3])}…); refusing to write there")


def remove_stale(directory: Path, keep: int | None) -> None:
    """Before writing a new generation, delete everything but the live one: leftovers of
    crashed writers (temporaries, generations never made live) and older generations. The live
    one stays as the new one's predecessor for readers that opened it just before the swap.
    Called under the writer lock, so nobody is writing what this removes."""
    for entry in directory.iterdir():
        if entry.name.startswith((_TMP_PREFIX, f".{CURRENT}.tmp-")):
            remove(entry)
        elif entry.name.startswith(_GEN_PREFIX) and entry.name[len(_GEN_PREFIX):].isdigit():
            number = int(entry.name[len(_GEN_PREFIX):])
            if number != keep:
                remove(entry)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_held: dict[Path, int] = {}


@contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Hold the index's writer lock (re-entrant within a process); a second writer gets an
    IndexLockedError naming the holder instead of waiting."""
    if not directory.is_dir():
        raise IndexLoadError(f"no index at {directory}; build one with "
                             f"`semsearch index PATH... --out {directory}`")
    key = directory.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    lock = directory / LOCK
    if os.path.lexists(lock) and not lock.is_file():
        raise IndexWriteError(f"{lock} is not a file (a directory or a special file), so the "
                              "index cannot be locked for writing; remove it and try again")
    try:
        handle = lock.open("a+")
    except OSError as exc:
        raise write_error(directory, exc) from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexLockedError(f"{directory} is being written by {holder}; wait for it to "
                                   "finish and try again") from None
        except OSError as exc:
            raise write_error(directory, exc) from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"semsearch pid {os.getpid()}")
            handle.flush()
        except OSError as exc:
            raise write_error(directory, exc) from exc
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            with suppress(OSError):  # the holder's note may stay: harmless, flock is what counts
                handle.seek(0)
                handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        with suppress(OSError):  # a failed flush of the holder's note (disk full)
            handle.close()




fsync = fsync_path
