"""Who is looking at the page: server-side sessions, shared by the workers, and CSRF tokens.

A login stores a session in a small SQLite file (``[service] sessions``, default
``sessions.db`` beside the keys file; 0600, WAL) that every worker process reads: the cookie
holds only a random token, the store its SHA-256, the key's hash, a CSRF nonce, when it started
and when it was last used. A session ends — for every copy of the cookie — at logout, after
``session_idle_minutes`` without a request (default 30), ``session_hours`` after login (8), or
when its key is revoked or expires (every request looks the key up again). Nothing in the
store or the keys file lets anyone make a cookie: tokens are random, and stored hashed.

The login form's own CSRF nonce is a signed cookie (:mod:`itsdangerous`); its secret is
``RETAIN_UI_SECRET`` or a random one kept in the session store — never beside the key hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from features.atomic import private_file
from serving.api.auth import ApiKey, KeyRing

SESSION_COOKIE, LOGIN_COOKIE, LANG_COOKIE = "retain_session", "retain_login", "retain_lang"
ENV_SECRET = "RETAIN_UI_SECRET"
LOGIN_SECONDS = 3600
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        token_sha256 TEXT PRIMARY KEY,
        key_sha256 TEXT NOT NULL,
        csrf TEXT NOT NULL,
        started REAL NOT NULL,
        seen REAL NOT NULL,
        ended REAL
    )""",
    "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


@dataclass(frozen=True)
class Session:
    key: ApiKey
    csrf: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Page sessions of one service: started at login, read on every request, ended at
    logout, on idleness, at their age limit, or with their key."""

    def __init__(
        self, keys: KeyRing, path: Path, idle_minutes: float = 30, hours: float = 8
    ) -> None:
        self.keys = keys
        self.path = private_file(Path(path))
        self.idle, self.longest = idle_minutes * 60, hours * 3600
        # how stale ``seen`` may get before a read writes it: a write per minute at most
        self.touch = min(60.0, self.idle / 4)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                con.execute(statement)
        self.signer = URLSafeTimedSerializer(self._secret(), salt="retain-ui-login")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:  # commits on success
                yield con
        finally:
            con.close()

    def _secret(self) -> str:
        if secret := os.environ.get(ENV_SECRET):
            return secret
        with self._connect() as con:  # the first worker's insert wins; the others read it
            con.execute(
                "INSERT OR IGNORE INTO secrets VALUES ('login', ?)", (secrets.token_urlsafe(48),)
            )
            return con.execute("SELECT value FROM secrets WHERE name = 'login'").fetchone()[0]

    def start(self, key: ApiKey) -> str:
        """A new session for a key that just logged in; returns the cookie's token."""
        token, now = secrets.token_urlsafe(32), time.time()
        with self._connect() as con:
            con.execute(
                "DELETE FROM sessions WHERE coalesce(ended, seen + ?) < ?",
                (self.idle, now - 86400),  # sessions over for a day are forgotten
            )
            con.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, NULL)",
                (_hash(token), key.sha256, secrets.token_urlsafe(24), now, now),
            )
        return token

    def read(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, or None (and the session ended if it just
        ran out)."""
        if not token:
            return None
        hashed, now = _hash(token), time.time()
        with self._connect() as con:
            row = con.execute(
                "SELECT key_sha256, csrf, started, seen, ended FROM sessions "
                "WHERE token_sha256 = ?",
                (hashed,),
            ).fetchone()
            if row is None or row[4] is not None:
                return None
            key_hash, csrf, started, seen, _ = row
            key = self.keys.live(key_hash)
            if key is None or now - seen > self.idle or now - started > self.longest:
                con.execute("UPDATE sessions SET ended = ? WHERE token_sha256 = ?", (now, hashed))
                return None
            if now - seen >= self.touch:
                con.execute("UPDATE sessions SET seen = ? WHERE token_sha256 = ?", (now, hashed))
        return Session(key, csrf)

    def end(self, token: str | None) -> None:
        """Logout: the session is over for every copy of its cookie."""
        if token:
            with self._connect() as con:
                con.execute(
                    "UPDATE sessions SET ended = ? WHERE token_sha256 = ? AND ended IS NULL",
                    (time.time(), _hash(token)),
                )

    def login_nonce(self) -> tuple[str, str]:
        """(cookie value, form value) guarding the login form itself."""
        nonce = secrets.token_urlsafe(24)
        return self.signer.dumps({"login": nonce}), nonce

    def login_nonce_matches(self, cookie: str | None, submitted: str | None) -> bool:
        try:
            payload = self.signer.loads(cookie or "", max_age=LOGIN_SECONDS)
        except BadSignature:
            return False
        expected = payload.get("login", "") if isinstance(payload, dict) else ""
        return bool(expected) and hmac.compare_digest(expected, submitted or "")


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return hmac.compare_digest(session.csrf, submitted or "")
