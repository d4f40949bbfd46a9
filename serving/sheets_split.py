"""The list files written by two processes.

A bank of a million customers has some 2,200 RMs: 8,800 lists (retention and growth, in two
languages), each a CSV and a workbook — about 18 seconds of one Python thread at the end of
the score step, when the other core has nothing left to do. A second process writes every
other list (by RM id, so the two halves are alike) while this one writes the rest; each file
is the same whoever writes it (``serving.sheets.write_list_files`` with ``only``).

The child gets its work through files in a scratch folder: each language's list rows with
their reasons (parquet, every list: whether a column shows is decided on all of them) and a
job file (JSON) with the configuration, the folder and its list ids — nothing pickled. Its
failure fails the step with what it printed. Below :data:`SPLIT_LISTS` lists one process
writes them all: a child costs a second or two to start.

Run as ``python -m serving.sheets_split JOB.json`` by :func:`write_in_two` only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from features.config import BankConfig
from serving.sheets import write_list_files

SPLIT_LISTS = 200
Frames = dict[str, tuple[pd.DataFrame, pd.DataFrame]]  # language: (lists, growth lists)


def write_in_two(folder: Path, frames: Frames, config: BankConfig, scratch: Path) -> None:
    """``lists/<lang>/`` for every language of ``frames``: half the lists by a child process
    when there are at least :data:`SPLIT_LISTS`, the rest (or all) here."""
    every = [frame["list_id"] for pair in frames.values() for frame in pair]
    ids = sorted(pd.concat(every).unique().tolist(), key=str)  # plain ints or texts, for JSON
    if len(ids) < SPLIT_LISTS:
        for lang, (lists, growth) in frames.items():
            write_list_files(folder / lang, lists, growth, lang, config)
        return
    theirs, ours = ids[0::2], ids[1::2]
    child, log = _start(folder, frames, theirs, config, scratch)
    try:
        for lang, (lists, growth) in frames.items():
            write_list_files(folder / lang, lists, growth, lang, config, only=set(ours))
    except BaseException:
        child.kill()
        child.wait()
        raise
    if child.wait() != 0:
        said = log.read_text(errors="replace").strip().splitlines()[-20:]
        raise RuntimeError(
            f"writing half of the {len(ids)} lists' files in a second process failed "
            f"(exit code {child.returncode}):\n" + "\n".join(said)
        )


def _start(folder: Path, frames: Frames, ids: list, config: BankConfig, scratch: Path):
    """The child writing the lists ``ids``, and the file its output goes to."""
    scratch.mkdir(parents=True, exist_ok=True)
    languages = {}
    for lang, (lists, growth) in frames.items():
        paths = [scratch / f"{lang}-lists.parquet", scratch / f"{lang}-growth.parquet"]
        for frame, path in zip((lists, growth), paths, strict=True):
            frame.to_parquet(path, index=False)  # whole: which columns show is the lists' call
        languages[lang] = [str(p) for p in paths]
    job = scratch / "sheets-job.json"
    job.write_text(
        json.dumps(
            {
                "folder": str(folder),
                "languages": languages,
                "only": ids,
                "config": config.model_dump_json(),
            }
        )
    )
    log = scratch / "sheets-child.log"
    with open(log, "wb") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "serving.sheets_split", str(job)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return child, log


def main(argv: list[str]) -> None:
    job = json.loads(Path(argv[0]).read_text())
    config = BankConfig.model_validate_json(job["config"])
    only = set(job["only"])
    for lang, (lists, growth) in job["languages"].items():
        frames = pd.read_parquet(lists), pd.read_parquet(growth)
        write_list_files(Path(job["folder"]) / lang, *frames, lang, config, only=only)


if __name__ == "__main__":
    main(sys.argv[1:])
