"""Server-side sessions of the web UI.

The browser holds only a random session id in an HTTP-only cookie; the Keystone token,
the caller's roles and the CSRF token stay here, in this process's memory (a restart
signs everybody out). Sessions end at the token's expiry, after `idle` seconds without a
request, or at sign-out. Ids are kept hashed, so the table never holds a usable cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from stacktrail.api.auth import Principal

SESSION_COOKIE = "stacktrail_session"
LOGIN_COOKIE = "stacktrail_login"  # the sign-in form's own short session (CSRF only)
SESSION_IDLE_S = 60 * 60.0
LOGIN_FORM_TTL_S = 30 * 60.0
MAX_SESSIONS = 10_000


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Session:
    csrf: str
    expires_at: float  # monotonic deadline: the token's expiry (or the form's TTL)
    last_seen: float
    principal: Principal | None = None  # None: the sign-in form's session
    token: str | None = None  # None with a principal: authentication is disabled
    project_name: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    def check_csrf(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(
            self.csrf.encode(), (submitted or "").encode("utf-8", "surrogatepass")
        )

    def flash(self, kind: str, message: str) -> None:
        self.flashes.append((kind, message))
        del self.flashes[:-5]

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


class SessionStore:
    """Sessions by (hashed) id, least recently used evicted beyond `max_entries`."""

    def __init__(self, idle_s: float, max_entries: int = MAX_SESSIONS) -> None:
        self._idle_s = idle_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def create(
        self,
        lifetime_s: float,
        *,
        principal: Principal | None = None,
        token: str | None = None,
        project_name: str | None = None,
    ) -> tuple[str, Session]:
        """A new session and the id for its cookie."""
        now = time.monotonic()
        session_id = secrets.token_urlsafe(32)
        session = Session(
            csrf=secrets.token_urlsafe(32),
            expires_at=now + lifetime_s,
            last_seen=now,
            principal=principal,
            token=token,
            project_name=project_name,
        )
        self._entries[_key(session_id)] = session
        self._prune(now)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        session = self._entries.get(key)
        if session is None:
            return None
        now = time.monotonic()
        if now >= session.expires_at or now - session.last_seen >= self._idle_s:
            del self._entries[key]
            return None
        session.last_seen = now
        self._entries.move_to_end(key)
        return session

    def drop(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        return self._entries.pop(_key(session_id), None)

    def _prune(self, now: float) -> None:
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        # the oldest few are checked on every creation, so expired ones never pile up
        for key in list(self._entries)[:8]:
            session = self._entries[key]
            if now >= session.expires_at or now - session.last_seen >= self._idle_s:
                del self._entries[key]
