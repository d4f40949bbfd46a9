"""Atomic outputs: write next to the target, then rename, so a crash leaves the old output.
And private ones: files that hold customer data are made 0600 in 0700 folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputError(OSError):
    """An output that cannot be written where it was asked for (the folder, the reason)."""


@contextmanager
def _writing(target: Path) -> Iterator[None]:
    """Turn an operating-system error while making ``target``'s folder or scratch into an
    :class:`OutputError` that names ``target`` (a mistyped path, a read-only disk)."""
    try:
        yield
    except OSError as exc:
        folder = Path(target).parent
        there = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        why = f"{there} is a file, not a folder" if not there.is_dir() else exc.strerror or exc
        raise OutputError(f"cannot write {target}: {why} (in {folder})") from exc


def scratch_dir(target: Path, prefix: str) -> Path:
    """A new private folder beside ``target`` (its folder made when missing)."""
    with _writing(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=Path(target).parent))


@contextmanager
def atomic_dir(target: Path, holds: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``target`` only if the block succeeds.

    ``holds``: a file every earlier output of this kind has (``summary.json``): an existing
    folder with other files and not that one is someone's data, never replaced (a mistyped
    ``--out`` pointing at the warehouse or a home folder) — :class:`OutputError` first."""
    target = Path(target)
    if holds is not None:
        _refuse_foreign(target, holds)
    staging = scratch_dir(target, f".{target.name}.")
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = target.with_name(f".{target.name}.previous")
    if previous.exists():
        shutil.rmtree(previous)
    if target.exists():
        os.replace(target, previous)
    os.replace(staging, target)
    shutil.rmtree(previous, ignore_errors=True)


def _refuse_foreign(target: Path, holds: str) -> None:
    if not target.is_dir() or (target / holds).exists():
        return
    found = sorted(path.name for path in target.iterdir())
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise OutputError(
            f"{target} holds other files ({shown}) and no {holds}: it is not an earlier output "
            "of this command, so nothing was replaced — give a new or an empty folder"
        )


def file_target(target: Path) -> Path:
    """``target``, unless it is a folder: a file cannot replace one (said before the work)."""
    if Path(target).is_dir():
        raise OutputError(f"cannot write {target}: it is a folder; give a file's path")
    return Path(target)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path that is renamed onto ``target`` only if the block succeeds."""
    target = file_target(target)
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    staging = Path(name)
    try:
        yield staging
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, target)


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as pretty JSON, atomically."""
    with atomic_file(Path(path)) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def private_dir(path: Path) -> Path:
    """``path`` as a folder, made 0700 (with its missing parents) when this creates it; an
    existing folder keeps its mode (it may be shared on purpose)."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    return Path(missing[0]) if missing else path


def private_file(path: Path) -> Path:
    """``path``, created empty with mode 0600 (and 0700 folders) if it does not exist, so what
    is written into it later — by SQLite, say, whose WAL files take the database's mode — is
    never readable by others."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    return path


def private_tree(folder: Path) -> None:
    """Every file under ``folder`` 0600 and every folder 0700 (a month's scores: names, lists)."""
    folder = Path(folder)
    os.chmod(folder, 0o700)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
