"""Who is calling: Keystone token validation (cached) and the role rules of the API.

A cloud admin holds `admin` on the cloud admin project (named in the service's project
domain, or given by id), or the audit admin role on any project; a cloud admin reads and
changes every trail and the defaults. A project's `admin` changes its own project's
trail; `member` and `reader` read it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from stacktrail.clients.keystone import InvalidToken, TokenInfo
from stacktrail.settings import Settings
from stacktrail.trails.audit import Actor

READ_ROLES = frozenset({"admin", "member", "reader"})
WRITE_ROLES = frozenset({"admin"})


class TokenValidator(Protocol):
    async def validate(self, user_token: str) -> TokenInfo: ...


def is_cloud_admin_project(info: TokenInfo, settings: Settings) -> bool:
    """Whether the token is scoped to the cloud admin project: given by id, or by name in
    the service's project domain (names are unique only within a domain, and a domain
    admin elsewhere could create another project of that name)."""
    wanted = settings.keystone_cloud_admin_project
    if info.project_id is not None and info.project_id == wanted:
        return True
    return (
        info.project_name == wanted
        and info.domain_name is not None
        and info.domain_name.lower() == settings.keystone_project_domain_name.lower()
    )


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    domain_id: str | None
    roles: frozenset[str]
    cloud_admin: bool

    @classmethod
    def from_token(cls, info: TokenInfo, settings: Settings) -> Principal:
        roles = frozenset(role.lower() for role in info.roles)
        cloud_admin = settings.keystone_audit_admin_role.lower() in roles or (
            "admin" in roles and is_cloud_admin_project(info, settings)
        )
        return cls(
            user_id=info.user_id,
            user_name=info.user_name,
            project_id=info.project_id,
            project_name=info.project_name,
            domain_id=info.domain_id,
            roles=roles,
            cloud_admin=cloud_admin,
        )

    @classmethod
    def unauthenticated(cls) -> Principal:
        """Everybody, when authentication is disabled (`auth_mode = noauth`)."""
        return cls("noauth", "noauth", None, None, None, frozenset({"admin"}), True)

    def can_read(self, project_id: str) -> bool:
        return self.cloud_admin or (
            self.project_id == project_id and not self.roles.isdisjoint(READ_ROLES)
        )

    def can_write(self, project_id: str) -> bool:
        return self.cloud_admin or (
            self.project_id == project_id and not self.roles.isdisjoint(WRITE_ROLES)
        )

    def actor(self, address: str | None = None, agent: str | None = None) -> Actor:
        return Actor(
            user_id=self.user_id,
            user_name=self.user_name,
            project_id=self.project_id,
            domain_id=self.domain_id,
            address=address,
            agent=agent,
        )


def _expiry_in(info: TokenInfo) -> float | None:
    """Seconds until the token expires, None when unknown."""
    if not info.expires_at:
        return None
    try:
        expires = datetime.fromisoformat(info.expires_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return expires.timestamp() - time.time()


class TokenCache:
    """Validated tokens for `ttl` seconds (never beyond their expiry), keyed by a hash.

    A revoked token is therefore refused at most `ttl` seconds after the revocation, or
    `max_age` seconds where a caller asks for a fresher validation (writes do).
    Refused tokens are remembered too, so a client retrying a bad token does not hammer
    Keystone; concurrent requests with the same token share one validation.
    """

    def __init__(self, validator: TokenValidator, ttl: float, max_entries: int = 10_000) -> None:
        self._validator = validator
        self._ttl = ttl
        self._max_entries = max_entries
        # key -> (valid until, validated at, info or None when refused); monotonic times
        self._entries: OrderedDict[str, tuple[float, float, TokenInfo | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[TokenInfo]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def validate(self, token: str, max_age: float | None = None) -> TokenInfo:
        """The token's holder, from a validation at most `ttl` (or `max_age`) seconds old."""
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            until, validated_at, info = entry
            if info is None and until > now:  # refused tokens are not coming back
                raise InvalidToken("token is invalid or expired", status=401)
            if info is not None and until > now:
                if max_age is None or now - validated_at < max_age:
                    return info
            else:
                del self._entries[key]
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._validate(key, token))
            self._inflight[key] = future
            future.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(future)

    def _settled(self, key: str, future: asyncio.Future[TokenInfo]) -> None:
        self._inflight.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved even when every waiter went away

    async def _validate(self, key: str, token: str) -> TokenInfo:
        try:
            info = await self._validator.validate(token)
        except InvalidToken:
            self._remember(key, None, self._ttl)
            raise
        remaining = _expiry_in(info)
        ttl = self._ttl if remaining is None else min(self._ttl, remaining)
        if ttl > 0:
            self._remember(key, info, ttl)
        return info

    def _remember(self, key: str, value: TokenInfo | None, ttl: float) -> None:
        now = time.monotonic()
        self._entries[key] = (now + ttl, now, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
