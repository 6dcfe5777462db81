"""Fixtures for the object-store adapters: the dev stack's real Keystone, Swift and s3api.

`devstack` (tests/conftest.py) reads `var/dev-stack/env`. `tests/sinks/conftest.py`
imports these fixtures too, so the archive sink tests use the same identities.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from stacktrail.archive.stores import open_store
from stacktrail.archive.stores.s3 import S3Store
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.keystone import KeystoneClient

REGION = "RegionOne"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def keystone_settings(env: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "keystone_url": env["DEVSTACK_KEYSTONE_URL"],
        "keystone_username": env["STACKTRAIL_KEYSTONE_USERNAME"],
        "keystone_password": env["STACKTRAIL_KEYSTONE_PASSWORD"],
        "keystone_project_name": env["STACKTRAIL_KEYSTONE_PROJECT_NAME"],
        "keystone_user_domain_name": "Default",
        "keystone_project_domain_name": "Default",
        "s3_endpoint_url": env["DEVSTACK_S3_URL"],
        "s3_access_key": env["DEVSTACK_S3_ACCESS_KEY"],
        "s3_secret_key": env["DEVSTACK_S3_SECRET_KEY"],
        "s3_region": REGION,
    }
    values.update(overrides)
    return Settings(**values)


def user_session(env: dict[str, str], user: str, password: str, project: str) -> ks_session.Session:
    auth = v3.Password(
        auth_url=env["DEVSTACK_KEYSTONE_URL"],
        username=user,
        password=password,
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    return ks_session.Session(auth=auth, timeout=30)


@dataclass(frozen=True)
class ProjectAdmin:
    """A project's own admin, talking to its own Swift account (what the customer sees)."""

    project_id: str
    token: str
    account_url: str

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.account_url}/{path}", headers=headers, timeout=30, **kwargs
        )

    def listing(self, container: str, prefix: str = "") -> list[str]:
        response = self.request("GET", container, params={"format": "json", "prefix": prefix})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [item["name"] for item in response.json()]


def project_admin(env: dict[str, str], letter: str) -> ProjectAdmin:
    upper = letter.upper()
    session = user_session(
        env,
        env[f"DEVSTACK_PROJECT_{upper}_ADMIN_USER"],
        env[f"DEVSTACK_PROJECT_{upper}_ADMIN_PASSWORD"],
        env[f"DEVSTACK_PROJECT_{upper}_NAME"],
    )
    project_id = env[f"DEVSTACK_PROJECT_{upper}_ID"]
    return ProjectAdmin(
        project_id=project_id,
        token=session.get_token(),
        account_url=f"{env['DEVSTACK_SWIFT_URL']}/v1/AUTH_{project_id}",
    )


@dataclass(frozen=True)
class AclIdentity:
    """A service identity without the reseller role: it writes only where a grant allows."""

    user_id: str
    project_id: str  # the service project
    settings: Settings  # this identity as the only one (STACKTRAIL_KEYSTONE_*)
    service_settings: Settings  # the service identity plus this one as STACKTRAIL_SWIFT_ACL_*

    @property
    def grant(self) -> str:
        return f"{self.project_id}:{self.user_id}"

    def swift_store(self) -> SwiftStore:
        """The store as `open_store` builds it: reseller identity + this ACL writer."""
        store = open_store(self.service_settings, KeystoneClient(self.service_settings))
        assert isinstance(store, SwiftStore)
        return store


@pytest.fixture(scope="session")
def service_settings(devstack: dict[str, str]) -> Settings:
    return keystone_settings(devstack)


@pytest.fixture(scope="session")
def keystone(service_settings: Settings) -> KeystoneClient:
    return KeystoneClient(service_settings)


@pytest.fixture
async def swift_store(keystone: KeystoneClient) -> AsyncIterator[SwiftStore]:
    store = SwiftStore(keystone)
    yield store
    await store.aclose()


@pytest.fixture
async def s3_store(service_settings: Settings) -> AsyncIterator[S3Store]:
    store = S3Store.from_settings(service_settings)
    yield store
    await store.aclose()


@pytest.fixture(scope="session")
def admin_a(devstack: dict[str, str]) -> ProjectAdmin:
    return project_admin(devstack, "a")


@pytest.fixture(scope="session")
def admin_b(devstack: dict[str, str]) -> ProjectAdmin:
    return project_admin(devstack, "b")


@pytest.fixture(scope="session")
def acl_identity(devstack: dict[str, str]) -> Iterator[AclIdentity]:
    """A fresh Keystone user with `member` on the service project and nothing else."""
    cloud_admin = user_session(
        devstack,
        devstack["DEVSTACK_CLOUD_ADMIN_USER"],
        devstack["DEVSTACK_CLOUD_ADMIN_PASSWORD"],
        devstack["DEVSTACK_CLOUD_ADMIN_PROJECT"],
    )
    name = unique("acl-writer")
    password = uuid.uuid4().hex
    url = devstack["DEVSTACK_KEYSTONE_URL"]
    project = cloud_admin.get(
        f"{url}/projects", params={"name": devstack["DEVSTACK_SERVICE_PROJECT_NAME"]}
    ).json()["projects"][0]
    role = cloud_admin.get(f"{url}/roles", params={"name": "member"}).json()["roles"][0]
    user = cloud_admin.post(
        f"{url}/users",
        json={"user": {"name": name, "password": password, "domain_id": "default"}},
    ).json()["user"]
    cloud_admin.put(f"{url}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")
    settings = keystone_settings(
        devstack,
        keystone_username=name,
        keystone_password=password,
        keystone_project_name=project["name"],
    )
    service = keystone_settings(
        devstack,
        archive_store="swift",
        swift_acl_username=name,
        swift_acl_password=password,
        swift_acl_project_name=project["name"],
    )
    yield AclIdentity(
        user_id=user["id"], project_id=project["id"], settings=settings, service_settings=service
    )
    cloud_admin.delete(f"{url}/users/{user['id']}")
