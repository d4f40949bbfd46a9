"""Shared benchmark plumbing: run a step in a child process, time it, sample its peak RSS."""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def run_measured(code: str, poll_seconds: float = 0.2, timeout: float | None = None) -> dict:
    """Run ``python -c code`` and return wall seconds, CPU seconds (user + system of the child
    and the children it waited for) and peak RSS (MB, process tree). On a machine shared with
    other jobs the CPU seconds move less than the wall time.

    Raises TimeoutError (after killing the tree) when it runs longer than ``timeout``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # from the project root, so `features` is the package, not benchmarks/features.py
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    proc = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        if timeout is not None and time.perf_counter() - started > timeout:
            for process in [*proc.children(recursive=True), proc]:
                process.kill()
            child.wait()
            raise TimeoutError(f"stopped after {timeout:.0f}s")
        try:
            rss = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(poll_seconds)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if child.returncode != 0:
        raise RuntimeError(f"benchmark step failed with exit code {child.returncode}")
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak / 2**20}


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def report(name: str, columns: list[str], rows: list[list], payload: dict) -> None:
    table = Table(title=name, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**payload, "machine": machine()}, indent=2) + "\n")
    Console().print(f"written to {path}")


def machine() -> dict:
    """What the figures were measured on: two machines of the same size differ by half in
    seconds (docs/operating.md), so a figure is compared with one of the same machine only."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read_lines("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    from models.provenance import UNKNOWN, code_commit

    commit = code_commit()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "commit": None if commit == UNKNOWN else commit[:7],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(scores: Path, *options: str, prefix: str = "retain-bench-") -> Iterator[dict]:
    """`retain serve` on a free loopback port over the snapshot ``scores`` (2 workers, the
    project's MLflow store, a throw-away admin key), ready; yields url, key, its folder and
    the service's pid, and stops the service and its workers afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    keys = folder / "keys.json"
    retain = [sys.executable, "-m", "retain"]
    add = [*retain, "keys", "add", "--keys", str(keys), "--role", "admin", "--name", "bench"]
    added = subprocess.run(add, capture_output=True, text=True, cwd=ROOT, check=True)
    port = free_port()
    log = open(folder / "service.log", "wb")
    args = [
        "serve",
        "--port",
        str(port),
        "--keys",
        str(keys),
        "--scores",
        str(scores),
        "--audit",
        str(folder / "audit"),
        *options,
    ]
    server = subprocess.Popen(
        [*retain, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit(f"service not ready; see {folder / 'service.log'}")
        key = added.stdout.strip().splitlines()[-1]
        yield {"url": url, "key": key, "folder": folder, "pid": server.pid}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # retain serve and its bentoml workers
        server.wait(timeout=30)


def previous_tree(tree: Path, commit: str) -> Path:
    """A worktree of ``commit`` at ``tree`` (made once)."""
    if not (tree / "features" / "build.py").exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True
        )
    return tree


def ensure_bank(banks: Path, size: int) -> Path:
    bank = banks / f"bank_{size}"
    if not (bank / "_meta.json").exists():
        config = f"SynthConfig(customers={size}, months=24, seed=0)"
        code = (
            "from synthetic.bank import write_bank; from synthetic.config import SynthConfig; "
            f"write_bank({config}, {str(bank)!r})"
        )
        run_measured(code)
    return bank
