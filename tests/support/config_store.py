"""Config store fixtures shared by tests/trails and tests/api (imported by their conftests).

Each test run gets databases of its own: SQLite files in a temporary directory and
PostgreSQL databases named `stacktrail_test_<random>`, dropped afterwards. Tests share
one migrated store per backend and keep apart by using fresh project ids; tests that
change the operator defaults get a database of their own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore

BACKENDS = ["sqlite", "postgresql"]
REGIONS = ["RegionOne", "RegionTwo"]
POSTGRES_ADMIN_URL = os.environ.get(
    "DEVSTACK_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_mode": "noauth",
        "archive_store": "swift",
        "archive_regions": list(REGIONS),
        "search_url": "http://127.0.0.1:9",
        "keystone_url": "",
        "retention_days": 90,
        "retention_max_days": 3650,
        "archive_interval": "15m",
        "archive_container": "audit-trail",
        "archive_prefix": "",
    }
    values.update(overrides)
    return Settings(**values)


def keystone_auth(devstack: dict[str, str]) -> dict[str, Any]:
    """Settings for Keystone auth with the dev stack's service identity (for make_settings)."""
    return {
        "auth_mode": "keystone",
        "keystone_url": devstack["STACKTRAIL_KEYSTONE_URL"],
        "keystone_username": devstack["STACKTRAIL_KEYSTONE_USERNAME"],
        "keystone_password": devstack["STACKTRAIL_KEYSTONE_PASSWORD"],
        "keystone_project_name": devstack["STACKTRAIL_KEYSTONE_PROJECT_NAME"],
        "keystone_user_domain_name": devstack["STACKTRAIL_KEYSTONE_USER_DOMAIN_NAME"],
        "keystone_project_domain_name": devstack["STACKTRAIL_KEYSTONE_PROJECT_DOMAIN_NAME"],
        "keystone_cloud_admin_project": devstack["DEVSTACK_CLOUD_ADMIN_PROJECT"],
    }


async def create_postgres_database() -> str:
    """A new empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"stacktrail_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """An empty (unmigrated) database of this test run's own; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / uuid.uuid4().hex[:12]}.db"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@asynccontextmanager
async def migrated_store(
    backend: str, directory: Path, settings: Settings
) -> AsyncIterator[TrailStore]:
    async with fresh_database(backend, directory) as url:
        await db.upgrade(url)
        store = TrailStore(db.create_engine(url), settings)
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stacktrail-db")


@pytest.fixture(scope="session", params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, db_dir: Path, settings: Settings
) -> AsyncIterator[TrailStore]:
    """A migrated store per backend, shared by the run (use fresh project ids)."""
    async with migrated_store(request.param, db_dir, settings) as shared:
        yield shared


@pytest.fixture(params=BACKENDS)
async def own_store(
    request: pytest.FixtureRequest, db_dir: Path, settings: Settings
) -> AsyncIterator[TrailStore]:
    """A migrated store of the test's own (for tests that change the defaults)."""
    async with migrated_store(request.param, db_dir, settings) as own:
        yield own


@pytest.fixture
def ledger(store: TrailStore) -> SqlLedger:
    return SqlLedger(store.engine)


@pytest.fixture
def project_id() -> Iterator[str]:
    return uuid.uuid4().hex
