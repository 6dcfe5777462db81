"""`/readyz`'s checks from the composition root prove the service credentials (a
Keystone token) and the archive store, against the dev stack's Keystone and Swift."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, cast

import pytest

from stacktrail.app import Services, _readiness
from stacktrail.keystone import KeystoneClient
from tests.support.config_store import make_settings


def services_of(**overrides: Any) -> Services:
    settings = make_settings(**({"search_url": ""} | overrides))
    keystone = KeystoneClient(settings) if settings.keystone_url else None
    # _readiness reads only these
    fake = _Fake(
        settings=settings, keystone=keystone, source=None, archive=None, workers=None, closing=[]
    )
    return cast(Services, fake)


class _Fake:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def keystone_overrides(devstack: dict[str, str], password: str | None = None) -> dict[str, Any]:
    return {
        "keystone_url": devstack["DEVSTACK_KEYSTONE_URL"],
        "keystone_username": devstack["DEVSTACK_SERVICE_USER"],
        "keystone_password": password or devstack["DEVSTACK_SERVICE_PASSWORD"],
        "keystone_project_name": devstack["DEVSTACK_SERVICE_PROJECT_NAME"],
        "archive_regions": ["RegionOne"],
    }


async def test_a_wrong_service_password_is_not_ready(devstack: dict[str, str]) -> None:
    good = _readiness(services_of(**keystone_overrides(devstack)))
    assert await good["keystone"]()
    assert await good["archive"]()  # Swift: catalog endpoint and the service account
    both = [devstack["DEVSTACK_SWIFT_REGION"], devstack["DEVSTACK_SWIFT2_REGION"]]
    both_regions = keystone_overrides(devstack) | {"archive_regions": both}
    assert await _readiness(services_of(**both_regions))["archive"]()  # each region's Swift
    elsewhere = keystone_overrides(devstack) | {"archive_regions": ["RegionOne", "Nowhere"]}
    with pytest.raises(RuntimeError, match="no object-store endpoint for Nowhere"):
        await _readiness(services_of(**elsewhere))["archive"]()
    bad = _readiness(services_of(**keystone_overrides(devstack, password="wrong")))
    with pytest.raises(Exception, match=r"(?i)unauthori|401|auth"):
        await bad["keystone"]()
    with pytest.raises(Exception):  # noqa: B017, PT011 - the catalog needs the token too
        await bad["archive"]()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
async def test_an_unwritable_archive_directory_is_not_ready(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    checks = _readiness(services_of(archive_store="file", archive_dir=root))
    assert await checks["archive"]()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(RuntimeError, match="not writable"):
            await checks["archive"]()
    finally:
        root.chmod(stat.S_IRWXU)


async def test_the_search_check_keeps_one_client_and_says_when_search_is_down(
    devstack: dict[str, str],
) -> None:
    services = services_of(search_url=devstack["DEVSTACK_SEARCH_URL"])
    checks = _readiness(services)
    assert await checks["search"]()
    assert await checks["search"]()  # the same client again: not closed by the first probe
    assert len(services.closing) == 1  # closed with the services
    for close in services.closing:
        await close()
    down = services_of(search_url="http://127.0.0.1:9")
    with pytest.raises(Exception, match=r"(?i)search"):
        await _readiness(down)["search"]()
    for close in down.closing:
        await close()
