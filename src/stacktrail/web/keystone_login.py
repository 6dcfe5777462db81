"""Signing in with Keystone: a project-scoped token for a password or an application
credential (POST /v3/auth/tokens), and its revocation at sign-out (DELETE).

A password sign-in first authenticates without a scope, so a wrong password and a
project the user has no role on get different messages; the project is then looked up
among the user's own projects (by name or id, in any domain), the unscoped token revoked
and a token scoped to that project issued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from stacktrail.keystone import TokenInfo, identity_v3_url, token_info

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
MAX_FIELD_LENGTH = 255
MAX_SECRET_LENGTH = 4096
NOT_CONFIGURED = "Signing in is not set up on this server (no Keystone URL)."


class LoginError(Exception):
    """Signing in failed; the message is meant for the person signing in."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 401) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    info: TokenInfo
    expires_in_s: float


def _expires_in(info: TokenInfo) -> float:
    try:
        expires = datetime.fromisoformat(info.expires_at.replace("Z", "+00:00"))
    except ValueError:
        return 3600.0
    return max(0.0, (expires - datetime.now(UTC)).total_seconds())


class KeystoneLogin:
    def __init__(self, keystone_url: str, *, verify: bool = True) -> None:
        self._v3 = identity_v3_url(keystone_url) if keystone_url else ""
        self._verify = verify

    @property
    def configured(self) -> bool:
        return bool(self._v3)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=TIMEOUT_S, verify=self._verify)

    async def _issue(self, http: httpx.AsyncClient, auth: dict[str, Any]) -> httpx.Response:
        try:
            return await http.post(f"{self._v3}/auth/tokens", json={"auth": auth})
        except httpx.HTTPError as exc:
            log.warning("sign-in: Keystone unreachable at %s: %s", self._v3, exc)
            raise LoginError(
                "The identity service (Keystone) cannot be reached right now. "
                "Please try again in a minute.",
                status=503,
            ) from None

    @staticmethod
    def _signed_in(response: httpx.Response) -> SignedIn:
        token = response.headers.get("X-Subject-Token", "")
        info = token_info(response.json()["token"])
        return SignedIn(token=token, info=info, expires_in_s=_expires_in(info))

    @staticmethod
    def _unexpected(response: httpx.Response) -> LoginError:
        log.warning("sign-in: Keystone answered HTTP %s: %s", response.status_code, response.text)
        return LoginError(
            f"The identity service (Keystone) answered with an error (HTTP "
            f"{response.status_code}). Please try again later.",
            status=503 if response.status_code >= 500 else 400,
        )

    async def with_password(
        self, user_name: str, password: str, user_domain: str, project: str
    ) -> SignedIn:
        if not self.configured:
            raise LoginError(NOT_CONFIGURED, status=503)
        user_domain = user_domain or "Default"
        user: dict[str, Any] = {"name": user_name, "password": password}
        user["domain"] = {"name": user_domain}
        async with self._client() as http:
            response = await self._issue(
                http, {"identity": {"methods": ["password"], "password": {"user": user}}}
            )
            if response.status_code == 401:
                raise LoginError(
                    "The user name, password or domain is not right. Check them and try again "
                    f"(user domain: {user_domain}).",
                    field="password",
                )
            if response.status_code != 201:
                raise self._unexpected(response)
            unscoped = response.headers.get("X-Subject-Token", "")
            try:
                project_id = await self._choose_project(http, unscoped, project)
            finally:
                await self._revoke(http, unscoped)
            # A new token rather than a rescoped one: revoking a token also revokes the
            # tokens rescoped from it, and the unscoped one is revoked right away.
            response = await self._issue(
                http,
                {
                    "identity": {"methods": ["password"], "password": {"user": user}},
                    "scope": {"project": {"id": project_id}},
                },
            )
            if response.status_code == 401:
                raise LoginError(
                    f"You may not sign in to project {project or project_id}.", field="project"
                )
            if response.status_code != 201:
                raise self._unexpected(response)
            return self._signed_in(response)

    async def _choose_project(self, http: httpx.AsyncClient, token: str, wanted: str) -> str:
        try:
            response = await http.get(f"{self._v3}/auth/projects", headers={"X-Auth-Token": token})
        except httpx.HTTPError:
            raise LoginError(
                "The identity service (Keystone) cannot be reached right now.", status=503
            ) from None
        if response.status_code != 200:
            raise self._unexpected(response)
        projects = [p for p in response.json().get("projects", []) if p.get("enabled", True)]
        if not projects:
            raise LoginError(
                "Your user has no role on any project, so there is no audit trail to show. "
                "Ask your project's administrator for a role.",
                field="project",
            )
        if not wanted:
            if len(projects) == 1:
                return str(projects[0]["id"])
            names = ", ".join(sorted(str(p.get("name", p["id"])) for p in projects))
            raise LoginError(
                f"You have roles on several projects; enter the one to open ({names}).",
                field="project",
                status=422,
            )
        by_id = [p for p in projects if p["id"] == wanted]
        by_name = [p for p in projects if p.get("name") == wanted]
        matches = by_id or by_name
        if len(matches) == 1:
            return str(matches[0]["id"])
        if len(matches) > 1:
            raise LoginError(
                f"Several of your projects are called {wanted!r} (in different domains); "
                "enter the project's ID instead.",
                field="project",
                status=422,
            )
        raise LoginError(
            f"You have no role on a project called {wanted!r}. Check the name, or enter the "
            "project's ID.",
            field="project",
        )

    async def with_application_credential(self, credential_id: str, secret: str) -> SignedIn:
        if not self.configured:
            raise LoginError(NOT_CONFIGURED, status=503)
        auth = {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": credential_id, "secret": secret},
            }
        }
        async with self._client() as http:
            response = await self._issue(http, auth)
        if response.status_code in (401, 404):
            raise LoginError(
                "The application credential ID or secret is not right, or the credential has "
                "expired.",
                field="secret",
            )
        if response.status_code != 201:
            raise self._unexpected(response)
        return self._signed_in(response)

    async def revoke(self, token: str) -> None:
        """Revoke a user's token (a user may revoke its own); failures are only logged."""
        if not self.configured or not token:
            return
        async with self._client() as http:
            await self._revoke(http, token)

    async def _revoke(self, http: httpx.AsyncClient, token: str) -> None:
        try:
            response = await http.delete(
                f"{self._v3}/auth/tokens",
                headers={"X-Auth-Token": token, "X-Subject-Token": token},
            )
        except httpx.HTTPError as exc:
            log.warning("sign-out: cannot revoke the token with Keystone: %s", exc)
            return
        if response.status_code not in (204, 404):
            log.warning("sign-out: Keystone answered HTTP %s to a revocation", response.status_code)
