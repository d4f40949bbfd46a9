"""The cluster fit check (features/spark_cluster.py) against a master's status page served
here: what the master's web UI returns at /json/ (no JVM needed)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from features.config import WarehouseConfig
from features.spark_cluster import ClusterMisfit, check_fit, memory_mb, not_granted


def worker(memory: int, cores: int, used_mb: int = 0, used_cores: int = 0, state="ALIVE"):
    return {
        "id": f"worker-{memory}-{cores}",
        "memory": memory,
        "memoryused": used_mb,
        "memoryfree": memory - used_mb,
        "cores": cores,
        "coresused": used_cores,
        "coresfree": cores - used_cores,
        "state": state,
    }


@pytest.fixture
def master():
    """A status page on loopback; ``set(workers, url=..., apps=...)`` changes what it says."""
    page = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(page).encode()
            self.send_response(200 if self.path == "/json/" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def settings(workers, memory="4g", cores=None, url="spark://127.0.0.1:7077", apps=1):
        page.clear()
        page.update(status="ALIVE", url=url, workers=workers, activeapps=[{}] * apps)
        return WarehouseConfig(
            engine="spark",
            spark_master="spark://127.0.0.1:7077",
            spark_memory=memory,
            spark_cores=cores,
            spark_master_ui=f"http://127.0.0.1:{port}",
            spark_executor_wait=30,
        )

    yield settings
    server.shutdown()


def test_spark_sizes_read_as_spark_reads_them():
    assert [memory_mb(s) for s in ("4g", "512m", "512", "1G", "2gb", "1t")] == [
        4096,
        512,
        512,
        1024,
        2048,
        1024**2,
    ]
    with pytest.raises(ValueError, match="1.5g"):
        memory_mb("1.5g")
    with pytest.raises(ValueError, match="not a Spark size"):
        WarehouseConfig(spark_memory="4 gigs")


def test_an_executor_larger_than_every_worker_names_the_memory_asked_and_offered(master):
    settings = master([worker(1024, 1), worker(1024, 1), worker(2048, 2)], memory="16g")
    with pytest.raises(ClusterMisfit) as error:
        check_fit(settings)
    message = str(error.value)
    assert "asked 16g memory (16384 MB) and at least 1 core per executor" in message
    assert "1 worker of 2048 MB and 2 cores, 2 workers of 1024 MB and 1 core" in message


def test_too_many_cores_is_a_misfit_too(master):
    settings = master([worker(8192, 2)], memory="2g", cores=4)
    with pytest.raises(ClusterMisfit, match="2g memory .* and 4 core\\(s\\) per executor"):
        check_fit(settings)


def test_a_fitting_request_passes_even_when_the_workers_are_busy_now(master):
    """Busy workers free up when other applications end: no error before the wait."""
    settings = master([worker(4096, 2, used_mb=4096, used_cores=2)], memory="4g", apps=2)
    assert check_fit(settings) is not None
    message = not_granted(settings)
    assert "within 30 s: asked 4g memory (4096 MB)" in message
    assert "1 worker of 4096 MB and 2 cores, 0 MB and 0 core(s) free now" in message
    assert "1 other application(s)" in message


def test_no_alive_worker_is_an_error(master):
    settings = master([worker(4096, 2, state="DEAD")])
    with pytest.raises(ClusterMisfit, match="has no alive worker"):
        check_fit(settings)


def test_a_status_page_of_another_master_is_not_trusted(master):
    """Port 8080 may belong to another master, or to anything else: its workers are not ours."""
    settings = master([worker(1024, 1)], memory="16g", url="spark://10.0.0.9:7177")
    assert check_fit(settings) is None  # unknown: the executor wait decides
    assert "does not answer for it, so what it offers is unknown" in not_granted(settings)
