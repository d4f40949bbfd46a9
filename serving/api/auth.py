"""API keys (stored hashed), roles, and the append-only audit log.

A key is ``rk_`` plus 32 random bytes (URL-safe base64); the keys file keeps only its
SHA-256, a short prefix to recognise it by, the name, the role and, for an RM, the rm_id.
The plain key is shown once, when it is created. Keys are high-entropy random strings, so a
plain SHA-256 is the right hash here (a slow password hash protects guessable secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from features.atomic import atomic_file

ROLES = ("crm", "rm", "admin")
PREFIX = "rk_"


class KeyError_(ValueError):
    """A keys-file problem the CLI reports in one line."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    sha256: str
    prefix: str
    created: str
    rm_id: str | None = None
    revoked: bool = False


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> list[ApiKey]:
    if not Path(path).exists():
        return []
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        return [ApiKey(**entry) for entry in payload["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyError_(f"keys file {path} is not a retain keys file: {exc}") from exc


def save_keys(path: Path, keys: list[ApiKey]) -> None:
    with atomic_file(Path(path)) as tmp:
        tmp.write_text(json.dumps({"keys": [asdict(k) for k in keys]}, indent=2) + "\n")
        os.chmod(tmp, 0o600)


def add_key(path: Path, name: str, role: str, rm_id: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; return its record and the plain key (never stored)."""
    if role not in ROLES:
        raise KeyError_(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "rm") != (rm_id is not None):
        raise KeyError_("an rm key needs --rm-id, and only an rm key takes one")
    keys = load_keys(path)
    used = next((k for k in keys if k.name == name), None)
    if used is not None:  # names are for all time: records made under a name stay its own
        state = "revoked" if used.revoked else "live"
        raise KeyError_(
            f"a key named {name!r} exists already ({state}, created {used.created}); key names "
            "are never reused — pick another name"
        )
    plain = PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    record = ApiKey(name, role, digest(plain), plain[:8], created, rm_id)
    save_keys(path, [*keys, record])
    return record, plain


def revoke_key(path: Path, name: str) -> ApiKey:
    keys = load_keys(path)
    live = [k for k in keys if k.name == name and not k.revoked]
    if not live:
        raise KeyError_(f"no live key named {name!r} in {path}")
    save_keys(path, [ApiKey(**{**asdict(k), "revoked": True}) if k in live else k for k in keys])
    return live[0]


class KeyRing:
    """The live keys, re-read whenever the keys file changes (a revocation needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[float, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            keys = load_keys(self.path) if stamp else []
            self._by_hash = {k.sha256: k for k in keys if not k.revoked}
            self._stamp = stamp

    def identify(self, authorization: str | None) -> ApiKey | None:
        """The key behind an ``Authorization: Bearer <key>`` header, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        hashed = digest(authorization.removeprefix("Bearer ").strip())
        with self._lock:
            self._refresh()
            for known, key in self._by_hash.items():
                if hmac.compare_digest(known, hashed):
                    return key
        return None


class AuditLog:
    """Append-only JSON lines: who asked for what, with which models. No personal data."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, **entry) -> None:
        line = json.dumps(
            {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry},
            ensure_ascii=False,
            sort_keys=True,
        )
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
