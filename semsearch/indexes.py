"""Indexes by name: where named indexes live, which index a bare name means, which exist.

A bare name (`seeds`, `mine`: no path separator, no leading `.` or `~`, no `.db`, no `://`) is
looked up in the indexes folders, in this order, the first that holds an index of that name
winning:

    1. $SEMSEARCH_INDEXES                     (when set)
    2. ./indexes                              (of the current directory: a clone's indexes/)
    3. $XDG_DATA_HOME/semsearch/indexes       (default ~/.local/share/semsearch/indexes)
    4. ./NAME, when it holds an index         (what a bare name meant before names existed)
    5. the seeds index shipped in the package (for the name `seeds` only)

Anything else — a path with a separator (`./mine`, `indexes/mine`, `/srv/idx`), a Milvus Lite
file (`x.db`) or a Milvus URI (`http://host:19530`) — is a location, used as given. So a name
means an indexes-folder index even where a directory of that name sits in the current directory
(a clone's `seeds/` is the corpus, `--index seeds` its index); write `./NAME` for the directory.

A name written to (`semsearch index DIR`, `--out NAME`) goes into the first of 1-3 that applies:
SEMSEARCH_INDEXES if set, else ./indexes if it is a directory, else the user folder.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from semsearch.errors import IndexNotFoundError, SemsearchError

FOLDERS_ENV = "SEMSEARCH_INDEXES"
LOCAL = "indexes"  # the folder of the current directory (a clone's top-level indexes/)
PACKAGED = Path(__file__).resolve().parent / "data" / "indexes"  # the shipped seeds index
_CURRENT = "CURRENT"  # stores/generations.py's pointer file: a directory holding it is an index
_NAME = re.compile(r"[^\W][\w.-]*")


class AmbiguousNameWarning(UserWarning):
    """A bare name found both in an indexes folder (used) and as a directory here (not)."""


def is_name(location: str | os.PathLike[str]) -> bool:
    """Whether `location` is a bare index name rather than a path or a Milvus URI."""
    if not isinstance(location, str):  # a Path object is a path, whatever it spells
        return False
    text = location.strip()
    return bool(_NAME.fullmatch(text)) and not text.endswith(".db")


def user_folder() -> Path:
    """The per-user indexes folder: $XDG_DATA_HOME/semsearch/indexes (XDG's default data home
    is ~/.local/share)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "semsearch" / "indexes"


def folders() -> list[Path]:
    """The indexes folders a name is looked up in, in order (whether they exist or not)."""
    found = [Path(os.environ[FOLDERS_ENV]).expanduser()] if os.environ.get(FOLDERS_ENV) else []
    return [*found, Path(LOCAL), user_folder()]


def shown(folder: Path) -> str:
    """A folder as a message names it: ./indexes for the current directory's."""
    return str(folder) if folder.is_absolute() else f".{os.sep}{folder}"


def write_folder() -> Path:
    """Where a new index given by name is written: SEMSEARCH_INDEXES, else ./indexes if it is
    a directory, else the user folder."""
    if os.environ.get(FOLDERS_ENV):
        return Path(os.environ[FOLDERS_ENV]).expanduser()
    return Path(LOCAL) if Path(LOCAL).is_dir() else user_folder()


def _holds_index(directory: Path) -> bool:
    return (directory / _CURRENT).is_file()


def resolve(location: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """The location an index to read is at: a bare name looked up as the module docstring
    says (IndexNotFoundError, naming the indexes that exist, when none has it); anything else
    unchanged."""
    if not is_name(location):
        return location
    name = str(location).strip()
    for folder in folders():
        if _holds_index(folder / name):
            if Path(name).resolve() != (folder / name).resolve() and _holds_index(Path(name)):
                warnings.warn(f"{name!r} names the index in {folder}; ./{name} is an index "
                              f"too: write ./{name} to use that one", AmbiguousNameWarning,
                              stacklevel=2)
            return str(folder / name)
    if _holds_index(Path(name)):
        return name
    if _holds_index(PACKAGED / name):
        return str(PACKAGED / name)
    names = sorted({entry.name for entry in listing()})
    where = ", ".join(shown(f) for f in folders())
    raise IndexNotFoundError(
        f"no index named {name!r} in the indexes folders ({where}); indexes found: "
        f"{', '.join(names) or 'none'}. Build it with `semsearch index PATH... --out {name}`, "
        f"or write ./{name} for a directory here")


def target(location: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """The location an index to write is at: a bare name goes into `write_folder()`; anything
    else unchanged."""
    return str(write_folder() / str(location).strip()) if is_name(location) else location


def name_for(paths: list[Path]) -> str:
    """The name an index of `paths` gets when none is given: the folder's name, or a file's
    stem (`seeds/` → seeds, `news.jsonl` → news), made a bare name (`my docs/` → my-docs), so
    it is never written into the folder it reads."""
    if len(paths) != 1:
        raise ValueError("a name is derived from one path only")
    path = Path(paths[0])
    name = path.resolve().name if path.is_dir() else path.stem
    name = re.sub(r"[^\w.-]+", "-", name).strip(".-").removesuffix(".db")
    return name if is_name(name) else "index"


@dataclass(frozen=True)
class Entry:
    """One index found in an indexes folder (or the packaged one): what `semsearch info`
    lists. `shadowed`: an earlier folder holds an index of the same name."""

    name: str
    path: Path
    passages: int
    model: str
    size: int  # bytes on disk, every generation kept included
    changed: float  # when CURRENT last changed (a write's last step), seconds since the epoch
    shadowed: bool = False
    packaged: bool = False
    problem: str = ""  # why its manifest could not be read (the rest is then unknown)


def listing() -> list[Entry]:
    """Every index in the indexes folders, in lookup order, then the packaged seeds index (as
    `seeds` resolves to it when no folder has one)."""
    seen: set[str] = set()
    found: list[Entry] = []
    places = [(f, False) for f in folders()] + [(PACKAGED, True)]
    visited: set[Path] = set()
    for folder, packaged in places:
        try:
            real = folder.resolve()
            children = sorted(p for p in folder.iterdir() if _holds_index(p))
        except OSError:
            continue
        if real in visited:  # SEMSEARCH_INDEXES=indexes: the same folder twice
            continue
        visited.add(real)
        for child in children:
            found.append(_entry(child, shadowed=child.name in seen, packaged=packaged))
            seen.add(child.name)
    return found


def _entry(directory: Path, *, shadowed: bool, packaged: bool) -> Entry:
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    changed = (directory / _CURRENT).stat().st_mtime
    from semsearch.stores.faiss import read_manifest
    from semsearch.stores.generations import live_dir

    try:
        manifest = read_manifest(live_dir(directory))
    except (SemsearchError, OSError) as exc:  # a broken index is listed with why, not fatal
        return Entry(directory.name, directory, 0, "?", size, changed, shadowed, packaged,
                     str(exc))
    return Entry(directory.name, directory, manifest.passage_count, manifest.model.name, size,
                 changed, shadowed, packaged)
