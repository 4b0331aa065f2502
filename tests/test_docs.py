"""Every relative link in README.md and docs/*.md points at a file or directory that exists."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target), [text](target "title"), ![alt](target), and [label]: target definitions.
LINK = re.compile(
    r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$", re.M
)
HREF = re.compile(r"""(?:href|src)=["']([^"']+)["']""")


def relative_links(doc: Path) -> list[str]:
    text = INLINE_CODE.sub("", FENCED.sub("", doc.read_text()))
    found = [a or b for a, b in LINK.findall(text)] + HREF.findall(text)
    return [t for t in found if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = [
        target
        for target in relative_links(doc)
        if not (doc.parent / target.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{doc.relative_to(REPO)} links to files that do not exist: {broken}"


def test_the_links_are_found() -> None:
    assert "docs/performance.md" in relative_links(REPO / "README.md")
