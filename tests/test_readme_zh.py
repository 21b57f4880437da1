"""README.zh-CN.md keeps in step with README.md: the same sections in the same order, the same code
blocks byte for byte, the same tables (setting names and defaults, the benchmark's figures), the same
links, each README pointing to the other at the top — and the Chinese one is Chinese."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EN, ZH = ROOT / "README.md", ROOT / "README.zh-CN.md"

CODE_SPAN = re.compile(r"`([^`]+)`")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Doc:
    blocks: list[str] = field(default_factory=list)  # each fenced block, fences and info string included
    headings: list[tuple[int, str]] = field(default_factory=list)  # (level, title)
    tables: list[list[list[str]]] = field(default_factory=list)  # rows of cells, the |---| row left out
    sections: list[str] = field(default_factory=list)  # the prose under each heading (no code, no tables)
    links: set[str] = field(default_factory=set)
    head: list[str] = field(default_factory=list)  # the first lines


def cells(row: str) -> list[str]:
    """A table row's cells; a | inside `code` does not split."""
    out, cur, in_code = [], "", False
    for ch in row.strip().strip("|"):
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()]


def parse(path: Path) -> Doc:
    doc = Doc()
    lines = path.read_text(encoding="utf-8").splitlines()
    doc.head = lines[:5]
    fence: list[str] | None = None
    table: list[list[str]] | None = None
    prose: list[str] = []
    for line in lines:
        if fence is not None:
            fence.append(line)
            if line.startswith("```"):
                doc.blocks.append("\n".join(fence))
                fence = None
            continue
        if line.startswith("```"):
            fence = [line]
            continue
        if line.startswith("|"):
            if table is None:
                table = []
                doc.tables.append(table)
            if not re.fullmatch(r"\|?[\s|:-]+\|?", line):
                table.append(cells(line))
            continue
        table = None
        if m := HEADING.match(line):
            doc.headings.append((len(m.group(1)), m.group(2)))
            doc.sections.append(" ".join(prose))
            prose = []
            continue
        prose.append(line)
        doc.links.update(LINK.findall(line))
    assert fence is None, f"{path.name}: a code block is not closed"
    doc.sections.append(" ".join(prose))
    doc.links -= {"README.md", "README.zh-CN.md"}
    return doc


def facts(cell: str) -> tuple[list[str], list[str]]:
    """What a translation must keep in a cell: its code spans in order, and its numbers."""
    return CODE_SPAN.findall(cell), sorted(NUMBER.findall(CODE_SPAN.sub("", cell)))


@pytest.fixture(scope="module")
def docs() -> tuple[Doc, Doc]:
    return parse(EN), parse(ZH)


def test_code_blocks_are_the_same_in_the_same_order(docs):
    en, zh = docs
    assert len(zh.blocks) == len(en.blocks), (len(en.blocks), len(zh.blocks))
    for i, (a, b) in enumerate(zip(en.blocks, zh.blocks, strict=True)):
        assert a == b, f"code block {i + 1} differs:\n--- README.md\n{a}\n--- README.zh-CN.md\n{b}"


def test_same_sections_in_the_same_order(docs):
    en, zh = docs
    assert len(zh.headings) == len(en.headings), ([t for _, t in en.headings], [t for _, t in zh.headings])
    assert [lvl for lvl, _ in zh.headings] == [lvl for lvl, _ in en.headings]


def test_tables_have_the_same_rows_names_and_defaults(docs):
    en, zh = docs
    assert len(zh.tables) == len(en.tables)
    for a, b in zip(en.tables, zh.tables, strict=True):
        assert len(b) == len(a), ([r[0] for r in a], [r[0] for r in b])
        for ra, rb in zip(a, b, strict=True):
            assert len(rb) == len(ra), (ra, rb)
            # The first column names the settings, the second their defaults (or the figures).
            assert [facts(c) for c in rb[:2]] == [facts(c) for c in ra[:2]], (ra[:2], rb[:2])


def test_the_settings_table_lists_the_same_settings(docs):
    en, zh = docs
    names = [CODE_SPAN.findall(row[0]) for row in en.tables[0][1:]]
    assert ["host", "port"] in names and ["overflowPolicy"] in names
    assert [CODE_SPAN.findall(row[0]) for row in zh.tables[0][1:]] == names


def test_same_links(docs):
    en, zh = docs
    assert zh.links == en.links


def test_each_links_to_the_other_at_the_top(docs):
    en, zh = docs
    assert "[中文](README.zh-CN.md) | English" in en.head
    assert "中文 | [English](README.md)" in zh.head


def test_the_chinese_readme_is_chinese(docs):
    _, zh = docs
    assert not zh.sections[0].strip(), "text before the title"
    for (_, title), body in zip(zh.headings, zh.sections[1:], strict=True):
        if title == "目录结构":  # the layout is one code block
            continue
        assert CJK.search(body), f"section {title} has no Chinese prose"
    assert all(CJK.search(title) for _, title in zh.headings[1:]), zh.headings
