"""How the `retain` command talks: rich tables for people, JSON files for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.atomic import write_json

# Piped output (logs, CI) gets a wide fixed width rather than rich's 80 columns, so tables of
# violations or lists are not cut into ellipses.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _json_target(value: Path | None) -> Path | None:
    """With ``--json -`` stdout carries the JSON alone: tables and progress go to stderr."""
    if value is not None and str(value) == "-":
        console.file = sys.stderr
    return value


JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="Also write a machine-readable summary to PATH (- for stdout).",
        callback=_json_target,
    ),
]


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> Table:
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(str(v) for v in row))
    return out


def save_json(path: Path | None, payload: dict) -> None:
    """Write the machine-readable summary when ``--json PATH`` was given (``-``: stdout)."""
    if path is None:
        return
    if str(path) == "-":
        print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
        return
    write_json(path, payload)
    errors.print(f"summary written to [bold]{path}[/]")


@contextmanager
def progress_bar(description: str) -> Iterator:
    """A progress bar; yields ``update(done, total)``."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def print_error(message: str) -> None:
    """Print ``error: message`` to stderr: the one spelling of a command's error line."""
    errors.print(f"[red]error:[/] {message}")


def error_line(exc: BaseException, known: tuple[type[BaseException], ...] = ()) -> str:
    """An exception as one line: the first line of its message, prefixed with its type unless
    it is one of the ``known`` errors whose messages are worded for the user."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, known) else f"{type(exc).__name__}: {text}"


def fail(message: str, code: int = 1, *notes: str) -> NoReturn:
    """Print ``error: message`` and then each note on a line of its own to stderr, and exit
    with ``code``."""
    print_error(message)
    for note in notes:
        errors.print(note)
    raise typer.Exit(code)


def warn(text: str) -> None:
    """A warning line among a command's output (training's data warnings)."""
    console.print(f"[yellow]warning:[/] {text}")


def fmt_metric(value: float | None) -> str:
    """A metric to four decimals, ``-`` when there is none."""
    return "-" if value is None else f"{value:.4f}"
