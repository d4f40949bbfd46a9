"""A Spark standalone cluster on loopback, started from the pinned pyspark's ``spark-class``:
one master and N workers, each a JVM of this machine (REFERENCES.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def cluster_env(folder: Path) -> dict:
    """The daemons' environment: loopback only, this venv's Python for the executors' Python
    workers, small daemon heaps (the machine is shared)."""
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": LOOPBACK,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_WORKER_DIR": str(folder / "work"),
        "SPARK_LOG_DIR": str(folder / "logs"),
    }


@dataclass
class Cluster:
    master: str  # spark://127.0.0.1:P
    ui: str  # the master's web UI, http://127.0.0.1:U
    folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as response:
            return json.load(response)

    def wait_ready(self, workers: int, timeout: float = 180) -> float:
        """Seconds until ``workers`` workers are alive; AssertionError with the logs if not."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if self.status().get("aliveworkers", 0) >= workers:
                    return time.monotonic() - started
            except OSError:
                pass
            dead = [p.args[1] for p in self.processes if p.poll() is not None]
            assert not dead, f"{dead} exited: {self.logs()}"
            time.sleep(0.5)
        raise AssertionError(f"{workers} workers not alive within {timeout} s: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text()[-1500:] for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        """End the daemons this cluster started (each its own process group: a worker's
        executors go with it)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def start_cluster(folder: Path, workers: int = 2, cores: int = 1, memory: str = "1g") -> Cluster:
    """Start a master and ``workers`` workers of ``cores`` cores and ``memory`` each; returns
    at once (:meth:`Cluster.wait_ready` waits for them)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = cluster_env(folder)
    port, ui_port = free_port(), free_port()
    cluster = Cluster(f"spark://{LOOPBACK}:{port}", f"http://{LOOPBACK}:{ui_port}", folder)
    spark_class = str(spark_home() / "bin" / "spark-class")
    master = ["org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port", str(port)]
    commands = [[*master, "--webui-port", str(ui_port)]]
    for _ in range(workers):
        commands.append(
            [
                "org.apache.spark.deploy.worker.Worker",
                cluster.master,
                *("--cores", str(cores), "--memory", memory, "--host", LOOPBACK),
                *("--webui-port", str(free_port())),
            ]
        )
    for k, command in enumerate(commands):
        name = "master" if k == 0 else f"worker{k}"
        with open(folder / f"{name}.log", "w") as log:  # the daemon keeps its own copy
            cluster.processes.append(
                subprocess.Popen(
                    [spark_class, *command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
    return cluster
