"""Metadata filters: a boolean expression over passage fields, as Milvus writes them.

    source == "000_0db68ecbc2c6cfcf.txt"
    source in ["a.txt", "b.txt"] and paragraph > 3
    not (heading like "献爱心%") || year >= 2020        # `year`: a JSONL metadata field

Fields: source, paragraph, start, end, heading, text, and any metadata key. Operators: == != <
<= > >= in, not in, like (with % as wildcard), and/or/not (also && || !), parentheses. The same
expression works on the FAISS backend (evaluated here) and on Milvus (passed through).

Filters come from users of a service, so evaluation is bounded: at most MAX_CHARS characters,
MAX_NODES syntax nodes and MAX_DEPTH levels of nesting, `like` matched without regular
expressions in time linear in the text for each pattern piece (a regex built from `%%%%%%X`
backtracked exponentially and froze the service), and each expression compiled once.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import pairwise
from typing import Any

from semsearch.errors import QueryError
from semsearch.passages import Passage

Predicate = Callable[[Passage], bool]
FIELDS = ("source", "paragraph", "start", "end", "heading", "text")
_TYPES: dict[str, type] = {"source": str, "paragraph": int, "start": int, "end": int,
                           "heading": str, "text": str}
MAX_CHARS = 4000
MAX_NODES = 400
MAX_DEPTH = 32
_LIKE = re.compile(r"""(\b[A-Za-z_]\w*)\s+like\s+("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


_STRING = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


def _python(expression: str) -> str:
    """Milvus spellings to Python's: && || ! (outside string literals) and `x like "p%"`."""
    parts = _STRING.split(_LIKE.sub(r"__like__(\1, \2)", expression))
    for i in range(0, len(parts), 2):  # even parts are code, odd ones string literals
        code = parts[i].replace("&&", " and ").replace("||", " or ")
        parts[i] = re.sub(r"!(?!=)", " not ", code)
    return "".join(parts)


def _like(value: Any, pattern: str) -> bool:
    """SQL-style `like`: `%` any run of characters, `_` any one. Pieces between `%` are matched
    leftmost-first (which is exact for this pattern language), with no backtracking."""
    if not isinstance(value, str):
        return False
    first, *rest = pattern.split("%")
    if not rest:
        return len(value) == len(first) and _piece_at(value, 0, first)
    *middle, last = rest
    end = len(value) - len(last)
    if end < len(first) or not _piece_at(value, 0, first) or not _piece_at(value, end, last):
        return False
    pos = len(first)
    for piece in middle:
        found = _find_piece(value, piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _piece_at(value: str, at: int, piece: str) -> bool:
    if "_" not in piece:
        return value.startswith(piece, at)
    return at + len(piece) <= len(value) and all(
        p == "_" or p == value[at + i] for i, p in enumerate(piece))


def _find_piece(value: str, piece: str, start: int, end: int) -> int:
    if "_" not in piece:
        return value.find(piece, start, end)
    for at in range(start, end - len(piece) + 1):
        if _piece_at(value, at, piece):
            return at
    return -1


def _field(passage: Passage, name: str) -> Any:
    if name in FIELDS:
        return getattr(passage, name)
    return passage.metadata.get(name)


def parse(expression: str, fields: Iterable[str] | None = None) -> Predicate:
    """Compile a filter expression; QueryError (saying what is wrong) if it is not one. With
    `fields` (the names an index has), a name outside them is refused rather than matching
    nothing."""
    if not isinstance(expression, str):
        raise QueryError(f"a filter must be text, not {type(expression).__name__}")
    body = _compile(expression)
    if fields is not None:
        known = set(fields) | set(FIELDS)
        for node in ast.walk(body):
            if isinstance(node, ast.Name) and node.id != "__like__" and node.id not in known:
                raise QueryError(f"bad filter {expression!r}: unknown field {node.id!r}; fields "
                                 f"here: {', '.join(sorted(known))}")

    def predicate(passage: Passage) -> bool:
        try:
            return bool(_eval(body, passage))
        except TypeError:  # a metadata field of another type in this passage (or missing)
            return False

    return predicate


@lru_cache(maxsize=256)
def _compile(expression: str) -> ast.expr:
    """The checked syntax tree of `expression` (cached: a query's filter is compiled once)."""
    if not isinstance(expression, str):
        raise QueryError(f"a filter must be text, not {type(expression).__name__}")
    if len(expression) > MAX_CHARS:
        raise QueryError(f"the filter is {len(expression):,} characters long; the limit is "
                         f"{MAX_CHARS:,}")
    code = _python(expression)
    if "#" in "".join(_STRING.split(code)[0::2]):
        raise QueryError(f"bad filter {expression!r}: '#' is not part of the filter language")
    depth = _nesting(code)
    if depth > MAX_DEPTH:
        raise QueryError(f"bad filter {expression!r:.60}: nested {depth} deep; the limit is "
                         f"{MAX_DEPTH}")
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError as exc:
        raise QueryError(f"bad filter {expression!r}: {exc.msg}; write e.g. "
                         "source == \"a.txt\" and paragraph > 2") from exc
    except (RecursionError, MemoryError, ValueError) as exc:
        raise QueryError(f"bad filter {expression!r:.60}: too complex") from exc
    _check(tree.body, expression)
    return tree.body


def _nesting(code: str) -> int:
    """How deep parentheses, brackets and `not`s nest (string literals left out), counted
    before parsing: Python's own parser overflows its stack on thousands of levels."""
    deepest = depth = nots = 0
    for i, part in enumerate(_STRING.split(code)):
        if i % 2:
            continue
        nots += len(re.findall(r"\bnot\b", part))
        for ch in part:
            depth += 1 if ch in "([" else -1 if ch in ")]" else 0
            deepest = max(deepest, depth)
    return deepest + nots


def _check(node: ast.AST, expression: str) -> None:
    allowed = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Name,
               ast.Constant, ast.List, ast.Tuple, ast.Load, ast.Call, *_COMPARE)
    nodes = list(ast.walk(node))
    if len(nodes) > MAX_NODES:
        raise QueryError(f"bad filter {expression!r:.60}: {len(nodes)} terms; the limit is "
                         f"{MAX_NODES}")
    for child in nodes:
        if not isinstance(child, allowed):
            raise QueryError(f"bad filter {expression!r}: {type(child).__name__} is not "
                             "allowed; use fields, literals, comparisons, in, like, and/or/not")
        if isinstance(child, ast.Constant) and (
                child.value is not None and not isinstance(child.value, str | int | float)):
            raise QueryError(f"bad filter {expression!r}: {child.value!r} is not a value; use "
                             "numbers and quoted text")
        if isinstance(child, ast.Call) and not (
                isinstance(child.func, ast.Name) and child.func.id == "__like__"
                and len(child.args) == 2 and isinstance(child.args[1], ast.Constant)
                and isinstance(child.args[1].value, str)):
            raise QueryError(f"bad filter {expression!r}: only `field like \"pattern\"` calls")
        if isinstance(child, ast.Compare):
            _check_types(child, expression)


def _check_types(node: ast.Compare, expression: str) -> None:
    """`paragraph > "a"` can match nothing: refuse it instead of returning no hits."""
    operands = [node.left, *node.comparators]
    for (a, b), op in zip(pairwise(operands), node.ops, strict=True):
        if isinstance(op, ast.In | ast.NotIn):
            continue
        for name, value in ((a, b), (b, a)):
            if (isinstance(name, ast.Name) and name.id in _TYPES
                    and isinstance(value, ast.Constant) and value.value is not None):
                want = _TYPES[name.id]
                have = value.value
                ok = isinstance(have, str) if want is str else (
                    isinstance(have, int | float) and not isinstance(have, bool))
                if not ok:
                    raise QueryError(f"bad filter {expression!r}: {name.id} is "
                                     f"{'text' if want is str else 'a number'}, compared with "
                                     f"{have!r}")


def _eval(node: ast.AST, passage: Passage) -> Any:
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, passage) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, passage)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, passage)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, passage)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _like(_eval(node.args[0], passage), _eval(node.args[1], passage))
    if isinstance(node, ast.Name):
        return _field(passage, node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, passage) for e in node.elts]
    raise AssertionError(f"unchecked node {type(node).__name__}")
