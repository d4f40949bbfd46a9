"""API keys (stored hashed), roles, and the append-only, hash-chained audit log.

A key is ``rk_`` plus 32 random bytes (URL-safe base64); the keys file keeps only its
SHA-256, a short prefix to recognise it by, the name, the role, for an RM the rm_id, and when it
expires. The plain key is shown once, when it is created. Keys are high-entropy random strings,
so a plain SHA-256 is the right hash here (a slow password hash protects guessable secrets).

Roles: ``crm`` and ``admin`` see every customer, ``rm`` its own book, ``metrics`` nothing but
``/metrics`` (a scraper's key: it reads no customer).

Every audit line carries ``hash`` (SHA-256 of the rest of the line) and ``prev`` (the hash of
the line before), so an edited, inserted or removed line breaks the chain where it was touched
(:func:`verify_audit`); the last hash, noted elsewhere, also catches a truncated tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from features.atomic import atomic_file, private_dir

ROLES = ("crm", "rm", "admin", "metrics")
PREFIX = "rk_"
DEFAULT_EXPIRY = "90d"
GENESIS = "0" * 64  # the ``prev`` of a log's first line


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
    expires: str | None = None  # ISO time; None: a key made before keys expired

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires is None:
            return False
        return datetime.fromisoformat(self.expires) <= (now or datetime.now(UTC))

    def state(self, now: datetime | None = None) -> str:
        """live, revoked or expired."""
        return "revoked" if self.revoked else "expired" if self.expired(now) else "live"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def expiry(text: str, now: datetime | None = None) -> str:
    """When a key given ``--expires text`` expires: ``90d`` (days from now) or a date
    ``YYYY-MM-DD`` (the key works through that day, UTC), as an ISO time."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if re.fullmatch(r"[1-9][0-9]{0,4}d", text):
        when = now + timedelta(days=int(text[:-1]))
    else:
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise KeyError_(
                f"--expires {text!r}: expected a number of days such as 90d, or a date YYYY-MM-DD"
            ) from None
        when = day + timedelta(days=1, seconds=-1)
    if when <= now:
        raise KeyError_(f"--expires {text!r} is in the past")
    return when.isoformat(timespec="seconds")


def load_keys(path: Path) -> list[ApiKey]:
    if not Path(path).exists():
        return []
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        return [ApiKey(**entry) for entry in payload["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyError_(f"keys file {path} is not a retain keys file: {exc}") from exc


def save_keys(path: Path, keys: list[ApiKey]) -> None:
    private_dir(Path(path).parent)
    with atomic_file(Path(path)) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_text(json.dumps({"keys": [asdict(k) for k in keys]}, indent=2) + "\n")


def add_key(
    path: Path,
    name: str,
    role: str,
    rm_id: str | None = None,
    expires: str = DEFAULT_EXPIRY,
) -> tuple[ApiKey, str]:
    """Create a key expiring at ``expires`` (:func:`expiry`); return its record and the plain
    key (never stored)."""
    if role not in ROLES:
        raise KeyError_(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "rm") != (rm_id is not None):
        raise KeyError_("an rm key needs --rm-id, and only an rm key takes one")
    until = expiry(expires)
    keys = load_keys(path)
    used = next((k for k in keys if k.name == name), None)
    if used is not None:  # names are for all time: records made under a name stay its own
        raise KeyError_(
            f"a key named {name!r} exists already ({used.state()}, created {used.created}); key "
            "names are never reused — pick another name"
        )
    plain = PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    record = ApiKey(name, role, digest(plain), plain[:8], created, rm_id, expires=until)
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
    """The keys, re-read whenever the keys file changes (a revocation needs no restart); a
    revoked or expired key is refused."""

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
            self._by_hash = {k.sha256: k for k in keys}
            self._stamp = stamp

    def _find(self, hashed: str) -> ApiKey | None:
        with self._lock:
            self._refresh()
            for known, key in self._by_hash.items():
                if hmac.compare_digest(known, hashed):
                    return key
        return None

    def identify(self, authorization: str | None) -> ApiKey | None:
        """The live key behind an ``Authorization: Bearer <key>`` header, or None."""
        token = bearer(authorization)
        key = self._find(digest(token)) if token else None
        return key if key is not None and key.state() == "live" else None

    def live(self, sha256: str) -> ApiKey | None:
        """The live key of this hash (a page session's), or None."""
        key = self._find(sha256)
        return key if key is not None and key.state() == "live" else None

    def why_refused(self, authorization: str | None) -> dict:
        """For the audit line of a refused request: ``reason`` (no_key, unknown_key,
        revoked_key, expired_key), and the key's name when the file knows it. Never the key."""
        token = bearer(authorization)
        if not token:
            return {"reason": "no_key"}
        key = self._find(digest(token))
        if key is None:
            return {"reason": "unknown_key", "key_prefix": token[:8]}
        return {"reason": f"{key.state()}_key", "key": key.name, "role": key.role}


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    return authorization.removeprefix("Bearer ").strip() or None


class AuditLog:
    """Append-only JSON lines, hash-chained: who asked for what, with which models. Ids and
    key names, never names of customers or notes.

    Every worker process appends to the same file under an exclusive ``flock``, so the chain
    holds across processes. Refusals of strangers (bad keys, failed logins) go through
    :meth:`write_limited`: at most :attr:`LIMIT` lines per kind and :attr:`WINDOW` seconds per
    worker, the rest counted in the next line written (``suppressed``)."""

    LIMIT, WINDOW = 20, 60.0

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        self._lock = threading.Lock()
        self._end: int | None = None  # the file's size after this process's last line
        self._last = GENESIS
        self._windows: dict[str, list] = {}  # kind -> [window start, written, suppressed]

    def write(self, **entry) -> None:
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
                size = os.fstat(fd).st_size
                prev = self._last if size == self._end else _last_hash(fd, size)
                line = chained(prev, {"time": _now(), **entry})
                os.write(fd, line.encode() + b"\n")
                self._end, self._last = size + len(line.encode()) + 1, _hash_of(line)
            finally:
                os.close(fd)

    def write_limited(self, kind: str, details: Callable[[], dict]) -> bool:
        """Write the line ``details()`` unless this kind has had :attr:`LIMIT` lines in the
        current window; return whether it was written."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(kind, [now, 0, 0])
            if now - window[0] >= self.WINDOW:
                window[0], window[1] = now, 0
            if window[1] >= self.LIMIT:
                window[2] += 1
                return False
            window[1] += 1
            suppressed, window[2] = window[2], 0
        self.write(event=kind, **details(), **({"suppressed": suppressed} if suppressed else {}))
        return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def chained(prev: str, entry: dict) -> str:
    """One audit line: ``entry`` with ``prev``, prefixed by the SHA-256 of that text. ASCII
    only: an id a caller sent may hold any character, and some (U+2028, U+0085) end a line
    for many readers."""
    body = json.dumps({**entry, "prev": prev}, ensure_ascii=True, sort_keys=True)
    return f'{{"hash": "{hashlib.sha256(body.encode()).hexdigest()}", {body[1:]}'


_LINE = re.compile(r'\{"hash": "([0-9a-f]{64})", (.*)\Z', re.S)


def _hash_of(line: str) -> str:
    """The hash a line carries, or (a line from before the chain) the SHA-256 of its text."""
    found = _LINE.match(line)
    return found.group(1) if found else hashlib.sha256(line.encode()).hexdigest()


def _last_hash(fd: int, size: int) -> str:
    """The hash of the file's last line (read backwards from ``size``)."""
    if size == 0:
        return GENESIS
    tail, start = b"", size
    while start > 0 and b"\n" not in tail.rstrip(b"\n"):
        step = min(65536, start)
        start -= step
        tail = os.pread(fd, step, start) + tail
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return _hash_of(last.decode("utf-8", errors="replace"))


def audit_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace", newline="\n") as lines:
        for number, line in enumerate(lines, start=1):
            yield number, line.rstrip("\n")


def verify_audit(path: Path) -> tuple[int, str, str | None]:
    """Walk the chain of an audit log: (lines checked, the last hash, the first problem or
    None). A problem names the line: its text no longer matches its hash (edited), or its
    ``prev`` is not the hash of the line before (a line inserted, removed or re-hashed)."""
    prev, count = GENESIS, 0
    for number, line in audit_lines(path):
        found = _LINE.match(line)
        if found is None:
            return count, prev, f"line {number} carries no hash: not written by this audit log"
        stated, body = found.group(1), "{" + found.group(2)
        if hashlib.sha256(body.encode()).hexdigest() != stated:
            return count, prev, f"line {number} was changed after it was written (hash mismatch)"
        try:
            linked = json.loads(body).get("prev")
        except ValueError:
            return count, prev, f"line {number} is not JSON"
        if linked != prev:
            return (
                count,
                prev,
                (
                    f"line {number} does not follow line {number - 1}: a line was inserted, "
                    "removed or re-hashed before it"
                ),
            )
        prev, count = stated, number
    return count, prev, None
