"""Which commit of retain's code made something: a model's run, its card, a benchmark's
figures. Asked of the repository the code is in, wherever the command runs (a data scientist's
`retain train` from a data folder, or from another repository, names retain's commit, not the
folder's), once per process; ``"unknown"`` outside a git checkout (an installed wheel)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[1]
UNKNOWN = "unknown"


@cache
def code_commit() -> str:
    """The full SHA of the checkout holding this code, or ``"unknown"``."""
    try:
        found = subprocess.run(
            ["git", "-C", str(CODE_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN
    sha = found.stdout.strip()
    return sha if found.returncode == 0 and sha else UNKNOWN
