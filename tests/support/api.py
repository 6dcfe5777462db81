"""API fixtures: the app on each store backend, without and with real Keystone."""

from __future__ import annotations

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
