"""Turn a raw document into clean paragraphs that still point at the original text.

Web pages saved as text carry navigation, share widgets, copyright footers, bylines, related-news
lists, whole articles pasted twice, and lines broken mid-sentence. `clean` drops the first kinds,
removes duplicate paragraphs, joins broken lines, and keeps headings as context for the
paragraphs under them. Headings come from structure only (Markdown `#`/setext, the extractor's
HTML h1-h6, Word heading styles); in plain text only a lone short line right above a paragraph
is one, so runs of short lines (poems, lists, names, rows) stay content. Every line that leaves
the paragraph text — moved into a heading, dropped as chrome, markup or junk — is listed in
`Cleaned.dropped` with its reason. It never rewrites the document: every `Paragraph` maps each
of its characters back to an offset in the original text, so hits can point at their exact
position.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

# Sentence-final punctuation (CJK and Latin); a line ending in one of these is complete.
TERMINALS = "。！？!?；;…"
# Closing quotes and brackets that may follow the final punctuation: “好。” is complete.
CLOSERS = "”’」』）)】》\"'"
_PAIRS = tuple((p[0], p[1]) for p in ("“”", "‘’", "「」", "『』", "（）", "()", "【】", "《》"))
BULLETS = "•·●▪◦‣-*"

# A line this long that stops mid-sentence before a blank line was broken by the page, not ended.
BROKEN_MIN_CHARS = 60
HEADING_MAX_CHARS = 50
HEADING_RUN_MAX = 3  # lone short lines in a row above a paragraph that are headings
DEDUP_MIN_CHARS = 20
PROSE_MIN_CHARS = 120  # a line this long with clause punctuation is prose, never chrome
WEB_MIN_CHROME_LINES = 3
CLEAN_MODES = ("auto", "web", "none")
HEADING_JOINER = " / "  # between the headings of a path: `大熊猫 / 食性`
# How a document marks its headings: "markdown" (#, setext), "given" (offsets from the file's
# structure: HTML, DOCX), "plain" (a lone short line above a paragraph), "none" (PDF).
STRUCTURES = ("plain", "markdown", "given", "none")
# Reasons a line leaves the paragraph text that are not a loss: it is embedded as the heading.
MOVED_REASONS = frozenset({"heading"})
_MD_HEADING = re.compile(r"^(#{1,6})\s+(\S.*?)\s*#*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^(```|~~~)")
_ITEM = re.compile(r"^([-*+•·●▪◦‣]\s|\d{1,3}[.)、]\s|\|)")

_UI_WORDS = frozenset(
    " ".join((
        "无障碍 站内 分享 分享到 新浪微博 腾讯微博 微信 QQ空间 QQ好友 手机阅读分享话题",
        "精彩视频 关闭 特别推荐 打印 打印本页 关闭窗口 返回顶部 收藏 字号 上一篇 下一篇",
        "相关新闻 相关阅读 推荐阅读 扫一扫 登录 注册 举报 评论 网站地图 联系我们 首页",
        "更多 点击排行 热点推荐 图片新闻 返回首页",
    )).split()
)
_ATTRIBUTION = re.compile(
    r"^[\[【(（]?\s*(责任编辑|编辑|来源|作者|发布时间|发布日期|原标题|稿源|新闻来源|图片来源|校对|审核)\s*[:：]"
)
_DATETIME = re.compile(r"^\d{4}[-年/.]\d{1,2}[-月/.]\d{1,2}日?(\s+\d{1,2}:\d{2}(:\d{2})?)?")
_COPYRIGHT = re.compile(
    r"版权声明|版权所有|著作权|Copyright|©|All Rights Reserved|未经.{0,12}授权|不得转载|转载请注明"
    r"|联系方式\s*[:：]|咨询电话|联系邮箱|备案号|ICP[备证]",
    re.IGNORECASE,
)
_SITE_TITLE = re.compile(r"^\S.{0,20}\s+[-–—|]\s+.*(网站|门户|频道|网)[!！]?$")
_BREADCRUMB = re.compile(r"当前位置\s*[:：]|(\s>\s.*){2,}|(\s»\s.*){2,}")
# Common Chinese surnames: a line of one to three short names starting with one is a byline.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤庄倪殷常温康施文牛樊葛邢安齐易乔伍庞颜倪柴耿关祝凌霍虞翟"
)
_NAME = re.compile(r"^[\u4e00-\u9fff]{2,3}$")


@dataclass(frozen=True)
class Paragraph:
    """A clean paragraph: its text, where it came from, and the headings above it.

    `segments` are (offset in `text`, offset in the original, length) runs, so any character of
    `text` can be located in the original even after broken lines were joined.
    """

    text: str
    number: int
    segments: tuple[tuple[int, int, int], ...]
    heading: str = ""

    @property
    def start(self) -> int:
        """Offset of the first character in the original text."""
        return self.segments[0][1]

    @property
    def end(self) -> int:
        """Offset just past the last character in the original text."""
        _, orig, length = self.segments[-1]
        return orig + length

    def locate(self, index: int) -> int:
        """Map an index into `text` (0..len) to an offset in the original text."""
        for text_pos, orig, length in reversed(self.segments):
            if index >= text_pos:
                return orig + min(index - text_pos, length)
        return self.start


@dataclass(frozen=True)
class _Line:
    text: str  # stripped
    start: int
    block: int  # 1-based number of the run of non-blank lines it belongs to


def _lines(text: str) -> Iterator[_Line]:
    """Non-blank lines, stripped, with their offsets and paragraph-block numbers."""
    block, previous_blank, pos = 0, True, 0
    for raw in text.splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            if previous_blank:
                block += 1
            lead = len(raw) - len(raw.lstrip())
            yield _Line(stripped, pos + lead, block)
        previous_blank = not stripped
        pos += len(raw)


def _core(line: str) -> str:
    """The line without a list bullet in front."""
    return line.lstrip(BULLETS + " \u3000\t")


def boilerplate_reason(line: str) -> str | None:
    """Why `line` is site chrome ("navigation", "attribution", "copyright", "byline"), or None
    for content. Only for web pages: in ordinary text these shapes are content."""
    core = _core(line)
    if not core:
        return "navigation"
    if core in _UI_WORDS or core.rstrip(":：") in _UI_WORDS:
        return "navigation"
    prose = _is_prose(core)  # a paragraph of an article is never navigation, whatever it has
    if not prose and (core.count("|") >= 2 or _BREADCRUMB.search(core)
                      or _SITE_TITLE.match(core)):
        return "navigation"
    if len(core) < 80 and (_ATTRIBUTION.match(core) or "责任编辑" in core):
        return "attribution"
    if len(core) < 60 and _DATETIME.match(core) and re.search(r"来源|作者|编辑|$", core):
        rest = _DATETIME.sub("", core).strip()
        if not rest or re.match(r"(来源|作者|编辑)", rest):
            return "attribution"
    if _COPYRIGHT.search(core) and (len(core) < 200 or core[0] in "①②③④⑤⑥⑦⑧⑨⑩"):
        return "copyright"
    if not prose and _is_menu(core):
        return "navigation"
    if is_byline(core):
        return "byline"
    return "related links" if line != core and _is_link_item(core) else None


def _is_prose(core: str) -> bool:
    """Sentences: two or more sentence ends, or a long line with clause punctuation. Navigation
    rules never drop these (a saved page's 1,495-character article body was dropped as navigation
    for the `|` and `>` in it)."""
    ends = sum(core.count(ch) for ch in "。！？!?")
    return ends >= 2 or (len(core) >= PROSE_MIN_CHARS and any(ch in core for ch in "，,。；;"))


def is_boilerplate(line: str) -> bool:
    """True for site chrome: navigation, share widgets, attribution, copyright, menus, bylines."""
    return boilerplate_reason(line) is not None


def _is_chrome(core: str) -> bool:
    """Lines only a web page has: share widgets, breadcrumbs, site titles, 责任编辑/来源 lines
    (not table rows, names or copyright sentences, which ordinary text has too)."""
    return (core in _UI_WORDS or core.rstrip(":：") in _UI_WORDS or bool(_BREADCRUMB.search(core))
            or bool(_SITE_TITLE.match(core))
            or (len(core) < 80 and (bool(_ATTRIBUTION.match(core)) or "责任编辑" in core)))


def looks_like_web_page(text: str) -> bool:
    """A text saved from a web page: at least three lines of navigation or attribution chrome
    (share widgets, breadcrumbs, site titles, 责任编辑/来源 lines). Each seed page has 3-30;
    notes, Markdown, books and records have none, so they keep every line (measured on the
    seeds, CMRC and DRCD paragraphs and the tests' ordinary documents)."""
    strong = 0
    for line in _lines(text):
        if _is_chrome(_core(line.text)):
            strong += 1
            if strong >= WEB_MIN_CHROME_LINES:
                return True
    return False


def _is_menu(core: str) -> bool:
    """A row of many short Chinese words with no sentence punctuation: a menu or a masthead."""
    tokens = core.split()
    if len(tokens) < 5 or re.search(r"[。，,！？!?；;、]", core):
        return False
    short = sum(1 for t in tokens if len(t) <= 8 and re.search(r"[\u4e00-\u9fff]", t))
    return short >= 0.8 * len(tokens)


def is_byline(core: str) -> bool:
    """One to three Chinese personal names alone on a line (a reporter's or editor's byline)."""
    names = core.split()
    return 1 <= len(names) <= 3 and all(_NAME.match(n) and n[0] in _SURNAMES for n in names)


def _is_link_item(core: str) -> bool:
    """A bulleted headline or truncated teaser: the shape of a related-news list item."""
    return core.endswith(("...", "…", "：", ":")) or not _is_complete(core)


def _is_complete(text: str) -> bool:
    """Ends with sentence-final punctuation (allowing closing quotes after it)."""
    body = text.rstrip(CLOSERS + " ")
    if not body:
        return False
    return body[-1] in TERMINALS or (body[-1] == "." and not body[-2:-1].isdigit())


def _unbalanced(text: str) -> bool:
    return any(text.count(a) > text.count(b) for a, b in _PAIRS)


def _is_broken(line: str) -> bool:
    """A line that stops mid-sentence: long, or with a sentence or open quote inside."""
    if _is_complete(line) or line.startswith("#"):
        return False
    inner_end = any(ch in TERMINALS for ch in line.rstrip(CLOSERS))
    return len(line) >= BROKEN_MIN_CHARS or inner_end or _unbalanced(line)


def _joiner(left: str, right: str) -> str:
    """Broken Latin words were separated by a space; CJK text joins without one."""
    return " " if left[-1:].isascii() and right[:1].isascii() and left[-1:].isalnum() else ""


def _is_heading(text: str) -> bool:
    if text.startswith("#"):
        return True
    return len(text) <= HEADING_MAX_CHARS and not _is_complete(text) and not text.endswith(
        (":", "：", ",", "，", "、")
    )


def dedup_key(text: str) -> str:
    """Text compared for duplication: NFKC (full/half width) and no whitespace."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@dataclass
class _Draft:
    text: str
    number: int
    segments: list[tuple[int, int, int]]
    last_block: int

    def append(self, line: _Line, joiner: str | None = None) -> None:
        if joiner is None:
            joiner = _joiner(self.text, line.text)
        self.text += joiner
        self.segments.append((len(self.text), line.start, len(line.text)))
        self.text += line.text
        self.last_block = line.block

    def unhyphenate(self) -> None:
        """Drop the hyphen that ends the text (a word broken across lines)."""
        self.text = self.text[:-1]
        pos, orig, length = self.segments[-1]
        self.segments[-1] = (pos, orig, length - 1)


def _is_item(text: str) -> bool:
    """A list item or a table row: a line of its own in ordinary text, never a heading."""
    return bool(_ITEM.match(text))


def _join_broken(lines: list[_Line], plain: bool = False,
                 hyphenated: Callable[[str], bool] | None = None,
                 heads: Collection[int] = ()) -> list[_Draft]:
    """Join lines that continue one another: within a block when the line is unfinished and not
    a heading, across a blank line only when it was clearly broken mid-sentence. `plain` text
    (not a web page) keeps list items and table rows as lines of their own; heading lines
    (`heads`) stay lines of their own; a word hyphenated at a line end is joined without its
    hyphen when `hyphenated` says the joined word is a word."""
    drafts: list[_Draft] = []
    for line in lines:
        if (drafts and not (plain and (_is_item(line.text) or _is_item(drafts[-1].text)))
                and line.start not in heads and drafts[-1].segments[0][1] not in heads):
            last = drafts[-1]
            same_block = line.block == last.last_block
            tail = last.text
            continues = not _is_heading(tail) or line.text[:1].islower()
            if (same_block and not _is_complete(tail) and continues) or (
                not same_block and _is_broken(tail)
            ):
                word = _broken_word(tail, line.text)
                if word and hyphenated is not None and hyphenated(word):
                    last.unhyphenate()
                    last.append(line, "")
                else:
                    last.append(line)
                continue
        drafts.append(_Draft(line.text, line.block, [(0, line.start, len(line.text))], line.block))
    return drafts


_HYPHEN_TAIL = re.compile(r"([^\W\d_]{2,})-$")
_HEAD_WORD = re.compile(r"^([^\W\d_]+)")


def _broken_word(tail: str, line: str) -> str:
    """`mortar` for a line ending `mor-` before one starting `tar`, else ""."""
    left, right = _HYPHEN_TAIL.search(tail), _HEAD_WORD.match(line)
    if left is None or right is None or not line[:1].islower():
        return ""
    return left.group(1) + right.group(1)


def _dedup(drafts: list[_Draft], dropped: list[Dropped]) -> list[_Draft]:
    """Drop exact repeats (keeping the first) and paragraphs contained in a longer one nearby;
    each dropped one is recorded in `dropped`."""
    keys = [dedup_key(d.text) for d in drafts]
    seen: set[str] = set()
    kept: list[_Draft] = []
    window = 200
    for i, (draft, key) in enumerate(zip(drafts, keys, strict=True)):
        if key in seen or (len(key) >= DEDUP_MIN_CHARS and any(
            key in other and len(other) > len(key)
            for other in keys[max(0, i - window) : i + window]
        )):
            dropped.append(Dropped(draft.text, draft.segments[0][1], "duplicate"))
            continue
        seen.add(key)
        kept.append(draft)
    return kept


@dataclass(frozen=True)
class Dropped:
    """A line (or duplicate paragraph) that cleaning left out, where it was, and why."""

    text: str
    start: int
    reason: str


@dataclass(frozen=True)
class Cleaned:
    """What `clean_document` kept (paragraphs) and left out (dropped), and the mode it used."""

    paragraphs: list[Paragraph]
    dropped: list[Dropped]
    mode: str


def resolve_mode(text: str, mode: str = "auto") -> str:
    """`web` or `none` for `text`: `auto` is `web` only for text that looks like a saved page."""
    if mode not in CLEAN_MODES:
        raise ValueError(f"unknown cleaning mode {mode!r}; choose one of {', '.join(CLEAN_MODES)}")
    if mode == "auto":
        return "web" if looks_like_web_page(text) else "none"
    return mode


@cache
def _dictionary() -> Callable[[Sequence[str]], set[str]] | None:
    try:
        from spellchecker import SpellChecker
    except ImportError:
        return None
    return SpellChecker(distance=1).known


def is_word(word: str) -> bool:
    """Whether `word` (joined from `mor-` + `tar`) is a dictionary word (pyspellchecker's
    English list, from the formats extra); without the list no hyphen is removed."""
    known = _dictionary()
    return known is not None and bool(known([word.lower()]))


def join_headings(titles: Iterable[str]) -> str:
    """A heading path, `outer / inner`: a title's own ` / ` is written ` ∕ ` (U+2215, which
    looks the same) so the path splits back into its headings (`passages.heading_path`); an
    index built before keeps its paths, read as before."""
    return HEADING_JOINER.join(title.replace(HEADING_JOINER, " \u2215 ") for title in titles)


def _has_content(text: str) -> bool:
    """A letter or a digit (any script)."""
    return any(ch.isalnum() for ch in text)


# Characters that only decorate: table and Markdown marks, bullets, rules and box drawing.
# Punctuation decorates too (`。。。`, `!!!`), but for the marks that carry a value.
_DECORATION = frozenset("|-:=*#_~`+> \t" + BULLETS + "—–─━═│┃┄┅┈┉╌╍…○◆◇■□▫►▶◀◁▷▸")
_VALUE_MARKS = frozenset("%％‰‱°℃")


def is_decoration(text: str) -> bool:
    """Whether a line without letters or digits is pure decoration (a rule `---`, `***`,
    bullets, repeated punctuation), dropped; one with symbols that say something (`⭐️⭐️⭐️⭐️`,
    `↑`, `↓`, `%`) is kept with its neighbour (issue 37)."""
    return not _has_content(text) and all(
        ch.isspace() or ch in _DECORATION
        or (unicodedata.category(ch).startswith("P") and ch not in _VALUE_MARKS)
        for ch in text)


def _structure_lines(text: str, structure: str, given: Mapping[int, int],
                     dropped: list[Dropped]) -> tuple[list[_Line], dict[int, tuple[int, str]]]:
    """The lines that carry content, and the headings among them (start → (level, title)):
    Markdown `#`/setext lines outside code fences, or the `given` offsets. Lines with no
    letter or digit that are decoration (table rules, fences, setext underlines, a lone `。`)
    are left out, and recorded in `dropped` as "markup" or "junk"; symbols that say something
    (a rating, an arrow) stay with their block."""
    lines = list(_lines(text))
    heads: dict[int, tuple[int, str]] = {}
    kept: list[_Line] = []
    fenced = False
    for i, line in enumerate(lines):
        if structure == "markdown" and _FENCE.match(line.text):
            fenced = not fenced
        if is_decoration(line.text):
            markup = set(line.text) <= set("|-:=*#_~`+> \t")
            dropped.append(Dropped(line.text, line.start, "markup" if markup else "junk"))
            continue
        kept.append(line)
        if structure == "given" and line.start in given:
            heads[line.start] = (given[line.start], line.text)
        if structure != "markdown" or fenced:
            continue
        marked = _MD_HEADING.match(line.text)
        after = lines[i + 1] if i + 1 < len(lines) else None
        if marked:
            heads[line.start] = (len(marked.group(1)), marked.group(2))
        elif (after is not None and after.block == line.block and _SETEXT.match(after.text)
              and (i == 0 or lines[i - 1].block != line.block)):
            heads[line.start] = (1 if after.text.startswith("=") else 2, line.text)
    return kept, heads


def _plain_headings(drafts: list[_Draft], sizes: Counter[int]) -> dict[int, tuple[int, str]]:
    """Headings of plain text: a lone short line (a block of its own, no final punctuation, not
    a list item) right above a paragraph, and up to two more such lines right above it (a title
    over a subtitle). A short line in a run of short lines (a poem, a list, names, rows: one
    block) is content, and so are lone lines with no paragraph below them."""

    def candidate(draft: _Draft) -> bool:
        return (len(draft.segments) == 1 and sizes[draft.number] == 1
                and _has_content(draft.text) and _is_heading(draft.text)
                and not _is_item(draft.text))

    heads: dict[int, tuple[int, str]] = {}
    run: list[_Draft] = []
    for draft in drafts:
        if candidate(draft):
            run.append(draft)
            continue
        if run:  # the last lines of a longer run are its headings, the first stay content
            for level, head in enumerate(run[-HEADING_RUN_MAX:], start=1):
                heads[head.segments[0][1]] = (level, head.text)
        run = []
    return heads


def clean_document(text: str, mode: str = "auto", structure: str = "plain",
                   headings: Mapping[int, int] | None = None,
                   hyphenated: Callable[[str], bool] | None = None) -> Cleaned:
    """Clean one document: `web` drops site chrome and duplicates, `none` keeps every line;
    `auto` chooses by `looks_like_web_page`. `structure` says where headings come from (see
    STRUCTURES; `headings` maps a given heading line's offset to its level); `hyphenated`
    says whether a word broken with a hyphen at a line end is one word (then it is joined).
    Every line left out of the paragraph text is listed in `dropped` with its reason."""
    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; choose one of "
                         f"{', '.join(STRUCTURES)}")
    resolved = resolve_mode(text, mode)
    dropped: list[Dropped] = []
    lines, heads = _structure_lines(text, structure, headings or {}, dropped)
    sizes = Counter(line.block for line in _lines(text))
    if resolved == "none":
        if structure == "given":
            drafts = _blocks(lines)
        else:
            drafts = _join_broken(lines, True, hyphenated, set(heads))
    else:
        kept = []
        for line in lines:
            reason = None if line.start in heads else boilerplate_reason(line.text)
            if reason is None:
                kept.append(line)
            else:
                dropped.append(Dropped(line.text, line.start, reason))
        drafts = _dedup(_join_broken(kept, structure != "plain", hyphenated, set(heads)),
                        dropped)
    if structure == "plain":
        heads = _plain_headings(drafts, sizes)
    paragraphs = _with_headings(drafts, heads, dropped)
    dropped.sort(key=lambda d: d.start)
    return Cleaned(paragraphs, dropped, resolved)


def clean(text: str, mode: str = "web") -> list[Paragraph]:
    """The paragraphs `clean_document` keeps (mode `web`: the rules shaped on saved pages)."""
    return clean_document(text, mode).paragraphs


def _blocks(lines: list[_Line]) -> list[_Draft]:
    """Structured text (HTML, DOCX): each block (run of non-blank lines) is one paragraph and
    keeps its lines as lines — list items, table rows and cell paragraphs are not joined."""
    drafts: list[_Draft] = []
    for line in lines:
        if drafts and drafts[-1].last_block == line.block:
            drafts[-1].append(line, "\n")
        else:
            drafts.append(_Draft(line.text, line.block, [(0, line.start, len(line.text))],
                                 line.block))
    return drafts


@dataclass
class _Section:
    level: int
    title: str
    draft: _Draft
    used: bool = False


def _with_headings(drafts: list[_Draft], heads: Mapping[int, tuple[int, str]],
                   dropped: list[Dropped]) -> list[Paragraph]:
    """Heading lines (`heads`: offset → level, title) become the context of the paragraphs
    under them, nested by level (`A / B` for a level-2 heading under a level-1 one), and are
    recorded as moved ("heading"); a heading with nothing under it stays a paragraph."""
    paragraphs: list[Paragraph] = []
    sections: list[_Section] = []

    def close(level: int) -> None:
        nonlocal sections
        for section in sections:
            if section.level >= level and not section.used:
                outer = [s.title for s in sections if s.level < section.level]
                paragraphs.append(Paragraph(section.draft.text, section.draft.number,
                                            tuple(section.draft.segments), join_headings(outer)))
        sections = [s for s in sections if s.level < level]

    for draft in drafts:
        head = heads.get(draft.segments[0][1]) if len(draft.segments) == 1 else None
        if head is not None:
            close(head[0])
            sections.append(_Section(head[0], head[1].strip(), draft))
            continue
        for section in sections:
            if not section.used:
                section.used = True
                dropped.append(Dropped(section.draft.text, section.draft.segments[0][1],
                                       "heading"))
        paragraphs.append(Paragraph(draft.text, draft.number, tuple(draft.segments),
                                    join_headings(s.title for s in sections)))
    close(0)
    return paragraphs
