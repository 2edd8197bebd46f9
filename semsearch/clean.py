"""Turn a raw document into clean paragraphs that still point at the original text.

Web pages saved as text carry navigation, share widgets, copyright footers, bylines, related-news
lists, whole articles pasted twice, and lines broken mid-sentence. `clean` drops the first kinds,
removes duplicate paragraphs, joins broken lines, and keeps headings as context for the
paragraphs under them. It never rewrites the document: every `Paragraph` maps each of its
characters back to an offset in the original text, so hits can point at their exact position.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

# Sentence-final punctuation (CJK and Latin); a line ending in one of these is complete.
TERMINALS = "。！？!?；;…"
# Closing quotes and brackets that may follow the final punctuation: “好。” is complete.
CLOSERS = "”’」』）)】》\"'"
_PAIRS = tuple((p[0], p[1]) for p in ("“”", "‘’", "「」", "『』", "（）", "()", "【】", "《》"))
BULLETS = "•·●▪◦‣-*"

# A line this long that stops mid-sentence before a blank line was broken by the page, not ended.
BROKEN_MIN_CHARS = 60
HEADING_MAX_CHARS = 50
DEDUP_MIN_CHARS = 20
WEB_MIN_CHROME_LINES = 3
CLEAN_MODES = ("auto", "web", "none")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(\S.*?)\s*#*$")
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
    if core.count("|") >= 2 or _BREADCRUMB.search(core) or _SITE_TITLE.match(core):
        return "navigation"
    if len(core) < 80 and (_ATTRIBUTION.match(core) or "责任编辑" in core):
        return "attribution"
    if len(core) < 60 and _DATETIME.match(core) and re.search(r"来源|作者|编辑|$", core):
        rest = _DATETIME.sub("", core).strip()
        if not rest or re.match(r"(来源|作者|编辑)", rest):
            return "attribution"
    if _COPYRIGHT.search(core) and (len(core) < 200 or core[0] in "①②③④⑤⑥⑦⑧⑨⑩"):
        return "copyright"
    if _is_menu(core):
        return "navigation"
    if is_byline(core):
        return "byline"
    return "related links" if line != core and _is_link_item(core) else None


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

    def append(self, line: _Line) -> None:
        joiner = _joiner(self.text, line.text)
        self.text += joiner
        self.segments.append((len(self.text), line.start, len(line.text)))
        self.text += line.text
        self.last_block = line.block


def _is_item(text: str) -> bool:
    """A list item or a table row: a line of its own in ordinary text, never a heading."""
    return bool(_ITEM.match(text))


def _join_broken(lines: list[_Line], plain: bool = False) -> list[_Draft]:
    """Join lines that continue one another: within a block when the line is unfinished and not
    a heading, across a blank line only when it was clearly broken mid-sentence. `plain` text
    (not a web page) keeps list items and table rows as lines of their own."""
    drafts: list[_Draft] = []
    for line in lines:
        if drafts and not (plain and (_is_item(line.text) or _is_item(drafts[-1].text))):
            last = drafts[-1]
            same_block = line.block == last.last_block
            tail = last.text
            continues = not _is_heading(tail) or line.text[:1].islower()
            if (same_block and not _is_complete(tail) and continues) or (
                not same_block and _is_broken(tail)
            ):
                last.append(line)
                continue
        drafts.append(_Draft(line.text, line.block, [(0, line.start, len(line.text))], line.block))
    return drafts


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


def clean_document(text: str, mode: str = "auto") -> Cleaned:
    """Clean one document: `web` drops site chrome and duplicates, `none` keeps every line;
    `auto` chooses by `looks_like_web_page`. Every left-out line is listed in `dropped`."""
    resolved = resolve_mode(text, mode)
    if resolved == "none":
        return Cleaned(_with_headings(_join_broken(list(_lines(text)), True), True), [],
                       resolved)
    dropped: list[Dropped] = []
    lines = []
    for line in _lines(text):
        reason = boilerplate_reason(line.text)
        if reason is None:
            lines.append(line)
        else:
            dropped.append(Dropped(line.text, line.start, reason))
    drafts = _dedup(_join_broken(lines), dropped)
    dropped.sort(key=lambda d: d.start)
    return Cleaned(_with_headings(drafts), dropped, resolved)


def clean(text: str, mode: str = "web") -> list[Paragraph]:
    """The paragraphs `clean_document` keeps (mode `web`: the rules shaped on saved pages)."""
    return clean_document(text, mode).paragraphs


def _with_headings(drafts: list[_Draft], plain: bool = False) -> list[Paragraph]:
    """Headings (short lines with no final punctuation that precede body text) are attached to
    the paragraphs below them instead of standing alone. In `plain` text Markdown `#` headings
    nest by level (`A / B` for a `##` under a `#`)."""
    paragraphs: list[Paragraph] = []
    sections: list[tuple[int, str]] = []  # open Markdown sections (plain text only)
    headings: list[str] = []
    heading_run_open = False
    for i, draft in enumerate(drafts):
        is_last = i == len(drafts) - 1
        marked = _MD_HEADING.match(draft.text) if plain else None
        if marked and not is_last:
            level = len(marked.group(1))
            sections = [(lv, t) for lv, t in sections if lv < level] + [(level, marked.group(2))]
            headings, heading_run_open = [], False
            continue
        if _is_heading(draft.text) and not is_last and not (plain and _is_item(draft.text)):
            if not heading_run_open:
                headings = []
            headings.append(draft.text.lstrip("# ").strip())
            heading_run_open = True
            continue
        heading_run_open = False
        context = [title for _, title in sections] + headings
        paragraphs.append(
            Paragraph(draft.text, draft.number, tuple(draft.segments), " / ".join(context))
        )
    return paragraphs
