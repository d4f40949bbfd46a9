"""`retain run`: the monthly job in one command — validate → features → score → monitor.

Everything for a cutoff goes to ``<runs-dir>/<cutoff>/``:

- ``validate.json``: the warehouse's violations (none, or the run stops here);
- ``features.parquet``: features at the cutoff (the score step reuses this file);
- ``scores/``: what ``retain score --out`` writes (scores, features, lists, report, summary);
- ``monitor/``: ``monitor.json`` and ``monitor.html`` against the reference;
- ``run.json``: per step its status, seconds, CPU seconds, peak RSS and output; the run's
  status.

Each output is written atomically. A step whose inputs have not changed since it last finished
(its *fingerprint*: the warehouse files' sizes and times, the configuration, the features file,
the champion models' versions) is skipped on the next run, so a run that failed resumes where
it stopped; ``--force`` redoes every step. The run never trains: retraining is ``retain train``
and ``retain promote``. What would stop the run only at the score step — a champion model
missing or failing its checks, a cutoff the warehouse has no balances for — is checked first,
in seconds, and stops it before any step. Exit codes: 0 done, 1 a step failed (or the run could
not start), 2 monitoring raised an act-level alert (everything is written first), so a
scheduler can page someone.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated

import psutil
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from features.atomic import write_json
from features.config import BankConfig
from retain.options import (
    ConfigOption,
    EngineOption,
    SparkMasterOption,
    SparkMemoryOption,
    WarehouseOption,
    bank_config,
    engine_options,
    month_end,
    warehouse_location,
    with_options,
)
from retain.output import JsonOption, console, error_line, errors, fail, save_json, table

DONE, SKIPPED, FAILED, NOT_RUN = "done", "skipped (done)", "failed", "not run"
EXIT_FAILED, EXIT_ACT = 1, 2
RUN_FILE = "run.json"


class StepFailed(Exception):
    """A step that cannot finish, with the one line a user needs."""


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
    """A step of the monthly run: its output, its fingerprint (None: never skipped), what it
    does (``work(update)`` returns details kept in ``run.json``) and where it computes."""

    name: str
    output: Path
    fingerprint: Callable[[], str | None]
    work: Callable[[Callable[[str], None]], dict]
    runs_on: dict = field(default_factory=dict)


# ---------------------------------------------------------------- fingerprints


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def warehouse_fingerprint(location: str) -> str | None:
    """Sizes and modification times of a directory warehouse's files; None for a database
    (no cheap way to see that its tables changed: those steps always run)."""
    if "://" in location:
        return None
    root = Path(location)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    stats = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return _digest([str(root.resolve()), stats])


def file_fingerprint(path: Path) -> str | None:
    if not path.exists():
        return None
    stat = path.stat()
    return _digest([str(path), stat.st_size, stat.st_mtime_ns])


def config_fingerprint(config: BankConfig) -> str:
    return _digest(config.model_dump(mode="json"))


# ---------------------------------------------------------------- peak RSS of a step


class PeakMemory:
    """Samples this process's resident memory (and its children's) while a step runs.

    Each sample reads this process's and its descendants' ``/proc`` entries only (the children
    each thread started, from ``/proc/<pid>/task/<tid>/children``): psutil's ``children``
    reads every process of the machine to find them, 2.2 ms a sample — 11 CPU-seconds of a
    4-minute run at 20 samples a second, and more on a busy server."""

    def __init__(self, every: float = 0.05):
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._process = psutil.Process(os.getpid())
        self._proc = Path("/proc/self/task").is_dir()

    def _sample(self) -> None:
        try:
            rss = tree_rss(os.getpid()) if self._proc else self._psutil_rss()
        except (OSError, psutil.Error):
            return
        self.peak = max(self.peak, rss)

    def _psutil_rss(self) -> int:
        rss = self._process.memory_info().rss
        return rss + sum(c.memory_info().rss for c in self._process.children(recursive=True))

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


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and of every process below it, from ``/proc`` (a
    process that ends while it is read counts as nothing)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            if current == pid:
                raise
    return total


def cpu_seconds() -> float:
    """CPU time (user + system) of this process's threads and of its children it waited for."""
    times = psutil.Process(os.getpid()).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


# ---------------------------------------------------------------- the steps


def _validate(location: str, out: Path, bank: BankConfig) -> Callable:
    def work(update) -> dict:
        from features.schema import validate_warehouse

        update("checking every table")
        violations = validate_warehouse(location, bank.warehouse)
        payload = {
            "warehouse": location,
            "valid": not violations,
            "violations": [v.__dict__ for v in violations],
        }
        write_json(out, payload)
        if violations:
            first = violations[0]
            raise StepFailed(
                f"{len(violations)} violation(s) in {location}, e.g. {first.table}.{first.column}:"
                f" {first.rule} ({first.count:,} rows); all in {out} (retain validate lists them)"
            )
        return {"violations": 0}

    return work


def _features(location: str, cutoff: date, out: Path, bank: BankConfig) -> Callable:
    def work(update) -> dict:
        from features.materialize import write_features

        summary = write_features(location, [cutoff], out, bank, step=update)
        if not summary["rows"]:
            raise StepFailed(f"no customers at cutoff {cutoff} in {location}")
        return {"rows": summary["rows"], "engine": summary["engine"]}

    return work


def _score(location, cutoff, features_path, out, bank, lang) -> Callable:
    def work(update) -> dict:
        from serving.batch import score_warehouse

        summary = score_warehouse(
            location, cutoff, out, bank, lang, step=update, features_path=features_path
        )
        keep = ("customers_scored", "customers_explained", "lists", "listed_customers", "models")
        return {k: summary[k] for k in keep}

    return work


def _monitor(folder, reference, runs_dir, location, bank) -> Callable:
    def work(update) -> dict:
        from monitoring.job import run_monitor

        if reference is None:
            raise StepFailed(
                "no reference to monitor against: no earlier cutoff in the runs folder and no "
                "champion churn model; pass --reference"
            )
        result = run_monitor(
            current=folder / "scores",
            reference=reference,
            runs_dir=runs_dir,
            warehouse=location,
            config=bank,
            out=folder / "monitor",
            step=update,
        )
        return {"alert": result.get("alert"), "reference": str(reference)}

    return work


def default_reference(runs_dir: Path, cutoff: date) -> str | None:
    """The latest earlier cutoff in ``runs_dir`` that was scored, else the champion churn
    model's training run id (None without one)."""
    earlier = []
    for folder in runs_dir.glob("????-??-??"):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if day < cutoff and (folder / "scores" / "summary.json").is_file():
            earlier.append(folder.name)
    if earlier:
        return max(earlier)
    import mlflow
    from mlflow.tracking import MlflowClient

    from features.targets import CHURN
    from models.registry import CHAMPION

    try:
        return MlflowClient().get_model_version_by_alias(CHURN.model, CHAMPION).run_id
    except mlflow.exceptions.MlflowException:
        return None


# ---------------------------------------------------------------- the run


def previous_records(path: Path) -> dict[str, dict]:
    try:
        return {s["name"]: s for s in json.loads(path.read_text())["steps"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_steps(
    steps: list[Step],
    folder: Path,
    force: bool,
    on_start: Callable[[str], None],
    on_update: Callable[[str, str], None],
    on_end: Callable[[StepRecord], None],
    header: dict,
) -> tuple[list[StepRecord], dict]:
    """Run (or skip) ``steps`` in order, writing ``run.json`` after each; stop at a failure."""
    before = {} if force else previous_records(folder / RUN_FILE)
    records = [StepRecord(s.name, output=str(s.output), runs_on=s.runs_on) for s in steps]
    payload = {**header, "status": "running", "steps": []}

    def save() -> None:
        payload["steps"] = [asdict(r) for r in records]
        write_json(folder / RUN_FILE, payload)

    failed = False
    for step, record in zip(steps, records, strict=True):
        if failed:
            on_end(record)
            continue
        on_start(step.name)
        started, cpu = time.perf_counter(), cpu_seconds()
        with PeakMemory() as memory:
            try:
                record.fingerprint = step.fingerprint()
                last = before.get(step.name, {})
                if (
                    record.fingerprint is not None
                    and last.get("status") in (DONE, SKIPPED)
                    and last.get("fingerprint") == record.fingerprint
                    and step.output.exists()
                ):
                    record.status, record.detail = SKIPPED, last.get("detail", {})
                else:
                    record.detail = step.work(lambda text, n=step.name: on_update(n, text))
                    record.status = DONE
            except Exception as exc:  # recorded in run.json and shown as one line
                record.status, record.error = FAILED, _one_line(exc)
                failed = True
        record.seconds = round(time.perf_counter() - started, 2)
        record.peak_rss_mb = memory.mb
        record.cpu_seconds = round(cpu_seconds() - cpu, 2)
        on_end(record)
        save()
    alert = next((r.detail.get("alert") for r in records if r.name == "monitor"), None)
    payload["alert"] = alert
    payload["status"] = "failed" if failed else ("alert" if alert == "act" else "ok")
    save()
    return records, payload


def _one_line(exc: Exception) -> str:
    from features.build import CutoffError
    from features.engine import EngineError
    from features.sources.files import WarehouseError
    from models.registry import RegistryError

    return error_line(exc, (StepFailed, RegistryError, CutoffError, WarehouseError, EngineError))


def run(
    cutoff: Annotated[str, typer.Option(help="Month-end date of the run, e.g. 2024-12-31.")],
    runs_dir: Annotated[
        Path, typer.Option(help="Where each cutoff's folder goes: <runs-dir>/<cutoff>/.")
    ] = Path("data/runs"),
    warehouse: WarehouseOption = None,
    config: ConfigOption = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Monitoring reference: an earlier cutoff in --runs-dir or an MLflow run id "
            "(default: the latest earlier cutoff, else the champion churn model's training run)."
        ),
    ] = None,
    lang: Annotated[
        str | None, typer.Option(help="Language of reasons and sheets (default: configuration).")
    ] = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_memory: SparkMemoryOption = None,
    force: Annotated[bool, typer.Option("--force", help="Redo every step.")] = False,
    json_path: JsonOption = None,
) -> None:
    """The monthly job: validate → features → score (lists, report) → monitor, into
    <runs-dir>/<cutoff>/; resumes after a failure; exit 1 on a failure, 2 on an act alert."""
    from retain.warehouse import scoring_problem

    bank = with_options(
        bank_config(config),
        warehouse=engine_options(engine, spark_master, spark_memory),
        language=lang,
    )
    location = warehouse_location(warehouse, bank)
    day = month_end(cutoff)
    lang = bank.language
    folder = runs_dir / day.isoformat()
    # seconds, not a validation and features later; it also points MLflow at the store
    _, problem = scoring_problem(location, day, bank)
    if problem is not None:
        fail(problem, EXIT_FAILED, f"nothing was run: {folder} and its run.json are untouched")
    folder.mkdir(parents=True, exist_ok=True)
    if reference is None:
        reference = default_reference(runs_dir, day)
    steps = _monthly_steps(location, day, folder, runs_dir, bank, lang, reference)
    header = {
        "cutoff": day.isoformat(),
        "warehouse": location,
        "engine": bank.warehouse.engine,
        "spark_master": bank.warehouse.spark_master if bank.warehouse.engine == "spark" else None,
        "spark_executors": _executors(bank) if bank.warehouse.engine == "spark" else None,
        "folder": str(folder),
        "reference": reference,
        "forced": force,
    }
    records, payload = _run_with_progress(steps, folder, force, header)
    _print_summary(records, payload)
    save_json(json_path, payload)
    failed = next((r for r in records if r.status == FAILED), None)
    if failed is not None:
        fail(
            f"step {failed.name} failed: {failed.error}",
            EXIT_FAILED,
            f"earlier outputs are kept; fix it and run again to resume ({folder})",
        )
    if payload["alert"] == "act":
        errors.print(f"[red]act-level alert[/]: see {folder / 'monitor' / 'monitor.html'}")
        raise typer.Exit(EXIT_ACT)


def _monthly_steps(
    location: str,
    day: date,
    folder: Path,
    runs_dir: Path,
    bank: BankConfig,
    lang: str,
    reference: str | None,
) -> list[Step]:
    """The four steps of a run into ``folder``, each skipped while its inputs are unchanged."""
    from models.registry import champion_versions

    features_path, scores = folder / "features.parquet", folder / "scores"
    warehouse_print = warehouse_fingerprint(location)
    settings = config_fingerprint(bank)
    engines = step_engines(location, bank)

    def unchanged(*parts) -> Callable[[], str | None]:
        return lambda: None if any(p is None for p in parts) else _digest(parts)

    return [
        Step(
            "validate",
            folder / "validate.json",
            unchanged(warehouse_print),
            _validate(location, folder / "validate.json", bank),
            engines["validate"],
        ),
        Step(
            "features",
            features_path,
            unchanged(warehouse_print, settings, day.isoformat(), _catalog_version()),
            _features(location, day, features_path, bank),
            engines["features"],
        ),
        Step(
            "score",
            scores,
            lambda: unchanged(
                file_fingerprint(features_path), settings, lang, champion_versions()
            )(),
            _score(location, day, features_path, scores, bank, lang),
            engines["score"],
        ),
        Step(
            "monitor",
            folder / "monitor",
            lambda: unchanged(
                file_fingerprint(scores / "summary.json"), settings, str(reference)
            )(),
            _monitor(folder, reference, runs_dir, location, bank),
            engines["monitor"],
        ),
    ]


EMBEDDED = "everything (DuckDB is embedded)"


def step_engines(location: str, bank: BankConfig) -> dict[str, dict]:
    """Per step, what computes it (``engine``: duckdb, postgres, spark, or ``local`` — Python
    in the retain process), the Spark master when Spark does, and what runs in the retain
    process whatever the engine, as ``run.json`` records it."""
    from features.sources.database import is_database_url

    spark = bank.warehouse.engine == "spark"
    master = {"spark_master": bank.warehouse.spark_master} if spark else {}
    database = is_database_url(location)
    build = "postgres" if database and not spark else bank.warehouse.engine
    return {
        "validate": {  # a database computes its own checks whatever the engine
            "engine": "postgres" if database else bank.warehouse.engine,
            **({} if database else master),
            "in_process": EMBEDDED if build == "duckdb" else "collecting counts and examples",
        },
        "features": {
            "engine": build,
            **master,
            "in_process": {
                "spark": "concatenating Spark's parquet parts into features.parquet",
                "duckdb": EMBEDDED,
            }.get(build, "writing the result"),
        },
        "score": {
            "engine": "spark" if spark else "local",
            **master,
            "in_process": "offers, lists, sheets and report (pandas)"
            if spark
            else "scores, reasons, offers, lists, sheets and report",
        },
        "monitor": {
            "engine": "local",
            "in_process": "drift, estimates and alerts (pandas)",
            # realised figures need the matured cutoffs' labels: built like the features
            "labels_engine": build,
            **master,
        },
    }


def _executors(bank: BankConfig) -> dict:
    """The Spark heap and cores asked (the driver's in local mode, each executor's else)."""
    return {"memory": bank.warehouse.spark_memory, "cores": bank.warehouse.spark_cores}


def _catalog_version() -> str:
    from features.catalog import CATALOG_VERSION

    return str(CATALOG_VERSION)


def _run_with_progress(steps, folder, force, header):
    columns = (
        SpinnerColumn(finished_text="·"),
        TextColumn("{task.fields[step]:<9}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=False) as progress:
        tasks = {
            s.name: progress.add_task("waiting", step=s.name, total=1, start=False) for s in steps
        }

        def start(name: str) -> None:
            progress.start_task(tasks[name])
            progress.update(tasks[name], description="running")

        def update(name: str, text: str) -> None:
            progress.update(tasks[name], description=text)

        def end(record: StepRecord) -> None:
            text = record.status + (f": {record.error}" if record.error else "")
            progress.update(tasks[record.name], description=text, completed=1)
            progress.stop_task(tasks[record.name])

        return run_steps(steps, folder, force, start, update, end, header)


def _print_summary(records: list[StepRecord], payload: dict) -> None:
    rows = [
        (
            r.name,
            r.status,
            "-" if r.seconds is None else f"{r.seconds:.1f}",
            "-" if r.cpu_seconds is None else f"{r.cpu_seconds:.1f}",
            "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:,.0f}",
            r.output,
        )
        for r in records
    ]
    title = f"retain run {payload['cutoff']}: {payload['status']}"
    if payload.get("spark_master"):
        title += f" (Spark at {payload['spark_master']})"
    if payload.get("alert"):
        title += f" (monitoring: {payload['alert']})"
    columns = ["step", "status", "seconds", "CPU seconds", "peak RSS MB", "output"]
    console.print(table(title, columns, rows))
