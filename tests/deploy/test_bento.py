"""The scoring service as a Bento (bentofile.yaml, `make bento`): built, then served with
`bentoml serve retain:latest` — not the checkout — against the team's MLflow server, with the
environment `retain serve --env-file` writes.

The Bento is served by an interpreter that sees the locked packages but not this checkout (a
throwaway venv whose only link is a path to the installed packages; the project's editable
install is left out), from a folder outside the repository: every line of retain it runs comes
from the Bento, and a module the Bento lacks (training/, the CLI) fails the start."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from tests.deploy.team_servers import ROOT, assert_scores_as_scored
from tests.serving.service_process import Service, add_key, free_port

# minutes of real servers (PostgreSQL, mlflow server, a Bento build): run by `make bench`,
# kept out of `make test` for the suite's 15-minute budget
pytestmark = pytest.mark.slow

SHIPPED = {"features", "models", "serving"}
LEFT_OUT = {"training", "monitoring", "synthetic", "retain", "tests", "notebooks", "benchmarks"}


@pytest.fixture(scope="module")
def bento(tmp_path_factory, team) -> Path:
    """`bentoml build` of the repository into a private BENTOML_HOME; the built Bento's folder."""
    home = tmp_path_factory.mktemp("bentoml")
    env = {**team.env, "BENTOML_HOME": str(home)}
    bentoml = Path(sys.executable).parent / "bentoml"
    built = subprocess.run(
        [str(bentoml), "build", "--output", "tag", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert built.returncode == 0, built.stderr[-3000:] + built.stdout[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    assert name == "retain"
    return home / "bentos" / name / version


def test_the_bento_carries_the_service_code_and_the_lock_only(bento):
    src = bento / "src"
    packages = {p.name for p in src.iterdir() if p.is_dir()}
    assert packages == SHIPPED, packages
    assert not LEFT_OUT & packages
    assert (src / "serving" / "ui" / "templates" / "list.html").is_file()
    assert not list(src.rglob("*.pyc"))
    # BentoML adds its own pin again (the same one): a set, not a list
    assert pins(bento / "env" / "python" / "requirements.txt") == pins(ROOT / "requirements.lock")


def pins(path: Path) -> set[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def isolated_python(folder: Path) -> Path:
    """A venv that imports the installed packages (one path line) but none of the project:
    the editable install's hook lives in a .pth file of the packages folder, never read here."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],  # on the base Python
        check=True,
        timeout=120,
    )
    python = folder / "bin" / "python"
    inner = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(inner) / "locked_packages.pth").write_text("\n".join(paths) + "\n")
    return python


def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip())


@pytest.fixture(scope="module")
def served_bento(bento, scored_month, tmp_path_factory):
    """`bentoml serve retain:latest` (one worker) from an empty folder, with the environment
    `retain serve --env-file` wrote; a crm key."""
    team, folder = scored_month.team, tmp_path_factory.mktemp("bento-served")
    keys = folder / "keys.json"
    token = add_key(keys, team.env, "--role", "crm", "--name", "crm-system")
    written = team.retain(
        *("serve", "--env-file", str(folder / "retain.env"), "--workers", "1"),
        *("--keys", str(keys), "--audit", str(folder / "audit.log")),
        *("--scores", str(scored_month.out), "--outcomes", str(folder / "outcomes.db")),
    )
    assert written.returncode == 0, written.stderr[-3000:]
    served = read_env_file(folder / "retain.env")
    assert oct((folder / "retain.env").stat().st_mode & 0o777) == "0o600"
    python = isolated_python(folder / "venv")
    outside = folder / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"BENTOML_HOME": str(bento.parents[2]), "BENTOML_DO_NOT_TRACK": "True", **served}
    cut_off = subprocess.run(
        [str(python), "-c", "import serving"], capture_output=True, text=True, env=env, cwd=outside
    )
    assert cut_off.returncode != 0 and "No module named 'serving'" in cut_off.stderr
    port = free_port()
    log = folder / "bento.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(python), "-m", "bentoml", "serve", "retain:latest", "--port", str(port)],
            env=env,
            cwd=outside,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Service(f"http://127.0.0.1:{port}", process, log)
    try:
        started.wait_ready()
        yield started, token, served
    finally:
        started.stop()


def test_the_served_bento_is_ready_and_scores(served_bento, scored_month, team):
    started, token, served = served_bento
    assert served["MLFLOW_TRACKING_URI"] == team.mlflow.url
    assert httpx.get(f"{started.url}/readyz", timeout=10).status_code == 200
    assert_scores_as_scored(started.url, token, scored_month.out, slice(-2, None))
