"""Private copies of large index files, so that memory-mapping them can never raise SIGBUS.

Data mapped from a file that is truncated underneath kills the process with SIGBUS at the next
read of a page past the new end: no exception, no log line (issue 39: 1 of 7 truncations of a
278 MB vectors file under load). `pinned(file)` copies the file with ordinary reads into an
unnamed file (O_TMPFILE) in the same directory and yields a path to it (/proc/self/fd/N); the
caller maps that. No writer can truncate a file that has no name, and the kernel frees it when
the last mapping goes; a truncation of the original during the copy gives a short copy, which
the size and checksum checks refuse. Where no unnamed file can be made (a read-only directory,
a file system without O_TMPFILE, a full disk) `pinned` yields None: read the file into memory.

Cost (AMD EPYC, 2 CPUs shared with other jobs at load ~12; benchmarks/abuse.py --scale, a
154 MB flat vectors file of 100k × 384-d, the whole store loaded with checksums): read into
memory 1.93 s (1.32 s in a quieter run), 219 MB RSS of which 194 MB anonymous; mapped from the
private copy 2.62 s (1.75 s), 221 MB RSS of which 48 MB anonymous (the mapped pages are page
cache the kernel can reclaim); the file mapped in place (before, FAISS's read alone) 0.06–0.08
s. The disk holds one more copy of the file per serving process while it runs, freed when it
exits, even by SIGKILL.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from semsearch.errors import IndexLoadError

CHUNK = 8 << 20  # bytes copied (and hashed) per read


def _unnamed(directory: Path) -> int | None:
    """A descriptor of a new unnamed file in `directory` (None where none can be made)."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.EROFS,
                         errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT):
            return None
        raise


@contextmanager
def pinned(file: Path, checksum: str | None = None) -> Iterator[Path | None]:
    """A private, unnamed copy of `file` to open or map inside the block (None: none could be
    made, read `file` itself into memory). IndexLoadError if the copy is not the file the
    manifest describes (`checksum`: its sha256) or the file shrank while it was copied."""
    fd = _unnamed(file.parent)
    try:
        if fd is not None and not _copy(file, fd, checksum):
            os.close(fd)
            fd = None
        yield None if fd is None else Path(f"/proc/self/fd/{fd}")
    finally:
        if fd is not None:
            os.close(fd)  # the mapping, if any, keeps the unnamed file alive


def _copy(file: Path, fd: int, checksum: str | None) -> bool:
    """Copy `file` into `fd`, checking its size and checksum; False if the disk is full."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    copied = 0
    with open(file, "rb") as source:
        expected = os.fstat(source.fileno()).st_size
        while size := source.readinto(buffer):
            try:
                _write_all(fd, view[:size])
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    return False
                raise
            digest.update(view[:size])
            copied += size
    if copied != expected or (checksum and digest.hexdigest() != checksum):
        raise IndexLoadError(f"index file {file} is corrupt (checksum mismatch, or it changed "
                             "while it was read); rebuild it with `semsearch index`")
    return True


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def mapped_array(file: Path) -> np.ndarray:
    """A `.npy` array memory-mapped from a private copy of `file` (read into memory where no
    copy can be made)."""
    with pinned(file) as copy:
        return np.load(file if copy is None else copy, mmap_mode=None if copy is None else "r")
