"""An open-loop HTTP/1.1 load client, run as its own process by benchmarks/api.py.

Reads a JSON spec on stdin — ``{"url", "path", "headers", "bodies" (a file, one JSON body a
line), "rate", "seconds", "timeout", "max_connections"}`` — sends ``rate × seconds`` POSTs at
evenly spaced *scheduled* times, whatever the answers, and prints one JSON line: every
request's latency from its scheduled time (so a stalled server or client is not hidden: no
coordinated omission), by outcome, and the CPU seconds this process used while sending.

Standard library only, requests written by hand on keep-alive connections: httpx costs about
a millisecond of CPU per request, which at several hundred requests a second would take a
core of the two the server needs. Connections are opened as needed (up to
``max_connections``), as a CRM system's many callers would.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class Stale(Exception):
    """A kept-alive connection the server had already closed: nothing was answered on it."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise Stale from exc
        raise
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        body = b"".join(parts)
    else:
        body = await reader.read()
        headers[b"connection"] = b"close"
    return status, headers, body


async def run(spec: dict) -> dict:
    url = urlsplit(spec["url"])
    host, port = url.hostname, url.port or 80
    with open(spec["bodies"], "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    head = f"POST {spec['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    head += "Content-Type: application/json\r\n"
    requests = [(head + f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]
    rate, timeout = float(spec["rate"]), float(spec["timeout"])
    total = int(rate * float(spec["seconds"]))
    slots = asyncio.Semaphore(int(spec.get("max_connections", 1024)))
    idle: list[tuple] = []
    out = {
        "ok": [],  # 200 with results
        "rejected": [],  # 503 or 429
        "rejected_without_retry_after": 0,
        "errors": {},  # anything else, by kind
        "error_latencies": [],
        "connections": 0,
        "stale_retries": 0,
    }

    def error(kind: str, latency: float) -> None:
        out["errors"][kind] = out["errors"].get(kind, 0) + 1
        out["error_latencies"].append(latency)

    async def exchange(request: bytes):
        reused = bool(idle)
        conn = idle.pop() if reused else None
        if conn is None:
            conn = await asyncio.open_connection(host, port)
            out["connections"] += 1
        reader, writer = conn
        try:
            writer.write(request)
            status, headers, body = await read_response(reader)
        except Stale:
            writer.close()
            if not reused:
                raise ConnectionResetError("closed before answering") from None
            out["stale_retries"] += 1
            return await exchange(request)
        except BaseException:
            writer.close()
            raise
        if headers.get(b"connection", b"").lower() == b"close":
            writer.close()
        else:
            idle.append(conn)
        return status, headers, body

    async def one(request: bytes, scheduled: float) -> None:
        async with slots:
            try:
                async with asyncio.timeout(timeout):
                    status, headers, body = await exchange(request)
            except TimeoutError:
                error("timeout", time.perf_counter() - scheduled)
                return
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                error(type(exc).__name__, time.perf_counter() - scheduled)
                return
        latency = time.perf_counter() - scheduled
        if status == 200 and b'"results"' in body:
            out["ok"].append(latency)
        elif status in (429, 503):
            out["rejected"].append(latency)
            out["rejected_without_retry_after"] += b"retry-after" not in headers
        else:
            error(f"status {status}", latency)

    cpu = time.process_time()
    start = time.perf_counter() + 0.05
    tasks = set()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(requests[i % len(requests)], scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_by = time.perf_counter() - start
    while tasks:
        await asyncio.gather(*list(tasks))
    out["wall_seconds"] = time.perf_counter() - start
    out["client_cpu_seconds"] = time.process_time() - cpu
    out["send_lag_seconds"] = max(0.0, sent_by - (total - 1) / rate)  # how far sending fell behind
    out["requests"] = total
    for _, writer in idle:
        writer.close()
    return out


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
