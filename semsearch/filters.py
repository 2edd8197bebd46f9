"""Metadata filters: a boolean expression over passage fields, as Milvus writes them.

    source == "000_0db68ecbc2c6cfcf.txt"
    source in ["a.txt", "b.txt"] and paragraph > 3
    not (heading like "献爱心%") || year >= 2020        # `year`: a JSONL metadata field

Fields: source, paragraph, start, end, heading, text, and any metadata key. Operators: == != <
<= > >= in, not in, like (with % as wildcard), and/or/not (also && || !), parentheses. The same
expression works on the FAISS backend (evaluated here) and on Milvus (passed through).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from semsearch.errors import QueryError
from semsearch.passages import Passage

Predicate = Callable[[Passage], bool]
FIELDS = ("source", "paragraph", "start", "end", "heading", "text")
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
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return isinstance(value, str) and re.fullmatch(regex, value, re.DOTALL) is not None


def _field(passage: Passage, name: str) -> Any:
    if name in FIELDS:
        return getattr(passage, name)
    return passage.metadata.get(name)


def parse(expression: str) -> Predicate:
    """Compile a filter expression; QueryError (saying what is wrong) if it is not one."""
    try:
        tree = ast.parse(_python(expression).strip(), mode="eval")
    except SyntaxError as exc:
        raise QueryError(f"bad filter {expression!r}: {exc.msg}; write e.g. "
                         "source == \"a.txt\" and paragraph > 2") from exc
    _check(tree.body, expression)
    body = tree.body

    def predicate(passage: Passage) -> bool:
        try:
            return bool(_eval(body, passage))
        except TypeError:  # a comparison of incompatible types (a missing field is None)
            return False

    return predicate


def _check(node: ast.AST, expression: str) -> None:
    allowed = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Name,
               ast.Constant, ast.List, ast.Tuple, ast.Load, ast.Call, *_COMPARE)
    for child in ast.walk(node):
        if not isinstance(child, allowed):
            raise QueryError(f"bad filter {expression!r}: {type(child).__name__} is not "
                             "allowed; use fields, literals, comparisons, in, like, and/or/not")
        if isinstance(child, ast.Call) and not (
                isinstance(child.func, ast.Name) and child.func.id == "__like__"
                and len(child.args) == 2 and isinstance(child.args[1], ast.Constant)):
            raise QueryError(f"bad filter {expression!r}: only `field like \"pattern\"` calls")


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
