"""Fixtures that hand each test run its own resources on the dev stack's real servers.

`scripts/dev-stack start` (run by `scripts/test`) starts the servers and writes
`var/dev-stack/env`; these fixtures read it. Each run gets its own RabbitMQ vhost and
PostgreSQL database; search indices and Swift containers get a per-run prefix.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = Path(os.environ.get("DEVSTACK_ENV_FILE", ROOT / "var" / "dev-stack" / "env"))
RUN_ID = uuid.uuid4().hex[:8]


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        name, _, raw = line[len("export ") :].partition("=")
        values[name] = shlex.split(raw)[0] if raw else ""
    return values


@pytest.fixture(scope="session")
def devstack() -> dict[str, str]:
    """The dev stack's settings (URLs, seeded users, ids)."""
    if not ENV_FILE.exists():
        pytest.fail(f"{ENV_FILE} is missing: run `scripts/dev-stack start` first")
    return read_env_file(ENV_FILE)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test run's own (deleted afterwards)."""
    vhost = f"stacktrail-test-{RUN_ID}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def postgres_url(devstack: dict[str, str]) -> Iterator[str]:
    """A PostgreSQL database of this test run's own, as an SQLAlchemy asyncpg URL."""
    name = f"stacktrail_test_{RUN_ID}"
    admin = devstack.get("DEVSTACK_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def search_url(devstack: dict[str, str]) -> str:
    """The OpenSearch-compatible test server (osmem-server: not a real cluster, see notes)."""
    return devstack["DEVSTACK_SEARCH_URL"]


@pytest.fixture
def index_template() -> str:
    """An index name template unique to the test, so tests never see each other's indices."""
    return f"t{RUN_ID}{uuid.uuid4().hex[:6]}-audit-{{project_id}}-{{yyyy.MM}}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STACKTRAIL_* variables from the developer's shell leak into settings tests."""
    for name in list(os.environ):
        if name.startswith("STACKTRAIL_"):
            monkeypatch.delenv(name)


def reader_auth(devstack: dict[str, str], letter: str) -> dict[str, str]:
    """clouds.yaml `auth:` of the dev stack's reader of project A or B (a customer)."""
    upper = letter.upper()
    return {
        "auth_url": devstack["DEVSTACK_KEYSTONE_URL"],
        "username": devstack[f"DEVSTACK_PROJECT_{upper}_READER_USER"],
        "password": devstack[f"DEVSTACK_PROJECT_{upper}_READER_PASSWORD"],
        "project_name": devstack[f"DEVSTACK_PROJECT_{upper}_NAME"],
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
