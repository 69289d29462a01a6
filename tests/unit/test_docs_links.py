"""The README's links lead somewhere: every relative link names a file of the repository, and
every anchor a heading of the page it points into (the README's own, or a docs page's). The docs
site's own links and anchors are checked by `mkdocs build --strict` (scripts/test.sh)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _outside_code(text: str) -> str:
    """The Markdown without its fenced blocks and inline code (no links live there)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """Heading anchors as GitHub and MkDocs' toc make them: lower case, punctuation dropped,
    spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", _outside_code(page.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _relative_links(page: Path) -> list[str]:
    links = LINK.findall(_outside_code(page.read_text()))
    return [link for link in links if not re.match(r"^[a-z]+:", link)]


def test_every_readme_link_names_a_file_and_heading_that_exist():
    readme = REPO / "README.md"
    links = _relative_links(readme)
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (readme.parent / path).resolve() if path else readme
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and anchor not in _anchors(target):
            broken.append(f"{link}: no heading with that anchor in {target.name}")
    assert len(links) > 20
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme_or_the_docs_home():
    readme_links = {link.partition("#")[0] for link in _relative_links(REPO / "README.md")}
    home_links = {link.partition("#")[0] for link in _relative_links(REPO / "docs" / "index.md")}
    linked = {(REPO / link).resolve() for link in readme_links if link}
    linked |= {(REPO / "docs" / link).resolve() for link in home_links if link}
    pages = {page.resolve() for page in (REPO / "docs").rglob("*.md")} - {
        (REPO / "docs" / "index.md").resolve()
    }
    assert sorted(str(p.relative_to(REPO)) for p in pages - linked) == []
