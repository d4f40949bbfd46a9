"""Nothing cites what the repository lacks: a file path in prose (markdown, docstrings,
comments), a markdown link and its #anchor, a section of docs/design.md — and nothing cites a
design document by a name the repository has no file for (the shared contract's upper-case
name, with or without a section). Each check first proves on planted text that it can fail."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = "docs/design.md"
TOP = "|".join(
    ("docs", "features", "serving", "training", "models", "monitoring", "retain", "synthetic")
    + ("tests", "benchmarks", "notebooks", "scripts", "deploy", "\\.ci")
)
PATH = re.compile(rf"(?<![\w/.-])((?:{TOP})/[\w./-]*\.[a-z]+)\b")
FILE_KINDS = {
    "md",
    "py",
    "toml",
    "yaml",
    "yml",
    "json",
    "png",
    "ipynb",
    "lock",
    "html",
    "sh",
    "conf",
    "css",
}
SECTION = re.compile(r"docs/design\.md((?:(?:\s*,\s*|\s+and\s+|\s*)§\d+(?:[–-]\d+)?)+)")
SECTION_NUMBERS = re.compile(r"§(\d+)(?:[–-](\d+))?")
NOWHERE = re.compile(r"(?<![\w/.])DESIGN(?:\.md)?(?:\s*§|'s\b|\b)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PROSE_FILES = {".md", ".toml", ".yaml", ".yml", ".html", ".ipynb", ""}


def repository_files() -> list[Path]:
    """Tracked and new (not ignored) files."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def prose(path: Path) -> str:
    """What a file says to a reader: a Python file's docstrings and comments (its code may
    plant paths on purpose), any other text file whole."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".py":
        return text if path.suffix in PROSE_FILES else ""
    parts = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            parts.append(ast.get_docstring(node, clean=False) or "")
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    parts += [t.string for t in tokens if t.type == tokenize.COMMENT]
    return "\n".join(parts)


def design_sections(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.M)}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    plain = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", plain, flags=re.M)}


def citation_problems(path: Path, text: str, root: Path, sections: set[int]) -> list[str]:
    """Every citation in ``text`` (of the file ``path``) that points nowhere."""
    where = path.relative_to(root)
    problems = [f"{where}: cites {m.group(0)!r}: no such file" for m in NOWHERE.finditer(text)]
    for match in PATH.finditer(text):
        cited = match.group(1).rstrip(".")
        if cited.rsplit(".", 1)[-1] in FILE_KINDS and not (root / cited).exists():
            problems.append(f"{where}: cites {cited}, which does not exist")
    for match in SECTION.finditer(text):
        for first, last in SECTION_NUMBERS.findall(match.group(1)):
            cited = range(int(first), int(last or first) + 1)
            problems += [
                f"{where}: cites {DESIGN} §{n}: no such section" for n in cited if n not in sections
            ]
    if path.suffix == ".md":
        problems += link_problems(path, text, root)
    return problems


def link_problems(path: Path, text: str, root: Path) -> list[str]:
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{path.relative_to(root)}: links to {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            problems.append(f"{path.relative_to(root)}: links to {target}: no such heading")
    return problems


def test_nothing_cites_a_file_or_section_the_repository_lacks():
    design = ROOT / DESIGN
    assert design.is_file(), f"{DESIGN} is missing"
    sections = design_sections(design.read_text(encoding="utf-8"))
    assert sections == set(range(1, max(sections) + 1)), f"sections numbered 1..n: {sections}"
    problems = []
    cites_design = 0
    for path in repository_files():
        text = prose(path)
        cites_design += len(SECTION.findall(text))
        problems += citation_problems(path, text, ROOT, sections)
    assert cites_design > 10  # the code points at the design document: the parser found them
    assert not problems, "\n".join(sorted(problems))


def test_the_citation_checks_can_fail(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("# Title\n\n## Overload\n")
    (tmp_path / DESIGN).write_text("## 1. One\n")
    page = tmp_path / "docs" / "page.md"
    text = (
        "As DESIGN §5 says, see docs/design.md §2, §4–5 and §99, features/gone.py and\n"
        "docs/here.md; [ok](here.md#overload) [bad](here.md#underload) [gone](gone.md)\n"
    )
    found = citation_problems(page, text, tmp_path, sections={1, 2, 3, 4, 5})
    assert found == [
        "docs/page.md: cites 'DESIGN §': no such file",
        "docs/page.md: cites features/gone.py, which does not exist",
        f"docs/page.md: cites {DESIGN} §99: no such section",
        "docs/page.md: links to here.md#underload: no such heading",
        "docs/page.md: links to gone.md: no such file",
    ]
    module = tmp_path / "m.py"
    module.write_text('"""See DESIGN §5."""\n\nPLANTED = "features/x.py"  # docs/none.md\n')
    assert re.findall(r"DESIGN §5|docs/none\.md", prose(module)) == ["DESIGN §5", "docs/none.md"]
    assert "features/x.py" not in prose(module)
