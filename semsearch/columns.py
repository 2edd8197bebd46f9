"""Filters evaluated over columns: a store's passages held as arrays, a parsed filter (`Filter`)
evaluated on all of them at once, with the same result as calling it on each passage.

    ints        paragraph, start, end: int64 arrays, compared by numpy
    text        every passage's text joined into one array of code points (0 between two
                passages): `like` and substring tests are found in it by numpy, never
                passage by passage
    dictionary  source, heading, page and each metadata key: each passage's value as a code
                into the field's distinct values; a comparison runs once per distinct value
                (in Python, so with Python's rules for every JSON type), then is spread by code

Python's semantics, errors included: an order comparison Python cannot make (`year > 2000` with
`year` text or missing) raises TypeError, which fails the whole filter for that passage unless
and/or stopped before it. Each condition is a pair of boolean arrays (value, error), combined by
and/or/not as Python's short-circuit would. Forms no column answers (a list holding fields)
fall back to evaluating that comparison passage by passage. Built once per index generation
(lazily, per field); before this, a filter not seen before re-checked all 101,041 passages of
the 100k service in Python (0.19 s; benchmarks/results/filters.md has both, measured).
"""

from __future__ import annotations

import ast
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semsearch import deadline
from semsearch.filters import (
    _COMPARE,
    _TYPES,
    FIELDS,
    Filter,
    PageSpan,
    _eval,
    _field,
    _like,
    _like_pattern,
    _LikePattern,
    _Piece,
)
from semsearch.passages import Passage

_FLIP: dict[type, type] = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE,
                           ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}
_NUMPY: dict[type, Callable[[Any, Any], np.ndarray]] = {
    ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
    ast.Gt: np.greater, ast.GtE: np.greater_equal}
_INT64 = range(-2**63, 2**63)
PREWARM_KEYS = 64  # metadata keys whose columns `prewarm` builds too (most common first)
LIKE_CACHE = 64  # text `like` results remembered per pattern (a byte per passage each)
CHECK_EVERY = 256  # passages between two checks of the time limit, where evaluated one by one


# ── column kinds ──────────────────────────────────────────────────────────


@dataclass
class _Const:
    value: Any


@dataclass
class _Ints:
    values: np.ndarray  # int64


@dataclass
class _Dict:
    """Each row's value as codes[row] into `values` (distinct by type and value)."""

    codes: np.ndarray  # int64
    values: list[Any]


@dataclass
class _Bools:
    """A condition: its value, and where evaluating it raised TypeError."""

    value: np.ndarray
    error: np.ndarray


class _Text:
    """Texts as one code-point array: row i at starts[i], lens[i] long, 0 between rows."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        self.starts = np.zeros(len(texts), dtype=np.int64)
        if len(texts):
            self.starts[1:] = np.cumsum(self.lens[:-1] + 1)
        joined = "\0".join(texts)
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        self.codes = codes.astype(np.uint16) if len(codes) and codes.max() < 1 << 16 else codes
        # a text holding "\0" would blur the rows: such a column is compared row by row
        self.exact = int(np.count_nonzero(self.codes == 0)) == max(len(texts) - 1, 0)
        self._by_char: tuple[np.ndarray, np.ndarray] | None = None
        if self.exact:
            self._index()  # built with the column, not on the first `like` that needs it

    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        """Every position of the text, grouped by character (a stable radix sort, once):
        where a character occurs is a slice, not a scan of the whole text per pattern."""
        if self._by_char is None:
            order = np.argsort(self.codes, kind="stable").astype(
                np.uint32 if len(self.codes) < 1 << 32 else np.int64)
            bounds = np.concatenate([[0], np.cumsum(np.bincount(self.codes))]).astype(np.int64)
            self._by_char = (order, bounds)
        return self._by_char

    def _positions(self, char: int) -> np.ndarray:
        order, bounds = self._index()
        if char + 1 >= len(bounds):
            return np.zeros(0, dtype=np.int64)
        return order[bounds[char]:bounds[char + 1]].astype(np.int64)

    def _count(self, char: int) -> int:
        _, bounds = self._index()
        return int(bounds[char + 1] - bounds[char]) if char + 1 < len(bounds) else 0

    def _at(self, piece: _Piece, pos: np.ndarray) -> np.ndarray:
        """Which of `pos` (absolute, with room for the piece) have the piece's literal runs."""
        if not piece.literals:
            return np.ones(len(pos), dtype=bool)
        keep = np.arange(len(pos))
        for offset, text in piece.literals:
            for i, char in enumerate(text):
                if not len(keep):
                    return np.zeros(len(pos), dtype=bool)
                code = ord(char)
                if code > np.iinfo(self.codes.dtype).max:
                    return np.zeros(len(pos), dtype=bool)
                keep = keep[self.codes[pos[keep] + offset + i] == code]
        found = np.zeros(len(pos), dtype=bool)
        found[keep] = True
        return found

    def occurrences(self, piece: _Piece) -> np.ndarray:
        """Sorted starts (absolute) of every place the piece matches inside one row."""
        return self._occurrences(piece)[0]

    def _occurrences(self, piece: _Piece) -> tuple[np.ndarray, np.ndarray]:
        """`occurrences`, and the row of each."""
        rarest = min(((offset + i, ord(char)) for offset, text in piece.literals
                      for i, char in enumerate(text)), key=lambda c: self._count(c[1]))
        pos = self._positions(rarest[1]) - rarest[0]
        pos = pos[(pos >= 0) & (pos + piece.length <= len(self.codes))]
        rest = _Piece(piece.length, tuple(  # the rarest character is where it was found
            (offset + i, char) for offset, text in piece.literals for i, char in enumerate(text)
            if offset + i != rarest[0]))
        pos = pos[self._at(rest, pos)]
        row = np.searchsorted(self.starts, pos, side="right") - 1
        inside = pos + piece.length <= self.starts[row] + self.lens[row]
        return pos[inside], row[inside]

    def like(self, pattern: _LikePattern) -> np.ndarray:
        """Which rows the pattern matches (as `_LikePattern.match`: pieces leftmost-first)."""
        if not self.exact:
            return np.fromiter((pattern.match(t) for t in self.texts), dtype=bool,
                               count=len(self.texts))
        first, last = pattern.first, pattern.last
        if last is not None and not first.length and not last.length \
                and len(pattern.middle) == 1 and pattern.middle[0].literals:
            return self._contains_piece(pattern.middle[0])  # `%X%`: anywhere in the row
        if last is None:
            rows = np.flatnonzero(self.lens == first.length)
            rows = rows[self._at(first, self.starts[rows])]
        else:
            rows = np.flatnonzero(self.lens >= first.length + last.length)
            rows = rows[self._at(first, self.starts[rows])]
            end = self.lens[rows] - last.length  # where the last piece starts, in the row
            keep = self._at(last, self.starts[rows] + end)
            rows, end = rows[keep], end[keep]
            cur = np.full(len(rows), first.length, dtype=np.int64)
            for piece in pattern.middle:
                if not piece.literals:
                    found = cur
                else:
                    occ = self.occurrences(piece)
                    if not len(occ):
                        rows = rows[:0]
                        break
                    idx = np.searchsorted(occ, self.starts[rows] + cur)
                    found = occ[np.minimum(idx, len(occ) - 1)] - self.starts[rows]
                    found[idx >= len(occ)] = np.iinfo(np.int64).max // 2
                keep = found + piece.length <= end
                rows, end, cur = rows[keep], end[keep], found[keep] + piece.length
        matched = np.zeros(len(self.lens), dtype=bool)
        matched[rows] = True
        return matched

    def contains(self, needle: str) -> np.ndarray:
        """Which rows hold `needle` (Python's `needle in text`)."""
        if not needle:
            return np.ones(len(self.lens), dtype=bool)
        if not self.exact:
            return np.fromiter((needle in t for t in self.texts), dtype=bool,
                               count=len(self.texts))
        return self._contains_piece(_Piece(len(needle), ((0, needle),)))

    def _contains_piece(self, piece: _Piece) -> np.ndarray:
        found = np.zeros(len(self.lens), dtype=bool)
        found[self._occurrences(piece)[1]] = True
        return found

    def equals(self, value: str) -> np.ndarray:
        rows = np.flatnonzero(self.lens == len(value))
        if self.exact and value:
            rows = rows[self._at(_Piece(len(value), ((0, value),)), self.starts[rows])]
        elif not self.exact:
            rows = rows[[self.texts[r] == value for r in rows.tolist()]]
        found = np.zeros(len(self.lens), dtype=bool)
        found[rows] = True
        return found


_Column = _Const | _Ints | _Dict | _Bools | _Text


def _shape(node: ast.AST) -> Any:
    """What tells two filter nodes apart, as `ast.dump` would (a constant by type and value),
    built for the node kinds a filter holds: 30 equal `like` clauses are told equal in a
    fraction of ast.dump's 1.5 ms."""
    if isinstance(node, ast.Constant):
        return (type(node.value), repr(node.value))
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return ("call", _shape(node.func), *map(_shape, node.args))
    if isinstance(node, ast.Compare):
        return ("compare", _shape(node.left), *map(type, node.ops),
                *map(_shape, node.comparators))
    if isinstance(node, ast.BoolOp):
        return (type(node.op), *map(_shape, node.values))
    if isinstance(node, ast.UnaryOp):
        return (type(node.op), _shape(node.operand))
    if isinstance(node, ast.List | ast.Tuple):
        return (type(node), *map(_shape, node.elts))
    return ast.dump(node)


def _key(value: Any) -> Any:
    """What tells two values apart for a dictionary column: type and value (True, 1 and 1.0
    stay apart), a page span by its pages, an unhashable value by identity."""
    if isinstance(value, PageSpan):
        return (PageSpan, value.first, value.last)
    try:
        hash(value)
    except TypeError:
        return (list, id(value))
    return (type(value), value)


def _dictionary(values: Sequence[Any]) -> _Dict:
    index: dict[Any, int] = {}
    distinct: list[Any] = []
    codes = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        key = _key(value)
        code = index.get(key)
        if code is None:
            code = index[key] = len(distinct)
            distinct.append(value)
        codes[row] = code
    return _Dict(codes, distinct)


def _per_value(values: Sequence[Any], fn: Callable[[Any], Any]) -> tuple[np.ndarray, np.ndarray]:
    """fn on each value: (truth of its result, whether it raised TypeError)."""
    truth = np.zeros(len(values), dtype=bool)
    error = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        try:
            truth[i] = bool(fn(value))
        except TypeError:
            error[i] = True
    return truth, error


class Columns:
    """A store's passages as columns, and filters evaluated over them (`keep`)."""

    def __init__(self, ids: np.ndarray, passages: list[Passage]) -> None:
        self.ids = ids
        self.passages = passages
        self.size = len(passages)
        self._built: dict[str, _Column] = {}
        self._likes: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, passages: dict[int, Passage]) -> Columns:
        return cls(np.fromiter(passages, dtype=np.int64, count=len(passages)),
                   list(passages.values()))

    def keep(self, where: Filter) -> np.ndarray:
        """The ids of the passages `where` keeps, in store order."""
        deadline.check("while filtering")
        result = self._condition(where.tree)
        deadline.check("while filtering")
        return self.ids[result.value & ~result.error]

    def prewarm(self, keys: Sequence[str] = ()) -> None:
        """Build every passage field's column and those of the first PREWARM_KEYS metadata
        `keys` now (the service does at load), so that no filtered request pays for the build:
        1.2 s at 101k passages, nearly all of it the text's character index."""
        for name in (*FIELDS, *list(keys)[:PREWARM_KEYS]):
            self.column(name)

    # ── columns ──

    def column(self, name: str) -> _Column:
        with self._lock:
            built = self._built.get(name)
            if built is None:
                built = self._built[name] = self._build(name)
            return built

    def _build(self, name: str) -> _Column:
        if name in FIELDS:
            values = [getattr(p, name) for p in self.passages]
            if _TYPES[name] is int and all(type(v) is int and v in _INT64 for v in values):
                return _Ints(np.array(values, dtype=np.int64).reshape(-1))
            if name == "text" and all(type(v) is str for v in values):
                return _Text(values)
            return _dictionary(values)
        return _dictionary([_field(p, name) for p in self.passages])

    def _as_dict(self, column: _Column) -> _Dict:
        if isinstance(column, _Dict):
            return column
        if isinstance(column, _Ints):
            distinct, codes = np.unique(column.values, return_inverse=True)
            return _Dict(codes.astype(np.int64).reshape(-1), distinct.tolist())
        if isinstance(column, _Bools):
            return _Dict(column.value.astype(np.int64), [False, True])
        if isinstance(column, _Text):
            return _dictionary(column.texts)
        return _Dict(np.zeros(self.size, dtype=np.int64), [column.value])

    # ── conditions ──

    def _const(self, truth: bool, error: bool = False) -> _Bools:
        return _Bools(np.full(self.size, truth and not error), np.full(self.size, error))

    def _spread(self, column: _Dict, fn: Callable[[Any], Any]) -> _Bools:
        truth, error = _per_value(column.values, fn)
        return _Bools(truth[column.codes], error[column.codes])

    def _condition(self, node: ast.expr) -> _Bools:
        """The node as a condition: Python's truthiness of its value, and where it raised."""
        if isinstance(node, ast.BoolOp):
            conjunction = isinstance(node.op, ast.And)
            # a repeated operand changes nothing (`a or b or a`: the second `a` is reached only
            # where the first was false without error): 30 equal clauses are evaluated once
            operands = {_shape(v): v for v in node.values}  # in order of first appearance
            first, *rest = (self._condition(v) for v in operands.values())
            value, error = first.value.copy(), first.error.copy()
            erred = bool(error.any())
            for operand in rest:
                if not erred and not operand.error.any():  # the common case: no errors at all
                    (np.logical_and if conjunction else np.logical_or)(value, operand.value,
                                                                       out=value)
                    continue
                erred = True
                # reached where no error yet and the result is still open
                reached = ~error & (value if conjunction else ~value)
                error |= reached & operand.error
                value = np.where(reached, operand.value, value)
            return _Bools(value & ~error, error)
        if isinstance(node, ast.UnaryOp):
            inner = self._condition(node.operand)
            return _Bools(~inner.value & ~inner.error, inner.error)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._like(node)
        if isinstance(node, ast.List | ast.Tuple):
            if all(isinstance(e, ast.Constant) for e in node.elts):
                return self._const(bool(node.elts))
            return self._rows(node)
        return self._truth(self._value(node))

    def _truth(self, column: _Column) -> _Bools:
        if isinstance(column, _Bools):
            return column
        if isinstance(column, _Const):
            return self._const(bool(column.value))
        if isinstance(column, _Ints):
            return _Bools(column.values != 0, np.zeros(self.size, dtype=bool))
        if isinstance(column, _Text):
            return _Bools(column.lens > 0, np.zeros(self.size, dtype=bool))
        return self._spread(column, bool)

    def _value(self, node: ast.expr) -> _Column:
        """An operand: a field's column, a literal, or a condition's booleans."""
        if isinstance(node, ast.Name):
            return self.column(node.id)
        if isinstance(node, ast.Constant):
            return _Const(node.value)
        if isinstance(node, ast.List | ast.Tuple):
            return _Const([e.value for e in node.elts if isinstance(e, ast.Constant)])
        return self._condition(node)

    def _rows(self, node: ast.expr) -> _Bools:
        """The node evaluated passage by passage (what no column answers)."""
        truth = np.zeros(self.size, dtype=bool)
        error = np.zeros(self.size, dtype=bool)
        for row, passage in enumerate(self.passages):
            if not row % CHECK_EVERY:
                deadline.check("while filtering")
            try:
                truth[row] = bool(_eval(node, passage))
            except TypeError:
                error[row] = True
        return _Bools(truth & ~error, error)

    def _like(self, node: ast.Call) -> _Bools:
        literal = node.args[1]
        assert isinstance(literal, ast.Constant) and isinstance(literal.value, str)
        pattern: str = literal.value
        column = self._value(node.args[0])
        none = np.zeros(self.size, dtype=bool)
        if isinstance(column, _Text):
            return _Bools(self._text_like(pattern, column), none)
        if isinstance(column, _Const):
            return self._const(_like(column.value, pattern))
        if isinstance(column, _Dict):
            return self._spread(column, lambda v: _like(v, pattern))
        # numbers and booleans are never like anything; a condition's error still counts
        return _Bools(none, column.error if isinstance(column, _Bools) else none)

    def _text_like(self, pattern: str, column: _Text) -> np.ndarray:
        """`text like pattern`, remembered for the last LIKE_CACHE patterns: a filter of 30
        equal clauses (the abuse benchmark's attack) searches the text once, not 30 times."""
        with self._lock:
            found = self._likes.get(pattern)
            if found is not None:
                self._likes.move_to_end(pattern)
                return found
        found = column.like(_like_pattern(pattern))
        found.flags.writeable = False  # shared by every filter that reads it
        with self._lock:
            self._likes[pattern] = found
            while len(self._likes) > LIKE_CACHE:
                self._likes.popitem(last=False)
        return found

    def _compare(self, node: ast.Compare) -> _Bools:
        """A comparison chain, as Python runs it: pairs left to right up to the first false."""
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.List | ast.Tuple)
               and not all(isinstance(e, ast.Constant) for e in o.elts) for o in operands):
            return self._rows(node)
        left = self._value(node.left)
        error = self._error(left).copy()
        going = ~error  # rows where every pair so far held
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self._value(right_node)
            pair = self._pair(left, op, right)
            error |= going & (self._error(right) | pair.error)
            going &= ~self._error(right) & ~pair.error & pair.value
            left = right
        return _Bools(going & ~error, error)

    def _error(self, column: _Column) -> np.ndarray:
        return column.error if isinstance(column, _Bools) else np.zeros(self.size, dtype=bool)

    def _pair(self, left: _Column, op: ast.cmpop, right: _Column) -> _Bools:
        """`left op right` for every row (errors of the operands themselves not included)."""
        compare = _COMPARE[type(op)]
        if isinstance(left, _Const) and isinstance(right, _Const):
            try:
                return self._const(bool(compare(left.value, right.value)))
            except TypeError:
                return self._const(False, error=True)
        if isinstance(left, _Const) and type(op) in _FLIP:
            return self._pair(right, _FLIP[type(op)](), left)
        if isinstance(right, _Const):
            fast = self._against(left, op, right.value)
            if fast is not None:
                return fast
            column = self._as_dict(left)
            return self._spread(column, lambda v: compare(v, right.value))
        if isinstance(left, _Const):  # `"x" in text`, `2 in tags`
            if isinstance(right, _Text) and isinstance(op, ast.In | ast.NotIn) \
                    and isinstance(left.value, str):
                inside = right.contains(left.value)
                return _Bools(inside if isinstance(op, ast.In) else ~inside,
                              np.zeros(self.size, dtype=bool))
            column = self._as_dict(right)
            return self._spread(column, lambda v: compare(left.value, v))
        if isinstance(left, _Ints) and isinstance(right, _Ints) and type(op) in _NUMPY:
            return _Bools(_NUMPY[type(op)](left.values, right.values),
                          np.zeros(self.size, dtype=bool))
        a, b = self._as_dict(left), self._as_dict(right)  # two fields: each distinct pair once
        pairs, codes = np.unique(a.codes * len(b.values) + b.codes, return_inverse=True)
        width = len(b.values)
        joined = _Dict(codes.reshape(-1), [(a.values[p // width], b.values[p % width])
                                           for p in pairs.tolist()])
        return self._spread(joined, lambda v: compare(v[0], v[1]))

    def _against(self, column: _Column, op: ast.cmpop, value: Any) -> _Bools | None:
        """A typed column against a literal, by numpy (None: no fast way, use the values)."""
        none = np.zeros(self.size, dtype=bool)
        number = isinstance(value, int | float) and (
            not isinstance(value, int) or value in _INT64) and (
            not isinstance(value, float) or np.isfinite(value))
        if isinstance(column, _Ints):
            if type(op) in _NUMPY and number:
                return _Bools(_NUMPY[type(op)](column.values, value), none)
            if isinstance(op, ast.In | ast.NotIn) and isinstance(value, list):
                # an int equals a bool, an int or an integral float; never anything else
                wanted = [int(v) for v in value if (isinstance(v, int) and v in _INT64)
                          or (isinstance(v, float) and v.is_integer() and int(v) in _INT64)]
                inside = np.isin(column.values, np.array(wanted, dtype=np.int64)) \
                    if wanted else none
                return _Bools(inside if isinstance(op, ast.In) else ~inside, none)
            if not number:  # the outcome depends on the types alone: try one int
                return self._typed(lambda: _COMPARE[type(op)](0, value))
            return None
        if isinstance(column, _Text):
            if isinstance(op, ast.Eq | ast.NotEq) and isinstance(value, str):
                same = column.equals(value)
                return _Bools(same if isinstance(op, ast.Eq) else ~same, none)
            if isinstance(op, ast.In | ast.NotIn) and isinstance(value, list):
                inside = none.copy()
                for item in dict.fromkeys(v for v in value if isinstance(v, str)):
                    inside |= column.equals(item)
                return _Bools(inside if isinstance(op, ast.In) else ~inside, none)
            if type(op) in _NUMPY and isinstance(value, str):
                texts = np.array(column.texts, dtype=object)
                return _Bools(np.asarray(_NUMPY[type(op)](texts, value), dtype=bool), none)
            if not isinstance(value, str):  # the outcome depends on the types alone
                return self._typed(lambda: _COMPARE[type(op)]("", value))
            return _Bools(np.fromiter((_COMPARE[type(op)](t, value) for t in column.texts),
                                      dtype=bool, count=self.size), none)  # `text in "…"`
        return None

    def _typed(self, compare: Callable[[], Any]) -> _Bools:
        """A comparison whose outcome the types alone decide, the same on every row."""
        try:
            return self._const(bool(compare()))
        except TypeError:
            return self._const(False, error=True)
