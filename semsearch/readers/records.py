"""Record files (.jsonl, .csv, .json arrays): one document per record, named `file#id`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from semsearch.readers.base import CorpusWarning, Document, Options

RECORD_SUFFIXES = frozenset({".jsonl", ".ndjson", ".csv", ".json"})

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
DEFAULT_TEXT_FIELD = "text"
ID_FIELDS = ("id", "_id")


def read(text: str, path: Path, source: str, encoding: str,
             options: Options) -> Iterator[Document]:
    """One document per record of a JSONL, CSV or JSON-array file (see the module doc)."""
    suffix = path.suffix.lower()
    rows: Iterable[tuple[int, Any]]
    if suffix in JSONL_SUFFIXES:
        rows = _jsonl_rows(text, source)
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        rows = ((reader.line_num, row) for row in reader)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(data, list):
            raise ValueError("JSON that is not an array of records (objects); use JSONL, or "
                             "an array of objects")
        rows = enumerate(data, start=1)
    text_field = options.text_field or DEFAULT_TEXT_FIELD
    seen: set[str] = set()
    missing: list[int] = []
    fields: set[str] = set()
    for number, record in rows:
        if not isinstance(record, dict):
            missing.append(number)
            continue
        fields.update(str(k) for k in record)
        body = record.get(text_field)
        if not isinstance(body, str) or not body.strip():
            missing.append(number)
            continue
        rid = _record_id(record, number, options.id_field)
        name = f"{source}#{rid}"
        if name in seen:
            warnings.warn(f"{source}: record id {rid!r} repeats at {number}; that record is "
                          f"named {source}#{rid}@{number}", CorpusWarning, stacklevel=3)
            name = f"{source}#{rid}@{number}"
        seen.add(name)
        metadata = {str(k): v for k, v in record.items() if k != text_field and v is not None}
        metadata["line"] = number
        raw = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
        yield Document(source=name, text=body, encoding=encoding,
                       sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest(), metadata=metadata,
                       clean=options.clean, format="record")
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (", …" if len(missing) > 10 else "")
        hint = (f" (fields seen: {', '.join(sorted(fields)[:12])}; choose one with --text-field)"
                if fields else "")
        warnings.warn(f"{source}: skipped {len(missing)} record(s) with no text in field "
                      f"{text_field!r} (at {shown}){hint}", CorpusWarning, stacklevel=3)


def _jsonl_rows(text: str, source: str) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.warn(f"{source}:{lineno}: skipped, not valid JSON ({exc.msg})",
                          CorpusWarning, stacklevel=4)


def _record_id(record: dict[str, Any], number: int, id_field: str | None) -> str:
    for key in (id_field,) if id_field else ID_FIELDS:
        value = record.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return str(number)
