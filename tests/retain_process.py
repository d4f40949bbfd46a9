"""`python -m retain ARGS` as the tests run it: a process of its own — its own arguments,
environment, working directory, output, exit code and process group — forked from a server
(multiprocessing's forkserver) that has imported, once per test worker, the libraries every
command imports: pandas, PyArrow, DuckDB, Ibis, MLflow, LightGBM, scikit-learn, SciPy,
matplotlib. Each of the suite's ~120 commands then imports only retain's own modules: a
`retain score` of the demo bank took about 21 CPU-s started fresh, 12-15 forked.

What is the same as a fresh interpreter: ``sys.argv`` and ``__main__`` as ``-m`` sets them
(runpy), the environment and directory given, stdin empty, output captured as text, exit
codes (``typer.Exit``, a traceback's 1), atexit handlers. What is not: the libraries were
imported before the command's environment was set, so a variable they read on import only
(none of the suite's) would be missed. ``RETAIN_TESTS_FRESH=1`` runs every command in a fresh
interpreter instead; tests/test_retain_process.py runs the same commands both ways."""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
from functools import cache
from pathlib import Path

# the order matters: LightGBM first, as retain imports it (models.boosters)
PRELOAD = [
    "models.boosters",
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "duckdb",
    "ibis",
    "sqlglot",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "sklearn.metrics",
    "scipy.stats",
    "matplotlib.pyplot",
    "typer",
    "rich.console",
]


@cache
def _forkserver():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _command(args, env, cwd, out, err) -> None:
    """In the forked process: become ``python -m retain ARGS`` and exit with its code."""
    os.setsid()  # its own group: a timeout kills what it started too
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
    )
    sys.argv = ["-m", *args]  # runpy puts the module's path first, as -m does
    code = 0
    try:
        runpy.run_module("retain", run_name="__main__", alter_sys=True)
    except SystemExit as exc:  # as the interpreter reads it
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(
    args: list[str], env: dict | None = None, cwd: Path | str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Like ``subprocess.run([sys.executable, "-m", "retain", *args], capture_output=True,
    text=True, ...)``; raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
    argv = [sys.executable, "-m", "retain", *map(str, args)]
    env = dict(os.environ if env is None else env)
    cwd = str(cwd or os.getcwd())
    if os.environ.get("RETAIN_TESTS_FRESH"):
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
        )
    with tempfile.TemporaryDirectory(prefix="retain-run-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        process = _forkserver().Process(
            target=_command, args=(argv[3:], env, cwd, str(out), str(err))
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended in between
                pass
            process.join()
            raise subprocess.TimeoutExpired(argv, timeout, out.read_bytes(), err.read_bytes())
        return subprocess.CompletedProcess(
            argv, process.exitcode, out.read_text("utf-8"), err.read_text("utf-8")
        )
