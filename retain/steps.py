"""The steps of a run and how they are run: in order, each skipped while its inputs are unchanged,
each recorded in ``run.json`` (status, seconds, CPU seconds, peak RSS) after it ends, and none
after a failure.

A step may start *beside* the check before it (``Step.beside_check``): the monthly run's
features are built while the warehouse is validated, on an engine where both compute in this
process (DuckDB over files), because the validation alone keeps the second core idle. The
step then writes into a staging path that is put in place only once the check has passed; if
the check fails, the step stops at its next progress report and its staging is removed — what
the step wrote before stays as it was, as if it had never started.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from features.atomic import write_json

DONE, SKIPPED, FAILED, NOT_RUN = "done", "skipped (done)", "failed", "not run"
RUN_FILE = "run.json"

Update = Callable[[str], None]


class StepFailed(Exception):
    """A step that cannot finish, with the one line a user needs."""


class CheckFailed(Exception):
    """Raised into a step running beside a check that failed: it stops where it reports."""


@dataclass
class StepRecord:
    """What ``run.json`` keeps of one step."""

    name: str
    status: str = NOT_RUN
    seconds: float | None = None
    peak_rss_mb: float | None = None
    cpu_seconds: float | None = (
        None  # user + system, all threads: steadier than seconds on a shared machine
    )
    output: str | None = None
    fingerprint: str | None = None
    error: str | None = None
    detail: dict = field(default_factory=dict)
    runs_on: dict = field(default_factory=dict)


@dataclass
class Step:
    """A step of a run: its output, its fingerprint (None: never skipped), what it does
    (``work(update, output)`` writes ``output`` and returns details kept in ``run.json``) and
    where it computes. ``beside_check``: it may run beside the step before it, a check, writing
    into a staging path meanwhile."""

    name: str
    output: Path
    fingerprint: Callable[[], str | None]
    work: Callable[[Update, Path], dict]
    runs_on: dict = field(default_factory=dict)
    beside_check: bool = False


@dataclass
class Hooks:
    """What a run shows while it goes: a step starts, reports progress, ends."""

    start: Callable[[str], None]
    update: Callable[[str, str], None]
    end: Callable[[StepRecord], None]


# ---------------------------------------------------------------- peak RSS and CPU


class PeakMemory:
    """Samples this process's resident memory (and its children's) while a step runs."""

    def __init__(self, every: float = 0.05):
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._process = psutil.Process(os.getpid())

    def _sample(self) -> None:
        try:
            rss = self._process.memory_info().rss
            rss += sum(c.memory_info().rss for c in self._process.children(recursive=True))
        except psutil.Error:
            return
        self.peak = max(self.peak, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def mb(self) -> float:
        return round(self.peak / 2**20, 1)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process's threads and of its children it waited for."""
    times = psutil.Process(os.getpid()).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


# ---------------------------------------------------------------- running them


def previous_records(path: Path) -> dict[str, dict]:
    try:
        return {s["name"]: s for s in json.loads(path.read_text())["steps"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_steps(
    steps: list[Step], folder: Path, force: bool, hooks: Hooks, header: dict
) -> tuple[list[StepRecord], dict]:
    """Run (or skip) ``steps`` in order, writing ``run.json`` after each; stop at a failure."""
    before = {} if force else previous_records(folder / RUN_FILE)
    records = [StepRecord(s.name, output=str(s.output), runs_on=s.runs_on) for s in steps]
    payload = {**header, "status": "running", "steps": []}

    def save() -> None:
        payload["steps"] = [asdict(r) for r in records]
        write_json(folder / RUN_FILE, payload)

    index, failed = 0, False
    while index < len(steps):
        step, record = steps[index], records[index]
        following = steps[index + 1] if index + 1 < len(steps) else None
        if failed:
            hooks.end(record)
        elif (
            following is not None
            and following.beside_check
            and _to_run(step, record, before)
            and _to_run(following, records[index + 1], before)
        ):
            _side_by_side((step, following), (record, records[index + 1]), hooks)
            failed = FAILED in (record.status, records[index + 1].status)
            save()
            index += 2
            continue
        else:
            _one_step(step, record, before, hooks)
            failed = record.status == FAILED
            save()
        index += 1
    alert = next((r.detail.get("alert") for r in records if r.name == "monitor"), None)
    payload["alert"] = alert
    payload["status"] = "failed" if failed else ("alert" if alert == "act" else "ok")
    save()
    return records, payload


def _to_run(step: Step, record: StepRecord, before: dict[str, dict]) -> bool:
    """False, with the record marked skipped, when the step finished before with the same
    inputs and its output is there; else True (its fingerprint recorded)."""
    record.fingerprint = step.fingerprint()
    last = before.get(step.name, {})
    if (
        record.fingerprint is not None
        and last.get("status") in (DONE, SKIPPED)
        and last.get("fingerprint") == record.fingerprint
        and step.output.exists()
    ):
        record.status, record.detail = SKIPPED, last.get("detail", {})
        return False
    return True


def _one_step(step: Step, record: StepRecord, before: dict[str, dict], hooks: Hooks) -> None:
    hooks.start(step.name)
    started, cpu = time.perf_counter(), cpu_seconds()
    with PeakMemory() as memory:
        try:
            if _to_run(step, record, before):
                record.detail = step.work(lambda text: hooks.update(step.name, text), step.output)
                record.status = DONE
        except Exception as exc:  # recorded in run.json and shown as one line
            record.status, record.error = FAILED, one_line(exc)
    record.seconds = round(time.perf_counter() - started, 2)
    record.peak_rss_mb = memory.mb
    record.cpu_seconds = round(cpu_seconds() - cpu, 2)
    hooks.end(record)


def _side_by_side(pair: tuple[Step, Step], records: tuple[StepRecord, StepRecord], hooks: Hooks):
    """The check in a thread, the step after it here into a staging path, put in place once
    the check passed. Each record gets its own seconds; the CPU seconds and peak RSS are the
    pair's (one process), and ``runs_on["beside"]`` names the other step."""
    (check, step), (checked, record) = pair, records
    checked.runs_on = {**checked.runs_on, "beside": step.name}
    record.runs_on = {**record.runs_on, "beside": check.name}
    staging = step.output.with_name(f".{step.output.name}.beside")
    failure = threading.Event()

    def run_check() -> None:
        started = time.perf_counter()
        try:
            checked.detail = check.work(lambda text: hooks.update(check.name, text), check.output)
            checked.status = DONE
        except Exception as exc:
            failure.set()  # first: the step beside stops at its next report
            checked.status, checked.error = FAILED, one_line(exc)
        checked.seconds = round(time.perf_counter() - started, 2)

    def report(text: str) -> None:
        if failure.is_set():
            raise CheckFailed(check.name)
        hooks.update(step.name, text)

    hooks.start(check.name)
    hooks.start(step.name)
    started, cpu = time.perf_counter(), cpu_seconds()
    with PeakMemory() as memory:
        thread = threading.Thread(target=run_check, name=f"retain-{check.name}")
        thread.start()
        try:
            record.detail = step.work(report, staging)
            record.status = DONE
        except CheckFailed:
            pass
        except Exception as exc:
            record.status, record.error = FAILED, one_line(exc)
        record.seconds = round(time.perf_counter() - started, 2)
        thread.join()
        if checked.status == DONE and record.status == DONE:
            os.replace(staging, step.output)
        else:
            _remove(staging)
        if checked.status == FAILED:  # the step is as if it had never started
            record.status, record.error = NOT_RUN, None
            record.detail = {"stopped": f"{check.name} failed"}
    for each in records:
        each.peak_rss_mb, each.cpu_seconds = memory.mb, round(cpu_seconds() - cpu, 2)
    hooks.end(checked)
    hooks.end(record)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def one_line(exc: Exception) -> str:
    """The error of a step as one line: the message of the errors retain words itself, else
    prefixed with the exception's type."""
    from features.build import CutoffError
    from features.engine import EngineError
    from features.sources.files import WarehouseError
    from models.registry import RegistryError

    known = (StepFailed, RegistryError, CutoffError, WarehouseError, EngineError)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, known) else f"{type(exc).__name__}: {text}"
