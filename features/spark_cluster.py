"""Does a Spark cluster grant what retain asks? The fit check around ``spark_session``.

A standalone master queues an application whose executors fit no worker (more memory or cores
than any worker has) with 0 cores, and the driver waits forever without a word. Two checks
turn that into an error naming what was asked and what is offered:

1. before the session starts (``spark://`` masters): the master's status page
   (``<web UI>/json/``: every worker's memory, cores and what is in use) — an executor no
   alive worker could ever hold fails at once;
2. after it started (any cluster master): the first executor must register within
   ``spark_executor_wait`` seconds, else the session is stopped and the error says what the
   status page shows now (workers busy with other applications, none alive, or no answer).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from features.config import SPARK_SIZE, WarehouseConfig

UI_PORT = 8080  # a standalone master's default web UI port
STATUS_TIMEOUT = 3.0  # seconds for the status page to answer
_MB = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2, "p": 1024**3}


class ClusterMisfit(Exception):
    """The cluster cannot (or did not) grant the executors asked for."""


def memory_mb(size: str) -> int:
    """``spark.executor.memory``'s size in MB as Spark reads it (``4g`` → 4096, ``512`` → 512)."""
    match = re.fullmatch(SPARK_SIZE, size.strip())
    if match is None:
        raise ValueError(f"{size!r} is not a Spark size (512m, 4g)")
    return int(int(match[1]) * _MB[(match[2] or "").lower().rstrip("b")])


@dataclass(frozen=True)
class Ask:
    """What each executor asks of a worker."""

    memory: str
    cores: int | None  # None: a standalone executor takes all of a worker's cores (≥ 1)

    @property
    def memory_mb(self) -> int:
        return memory_mb(self.memory)

    def __str__(self) -> str:
        cores = f"{self.cores} core(s)" if self.cores else "at least 1 core"
        return f"{self.memory} memory ({self.memory_mb} MB) and {cores} per executor"

    @classmethod
    def of(cls, settings: WarehouseConfig) -> Ask:
        return cls(settings.spark_memory, settings.spark_cores)


def master_addresses(master: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ``spark://h1:7077[,h2:7077]`` URL (7077 when unsaid)."""
    pairs = []
    for part in master.removeprefix("spark://").split(","):
        host, _, port = part.strip().partition(":")
        pairs.append((host, int(port) if port.isdigit() else 7077))
    return pairs


def status_pages(settings: WarehouseConfig) -> list[str]:
    """Where the master's status may be read: the configured web UI, else port 8080 of each
    master host."""
    if settings.spark_master_ui:
        return [settings.spark_master_ui.rstrip("/") + "/json/"]
    hosts = dict.fromkeys(host for host, _ in master_addresses(settings.spark_master))
    return [f"http://{host}:{UI_PORT}/json/" for host in hosts]


def master_status(settings: WarehouseConfig) -> tuple[str, dict | None]:
    """(the page read, the status JSON of the alive master at ``settings.spark_master``), or
    (the pages tried, None) when none answers as that master — another service on the port,
    a standby master of a high-availability pair, no web UI."""
    ports = {port for _, port in master_addresses(settings.spark_master)}
    pages = status_pages(settings)
    for page in pages:
        try:
            with urllib.request.urlopen(page, timeout=STATUS_TIMEOUT) as response:
                status = json.load(response)
        except (OSError, ValueError, urllib.error.URLError):
            continue
        if not isinstance(status, dict) or status.get("status") != "ALIVE":
            continue
        if urlsplit(str(status.get("url", "")).replace("spark://", "http://")).port in ports:
            return page, status
    return " or ".join(pages), None


def alive_workers(status: dict) -> list[dict]:
    return [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]


def offered(workers: list[dict]) -> str:
    """The alive workers' memory and cores, e.g. ``2 workers of 1024 MB and 1 core``."""
    if not workers:
        return "no alive worker"
    kinds: dict[tuple[int, int], int] = {}
    for w in workers:
        key = (int(w.get("memory", 0)), int(w.get("cores", 0)))
        kinds[key] = kinds.get(key, 0) + 1
    parts = [
        f"{n} worker{'s' if n > 1 else ''} of {mb} MB and {cores} core{'s' if cores > 1 else ''}"
        for (mb, cores), n in sorted(kinds.items(), reverse=True)
    ]
    return ", ".join(parts)


def in_use(workers: list[dict]) -> str:
    free_mb = sum(int(w.get("memoryfree", 0)) for w in workers)
    free_cores = sum(int(w.get("coresfree", 0)) for w in workers)
    return f"{free_mb} MB and {free_cores} core(s) free now"


def fits(worker: dict, ask: Ask, free: bool = False) -> bool:
    """Whether ``worker`` could hold one executor (``free``: with what it has free now)."""
    memory, cores = ("memoryfree", "coresfree") if free else ("memory", "cores")
    return int(worker.get(memory, 0)) >= ask.memory_mb and int(worker.get(cores, 0)) >= (
        ask.cores or 1
    )


HINT = (
    "ask less ([warehouse] spark_memory / --spark-memory, spark_cores) or start workers with "
    "more (Worker --memory / --cores, SPARK_WORKER_MEMORY)"
)


def check_fit(settings: WarehouseConfig) -> dict | None:
    """Raise :class:`ClusterMisfit` when the standalone master at ``settings.spark_master`` has
    no alive worker, or none that could ever hold one executor of ``settings``; the master's
    status (None when its status page does not answer)."""
    ask, master = Ask.of(settings), settings.spark_master
    page, status = master_status(settings)
    if status is None:
        return None
    workers = alive_workers(status)
    if not workers:
        raise ClusterMisfit(f"{master} has no alive worker ({page}); start one: asked {ask}")
    if not any(fits(w, ask) for w in workers):
        raise ClusterMisfit(
            f"{master} cannot grant an executor: asked {ask}; it offers {offered(workers)}; {HINT}"
        )
    return status


def executor_count(session) -> int:
    """Executors registered with the session's driver (the driver itself not counted). The
    Python StatusTracker lists no executors: the JVM's does."""
    return len(session.sparkContext._jsc.sc().statusTracker().getExecutorInfos()) - 1


def wait_for_executors(session, settings: WarehouseConfig, every: float = 0.25) -> float:
    """Seconds until the first executor registered; :class:`ClusterMisfit` (the session
    stopped) when none did within ``settings.spark_executor_wait`` seconds."""
    started = time.monotonic()
    deadline = started + settings.spark_executor_wait
    while executor_count(session) < 1:
        if time.monotonic() >= deadline:
            session.stop()
            raise ClusterMisfit(not_granted(settings))
        time.sleep(every)
    return time.monotonic() - started


def not_granted(settings: WarehouseConfig) -> str:
    """Why no executor came, as far as the master's status page tells."""
    ask, master = Ask.of(settings), settings.spark_master
    head = (
        f"no executor registered at {master} within {settings.spark_executor_wait:g} s: asked {ask}"
    )
    if not master.startswith("spark://"):
        return f"{head}; see the cluster manager's (YARN, Kubernetes) view of the application"
    page, status = master_status(settings)
    if status is None:
        return (
            f"{head}; the master's status page ({page}) does not answer for it, so what it offers "
            "is unknown (set [warehouse] spark_master_ui to its web UI)"
        )
    workers = alive_workers(status)
    if not any(fits(w, ask) for w in workers):
        return f"{head}; it offers {offered(workers)}; {HINT}"
    others = len(status.get("activeapps", [])) - 1
    return (
        f"{head}; it offers {offered(workers)}, {in_use(workers)}: {others} other "
        "application(s) hold the rest; wait for them or ask less"
    )
