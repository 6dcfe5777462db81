"""Who is calling: Keystone token validation (cached) and the caller it names.

What a caller may do is decided in `stacktrail.api.policy` (oslo.policy rules).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from stacktrail.domain.audit import Actor
from stacktrail.keystone import InvalidToken, TokenInfo


class TokenValidator(Protocol):
    async def validate(self, user_token: str) -> TokenInfo: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """A validated token's holder. What it may do is decided in `stacktrail.api.policy`."""

    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    domain_id: str | None  # of the project, or of the domain-scoped token
    roles: frozenset[str]
    cloud_admin: bool  # the policy's `cloud_admin` rule, when the token was validated
    domain_name: str | None = None
    in_cloud_admin_project: bool = False
    noauth: bool = False  # authentication disabled: everything is allowed

    @classmethod
    def unauthenticated(cls) -> Principal:
        """Everybody, when authentication is disabled (`auth_mode = noauth`)."""
        return cls("noauth", "noauth", None, None, None, frozenset({"admin"}), True, noauth=True)

    def with_cloud_admin(self, cloud_admin: bool) -> Principal:
        return replace(self, cloud_admin=cloud_admin)

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
