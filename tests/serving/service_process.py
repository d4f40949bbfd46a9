"""Start and stop a real `retain serve` (bentoml serve) subprocess on a free port: the one way
the tests start the service (``start_site``; the session's shared one is the ``site`` fixture of
tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd

from tests.conftest import run_retain


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str
    process: subprocess.Popen
    log: Path

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_listening(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/livez", timeout=2)
                return
            except httpx.HTTPError as exc:
                if self.process.poll() is not None:
                    raise RuntimeError(f"service exited: {self.tail()}") from exc
                time.sleep(0.5)
        raise TimeoutError(f"service not listening after {timeout}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"service not ready after {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_service(
    env: dict,
    folder: Path,
    scores: Path | None,
    keys: Path,
    workers: int = 2,
    outcomes: str | None = None,
    args: tuple[str, ...] = (),
) -> Service:
    """`retain serve` on a free port (not waited for), logging to ``folder``; ``args`` are
    more options of `retain serve` (``--config PATH``)."""
    port = free_port()
    log = folder / f"service-{port}.log"
    args = [
        sys.executable,
        "-m",
        "retain",
        "serve",
        "--port",
        str(port),
        "--keys",
        str(keys),
        "--workers",
        str(workers),
        "--audit",
        str(folder / "audit.log"),
        "--scores",
        str(scores) if scores else str(folder / "no-snapshot"),
        "--outcomes",
        outcomes or str(folder / "outcomes.db"),
        *args,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(f"http://127.0.0.1:{port}", process, log)


@dataclass
class Site:
    """A started service with its keys: crm, admin and one rm key per book in ``books``."""

    service: Service
    tokens: dict[str, str]
    books: list[str]
    folder: Path
    keys: Path
    scores_dir: Path
    outcomes: str
    env: dict = field(repr=False, default_factory=dict)

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def audit(self) -> Path:
        return self.folder / "audit.log"

    def scores(self) -> pd.DataFrame:
        return pd.read_parquet(self.scores_dir / "scores.parquet")

    def features(self) -> list[str]:
        """The served models' inputs, as the spec's feature record lists them."""
        spec = httpx.get(self.url + "/openapi.json", timeout=30).json()
        record = spec["components"]["schemas"]["FeatureRecord"]["properties"]
        return [name for name in record if name != "customer_id"]

    def call(self, method: str, path: str, who: str | None = None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        headers |= kwargs.pop("headers", {})
        kwargs.setdefault("timeout", 60)
        return httpx.request(method, self.url + path, headers=headers, **kwargs)


def start_site(
    scored,
    folder: Path,
    books: int = 4,
    workers: int = 2,
    outcomes: str | None = None,
    env: dict | None = None,
    wait: bool = True,
    args: tuple[str, ...] = (),
) -> Site:
    """A service over ``scored``'s snapshot with crm, admin and ``books`` rm keys (the largest
    books); waits until ready unless ``wait`` is False. Stop it with ``site.service.stop()``."""
    keys = folder / "keys.json"
    frame = pd.read_parquet(scored.out / "scores.parquet", columns=["rm_id"])
    largest = frame["rm_id"].dropna().astype(str).value_counts().index[:books].tolist()
    env = {**scored.env, **(env or {})}
    tokens = {
        "crm": add_key(keys, env, "--role", "crm", "--name", "crm-system"),
        "admin": add_key(keys, env, "--role", "admin", "--name", "ops"),
        **{
            rm: add_key(keys, env, "--role", "rm", "--rm-id", rm, "--name", f"rm-{rm}")
            for rm in largest
        },
    }
    outcomes = outcomes or str(folder / "outcomes.db")
    service = start_service(env, folder, scored.out, keys, workers, outcomes, args)
    site = Site(service, tokens, largest, folder, keys, scored.out, outcomes, env)
    if wait:
        try:
            service.wait_ready()
        except Exception:
            service.stop()
            raise
    return site


def add_key(keys: Path, env: dict, *args: str) -> str:
    """A new API key in ``keys`` (``retain keys add`` args), returned in plain text."""
    result = run_retain(["keys", "add", "--keys", str(keys), *args], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
