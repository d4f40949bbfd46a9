"""A throwaway PostgreSQL server for tests: initdb in a temporary directory, a free port, trust.

PostgreSQL refuses to run as root, so under root (as in CI) the data directory is owned by, and
the server runs as, an unprivileged user (``nobody``). The socket lives in the temporary
directory and the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PREFERRED_VERSION = "15"
SERVER_USER = "nobody"  # for root only: PostgreSQL will not run as root
DATABASE = "retain"


def find_bindir() -> Path | None:
    """PostgreSQL's bin directory (15 when installed, else the newest), or None if absent."""
    root = Path("/usr/lib/postgresql")
    preferred = root / PREFERRED_VERSION / "bin"
    if (preferred / "pg_ctl").is_file():
        return preferred
    if root.is_dir():
        found = sorted(
            (p / "bin" for p in root.iterdir() if (p / "bin" / "pg_ctl").is_file()),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
        if found:
            return found[-1]
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """Start with ``start()``, stop (and delete everything) with ``stop()``; ``url`` to connect."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="retain-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._user = SERVER_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.is_file() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )
        return result

    def start(self) -> PostgresServer:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            self.bindir / "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c jit=off "
            "-c work_mem=64MB"
        )
        self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start"
        )
        self._run(
            self.bindir / "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            DATABASE,
        )
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").is_file():
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
