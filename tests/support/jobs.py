"""Fixtures of the jobs tests: a known corpus in the search server, stores, settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stacktrail.config import Settings
from stacktrail.search.client import SearchClient
from tests.support.config_store import db_dir, make_settings, own_store, settings, store
from tests.support.corpus import Corpus, load_export_corpus, remove_indices
from tests.support.devstack import RUN_ID
from tests.support.stores import (
    admin_a,
    admin_b,
    keystone,
    s3_store,
    service_settings,
    swift_store,
)

__all__ = [
    "admin_a",
    "admin_b",
    "db_dir",
    "keystone",
    "own_store",
    "s3_store",
    "service_settings",
    "settings",
    "store",
    "swift_store",
]


def unique_template() -> str:
    return f"t{RUN_ID}{uuid.uuid4().hex[:6]}-audit-{{project_id}}-{{yyyy.MM}}"


def jobs_settings(search_url: str, template: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "search_url": search_url,
        "search_index_template": template,
        "archive_regions": ["RegionOne"],
        "archive_store": "file",
        "archive_dir": tmp / "archive",
        "database_url": f"sqlite+aiosqlite:///{tmp / 'unmigrated.db'}",
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture(scope="session")
async def export_corpus(devstack: dict[str, str], search_url: str) -> AsyncIterator[Corpus]:
    """The export corpus (> 20,000 events), loaded once per run under its own template.

    Project `a` is the dev stack's project A (so exports can go to its Swift account).
    """
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    b = devstack["DEVSTACK_PROJECT_B_ID"]
    template = unique_template()
    try:
        yield await load_export_corpus(search_url, template, a, b)
    finally:
        await remove_indices(search_url, template)


@pytest.fixture
async def search(search_url: str) -> AsyncIterator[SearchClient]:
    client = SearchClient(search_url)
    yield client
    await client.close()
