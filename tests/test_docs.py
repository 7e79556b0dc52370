"""The project's own documentation is there and every reference to it resolves.

Code, help texts and the README cite sections of ``docs/method.md`` as ``method.md §2.4`` (or a
bare ``§2.4``, which means method.md) and of ``docs/design.md`` as ``design.md §3`` or by a
section name (``design.md, "Output folders"``). A citation resolves when the document has a
heading with that number (``## 2. ...``, ``### 2.4 ...``) or, for ``§N.K``, a numbered list item
``K.`` directly under ``## N.`` (the numbered pitfalls ``§9.K``), or, for a name, a heading that
contains it. Every relative Markdown link in README.md and docs/*.md, and every ``docs/...``
path named in the package, must point to an existing file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
METHOD, DESIGN = "method.md", "design.md"

#: one citation chain: an optional document, then § numbers joined by ``, §`` ``/§`` ``and §``,
#: ranges ``-`` (the second § optional) and ``item N`` (``§9 item 18`` = §9.18)
_CHAIN = re.compile(
    r"(?:(?P<doc>method|design)\.md[\s,]*)?"
    r"(?P<refs>§\s?\d+(?:\.\d+)?"
    r"(?:\s*(?:[-–]\s*§?|[,/]\s*§|and\s*§|item\s*)\s?\d+(?:\.\d+)?)*)"
)
_NUMBER = re.compile(r"(item\s*)?§?\s?(\d+(?:\.\d+)?)")
#: a design.md section cited by name: design.md, "Name", [design.md](design.md), "Name" or
#: (design.md, name)
_NAMED = re.compile(r"design\.md\)?,\s*(?:\"([^\"]+)\"|([a-z][a-z ]+)\))")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_DOCS_PATH = re.compile(r"\bdocs/[\w./-]*\w")


@dataclass(frozen=True)
class Citation:
    """One cited section: where it was found and what it names."""

    where: str  # file:line
    doc: str  # method.md or design.md
    section: str  # "2.4", "9.18", or a section name

    def __str__(self) -> str:
        return f"{self.where}: {self.doc} §{self.section}"


def find_citations(text: str, where: str, default_doc: str = METHOD) -> list[Citation]:
    """Every section cited in ``text`` (``where`` names the file, lines are added)."""
    found = []
    for m in _CHAIN.finditer(text):
        doc = f"{m['doc']}.md" if m["doc"] else default_doc
        line = text.count("\n", 0, m.start()) + 1
        base = None
        for item, number in _NUMBER.findall(m["refs"]):
            section = f"{base}.{number}" if item and base else number
            base = section.split(".")[0]
            found.append(Citation(f"{where}:{line}", doc, section))
    for m in _NAMED.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        name = " ".join((m[1] or m[2]).split())  # a name may be wrapped over two lines
        found.append(Citation(f"{where}:{line}", DESIGN, name))
    return found


def sections(markdown: str) -> tuple[set[str], list[str]]:
    """The section numbers a document defines, and its heading texts (lower case).

    ``## N. Title`` and ``### N.K Title`` define N and N.K; a numbered list item ``K.`` at the
    start of a line directly under ``## N.`` (before any ``###`` of that section) defines N.K.
    Fenced code blocks are skipped.
    """
    numbers: set[str] = set()
    titles: list[str] = []
    top, sub, fenced = None, None, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        heading = re.match(r"(#{1,6})\s+(.*)", line)
        if heading:
            level, title = len(heading[1]), heading[2].strip()
            titles.append(title.lower())
            number = re.match(r"(\d+(?:\.\d+)?)\.?\s", title + " ")
            if level == 2:
                top = number[1] if number else None
                sub = None
            elif level >= 3:
                sub = title
            if number:
                numbers.add(number[1])
            continue
        item = re.match(r"(\d+)\.\s", line)
        if item and top and sub is None and "." not in top:
            numbers.add(f"{top}.{item[1]}")
    return numbers, titles


def unresolved(citations: list[Citation], docs: dict[str, str]) -> list[Citation]:
    """The citations that name no section of their document (or a missing document)."""
    parsed = {name: sections(text) for name, text in docs.items()}
    bad = []
    for c in citations:
        if c.doc not in parsed:
            bad.append(c)
            continue
        numbers, titles = parsed[c.doc]
        if re.fullmatch(r"\d+(?:\.\d+)?", c.section):
            ok = c.section in numbers
        else:
            ok = any(c.section.lower() in t for t in titles)
        if not ok:
            bad.append(c)
    return bad


def cited_files() -> list[Path]:
    """Where citations live: the package (code, C, YAML), README, docs, benchmarks, tests."""
    pkg = ROOT / "src" / "semantic_genesis"
    files = [p for ext in ("py", "c", "yaml") for p in pkg.rglob(f"*.{ext}")]
    files += [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    files += sorted((ROOT / "benchmarks").glob("*.py"))
    files += [p for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__).resolve()]
    return [p for p in files if p.is_file()]


def all_citations() -> list[Citation]:
    out = []
    for path in cited_files():
        default = DESIGN if path == DOCS / DESIGN else METHOD
        out += find_citations(path.read_text(), str(path.relative_to(ROOT)), default)
    return out


def read_docs() -> dict[str, str]:
    return {name: (DOCS / name).read_text() for name in (METHOD, DESIGN)
            if (DOCS / name).is_file()}


# ---------------------------------------------------------------------------------------------


def test_the_documents_exist():
    for name in (METHOD, DESIGN, "cli.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"


def test_every_cited_section_resolves():
    citations = all_citations()
    assert len(citations) > 80  # the package cites the docs throughout
    bad = unresolved(citations, read_docs())
    assert not bad, "unresolved citations:\n" + "\n".join(map(str, bad))


def test_a_bogus_citation_is_reported():
    docs = read_docs()
    text = 'see method.md §99.9, §2.4 and design.md, "No such section"; also §9 item 77'
    bad = unresolved(find_citations(text, "x.py"), docs)
    assert [(c.doc, c.section) for c in bad] == [
        (METHOD, "99.9"), (METHOD, "9.77"), (DESIGN, "No such section")]


def test_the_parser_reads_every_citation_form():
    text = ("(method.md §2.1-2.2) method.md §1-§2 §3.1/§3.2 method.md §6, §12.6 "
            "method.md §9 item 18 (docs/design.md, method.md §2.5) design.md §3 "
            "(design.md, file contracts) [design.md](design.md), \"Output folders\"")
    got = [(c.doc, c.section) for c in find_citations(text, "x")]
    assert got == [
        (METHOD, "2.1"), (METHOD, "2.2"), (METHOD, "1"), (METHOD, "2"), (METHOD, "3.1"),
        (METHOD, "3.2"), (METHOD, "6"), (METHOD, "12.6"), (METHOD, "9"), (METHOD, "9.18"),
        (METHOD, "2.5"), (DESIGN, "3"), (DESIGN, "file contracts"), (DESIGN, "Output folders")]


def test_numbered_items_count_only_directly_under_their_section():
    numbers, _ = sections("## 9. Bugs\n\n1. first\n2. second\n\n## 10. Next\n\n### 10.1 Sub\n\n"
                          "1. a step, not 10.1's sibling\n```\n## 11. in a code block\n```\n")
    assert numbers == {"9", "9.1", "9.2", "10", "10.1"}


def test_relative_links_point_to_files():
    broken = []
    for md in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target in _LINK.findall(md.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (md.parent / target.split("#")[0]).exists():
                broken.append(f"{md.relative_to(ROOT)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("where", ["src", "README.md", "benchmarks"])
def test_docs_paths_named_in_the_code_exist(where):
    root = ROOT / where
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.suffix in
                                            (".py", ".c", ".yaml", ".md")]
    missing = sorted({f"{p.relative_to(ROOT)}: {m}" for p in files
                      for m in _DOCS_PATH.findall(p.read_text())
                      if not (ROOT / m).exists()})
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


#: Markdown files the package writes (reports), which are outputs, not documentation
_OUTPUT_MARKDOWN = {"results.md", "report.md", "study.md"}  # outputs the tool writes


def test_only_the_projects_own_documents_are_cited():
    """A ``name.md`` named in the code is a document of this repository (or an output it
    writes): citing a document users do not have leaves them nowhere to look."""
    known = {p.name for p in DOCS.glob("*.md")} | {"README.md"} | _OUTPUT_MARKDOWN
    files = [p for p in cited_files() if p.suffix in (".py", ".c", ".yaml")]
    unknown = sorted({f"{p.relative_to(ROOT)}: {m}" for p in files
                      for m in re.findall(r"\b[\w-]+\.md\b", p.read_text())
                      if m not in known})
    assert not unknown, "documents that are not in docs/:\n" + "\n".join(unknown)


#: top folders of the reference repositories' paths that method.md quotes (not ours)
_REFERENCE_ROOTS = {"pytorch", "keras", "self_discovery", "images", "figures"}


def test_package_paths_named_in_the_docs_exist():
    """A module or folder of ours named in method.md / design.md (``pretrain/trainer.py``,
    ``utils/outdir.py``, ``benchmarks/bench_train.py``) exists, so a moved module cannot leave
    the docs behind. Paths into the reference repositories (``pytorch/train.py``) are skipped."""
    pkg = ROOT / "src" / "semantic_genesis"
    folders = {p.name for p in pkg.iterdir() if p.is_dir() and not p.name.startswith("_")}
    missing = []
    for name in (METHOD, DESIGN):
        text = (DOCS / name).read_text()
        for path in re.findall(r"(?<![\w./-])([a-z_]+/[\w./-]*[\w/])", text):
            top = path.split("/")[0]
            module = path.endswith(".py") and top not in _REFERENCE_ROOTS
            if (module or top in folders) and not ((pkg / path).exists()
                                                   or (ROOT / path).exists()):
                missing.append(f"docs/{name}: {path}")
    assert not missing, "paths that do not exist in the package:\n" + "\n".join(sorted(missing))
