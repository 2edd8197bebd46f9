"""One BM25 word for a number however it is written: 15万 = 150,000 = 150000 = 0.15 million.

A Chinese text writes `15万元` or `6600万年前`, an English one `150,000 yuan` or `66 million
years ago`, and jieba cuts them into words that never meet (`15` `万元`, `150` `000`, `66`
`million`), so BM25 found nothing for a question in the other language or style. Each number
written with a scale word (千 万 亿 and their compounds, thousand … trillion) or with thousands
separators also gets its value as one word, written out in digits; the words jieba gave are
kept, so nothing that matched before stops matching. Numbers written in Chinese numerals
(十五万) are left as they are.
"""

from __future__ import annotations

import re
from decimal import Decimal

# scale words after a number, longest first so that 万亿 is not read as 万
_SCALES = {
    "万亿": 10**12, "千亿": 10**11, "百亿": 10**10, "十亿": 10**9, "亿": 10**8,
    "千万": 10**7, "百万": 10**6, "十万": 10**5, "万": 10**4, "千": 10**3,
    "trillion": 10**12, "billion": 10**9, "million": 10**6, "thousand": 10**3,
}
_NUMBER = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?!\d|[,.]\d)"
    r"(?:\s*(" + "|".join(_SCALES) + r")(?![a-z]))?",
)
MAX_DIGITS = 30  # a longer value is an identifier or noise, not a quantity to match


def number_words(text: str) -> list[str]:
    """The value of each number in `text` (normalised: NFKC, lowercase) written with a scale
    word or thousands separators, in plain digits (`6600万` and `66 million` → `66000000`;
    `150,000` → `150000`); numbers written plainly give nothing, jieba already has them."""
    words = []
    for match in _NUMBER.finditer(text):
        digits, scale = match.groups()
        if scale is None and "," not in digits:
            continue
        value = Decimal(digits.replace(",", "")) * _SCALES.get(scale or "", 1)
        word = format(value.normalize(), "f")
        if len(word) <= MAX_DIGITS:
            words.append(word)
    return words
