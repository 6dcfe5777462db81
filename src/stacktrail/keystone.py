"""Keystone adapter: the service identity, the catalog, and validation of user tokens.

keystoneauth1 is synchronous (requests); calls run in a worker thread so the event loop
never blocks on Keystone.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from stacktrail.config import Settings
from stacktrail.domain.errors import AuthError, ClientError, TransientError


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
    domain_name: str | None = None  # of the project (or of the domain-scoped token)


def _translate(exc: Exception, what: str) -> ClientError:
    if isinstance(exc, ks_exc.Unauthorized | ks_exc.Forbidden):
        return AuthError(f"{what}: {exc}", status=getattr(exc, "http_status", None))
    if isinstance(exc, ks_exc.ConnectFailure | ks_exc.ConnectionError | ks_exc.RequestTimeout):
        return TransientError(f"{what}: Keystone unreachable: {exc}")
    status = getattr(exc, "http_status", None)
    if status is not None and (status == 429 or status >= 500):
        return TransientError(f"{what}: {exc}", status=status)
    return ClientError(f"{what}: {exc}", status=status)


MAX_TOKEN_LENGTH = 8192  # Fernet tokens are ~200 bytes, JWS tokens ~1 KB
# base64url (Fernet), dots (JWS), and the rest of base64 for older formats
_TOKEN_CHARS = re.compile(rf"[A-Za-z0-9._~+/=-]{{1,{MAX_TOKEN_LENGTH}}}")


class InvalidToken(AuthError):
    """Keystone does not accept the user's token (invalid, expired or revoked)."""


def identity_v3_url(url: str) -> str:
    """The v3 root of a Keystone URL given with or without `/v3`."""
    url = url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


@dataclass(frozen=True, slots=True)
class Identity:
    """Password credentials of one Keystone user, scoped to one project."""

    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


def service_identity(settings: Settings) -> Identity:
    """The service user (`STACKTRAIL_KEYSTONE_*`): token validation, reseller-mode writes."""
    return Identity(
        settings.keystone_username,
        settings.keystone_password,
        settings.keystone_project_name,
        settings.keystone_user_domain_name,
        settings.keystone_project_domain_name,
    )


def acl_identity(settings: Settings) -> Identity | None:
    """The ACL-mode writer (`STACKTRAIL_SWIFT_ACL_*`), None when not configured."""
    if not settings.swift_acl_username:
        return None
    return Identity(
        settings.swift_acl_username,
        settings.swift_acl_password,
        settings.swift_acl_project_name,
        settings.swift_acl_user_domain_name,
        settings.swift_acl_project_domain_name,
    )


class ProjectKind(StrEnum):
    PROJECT = "project"
    DOMAIN = "domain"  # a domain (Keystone keeps domains as projects with is_domain)
    UNKNOWN = "unknown"  # Keystone does not know the id


class KeystoneClient:
    """One identity's session (tokens are cached and renewed by keystoneauth1); the
    service identity unless `identity` names another one."""

    def __init__(self, settings: Settings, identity: Identity | None = None) -> None:
        if not settings.keystone_url:
            raise ClientError("STACKTRAIL_KEYSTONE_URL is not set")
        self._settings = settings
        self.identity = identity or service_identity(settings)
        self._identity_url = identity_v3_url(settings.keystone_url)
        self._tokens_url = self._identity_url + "/auth/tokens"
        auth = v3.Password(
            auth_url=self._identity_url,
            username=self.identity.username,
            password=self.identity.password,
            project_name=self.identity.project_name,
            user_domain_name=self.identity.user_domain_name,
            project_domain_name=self.identity.project_domain_name,
        )
        self._auth = auth
        self.session = ks_session.Session(auth=auth, timeout=30)

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ks_exc.ClientException as exc:
            raise _translate(exc, what) from exc

    async def service_token(self) -> str:
        token: str = await self._call("service token", self.session.get_token)
        return token

    async def role_names(self) -> frozenset[str]:
        """The roles this identity's own token carries."""

        def read() -> frozenset[str]:
            return frozenset(self._auth.get_access(self.session).role_names or ())

        roles: frozenset[str] = await self._call("roles", read)
        return roles

    async def project_name(self, project_id: str, user_token: str) -> str | None:
        """The project's name, asked with the caller's own token (a cloud admin may read
        any project); None when Keystone does not know the id. Raises on other answers."""

        def read() -> str | None:
            response = self.session.get(
                f"{self._identity_url}/projects/{quote(project_id, safe='')}",
                headers={"X-Auth-Token": user_token},
                authenticated=False,
                raise_exc=False,
            )
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise ClientError(
                    f"project lookup: Keystone answered {response.status_code}",
                    status=response.status_code,
                )
            return str(response.json()["project"]["name"])

        name: str | None = await self._call("project", read)
        return name

    async def own_ids(self) -> tuple[str, str]:
        """(project id, user id) of this identity's token, as Swift ACLs name a user."""

        def read() -> tuple[str, str]:
            access = self._auth.get_access(self.session)
            return str(access.project_id), str(access.user_id)

        ids: tuple[str, str] = await self._call("token", read)
        return ids

    async def object_store_endpoints(self) -> dict[str, str]:
        """Region -> object-store URL template (with `AUTH_<service project>`) from the catalog."""

        def read() -> dict[str, str]:
            access = self._auth.get_access(self.session)
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

    async def project_kind(self, project_id: str) -> ProjectKind:
        """Whether Keystone knows `project_id` as a project, as a domain, or not at all.

        Needs `identity:get_project` (Keystone's default: an admin, or a reader of the
        system or of the project's domain); raises ClientError when refused or down.
        """
        url = f"{self._identity_url}/projects/{project_id}"

        def read() -> ProjectKind:
            resp = self.session.get(url, raise_exc=False)
            if resp.status_code == 404:
                return ProjectKind.UNKNOWN
            if resp.status_code == 403:
                raise ClientError(
                    f"the service user {self.identity.username!r} may not read projects "
                    "(identity:get_project) to check event owners"
                )
            if resp.status_code >= 400:
                raise _translate(ks_exc.from_response(resp, "GET", url), "project lookup")
            project = resp.json().get("project") or {}
            return ProjectKind.DOMAIN if project.get("is_domain") else ProjectKind.PROJECT

        kind: ProjectKind = await self._call("project lookup", read)
        return kind

    async def project_kinds(self) -> dict[str, ProjectKind]:
        """Every project and domain Keystone lists, by id: one request each, however many.

        Needs `identity:list_projects` and `identity:list_domains` (as `project_kind`, an
        admin or a system reader); raises ClientError when refused or down, and when
        Keystone cut a list short (its `list_limit`), since a partial list would make the
        missing owners look new.
        """

        def read() -> dict[str, ProjectKind]:
            kinds: dict[str, ProjectKind] = {}
            for name, kind in (("projects", ProjectKind.PROJECT), ("domains", ProjectKind.DOMAIN)):
                url = f"{self._identity_url}/{name}"
                resp = self.session.get(url, raise_exc=False)
                if resp.status_code == 403:
                    raise ClientError(
                        f"the service user {self.identity.username!r} may not list {name} "
                        f"(identity:list_{name})"
                    )
                if resp.status_code >= 400:
                    raise _translate(ks_exc.from_response(resp, "GET", url), f"{name} list")
                body = resp.json()
                if body.get("truncated"):
                    raise ClientError(f"Keystone cut its list of {name} short (list_limit)")
                for item in body.get(name) or ():
                    ident = item.get("id")
                    if type(ident) is str:
                        kinds[ident] = ProjectKind.DOMAIN if item.get("is_domain") else kind
            return kinds

        kinds: dict[str, ProjectKind] = await self._call("project list", read)
        return kinds

    async def validate(self, user_token: str) -> TokenInfo:
        """Validate a user's token with the service's own token.

        InvalidToken when Keystone does not know the token (invalid, expired, revoked);
        AuthError when the service identity itself is refused or may not validate tokens;
        TransientError when Keystone is unreachable or failing.
        """
        if not _TOKEN_CHARS.fullmatch(user_token):
            raise InvalidToken("token is invalid or expired", status=401)

        def check() -> TokenInfo:
            resp = self.session.get(
                self._tokens_url,
                headers={"X-Subject-Token": user_token},
                authenticated=True,
                raise_exc=False,
            )
            # Keystone cannot read it (400; 413/431: too large for its HTTP server) or does
            # not know it (404): the client's token is bad, Keystone is not failing
            if resp.status_code in (400, 404, 413, 431):
                raise InvalidToken("token is invalid or expired", status=401)
            if resp.status_code in (401, 403):
                raise AuthError(
                    f"the service user {self._settings.keystone_username!r} may not validate "
                    f"tokens (HTTP {resp.status_code}): it needs the `service` role",
                    status=resp.status_code,
                )
            if resp.status_code >= 400:
                raise _translate(
                    ks_exc.from_response(resp, "GET", self._tokens_url), "token validation"
                )
            return token_info(resp.json()["token"])

        info: TokenInfo = await self._call("token validation", check)
        return info


def token_info(token: dict[str, Any]) -> TokenInfo:
    """The parts of a Keystone v3 token body (`{"token": ...}`'s value) stacktrail uses."""
    project = token.get("project") or {}
    domain = token.get("domain") or {}
    return TokenInfo(
        user_id=token["user"]["id"],
        user_name=token["user"].get("name", ""),
        project_id=project.get("id"),
        project_name=project.get("name"),
        domain_id=(project.get("domain") or {}).get("id") or domain.get("id"),
        roles=frozenset(role["name"] for role in token.get("roles", [])),
        expires_at=token.get("expires_at", ""),
        domain_name=(project.get("domain") or {}).get("name") or domain.get("name"),
    )
