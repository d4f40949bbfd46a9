"""The data scientist's notebooks: committed without outputs, and each one runs headless.

Each notebook is executed by nbclient on the ``python3`` kernel (ipykernel in this venv) in a
work folder of its own (``RETAIN_NOTEBOOK_DIR``), which also holds its MLflow store — so each
one must be self-sufficient, and nothing is written to the project's ``mlruns/`` or ``data/``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_explore.ipynb", "02_train_and_compare.ipynb", "03_explain_and_lists.ipynb"]
KERNEL = "python3"
CELL_TIMEOUT = 300  # seconds for one cell; a whole notebook takes 10-40 s here
# what nbstripout leaves in the notebook's metadata; anything else (widgets, signatures,
# a personal kernel name) is a sign the notebook was saved from a session, not stripped
NOTEBOOK_METADATA = {"kernelspec", "language_info"}
CELL_METADATA_FROM_RUNS = {"execution", "ExecuteTime", "collapsed", "scrolled"}


def saved_state(nb: nbformat.NotebookNode) -> list[str]:
    """Everything a run leaves in a notebook that must not be committed, one line each."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                problems.append(f"cell {index}: {len(cell.outputs)} output(s)")
            if cell.get("execution_count") is not None:
                problems.append(f"cell {index}: execution count {cell.execution_count}")
        left = CELL_METADATA_FROM_RUNS & set(cell.get("metadata", {}))
        if left:
            problems.append(f"cell {index}: run metadata {sorted(left)}")
    extra = set(nb.metadata) - NOTEBOOK_METADATA
    if extra:
        problems.append(f"notebook metadata {sorted(extra)}")
    if nb.metadata.get("kernelspec", {}).get("name") != KERNEL:
        problems.append(f"kernelspec is not {KERNEL!r}: {nb.metadata.get('kernelspec')}")
    return problems


def test_the_three_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert saved_state(nb) == [], f"{path.name}: strip it with `nbstripout {path}`"


def test_a_notebook_with_an_output_is_caught(tmp_path):
    """The check above can fail: a copy with one output and an execution count is refused,
    by it and by ``nbstripout --verify`` (which passes on the committed notebooks)."""
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    dirty = copy.deepcopy(nb)
    code = next(c for c in dirty.cells if c.cell_type == "code")
    code.execution_count = 1
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    path = tmp_path / NOTEBOOKS[0].name
    nbformat.write(dirty, path)
    problems = saved_state(nbformat.read(path, as_version=4))
    assert any("output" in p for p in problems) and any("execution count" in p for p in problems)
    verify = [sys.executable, "-m", "nbstripout", "--verify"]
    assert subprocess.run([*verify, str(path)], capture_output=True).returncode != 0
    clean = subprocess.run([*verify, *map(str, NOTEBOOKS)], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr


@pytest.fixture(scope="module")
def kernel() -> str:
    """The ``python3`` kernelspec: ipykernel's wheel installs it into the venv; should it be
    missing (an old or hand-made venv), install it there, where nbclient looks."""
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)
    assert KERNEL in KernelSpecManager().find_kernel_specs()
    return KERNEL


def outputs(nb: nbformat.NotebookNode, kind: str) -> list:
    """Every output of ``kind``: "text" (streams and text/plain) or a MIME type."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind == "text" and out.output_type == "stream":
                found.append(out.text)
            elif "data" in out and (kind if kind != "text" else "text/plain") in out.data:
                found.append(out.data[kind if kind != "text" else "text/plain"])
    return found


def registry(work: Path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_explore(nb, work: Path) -> None:
    assert (work / "warehouse" / "_meta.json").is_file()
    assert (work / "features.parquet").is_file()
    assert len(outputs(nb, "image/png")) >= 2  # the Pareto curve and the distributions
    text = "".join(outputs(nb, "text"))
    assert "monthly churn among eligible customers" in text and "churned within" in text


def check_train_and_compare(nb, work: Path) -> None:
    client = registry(work)
    versions = client.search_model_versions("name='churn'")
    assert len(versions) == 2  # the two runs
    champion = client.get_model_version_by_alias("churn", "champion")
    assert champion.version in {v.version for v in versions}
    text = "".join(outputs(nb, "text"))
    for metric in ("test_auc", "auc_to_oracle", "ece", "lightgbm_defaults_test_auc"):
        assert metric in text  # the side-by-side table
    assert f"churn@champion is version {champion.version}" in text


def check_explain_and_lists(nb, work: Path) -> None:
    client = registry(work)
    assert client.get_model_version_by_alias("churn", "champion")
    assert len(outputs(nb, "image/png")) >= 2  # the SHAP summary and the waterfall
    lists = [p for p in (work / "scores" / "lists").glob("*.csv")]
    assert lists
    text = "".join(outputs(nb, "text"))
    assert any(f"{p.name}: " in text for p in lists)  # a list file was read and shown
    assert "expected_loss" in text and "reason_1" in text


CHECKS = {
    "01_explore": check_explore,
    "02_train_and_compare": check_train_and_compare,
    "03_explain_and_lists": check_explain_and_lists,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(path, kernel, tmp_path, monkeypatch):
    work = tmp_path / "work"
    # the kernel inherits this process's environment
    monkeypatch.setenv("RETAIN_NOTEBOOK_DIR", str(work))
    monkeypatch.delenv("RETAIN_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the notebook sets its own
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # see the notebooks' first cell
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell if any cell raised
    seconds = time.perf_counter() - started
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    CHECKS[path.stem](nb, work)
    print(f"{path.name}: {seconds:.0f} s")
