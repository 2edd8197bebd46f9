"""Dict filters as RAG frameworks write them, translated to semsearch's `where` language.

    {"source": "a.txt", "paragraph": {"$gt": 2}}
    → (source == "a.txt") and (paragraph > 2)

The Mongo-like style LangChain vector stores take (Chroma, Pinecone, PGVector, ...): a field maps
to a value (equality) or to operators `$eq $ne $gt $gte $lt $lte $in $nin`; `$and`/`$or` take a
list of such dicts; several fields in one dict are all required. Values are rendered as
literals (strings JSON-quoted, so a quote or backslash in one stays text), never pasted in, and
the result goes through the same parser and field check as any `where` (`semsearch.filters`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from semsearch.errors import QueryError

_COMPARE = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_LISTS = {"$in": "in", "$nin": "not in"}
_JOIN = {"$and": "and", "$or": "or"}


def to_where(found: Mapping[str, Any]) -> str:
    """A dict filter as a `where` expression; QueryError for an operator, field name or value
    it cannot express."""
    if not isinstance(found, Mapping) or not found:
        raise QueryError(f"a dict filter must be a non-empty mapping of fields to conditions, "
                         f"got {found!r:.80}")
    parts = [_joined(key, value) if key in _JOIN else _field(key, value)
             for key, value in found.items()]
    return parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)


def _joined(operator: str, value: Any) -> str:
    if not isinstance(value, list | tuple) or not value:
        raise QueryError(f"{operator} takes a non-empty list of filters, got {value!r:.80}")
    return f" {_JOIN[operator]} ".join(f"({to_where(item)})" for item in value)


def _field(name: str, condition: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("$"):
        raise QueryError(f"cannot filter on {name!r}: a field name is letters, digits and _ "
                         f"(operators: {', '.join([*_COMPARE, *_LISTS, *_JOIN])})")
    if not isinstance(condition, Mapping):
        return f"{name} == {_literal(condition)}"
    if not condition:
        raise QueryError(f"the condition on {name!r} is empty")
    parts = []
    for operator, value in condition.items():
        if operator in _COMPARE:
            parts.append(f"{name} {_COMPARE[operator]} {_literal(value)}")
        elif operator in _LISTS:
            if not isinstance(value, list | tuple):
                raise QueryError(f"{operator} on {name!r} takes a list, got {value!r:.80}")
            parts.append(f"{name} {_LISTS[operator]} [{', '.join(map(_literal, value))}]")
        else:
            raise QueryError(f"unknown filter operator {operator!r} on {name!r}; choose from "
                             f"{', '.join([*_COMPARE, *_LISTS])}")
    return parts[0] if len(parts) == 1 else " and ".join(parts)


def _literal(value: Any) -> str:
    """A value as a literal of the filter language (Python's: True, None, "text")."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise QueryError(f"cannot filter on the value {value!r:.80}: use text, a number, true/false "
                     "or null")
