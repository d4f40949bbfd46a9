"""The README holds: every command it shows exists, and its runnable examples run as written.

Each shell block of README.md carries a marker on the line before its fence:

- ``<!-- readme-test: run -->``: run as written with bash (``-euo pipefail``) on a copy of the
  demo (the session's ``demo`` fixture: a 6,000-customer ``retain demo``) laid out as ``make
  demo`` leaves a checkout — ``data/``, ``mlruns/``, ``retain.toml`` — one block after the other
  in README order, each expected to exit 0 (blocks are independent of each other's order); a
  ``<placeholder>`` is filled in first (``Checkout.placeholders``), and a block known to fail
  until a fix elsewhere lands is a strict xfail (``KNOWN_FAILURES``);
- ``<!-- readme-test: not run — why -->``: a synopsis with ``[optional]`` parts, a real cluster,
  a placeholder host, a container daemon, a long-running server… — skipped, with the reason:
  ``pytest tests/test_readme.py -rs`` lists them.

Whatever the marker, every ``retain …`` command in a shell block or inline code span of the
README and docs/*.md must name a command and options the CLI has (checked against the Typer
app, as ``--help`` would parse them), and every ``make …`` target must be in the Makefile — so
a renamed command or option fails here, not in a newcomer's terminal. The example list (the
table after ``<!-- readme-test: demo list -->``) must have the columns the demo writes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
SHELL = ("bash", "sh", "shell", "console", "cron")
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"<!--\s*readme-test:\s*(run|not run)\s*(?:[—:–-]\s*(.*?))?\s*-->")
RETAIN = re.compile(r"(?:^|(?<=[\s;&|(`]))(?:[\w.~/-]*/)?retain(?=\s)")
MAKE = re.compile(r"(?:^|(?<=[\s;&|(`]))make\s+([a-z][\w-]*)")
SEPARATORS = {";", "&&", "||", "|", ">", ">>", "<", "2>&1", "&"}


@dataclass(frozen=True)
class Block:
    """A fenced block of a markdown file, with the README test's marker before it."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str | None
    why: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, start, lang = [], None, ""
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line)
        if fence is None:
            continue
        if start is None:
            start, lang = number, fence.group(1)
            continue
        before = next((t for t in reversed(lines[: start - 1]) if t.strip()), "")
        marker = MARKER.search(before)
        found.append(
            Block(
                path,
                start,
                lang,
                "\n".join(lines[start : number - 1]),
                marker.group(1) if marker else None,
                (marker.group(2) or "") if marker else "",
            )
        )
        start = None
    return found


def shell_blocks(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang in SHELL]


def inline_code(path: Path) -> list[str]:
    """The inline code spans of ``path`` outside fenced blocks."""
    text = path.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", prose)


# ---------------------------------------------------------------- commands in the text


def command_lines(text: str) -> list[str]:
    """Shell text as logical lines: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [strip_comment(line) for line in joined.splitlines()]


def strip_comment(line: str) -> str:
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def invocations(line: str) -> list[list[str]]:
    """The words of each ``retain`` command on a line, up to the shell separator that ends it
    (``[--a x | --b]`` is one optional group, not a pipe)."""
    found = []
    for match in RETAIN.finditer(line):
        words, depth = [], 0
        for token in line[match.end() :].split():
            if depth == 0 and (token in SEPARATORS or token.startswith((">", "2>", "<"))):
                break
            depth += token.count("[") - token.count("]")
            words.append(token.rstrip(";"))
            if token.endswith(";") and depth == 0:
                break
        if words:  # a bare word "retain" (a folder, /opt/retain &&) is no command
            found.append(words)
    return found


def problems_of(words: list[str], app) -> list[str]:
    """What a documented ``retain`` command names that the CLI lacks: a command or option
    (``app``: the click command Typer builds; a group has ``commands``)."""
    command, path, rest = app, ["retain"], list(words)
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command = command.commands[rest[0]]
        path.append(rest.pop(0))
    if hasattr(command, "commands") and rest and re.fullmatch(r"[a-z][\w-]*", rest[0]):
        return [f"{' '.join(path)} has no command {rest[0]!r}"]
    known = {"--help"} | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    options = {re.sub(r"^[\[(]+|[\]),]+$", "", w).split("=")[0] for w in rest}
    return [
        f"{' '.join(path)} has no option {name}"
        for name in sorted(o for o in options if o.startswith("--") and o not in known)
    ]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, words) of every ``retain`` command in the README's and docs' shell blocks and
    inline code."""
    found = []
    for path in (README, *DOCS):
        for block in shell_blocks(path):
            for line in command_lines(block.text):
                found += [(block.where, words) for words in invocations(line)]
        for span in inline_code(path):
            found += [(str(path.relative_to(ROOT)), words) for words in invocations(span)]
    return found


def cli():
    """The click command the ``retain`` app is (Typer's own click: not ``click.Group``)."""
    from retain.cli import app

    return typer.main.get_command(app)


def test_every_documented_retain_command_and_option_exists():
    commands = documented_commands()
    assert len(commands) > 50  # the README alone shows dozens: the parser found them
    app = cli()
    problems = [f"{where}: {p}" for where, words in commands for p in problems_of(words, app)]
    assert not problems, "\n".join(problems)


def test_the_command_check_finds_a_missing_command_and_option():
    app = cli()
    (words,) = invocations("retain keys add --role rm --rm-id RM00001 --colour red  # x")
    assert problems_of(words, app) == ["retain keys add has no option --colour"]
    (words,) = invocations("cd /opt/retain && .venv/bin/retain scroe --out x >> log")
    assert problems_of(words, app) == ["retain has no command 'scroe'"]
    (words,) = invocations("retain run --cutoff X [--reference 2024-11-30 | RUN_ID] | tail")
    assert words[-1] == "RUN_ID]" and problems_of(words, app) == []
    assert invocations(strip_comment("make ui   # MLflow UI on mlruns/ (retain models)")) == []


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {
        target
        for line in re.findall(r"^([\w .-]+):(?!=)", text, flags=re.M)
        for target in line.split()
        if not target.startswith(".")
    }


def test_every_documented_make_target_exists():
    targets = make_targets()
    assert {"demo", "test"} <= targets
    documented = []
    for path in (README, *DOCS):
        texts = [b.text for b in shell_blocks(path)] + inline_code(path)
        documented += [
            (path.name, target)
            for text in texts
            for line in command_lines(text)
            for target in MAKE.findall(line)
        ]
    assert documented
    missing = sorted({f"{where}: make {t}" for where, t in documented if t not in targets})
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------- markers


def test_every_readme_shell_block_says_whether_it_runs():
    unmarked = [b.where for b in shell_blocks(README) if b.marker not in ("run", "not run")]
    assert not unmarked, (
        f"shell blocks without <!-- readme-test: run | not run — why -->: {unmarked}"
    )
    silent = [b.where for b in shell_blocks(README) if b.marker == "not run" and not b.why]
    assert not silent, f"not run, but no reason given: {silent}"
    assert sum(b.marker == "run" for b in shell_blocks(README)) >= 3


# ---------------------------------------------------------------- running the README on the demo


@dataclass(frozen=True)
class Checkout:
    """A folder laid out as ``make demo`` leaves the repository, and the environment its
    commands run in (``retain`` on the PATH, the default MLflow store ``mlruns/``)."""

    folder: Path
    env: dict
    placeholders: dict[str, str]


@pytest.fixture(scope="module")
def checkout(demo, tmp_path_factory) -> Checkout:
    root, _ = demo
    folder = tmp_path_factory.mktemp("readme")
    # a copy: the README's commands write keys, scores and runs, and other tests share the demo
    shutil.copytree(root, folder / "data", ignore=shutil.ignore_patterns("mlruns", "warehouse"))
    (folder / "data" / "warehouse").symlink_to(root / "warehouse")  # read only
    shutil.copytree(root / "mlruns", folder / "mlruns")
    shutil.copy(ROOT / "retain.toml", folder / "retain.toml")
    (folder / "docs").symlink_to(ROOT / "docs")
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "retain"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m retain "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"PATH": f"{bin_dir}:{env['PATH']}", "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    return Checkout(folder, env, {"<training run id>": champion_run(folder / "mlruns", "churn")})


def champion_run(store: Path, model: str) -> str:
    """The training run of ``model``'s champion in ``store``."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # whatever this process's registry
    return client.get_model_version_by_alias(model, "champion").run_id


def fill(text: str, placeholders: dict[str, str]) -> str:
    for placeholder, value in placeholders.items():
        text = text.replace(placeholder, value)
    left = re.findall(r"<[a-z][\w -]*>", text)
    assert not left, f"placeholders the test cannot fill: {left}"
    return text


README_BLOCKS = shell_blocks(README)
# a block that runs but is known to fail until a fix elsewhere lands (strict: passing fails,
# so the entry is removed with the fix)
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("block", README_BLOCKS, ids=[f"line{b.line}" for b in README_BLOCKS])
def test_readme_block_runs_as_written(block: Block, checkout: Checkout, request):
    if block.marker != "run":
        pytest.skip(f"README.md:{block.line} not run — {block.why or 'no marker'}")
    for text, why in KNOWN_FAILURES.items():
        if text in block.text:
            request.applymarker(pytest.mark.xfail(reason=why, strict=True))
    script = fill(block.text, checkout.placeholders)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout.folder,
        env=checkout.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"README.md:{block.line} exited {result.returncode}\n{script}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )


def example_list(path: Path) -> tuple[int, list[str]]:
    """The line and header cells of the markdown table after ``<!-- readme-test: demo list -->``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    (marker,) = [n for n, text in enumerate(lines) if "readme-test: demo list" in text]
    row = next(n for n in range(marker + 1, len(lines)) if lines[n].strip())
    assert lines[row].startswith("|"), f"{path.name}:{row + 1}: the example list is not a table"
    return row + 1, [cell.strip() for cell in lines[row].strip().strip("|").split("|")]


def test_the_example_list_has_the_columns_the_demo_writes(demo):
    from serving.texts import HEADERS

    code = {name: c for c, names in HEADERS.items() for name in names}  # header → column
    root, _ = demo
    line, header = example_list(README)
    assert len(header) >= 5 and all(h in code for h in header), header
    lists = sorted((root / "scores" / "lists").glob("RM*[0-9].csv"))
    assert lists, "the demo wrote no RM list"
    written = {code.get(c, c) for c in pd.read_csv(lists[0], nrows=1, encoding="utf-8-sig")}
    missing = [h for h in header if code[h] not in written]
    assert not missing, f"README.md:{line} shows columns no list has: {missing}"
