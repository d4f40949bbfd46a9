"""Start and stop a real `retain serve` (bentoml serve) subprocess on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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


def start_service(env: dict, folder: Path, scores: Path | None, keys: Path, workers: int = 2):
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
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(f"http://127.0.0.1:{port}", process, log)


def add_key(keys: Path, env: dict, *args: str) -> str:
    """A new API key in ``keys`` (``retain keys add`` args), returned in plain text."""
    result = run_retain(["keys", "add", "--keys", str(keys), *args], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
