"""The UI's calls to the REST API: in-process (ASGI), with the signed-in user's token.

Every rule (roles, bounds, validation) is therefore the API's own. The browser's address
and user agent are passed on, so the audit record of a change names them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request
from starlette.types import ASGIApp

from stacktrail.web.sessions import Session

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class SignedOut(Exception):
    """The API no longer accepts the session's token (expired or revoked)."""


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: Any
    etag: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The API's error message (the problem document's `detail`), or a generic one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return str(self.body["detail"])
        return f"the server answered with HTTP {self.status}"

    @property
    def validation_errors(self) -> list[dict[str, Any]]:
        """A 422 problem document's `errors` (`field`, `in`, `detail`, `code`), else empty."""
        if self.status != 422 or not isinstance(self.body, dict):
            return []
        errors = self.body.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class Api:
    def __init__(self, app: ASGIApp, session: Session, request: Request) -> None:
        client = request.client
        transport = httpx.ASGITransport(
            app=app,
            raise_app_exceptions=False,
            client=(client.host, client.port) if client else ("127.0.0.1", 0),
        )
        headers = {"Accept": "application/json"}
        if session.token:
            headers["X-Auth-Token"] = session.token
        agent = request.headers.get("user-agent")
        if agent:
            headers["User-Agent"] = agent[:512]
        self._http = httpx.AsyncClient(
            transport=transport, base_url="http://stacktrail.internal", headers=headers
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        if_match: int | None = None,
        content_type: str = "application/json",
    ) -> ApiResponse:
        headers: dict[str, str] = {}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        response = await self._http.request(
            method, path, params=params, content=content, headers=headers
        )
        if response.status_code == 401:
            raise SignedOut(response.text)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 500:
            log.error("API %s %s answered HTTP %s", method, path, response.status_code)
        return ApiResponse(response.status_code, data, response.headers.get("etag"))

    async def get(self, path: str, params: dict[str, Any] | None = None) -> ApiResponse:
        return await self._call("GET", path, params=params)

    async def post(self, path: str, body: dict[str, Any]) -> ApiResponse:
        return await self._call("POST", path, body=body)

    async def patch(self, path: str, body: dict[str, Any], if_match: int | None) -> ApiResponse:
        return await self._call(
            "PATCH", path, body=body, if_match=if_match, content_type=MERGE_PATCH
        )

    async def put(self, path: str, body: dict[str, Any], if_match: int | None) -> ApiResponse:
        return await self._call("PUT", path, body=body, if_match=if_match)

    async def delete(self, path: str, if_match: int | None) -> ApiResponse:
        return await self._call("DELETE", path, if_match=if_match)


def trail_path(project_id: str) -> str:
    return f"/v1/projects/{project_id}/trail"
