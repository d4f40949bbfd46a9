"""The front proxy of `retain serve`: deploy/nginx.conf filled in and run, unprivileged.

    python deploy/proxy.py --listen 127.0.0.1:8080 --upstream 127.0.0.1:3000 --workers 2 \\
        [--per-worker N] [--retry-after 1] [--prefix DIR] [--print]

writes PREFIX/nginx.conf and runs Debian's nginx in the foreground (`make nginx` installs it)
with every path it writes — pid, logs, temporary bodies — under PREFIX; ``--print`` prints the
filled configuration instead. The tests and ``benchmarks/api.py --proxy`` start it with
:func:`start`. Started by root, nginx is run as ``nobody`` (PREFIX handed to it): it needs no
privilege on a port above 1024, and it gets none.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("nginx.conf")
UNPRIVILEGED = ("nobody", "nogroup")
PREFIX_DIRS = ("logs", "tmp")


def nginx_binary() -> str:
    """Debian's nginx (in /usr/sbin, which an ordinary user's PATH may not list)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("nginx is not installed: run `make nginx` (Debian's package)")
    return found


def per_worker_default() -> int:
    """The requests one worker serves at once (RETAIN_MAX_IN_FLIGHT, as `retain serve` reads
    it). Passing on more only fills the workers' own queues, where the excess is turned away
    by Python at a millisecond of CPU each, the CPU the served requests need; the workers'
    queues still take up an uneven spread between workers (they share one socket)."""
    from serving.api.shedding import Limits

    return Limits.from_env().in_flight


def render(listen: str, upstream: str, slots: int, retry_after: int = 1) -> str:
    """deploy/nginx.conf with its @FIELDS@ filled; every field must be filled."""
    if slots < 1 or retry_after < 1:
        raise ValueError(f"slots={slots}, retry_after={retry_after}: both must be ≥ 1")
    fields = {
        "LISTEN": listen,
        "UPSTREAM": upstream,
        "SLOTS": slots,
        "RETRY_AFTER": retry_after,
    }
    text = TEMPLATE.read_text()
    for name, value in fields.items():
        text = text.replace(f"@{name}@", str(value))
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise ValueError(f"{TEMPLATE} has fields nobody fills: {', '.join(left)}")
    return text


@dataclass
class Proxy:
    """A running nginx: its address, process (the master) and prefix."""

    url: str
    process: subprocess.Popen
    prefix: Path

    def pids(self) -> set[int]:
        """The master and its worker processes."""
        import psutil

        master = psutil.Process(self.process.pid)
        return {master.pid, *(p.pid for p in master.children())}

    def log(self, name: str = "error.log") -> str:
        path = self.prefix / "logs" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown; SIGQUIT would drain
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def prepare(prefix: Path, config: str) -> Path:
    """PREFIX with nginx.conf, logs/ and tmp/; handed to ``nobody`` when we are root."""
    prefix.mkdir(parents=True, exist_ok=True)
    for name in PREFIX_DIRS:
        (prefix / name).mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    if os.geteuid() == 0:
        for path in [prefix, *prefix.rglob("*")]:
            shutil.chown(path, *UNPRIVILEGED)
    return conf


def start(
    listen: str,
    upstream: str,
    slots: int,
    retry_after: int = 1,
    prefix: Path | None = None,
    timeout: float = 10,
) -> Proxy:
    """nginx in front of ``upstream`` on ``listen`` (host:port), listening when this returns.

    ``prefix`` defaults to a new directory under the system's temporary folder (one ``nobody``
    can reach: a test's tmp_path under a private folder would not do when we are root)."""
    prefix = prefix or Path(tempfile.mkdtemp(prefix="retain-proxy-"))
    conf = prepare(prefix, render(listen, upstream, slots, retry_after))
    command = [nginx_binary(), "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"]
    user = {}
    if os.geteuid() == 0:
        user = {"user": UNPRIVILEGED[0], "group": UNPRIVILEGED[1], "extra_groups": []}
    checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, **user)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused {conf}: {checked.stderr.strip()}")
    with open(prefix / "logs" / "stderr.log", "wb") as err:
        process = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT, **user)
    proxy = Proxy(f"http://{listen}", process, prefix)
    host, port = listen.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'logs' / 'stderr.log').read_text()}")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return proxy
        except OSError:
            time.sleep(0.05)
    proxy.stop()
    raise TimeoutError(f"nginx not listening on {listen} after {timeout:g} s: {proxy.log()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port")
    parser.add_argument("--upstream", default="127.0.0.1:3000", help="retain serve's host:port")
    parser.add_argument("--workers", type=int, default=2, help="retain serve's --workers")
    parser.add_argument("--per-worker", type=int, help="requests at once per worker")
    parser.add_argument("--retry-after", type=int, default=1, help="seconds")
    parser.add_argument("--prefix", type=Path, help="folder for the config, logs and temp files")
    parser.add_argument("--print", action="store_true", help="print the configuration only")
    args = parser.parse_args()
    slots = args.workers * (args.per_worker or per_worker_default())
    if args.print:
        print(render(args.listen, args.upstream, slots, args.retry_after), end="")
        return
    proxy = start(args.listen, args.upstream, slots, args.retry_after, args.prefix)
    print(f"nginx on {proxy.url} → {args.upstream}, {slots} requests at once; {proxy.prefix}")
    try:
        proxy.process.wait()
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
