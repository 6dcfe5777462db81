"""API fixtures: the app on each store backend, without and with real Keystone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from tests.api.keystone_users import KeystoneUsers
from tests.support.config_store import (
    db_dir,
    keystone_auth,
    ledger,
    make_settings,
    own_store,
    project_id,
    settings,
    store,
)

__all__ = ["db_dir", "ledger", "own_store", "project_id", "settings", "store"]

TOKEN_CACHE_TTL = timedelta(seconds=1)


class Emitted(list[dict[str, Any]]):
    """What the API handed to the composition root's `emit`."""


def spool_bytes(project_id: str, region: str) -> int | None:
    return 4096 if region == "RegionOne" else None


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
def emitted() -> Emitted:
    return Emitted()


@pytest.fixture
def app(settings: Settings, store: TrailStore, emitted: Emitted) -> FastAPI:
    """The API without authentication (`auth_mode = noauth`), on each backend."""
    return create_app(settings, store, None, emit=emitted.append, pending_spool_bytes=spool_bytes)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture(scope="session")
def users(devstack: dict[str, str]) -> KeystoneUsers:
    return KeystoneUsers(devstack)


@pytest.fixture(scope="session")
def keystone_settings(devstack: dict[str, str]) -> Settings:
    return make_settings(
        **keystone_auth(devstack),
        token_cache_ttl=TOKEN_CACHE_TTL,
    )


@pytest.fixture(scope="session")
def keystone(keystone_settings: Settings) -> KeystoneClient:
    return KeystoneClient(keystone_settings)


@pytest.fixture
def keystone_app(
    keystone_settings: Settings, store: TrailStore, keystone: KeystoneClient, emitted: Emitted
) -> FastAPI:
    return create_app(keystone_settings, store, keystone, emit=emitted.append)


@pytest.fixture
async def keystone_client(keystone_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(keystone_app) as http:
        yield http


def _loc(error: dict[str, Any]) -> tuple[Any, ...]:
    """A problem error's place as FastAPI's `loc`: `in` then the field path's parts."""
    parts: list[Any] = [error["in"]]
    for name, index in re.findall(r"([^.\[\]]+)|\[([0-9]+)\]", error["field"]):
        parts.append(int(index) if index else name)
    return tuple(parts)


def refusals(response: httpx.Response) -> list[tuple[tuple[Any, ...], str]]:
    """A 422's refused values as (loc, message), after checking it is a problem document
    (RFC 9457) whose errors carry a field path, a pointer into the body and a code."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Unprocessable Content"
    assert body["status"] == 422
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str)
    assert body["detail"]
    result = []
    for error in body["errors"]:
        assert set(error) <= {"field", "in", "pointer", "detail", "code", "context"}, error
        assert error["code"]
        assert error["detail"]
        loc = _loc(error)
        if error["in"] == "body":
            assert error["pointer"] == "#" + "".join(f"/{part}" for part in loc[1:]), error
        result.append((loc, error["detail"]))
    return result


def problem_detail(response: httpx.Response, status: int) -> str:
    """The `detail` of an error answer, after checking it is a problem document."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"] == "about:blank"
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str)
    return str(body["detail"])
