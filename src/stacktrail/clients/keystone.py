"""Keystone adapter: the service identity, the catalog, and validation of user tokens.

keystoneauth1 is synchronous (requests); calls run in a worker thread so the event loop
never blocks on Keystone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from stacktrail.clients.errors import AuthError, ClientError, TransientError
from stacktrail.settings import Settings


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a validated user token tells about its holder."""

    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    domain_id: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    expires_at: str = ""


def _translate(exc: Exception, what: str) -> ClientError:
    if isinstance(exc, ks_exc.Unauthorized | ks_exc.Forbidden):
        return AuthError(f"{what}: {exc}", status=getattr(exc, "http_status", None))
    if isinstance(exc, ks_exc.ConnectFailure | ks_exc.ConnectionError | ks_exc.RequestTimeout):
        return TransientError(f"{what}: Keystone unreachable: {exc}")
    status = getattr(exc, "http_status", None)
    if status is not None and (status == 429 or status >= 500):
        return TransientError(f"{what}: {exc}", status=status)
    return ClientError(f"{what}: {exc}", status=status)


class KeystoneClient:
    """The service user's session (tokens are cached and renewed by keystoneauth1)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.keystone_url:
            raise ClientError("STACKTRAIL_KEYSTONE_URL is not set")
        self._settings = settings
        auth = v3.Password(
            auth_url=settings.keystone_url,
            username=settings.keystone_username,
            password=settings.keystone_password,
            project_name=settings.keystone_project_name,
            user_domain_name=settings.keystone_user_domain_name,
            project_domain_name=settings.keystone_project_domain_name,
        )
        self.session = ks_session.Session(auth=auth, timeout=30)

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ks_exc.ClientException as exc:
            raise _translate(exc, what) from exc

    async def service_token(self) -> str:
        token: str = await self._call("service token", self.session.get_token)
        return token

    async def object_store_endpoints(self) -> dict[str, str]:
        """Region -> object-store URL template (with `AUTH_<service project>`) from the catalog."""

        def read() -> dict[str, str]:
            access = self.session.auth.get_access(self.session)
            result: dict[str, str] = {}
            for service in access.service_catalog.catalog:
                if service.get("type") != "object-store":
                    continue
                for endpoint in service.get("endpoints", []):
                    if endpoint.get("interface") == self._settings.keystone_interface:
                        result[endpoint.get("region_id") or endpoint.get("region")] = endpoint[
                            "url"
                        ]
            return result

        endpoints: dict[str, str] = await self._call("catalog", read)
        return endpoints

    async def validate(self, user_token: str) -> TokenInfo:
        """Validate a user's token with the service's own token; AuthError when invalid."""

        def check() -> TokenInfo:
            resp = self.session.get(
                "/auth/tokens",
                endpoint_filter={"service_type": "identity", "interface": "public"},
                headers={"X-Subject-Token": user_token},
                authenticated=True,
                raise_exc=False,
            )
            if resp.status_code == 404 or resp.status_code == 401:
                raise AuthError("token is invalid or expired", status=401)
            if resp.status_code >= 400:
                raise _translate(
                    ks_exc.from_response(resp, "GET", "/auth/tokens"), "token validation"
                )
            token = resp.json()["token"]
            project = token.get("project") or {}
            return TokenInfo(
                user_id=token["user"]["id"],
                user_name=token["user"].get("name", ""),
                project_id=project.get("id"),
                project_name=project.get("name"),
                domain_id=(project.get("domain") or {}).get("id"),
                roles=frozenset(role["name"] for role in token.get("roles", [])),
                expires_at=token.get("expires_at", ""),
            )

        info: TokenInfo = await self._call("token validation", check)
        return info
