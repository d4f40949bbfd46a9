"""Who is looking at the page: the key login's signed session cookie and its CSRF token.

A session is a token signed with :mod:`itsdangerous` (the service runs several worker
processes, so a signed token needs no shared session table): the SHA-256 of the key that logged
in and a random CSRF nonce, valid for :data:`SESSION_HOURS`. Every request looks the key up
again in the keys file, so a revoked key ends its sessions at once. The secret is
``RETAIN_UI_SECRET`` or, failing that, a random one kept next to the keys file (created once,
mode 0600, shared by every worker).
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from serving.api.auth import ApiKey, KeyRing, load_keys

SESSION_COOKIE, LOGIN_COOKIE, LANG_COOKIE = "retain_session", "retain_login", "retain_lang"
SESSION_HOURS = 8
ENV_SECRET = "RETAIN_UI_SECRET"
SECRET_FILE = "ui_secret"


@dataclass(frozen=True)
class Session:
    key: ApiKey
    csrf: str


def load_secret(keys_path: Path) -> str:
    """The signing secret shared by every worker of this service."""
    if secret := os.environ.get(ENV_SECRET):
        return secret
    path = Path(keys_path).parent / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # the first worker to get here writes it; the others read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Sessions:
    """Signs and reads session and login cookies against one keys file."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys
        self.signer = URLSafeTimedSerializer(load_secret(keys.path), salt="retain-ui")
        self._stamp: tuple[float, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}

    def _live_key(self, sha256: str) -> ApiKey | None:
        try:
            stat = self.keys.path.stat()
            stamp = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            return None
        if stamp != self._stamp:
            self._by_hash = {k.sha256: k for k in load_keys(self.keys.path) if not k.revoked}
            self._stamp = stamp
        return self._by_hash.get(sha256)

    def start(self, key: ApiKey) -> str:
        """A new session token for a key that just logged in."""
        return self.signer.dumps({"key": key.sha256, "csrf": secrets.token_urlsafe(24)})

    def read(self, token: str | None) -> Session | None:
        if not token:
            return None
        try:
            payload = self.signer.loads(token, max_age=SESSION_HOURS * 3600)
        except BadSignature:  # includes an expired signature
            return None
        key = self._live_key(payload.get("key", "")) if isinstance(payload, dict) else None
        return Session(key, payload["csrf"]) if key else None

    def login_nonce(self) -> tuple[str, str]:
        """(cookie value, form value) guarding the login form itself."""
        nonce = secrets.token_urlsafe(24)
        return self.signer.dumps({"login": nonce}), nonce

    def login_nonce_matches(self, cookie: str | None, submitted: str | None) -> bool:
        try:
            payload = self.signer.loads(cookie or "", max_age=3600)
        except BadSignature:
            return False
        expected = payload.get("login", "") if isinstance(payload, dict) else ""
        return bool(expected) and hmac.compare_digest(expected, submitted or "")


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return hmac.compare_digest(session.csrf, submitted or "")
