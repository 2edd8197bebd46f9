"""Cleaning: boilerplate, duplicates, broken lines, headings — and offsets into the original."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.clean import Paragraph, clean, is_boilerplate

from .conftest import SEEDS

BODY = "社区党员志愿者每天为隔离居民配送生活物资，守护大家的平安。"


def _no_space(text: str) -> str:
    return "".join(text.split())


def check_offsets(original: str, paragraph: Paragraph) -> None:
    """Each segment of the paragraph is the original text at its recorded offset."""
    for text_pos, orig, length in paragraph.segments:
        assert paragraph.text[text_pos : text_pos + length] == original[orig : orig + length]
    assert _no_space(original[paragraph.start : paragraph.end]).startswith(
        _no_space(paragraph.text)[:1]
    )


@pytest.mark.parametrize(
    "line",
    [
        "首页 | 新闻 原创 视听 | 问政 评论 专题 | 区县 娱乐 财经",
        "江苏好人榜 > 2021年 > 8月 > 正文",
        "当前位置: 主页 > 国内新闻 > 湖北新闻",
        "来源:江苏文明网      责任编辑:秦春凤",
        "[责任编辑: 李淼]",
        "2020-02-25 20:43:55 来源:",
        "发布时间: 2020-04-29 20:33:31 来源: 未知 作者: 佚名",
        "版权声明:",
        "② 凡本网注明“来源:华龙网”的作品,系由本网自行采编,版权属华龙网。未经本网授权,不得转载。",
        "分享",
        "新浪微博",
        "  • 关键词浏览:",
        "  • 古都夜未央 洛阳正青春",
        "  • 夏夜的洛邑古城,流光溢彩,游人如织。...",
        "武汉热线 - 武汉地区最专业的新闻资讯网站!",
        "陈慧君 戴卫民",
        "庄妍",
        "附:重庆日报 重庆晚报 重庆晨报 重庆商报 时代信报 新女报",
    ],
)
def test_boilerplate_lines(line: str) -> None:
    assert is_boilerplate(line)


@pytest.mark.parametrize(
    "line",
    [
        BODY,
        "献爱心",
        "体温监测",
        "“我拦下了区长的车”",
        "  • 居民可以拨打热线电话，工作人员会第一时间上门服务。",
        "Party members volunteered in the community.",
    ],
)
def test_content_lines_are_kept(line: str) -> None:
    assert not is_boilerplate(line)


def test_duplicate_paragraphs_are_dropped() -> None:
    text = f"{BODY}\n\n第二段：大家一起努力，疫情终将过去。\n\n{BODY}\n"
    paragraphs = clean(text)
    assert [p.text for p in paragraphs] == [BODY, "第二段：大家一起努力，疫情终将过去。"]


def test_paragraph_contained_in_a_longer_one_is_dropped() -> None:
    longer = BODY + "他们说，这是党员应尽的责任。"
    paragraphs = clean(f"{BODY}\n\n{longer}\n")
    assert [p.text for p in paragraphs] == [longer]


def test_line_broken_mid_sentence_is_joined_with_offsets() -> None:
    text = "标题\n\n“我就抽空回去给宝宝‘送个外\n\n卖’,”她笑着说。\n"
    (paragraph,) = clean(text)
    assert paragraph.text == "“我就抽空回去给宝宝‘送个外卖’,”她笑着说。"
    assert paragraph.heading == "标题"
    expected = "“我就抽空回去给宝宝‘送个外\n\n卖’,”她笑着说。"
    assert text[paragraph.start : paragraph.end] == expected
    assert paragraph.locate(paragraph.text.index("卖")) == text.index("卖")
    check_offsets(text, paragraph)


def test_hard_wrapped_latin_lines_are_joined_with_a_space() -> None:
    text = "The volunteers delivered food to families\nin quarantine every single day.\n"
    (paragraph,) = clean(text)
    assert paragraph.text == ("The volunteers delivered food to families in quarantine every "
                              "single day.")


def test_headings_become_context_for_the_paragraphs_below() -> None:
    second = BODY.replace("每天", "每周")
    text = f"献爱心\n\n博恩医疗科技\n\n{BODY}\n\n下一节\n\n{second}\n"
    paragraphs = clean(text)
    assert [p.heading for p in paragraphs] == ["献爱心 / 博恩医疗科技", "下一节"]
    assert paragraphs[0].number == 3


@pytest.mark.parametrize("seed", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name[:3])
def test_seed_paragraphs_are_clean_and_located(seed) -> None:  # type: ignore[no-untyped-def]
    original = seed.read_text("utf-8")
    paragraphs = clean(original)
    assert paragraphs
    keys = [_no_space(p.text) for p in paragraphs]
    assert len(keys) == len(set(keys)), "duplicate paragraphs survived"
    for p in paragraphs:
        check_offsets(original, p)
        for marker in ("责任编辑", "版权", "首页 |", "分享", "关键词浏览", "当前位置", "新浪微博"):
            assert marker not in p.text


def test_seed_001_pasted_twice_keeps_one_copy() -> None:
    paragraphs = clean((SEEDS / "001_b0b1c2961d63c9fa.txt").read_text("utf-8"))
    texts = [p.text for p in paragraphs]
    assert sum("春晖园35号楼是一个单体楼" in t for t in texts) == 1


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("党员社区抗疫。，！？ab .\n\n\r“”‘’•|>:12")),
               max_size=300))
def test_clean_never_crashes_and_offsets_hold(text: str) -> None:
    for paragraph in clean(text):
        check_offsets(text, paragraph)
        assert 0 <= paragraph.start <= paragraph.end <= len(text)
