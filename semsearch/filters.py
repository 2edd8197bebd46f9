"""Metadata filters: a boolean expression over passage fields, as Milvus writes them.

    source == "000_0db68ecbc2c6cfcf.txt"
    source in ["a.txt", "b.txt"] and paragraph > 3
    not (heading like "献爱心%") || year >= 2020        # `year`: a JSONL metadata field

Fields: source, paragraph, start, end, heading, text, and any metadata key. Operators: == != <
<= > >= in, not in, like (% any run of characters, _ any one), and/or/not (also && || !),
parentheses. An expression is parsed once into a checked tree (`compile_filter` gives a
`Filter`): the FAISS backend evaluates the tree over all its passages at once (columns.py;
calling the Filter on one passage, here, is the reference it must agree with), the Milvus
backend gets the same tree rendered in Milvus's syntax (`Filter.to_milvus`, never an edit of the
text): metadata keys become `metadata["key"]`, literals are re-quoted, `1 < paragraph < 3`
becomes two comparisons.

Filters come from users of a service, so evaluation is bounded: at most MAX_CHARS characters,
MAX_NODES syntax nodes and MAX_DEPTH levels of nesting, `like` matched without regular
expressions in time linear in the text for each pattern piece (a regex built from `%%%%%%X`
backtracked exponentially and froze the service), and each expression compiled once.

Both backends keep the same passages (tests/test_filters_milvus.py checks it on Milvus Lite).
Here a missing key is None, so `year != 2020` and `year == None` keep passages without `year`;
Milvus makes a missing key null, and `not null` is null: equality, `in` and `like` on a key are
rendered with an `exists` guard. An order comparison Python cannot make (`year > 2000` with
`year` missing or text) fails the whole filter for that passage, unless and/or stopped before
it; Milvus makes it null where Python raises, so and/or are rendered to let a null through as
Python lets the error through (`a and not a` is false, or null when `a` is). Refused for Milvus
(QueryError), as it cannot express them or would match other passages: `like` patterns with a
backslash (an escape to Milvus), a bare metadata key as a condition (Python truthiness), `in`
without a list of literals on the right (a substring test here), comparing a key with another
field, comparisons that always raise (`paragraph > None`), integers beyond 64 bits, infinite
numbers, text with control characters other than tab and newlines, and renderings longer than
MAX_MILVUS_CHARS (the error guards can multiply a deeply nested filter).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any

from semsearch.errors import FilterError
from semsearch.passages import Passage

Predicate = Callable[[Passage], bool]
FIELDS = ("source", "paragraph", "start", "end", "heading", "text")
_TYPES: dict[str, type] = {"source": str, "paragraph": int, "start": int, "end": int,
                           "heading": str, "text": str}
MAX_CHARS = 4000
MAX_NODES = 400
MAX_DEPTH = 32
MAX_MILVUS_CHARS = 16 * MAX_CHARS
_STRING = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
# `name like "pattern"`, or a string literal: skipped whole, so `like` inside one stays text
_LIKE = re.compile(r"""(\b[A-Za-z_]\w*)\s+like\s+("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|"""
                   + _STRING.pattern)
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_MILVUS_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
               ast.GtE: ">="}
_FLIPPED = {ast.Eq: ast.Eq(), ast.NotEq: ast.NotEq(), ast.Lt: ast.Gt(), ast.LtE: ast.GtE(),
            ast.Gt: ast.Lt(), ast.GtE: ast.LtE()}  # `5 < x` is `x > 5`
_INT64 = range(-2**63, 2**63)


@dataclass(frozen=True)
class Filter:
    """A checked filter: call it on a passage (evaluated here), or render it for Milvus
    (`to_milvus`). Made by `compile_filter`; two are equal when their expressions are."""

    expression: str
    tree: ast.expr = field(repr=False, compare=False)
    names: frozenset[str] = field(repr=False, compare=False)  # the fields it reads

    def __call__(self, passage: Passage) -> bool:
        try:
            return bool(_eval(self.tree, passage))
        except TypeError:  # a metadata field of another type in this passage (or missing)
            return False

    @cached_property
    def cost(self) -> int:
        """Estimated work per passage (syntax nodes, plus each `like` pattern's pieces and
        literal runs): what the service uses to tell a cheap filter from an expensive one."""
        total = 0
        for node in ast.walk(self.tree):
            total += 1
            if isinstance(node, ast.Call) and isinstance(node.args[1], ast.Constant):
                total += _like_pattern(str(node.args[1].value)).cost
        return total

    def to_milvus(self) -> str:
        """The same condition in Milvus's syntax, for a collection with the passage fields as
        columns and the metadata as JSON field `metadata`; QueryError for what Milvus cannot
        match the same way (see the module docstring)."""
        return self._milvus

    @cached_property
    def _milvus(self) -> str:
        rendered = _Milvus(self.expression).condition(self.tree)
        return rendered.text if isinstance(rendered, _Cond) else str(rendered).lower()


def compile_filter(expression: str, fields: Iterable[str] | None = None) -> Filter:
    """Compile a filter expression; QueryError (saying what is wrong) if it is not one. With
    `fields` (the names an index has), a name outside them is refused rather than matching
    nothing."""
    if not isinstance(expression, str):
        raise FilterError(f"a filter must be text, not {type(expression).__name__}")
    compiled = _compile(expression)
    if fields is not None:
        known = set(fields) | set(FIELDS)
        for node in ast.walk(compiled.tree):
            if isinstance(node, ast.Name) and node.id != "__like__" and node.id not in known:
                raise FilterError(f"bad filter {expression!r}: unknown field {node.id!r}; fields "
                                 f"here: {', '.join(sorted(known))}")
    return compiled


def parse(expression: str, fields: Iterable[str] | None = None) -> Filter:
    """`compile_filter`: a Filter is callable, the predicate this returned before."""
    return compile_filter(expression, fields)


def _python(expression: str) -> str:
    """Milvus spellings to Python's: && || ! (outside string literals) and `x like "p%"`."""
    def like(match: re.Match[str]) -> str:
        return f"__like__({match[1]}, {match[2]})" if match[1] else match[0]

    parts = _STRING.split(_LIKE.sub(like, expression))
    for i in range(0, len(parts), 2):  # even parts are code, odd ones string literals
        code = parts[i].replace("&&", " and ").replace("||", " or ")
        parts[i] = re.sub(r"!(?!=)", " not ", code)
    return "".join(parts)


def _like(value: Any, pattern: str) -> bool:
    """SQL-style `like`: `%` any run of characters, `_` any one (see `_LikePattern`)."""
    return isinstance(value, str) and _like_pattern(pattern).match(value)


@dataclass(frozen=True)
class _Piece:
    """A stretch of a `like` pattern between two `%`: fixed length, literal runs at fixed
    offsets, `_` anywhere else."""

    length: int
    literals: tuple[tuple[int, str], ...]  # (offset, text) of each run without `_`, longest first

    @classmethod
    def of(cls, piece: str) -> _Piece:
        runs, offset = [], 0
        for run in piece.split("_"):
            if run:
                runs.append((offset, run))
            offset += len(run) + 1
        return cls(len(piece), tuple(sorted(runs, key=lambda r: -len(r[1]))))

    def at(self, value: str, at: int) -> bool:
        return at + self.length <= len(value) and all(
            value.startswith(text, at + offset) for offset, text in self.literals)

    def find(self, value: str, start: int, end: int) -> int:
        """The leftmost place in value[start:end] where the piece matches, or -1: candidates
        come from `str.find` of its longest literal run (in C), each checked run by run."""
        if start + self.length > end:
            return -1
        if not self.literals:
            return start
        offset, text = self.literals[0]
        stop = end - self.length + offset + len(text)
        found = value.find(text, start + offset, stop)
        while found >= 0:
            if self.at(value, found - offset):
                return found - offset
            found = value.find(text, found + 1, stop)
        return -1


@dataclass(frozen=True)
class _LikePattern:
    """A compiled `like` pattern. Pieces between `%` are placed leftmost-first, which is exact
    for this pattern language, with no backtracking: a regex built from `%%%%%%X` backtracked
    exponentially, and `_` matched position by position in Python took 10.65 s for 30 clauses
    of 100 `_` each. Each piece is found with `str.find` of its longest literal run, so the work
    is one C scan of the text per piece plus a check per occurrence of that run."""

    first: _Piece
    middle: tuple[_Piece, ...]
    last: _Piece | None  # None: no `%` at all

    @property
    def cost(self) -> int:
        """Work units per passage: one per piece and per literal run to check."""
        pieces = (self.first, *self.middle, *([self.last] if self.last else []))
        return sum(1 + len(p.literals) for p in pieces)

    def match(self, value: str) -> bool:
        if self.last is None:
            return len(value) == self.first.length and self.first.at(value, 0)
        end = len(value) - self.last.length
        if end < self.first.length or not self.first.at(value, 0) \
                or not self.last.at(value, end):
            return False
        pos = self.first.length
        for piece in self.middle:
            found = piece.find(value, pos, end)
            if found < 0:
                return False
            pos = found + piece.length
        return True


@lru_cache(maxsize=1024)
def _like_pattern(pattern: str) -> _LikePattern:
    first, *rest = pattern.split("%")
    if not rest:
        return _LikePattern(_Piece.of(first), (), None)
    *middle, last = rest
    return _LikePattern(_Piece.of(first), tuple(_Piece.of(p) for p in middle if p),
                        _Piece.of(last))


class PageSpan:
    """The pages a PDF passage spans, compared as "any of its pages": `page == 6` holds for a
    passage on pages 5-6, `page > 5` for one ending after page 5, `page < 3` for one starting
    before page 3. Milvus gets the same rule rendered over `page_start` and `page_end`
    (`_Milvus.page`)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, int | float) and not isinstance(other, bool)
                and self.first <= other <= self.last)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __lt__(self, other: Any) -> bool:
        return bool(self.first < other)

    def __le__(self, other: Any) -> bool:
        return bool(self.first <= other)

    def __gt__(self, other: Any) -> bool:
        return bool(self.last > other)

    def __ge__(self, other: Any) -> bool:
        return bool(self.last >= other)


def _field(passage: Passage, name: str) -> Any:
    if name in FIELDS:
        return getattr(passage, name)
    if name == "page":
        first, last = passage.metadata.get("page_start"), passage.metadata.get("page_end")
        if isinstance(first, int) and isinstance(last, int) and last > first:
            return PageSpan(first, last)
    return passage.metadata.get(name)


@lru_cache(maxsize=256)
def _compile(expression: str) -> Filter:
    """The checked filter for `expression` (cached: a query's filter is compiled once)."""
    if not isinstance(expression, str):
        raise FilterError(f"a filter must be text, not {type(expression).__name__}")
    if len(expression) > MAX_CHARS:
        raise FilterError(f"the filter is {len(expression):,} characters long; the limit is "
                         f"{MAX_CHARS:,}")
    code = _python(expression)
    if "#" in "".join(_STRING.split(code)[0::2]):
        raise FilterError(f"bad filter {expression!r}: '#' is not part of the filter language")
    depth = _nesting(code)
    if depth > MAX_DEPTH:
        raise FilterError(f"bad filter {expression!r:.60}: nested {depth} deep; the limit is "
                         f"{MAX_DEPTH}")
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError as exc:
        raise FilterError(f"bad filter {expression!r}: {exc.msg}; write e.g. "
                         "source == \"a.txt\" and paragraph > 2") from exc
    except (RecursionError, MemoryError, ValueError) as exc:
        raise FilterError(f"bad filter {expression!r:.60}: too complex") from exc
    tree = _Signed().visit(tree)
    _check(tree.body, expression)
    calls = {id(n.func) for n in ast.walk(tree.body) if isinstance(n, ast.Call)}
    names = frozenset(n.id for n in ast.walk(tree.body)
                      if isinstance(n, ast.Name) and id(n) not in calls)
    return Filter(expression, tree.body, names)


class _Signed(ast.NodeTransformer):
    """`-1`, `+2.5`: a sign on a number literal is part of the literal (Python parses it as an
    operator, which the filter language does not otherwise have)."""

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.USub | ast.UAdd) and isinstance(node.operand, ast.Constant) \
                and isinstance(node.operand.value, int | float) \
                and not isinstance(node.operand.value, bool):
            value = node.operand.value
            return ast.copy_location(ast.Constant(-value if isinstance(node.op, ast.USub)
                                                  else value), node)
        return node


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
        raise FilterError(f"bad filter {expression!r:.60}: {len(nodes)} terms; the limit is "
                         f"{MAX_NODES}")
    for child in nodes:
        if not isinstance(child, allowed):
            raise FilterError(f"bad filter {expression!r}: {type(child).__name__} is not "
                             "allowed; use fields, literals, comparisons, in, like, and/or/not")
        if isinstance(child, ast.Constant) and (
                child.value is not None and not isinstance(child.value, str | int | float)):
            raise FilterError(f"bad filter {expression!r}: {child.value!r} is not a value; use "
                             "numbers and quoted text")
        if isinstance(child, ast.Call) and not (
                isinstance(child.func, ast.Name) and child.func.id == "__like__"
                and len(child.args) == 2 and isinstance(child.args[1], ast.Constant)
                and isinstance(child.args[1].value, str)):
            raise FilterError(f"bad filter {expression!r}: only `field like \"pattern\"` calls")
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
                    raise FilterError(f"bad filter {expression!r}: {name.id} is "
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


# ── rendering for Milvus ─────────────────────────────────────────────────


@dataclass(frozen=True)
class _Cond:
    """A Milvus condition. Where Python raises TypeError (an order comparison with a metadata
    value of another type, or none), it is null: `maybe` holds the (key, "number" | "text")
    type checks whose failure can make it null, `sure` those whose failure surely does. `group`:
    the text is one parenthesized group."""

    text: str
    maybe: frozenset[tuple[str, str]] = frozenset()
    sure: frozenset[tuple[str, str]] = frozenset()
    group: bool = False


_Value = bool | _Cond  # a condition, or its value when the passage does not matter


class _Milvus:
    """Renders a checked tree as a Milvus condition that keeps the passages Python keeps."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def refuse(self, why: str) -> FilterError:
        return FilterError(f"the filter {self.expression!r:.80} cannot run on Milvus: {why}")

    def cond(self, text: str, maybe: frozenset[tuple[str, str]] = frozenset(),
             sure: frozenset[tuple[str, str]] = frozenset(), group: bool = False) -> _Cond:
        self.spend(len(text))
        return _Cond(text, maybe, sure, group)

    def spend(self, size: int) -> None:
        if size > MAX_MILVUS_CHARS:
            raise self.refuse(f"rendered, it is over {MAX_MILVUS_CHARS:,} characters long (the "
                              "guards for type errors multiply with nesting); simplify it")

    def condition(self, node: ast.expr) -> _Value:
        """`node` as a condition (Python's truthiness)."""
        if isinstance(node, ast.BoolOp):
            return self.boolean((self.condition(v) for v in node.values),
                                isinstance(node.op, ast.And))
        if isinstance(node, ast.UnaryOp):  # `not`, the only unary operator _check allows
            value = self.condition(node.operand)
            if isinstance(value, bool):
                return not value
            return self.cond(f"not {_group(value)}", value.maybe, value.sure)
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            return self.boolean((self.compare(a, op, b) for (a, b), op
                                 in zip(pairwise(operands), node.ops, strict=True)), True)
        if isinstance(node, ast.Call):  # __like__(x, "pattern"), as _check allows
            pattern = node.args[1]
            assert isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)
            return self.like(node.args[0], pattern.value)
        if isinstance(node, ast.Name):
            if node.id in FIELDS:
                return self.cond(f'{node.id} != ""' if _TYPES[node.id] is str
                                 else f"{node.id} != 0")
            raise self.refuse(f"a bare metadata key ({node.id}) is true or false by Python's "
                              f"rules, which Milvus lacks; compare it, e.g. {node.id} == True")
        return bool(self.literal(node))

    def boolean(self, values: Iterable[_Value], conjunction: bool) -> _Value:
        """Python's `and` (`all`) or `or` (`any`): operands in order up to the first false
        (true) one; an error on the way stops it too, and fails the filter. An operand that
        may be null (Python's error) is ANDed or ORed into each later one as `(a and not a)`
        (`(a or not a)`): false (true), or null where it is; unless the later one is surely
        null there."""
        conds: list[_Cond] = []
        stopped = False
        for value in values:  # lazily: what Python never reaches is never refused
            if isinstance(value, bool):
                if value is conjunction:  # true in `and`, false in `or`: no effect
                    continue
                stopped = True
                break
            conds.append(value)
        join, other = (" and ", " or ") if conjunction else (" or ", " and ")
        size = 0

        def guard(b: _Cond) -> str:
            nonlocal size
            size += 2 * len(b.text) + 12
            self.spend(size)
            return f"({b.text}{join}not {_group(b)})"

        def guards(earlier: list[_Cond], sure: frozenset[tuple[str, str]]) -> list[str]:
            chosen: list[_Cond] = []  # those null wherever another earlier one is
            for b in earlier:
                if b.maybe and not b.maybe <= sure and not any(b.maybe <= c.sure
                                                               for c in chosen):
                    chosen.append(b)
            return [guard(b) for b in chosen]

        terms = []
        for i, a in enumerate(conds):
            before = guards(conds[:i], a.sure)
            size += len(a.text) + 8
            terms.append(f"({other.join([a.text, *before])})" if before else a.text)
        if stopped:
            before = guards(conds, frozenset())
            if not before:
                return not conjunction
            terms.append(f"({other.join(before)})" if len(before) > 1 else before[0])
        if not terms:
            return conjunction
        maybe = frozenset().union(*(c.maybe for c in conds))
        sure = conds[0].sure if conds else frozenset()
        if len(terms) == 1:
            return self.cond(terms[0], maybe, sure, conds[0].group)  # no guards, no stop
        return self.cond(f"({join.join(terms)})", maybe, sure, group=True)

    def compare(self, a: ast.expr, op: ast.cmpop, b: ast.expr) -> _Value:
        """One comparison of a chain."""
        x, y = self.operand(a), self.operand(b)
        if x[0] == "literal" and y[0] == "literal":
            try:
                return bool(_COMPARE[type(op)](x[1], y[1]))
            except TypeError:
                raise self.refuse(f"{_unparse(a, op, b)} always raises a TypeError") from None
        if isinstance(op, ast.In | ast.NotIn):
            if x[0] == "literal" or y[0] != "literal" or not isinstance(y[1], list):
                raise self.refuse(f"{_unparse(a, op, b)}: `in` takes a field on the left and a "
                                  "list of literals on the right (`in` text is a substring "
                                  "test, which Milvus lacks)")
            return self.member(x[0], x[1], y[1], isinstance(op, ast.NotIn))
        if isinstance(x[1], list) or isinstance(y[1], list):
            raise self.refuse(f"{_unparse(a, op, b)}: compare a list only with `in`")
        if x[0] != "literal" and y[0] != "literal":
            if x[0] == y[0] == "core":
                return self.columns(x[1], op, y[1], _unparse(a, op, b))
            raise self.refuse(f"{_unparse(a, op, b)}: compare a metadata key with a literal, "
                              "not with another field")
        name_first = x[0] != "literal"
        (kind, name), value = (x, y[1]) if name_first else (y, x[1])
        if kind == "meta" and name == "page":
            spanned = self.page(op if name_first else _FLIPPED[type(op)], value)
            if spanned is not None:
                return spanned
        return self.against(kind, name, op, value, name_first, _unparse(a, op, b))

    def against(self, kind: str, name: str, op: ast.cmpop, value: Any, name_first: bool,
                shown: str) -> _Value:
        """A field (`kind` "core" or "meta") compared with a literal `value`."""
        symbol = _MILVUS_OPS[type(op)]
        if value is None:
            if isinstance(op, ast.Eq | ast.NotEq):
                equal = isinstance(op, ast.Eq)
                if kind == "core":
                    return not equal
                return self.cond(f"{'not ' if equal else ''}exists {_key(name)}")
            raise self.refuse(f"{shown}: None cannot be ordered")
        literal = self.literal_text(value)
        field_text = name if kind == "core" else _key(name)
        text = (f"{field_text} {symbol} {literal}" if name_first
                else f"{literal} {symbol} {field_text}")
        if kind == "core":  # types already checked by _check_types
            return self.cond(text)
        if isinstance(op, ast.Eq):
            return self.cond(f"(exists {field_text} and {text})", group=True)
        if isinstance(op, ast.NotEq):
            return self.cond(f"(not exists {field_text} or {text})", group=True)
        check = frozenset({(name, "text" if isinstance(value, str) else "number")})
        return self.cond(text, check, check)

    def page(self, op: ast.cmpop, value: Any) -> _Value | None:
        """`page <op> value` as `PageSpan` compares it: a passage with `page_start` and
        `page_end` (a PDF passage, whose `page` is its first page) matches on any page it spans;
        one without them on `page` itself. None where the plain rendering is already that
        (text or None compare alike with a span and with its first page)."""
        if isinstance(value, bool):
            raise self.refuse("page compared with true or false: a passage on pages 1-2 is not "
                              "`page == true` here but its first page is 1; compare a number")
        if not isinstance(value, int | float):
            return None
        number = self.literal_text(value)
        start, end = _key("page_start"), _key("page_end")
        spans = {ast.Eq: f"({start} <= {number} and {end} >= {number})",
                 ast.NotEq: f"not ({start} <= {number} and {end} >= {number})",
                 ast.Lt: f"{start} < {number}", ast.LtE: f"{start} <= {number}",
                 ast.Gt: f"{end} > {number}", ast.GtE: f"{end} >= {number}"}[type(op)]
        plain = self.against("meta", "page", op, value, True, f"page {_MILVUS_OPS[type(op)]} "
                             f"{number}")
        assert isinstance(plain, _Cond)
        spanned = f"(exists {start} and exists {end})"
        # null (Python's TypeError) only where the plain comparison is, off a span
        return self.cond(f"(({spanned} and {spans}) or (not {spanned} and {_group(plain)}))",
                         plain.maybe, frozenset(), group=True)

    def columns(self, a: str, op: ast.cmpop, b: str, shown: str) -> _Value:
        if _TYPES[a] is _TYPES[b]:
            return self.cond(f"{a} {_MILVUS_OPS[type(op)]} {b}")
        if isinstance(op, ast.Eq | ast.NotEq):
            return isinstance(op, ast.NotEq)
        raise self.refuse(f"{shown} always raises a TypeError (text against a number)")

    def member(self, kind: str, name: str, values: list[Any], negate: bool) -> _Value:
        """`name in values` (`not in` if `negate`): Python's == against each value."""
        if kind == "core":
            keep: list[Any] = [v for v in values if isinstance(v, str)]
            if _TYPES[name] is int:  # an int column equals a bool, int, or float of an int
                keep = [int(v) for v in values if (isinstance(v, int) and v in _INT64)
                        or (isinstance(v, float) and v.is_integer() and int(v) in _INT64)]
            if not keep:
                return negate
            listed = ", ".join(self.literal_text(v) for v in dict.fromkeys(keep))
            return self.cond(f"{name} {'not in' if negate else 'in'} [{listed}]")
        if name == "page" and any(isinstance(v, int | float) for v in values):
            equal = ast.Eq()  # `page in [5, 6]`: any of its pages is one of them
            anywhere = self.boolean((self.page(equal, v) or self.against(
                kind, name, equal, v, True, f"page == {v!r}") for v in values), False)
            if isinstance(anywhere, bool):
                return anywhere is not negate
            return self.cond(f"not {_group(anywhere)}", anywhere.maybe) if negate else anywhere
        key = _key(name)
        tests = list(dict.fromkeys(f"{key} == {self.literal_text(v)}"
                                   for v in values if v is not None))
        if None in values:  # a missing key, or a null, is None here
            text = f"(not exists {key}{''.join(' or ' + t for t in tests)})"
        elif tests:
            either = tests[0] if len(tests) == 1 else f"({' or '.join(tests)})"
            text = f"(exists {key} and {either})"
        else:
            return negate
        return self.cond(f"not {text}" if negate else text, group=not negate)

    def like(self, operand: ast.expr, pattern: str) -> _Value:
        if isinstance(operand, ast.Constant | ast.List | ast.Tuple):
            return _like(self.literal(operand), pattern)
        if not isinstance(operand, ast.Name):
            raise self.refuse("`like` applies to a field")
        if "\\" in pattern:
            raise self.refuse(f"the like pattern {pattern!r} has a backslash, which escapes the "
                              "next character in Milvus but is a plain character here")
        quoted = self.literal_text(pattern)
        if operand.id in FIELDS:
            if _TYPES[operand.id] is not str:
                return False  # like is false for a number
            return self.cond(f"{operand.id} like {quoted}")
        key = _key(operand.id)
        return self.cond(f"(exists {key} and {key} like {quoted})", group=True)

    def operand(self, node: ast.expr) -> tuple[str, Any]:
        """("core" | "meta", field name) or ("literal", value) for a comparison operand."""
        if isinstance(node, ast.Name):
            return ("core" if node.id in FIELDS else "meta", node.id)
        if isinstance(node, ast.Constant | ast.List | ast.Tuple):
            return "literal", self.literal(node)
        raise self.refuse(f"{ast.unparse(node)!r} cannot be compared: compare fields with "
                          "literals")

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple) and all(
                isinstance(e, ast.Constant) for e in node.elts):
            return [e.value for e in node.elts if isinstance(e, ast.Constant)]
        raise self.refuse(f"{ast.unparse(node)!r}: a list may hold only literals")

    def literal_text(self, value: Any) -> str:
        """A literal in Milvus's syntax (strings quoted by json.dumps)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            if value not in _INT64:
                raise self.refuse(f"{value} is beyond Milvus's 64-bit integers")
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.refuse(f"{value} is not a finite number")
            return repr(value)
        assert isinstance(value, str), value
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]", value):
            raise self.refuse(f"the text {value!r:.40} holds a control character or a lone "
                              "surrogate, which Milvus cannot take in a literal")
        return json.dumps(value, ensure_ascii=False)


def _group(cond: _Cond) -> str:
    return cond.text if cond.group else f"({cond.text})"


def _key(name: str) -> str:
    return f"metadata[{json.dumps(name, ensure_ascii=False)}]"


def _unparse(a: ast.expr, op: ast.cmpop, b: ast.expr) -> str:
    return ast.unparse(ast.Compare(left=a, ops=[op], comparators=[b]))
