"""Filter test cases shared by the Python, columnar and Milvus evaluations: passages whose
fields and metadata have mixed types, expressions that tell them apart, and a generator of
random filters over them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from semsearch.passages import Passage

# (text, source, paragraph, start, end, heading, metadata): years of every JSON type or none,
# tags in two scripts or numbers, flags as bools and ints, awkward characters in sources
ROWS: list[tuple[str, str, int, int, int, str, dict[str, Any]]] = [
    ("夫妻党员抗疫一线", "a.txt", 1, 0, 8, "献爱心 / 捐赠", {"year": 2021, "tag": "x"}),
    ("社区志愿者", "a.txt", 2, 9, 14, "献爱心", {"year": 2019, "tag": "中文"}),
    ("a\nb", "b.txt", 3, 15, 18, "", {"year": 2020.5, "tag": "y", "rank": 2.5}),
    ("ab", "b.txt", 4, 18, 20, "", {"year": "2021", "rank": 3}),
    ("抗疫", "q\"uote.txt", 5, 0, 2, "标题", {"year": True, "flag": True}),
    ("plain", "back\\slash.txt", 6, 3, 3, "", {"year": None, "flag": False}),
    ("", "c.txt", 1, 10, 5, "h", {"year": [2021], "flag": 1}),
    ("x%y", "100%_.txt", 2, 0, 1, "", {"tag": 1, "flag": 0, "rank": 11}),
    ("x_y", "d.txt", 7, 1, 9, "献爱心%", {"tag": "xylophone", "rank": -0.5}),
    ("中文 text", "中文.txt", 8, 0, 4, "中文", {"year": 1985, "tag": None}),
    ("long " * 20, "e.txt", 9, 100, 200, "", {"year": 2020, "rank": 10}),
    ("more", "e.txt", 10, 200, 300, "", {"year": 2022, "tag": "z", "rank": 1}),
    ("x", "f.txt", 11, 0, 0, "", {}),
    ("y", "f.txt", 12, 5, 6, "", {"year": {"nested": 1}}),
    ("z", "g.txt", 1, 0, 1, "", {"year": 0, "tag": ""}),
    ("w", "g.txt", 2, 1, 2, "", {"year": 1999, "tag": "x", "flag": True}),
    ("献爱心活动", "h.txt", 3, 2, 7, "捐赠", {"year": 2023, "tag": ["x"]}),
    ("抗疫抗疫", "h.txt", 4, 7, 11, "", {"year": -1, "rank": 2.5}),
    ("v", "i.txt", 0, 0, 1, "献", {"year": 2021.0}),
    ("u", "_.txt", 5, 1, 2, "", {"year": "abc", "tag": "m"}),
    ("t", "a.txt", 6, 2, 3, "x", {"year": 2000, "tag": "a"}),
    ("s", "b.txt", 7, 3, 4, "", {"year": 2024, "flag": False, "rank": 0}),
    ("r", "c.txt", 8, 4, 5, "", {"rank": True}),
    ("q", "d.txt", 9, 5, 6, "", {"year": 2010, "tag": "x", "rank": 5}),
    ("p", "e.txt", 10, 6, 7, "", {"year": 1990, "tag": "中文", "flag": 1}),
    ("o", "f.txt", 11, 7, 8, "", {"year": 2005, "tag": "zz", "rank": 2}),
    ("n", "g.txt", 12, 8, 9, "", {"year": "", "tag": "X"}),
    ("m", "h.txt", 13, 9, 10, "", {"year": 2021, "tag": "x", "flag": True, "rank": 9.5}),
    ("l", "i.txt", 14, 10, 11, "", {"year": 1500}),
    ("k", "j.txt", 15, 11, 12, "", {"tag": "中文字"}),
    # PDF passages (`page` is the first of the pages they span) and a `page` of a JSONL record
    ("pdf a", "doc.pdf", 1, 0, 5, "", {"page": 5, "page_start": 5, "page_end": 6}),
    ("pdf b", "doc.pdf", 2, 5, 9, "", {"page": 6, "page_start": 6, "page_end": 6}),
    ("pdf c", "doc.pdf", 3, 9, 12, "", {"page": 2, "page_start": 2, "page_end": 4}),
    ("jsonl", "u.jsonl", 1, 0, 1, "", {"page": 3}),
    ("jsonl", "u.jsonl", 2, 1, 2, "", {"page": "6"}),
]
PASSAGES = {i: Passage(*row) for i, row in enumerate(ROWS)}

EXPRESSIONS = [
    'source == "a.txt"',
    'source in ["a.txt", \'q"uote.txt\', "back\\\\slash.txt", "中文.txt"]',
    "1 < paragraph < 4",
    "paragraph >= 3 and not (start < 10)",
    "start < end",
    'heading like "献爱心%"',
    'text like "%抗疫%" or source like "_.txt"',
    'text like "a%b" or text like "x_y"',
    'source like "100%"',
    "year >= 2020",
    "year != 2021",
    "year == None",
    "year != None",
    "not year > 2020",
    "year >= 2020 or paragraph == 1",
    "paragraph == 1 or year >= 2020",  # Python stops before the error: order matters
    "not (year > 2000 and paragraph > 2)",
    'tag in ["x", "中文", 1]',
    'tag not in ["x", None]',
    'tag like "x%"',
    'tag < "m"',
    "flag == True",
    "flag != 0",
    "rank > 2.5 and rank <= 10",
    "rank > True",
    'paragraph in [1, 2.0, True, 3.5, "x"]',
    'source not in ["a.txt"] && !(heading == "") || year < 1990',
    "paragraph and not heading",
    'year > "2000"',
    '(year > 2000 or tag == "x") and not (rank < 1 or paragraph > 5)',
    "year in [2021, \"2021\"] and year in [2021]",
    "True",
    "source == None",
    # a PDF passage matches on any page it spans (on Milvus too: this failed there before)
    "page == 6",
    "6 == page",
    "page > 5",
    "page < 3",
    "page != 6",
    "2 <= page <= 3",
    "page in [4, 6]",
    'page not in [5, "6", None]',
    'page == "6"',
    "page >= 4.5 and page < 6",
]


FIELD_NAMES = ["source", "heading", "text", "paragraph", "start", "end", "year", "tag", "rank",
               "flag", "page", "missing"]
LITERALS = ['"a.txt"', '"x"', '"中文"', '"2021"', '""', '"m"', "0", "1", "2", "2020", "2.5",
            "True", "False", "None"]
PATTERNS = ['"%"', '"a%"', '"%.txt"', '"_"', '"%中%"', '"x%y"', '"__"', '"x%"']
OPS = ["==", "!=", "<", "<=", ">", ">="]


@st.composite
def atoms(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(FIELD_NAMES))
    literal = st.sampled_from(LITERALS)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return f"{name} {draw(st.sampled_from(OPS))} {draw(literal)}"
    if kind == 1:
        return (f"{draw(literal)} {draw(st.sampled_from(OPS))} {name} "
                f"{draw(st.sampled_from(OPS))} {draw(literal)}")
    if kind == 2:
        items = ", ".join(draw(st.lists(literal, max_size=3)))
        return f"{name} {draw(st.sampled_from(['in', 'not in']))} [{items}]"
    if kind == 3:
        return f"{name} like {draw(st.sampled_from(PATTERNS))}"
    if kind == 4:
        return draw(st.sampled_from(["paragraph", "heading", "start < end", "source != heading"]))
    return f"{name} {draw(st.sampled_from(OPS))} {draw(literal)}"


EXPRESSION = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or ", " && ", " || "]), inner)
        .map("".join),
        inner.map(lambda e: f"not ({e})"),
        inner.map(lambda e: f"!({e})"),
    ),
    max_leaves=5,
)
