"""S3 adapter against Swift's s3api on the dev stack (Keystone EC2 credentials)."""

from __future__ import annotations

import time

import pytest

from stacktrail.clients.errors import AuthError, PermanentError, TransientError
from stacktrail.clients.s3 import S3Store
from stacktrail.clients.store import Bucket, ContainerAccessError, md5_hex
from stacktrail.settings import Settings
from stacktrail.trails.model import WriteMode
from tests.clients.conftest import REGION, ProjectAdmin, unique
from tests.support.tcpproxy import free_port


async def test_put_get_list_with_metadata(s3_store: S3Store, admin_a: ProjectAdmin) -> None:
    bucket = Bucket("p1", REGION, unique("st-s3"))
    await s3_store.ensure_container(bucket)
    await s3_store.ensure_container(bucket)  # idempotent
    delete_at = int(time.time()) + 86400
    headers = {
        "Content-Type": "application/gzip",
        "X-Delete-At": str(delete_at),
        "X-Object-Meta-Record-Count": "3",
        "X-Object-Meta-Sha256": "ab" * 32,
    }
    body = b"\x1f\x8b some bytes"
    assert await s3_store.put(bucket, "x/p1/RegionOne/o.json.gz", body, headers) == md5_hex(body)
    stored = await s3_store.get(bucket, "x/p1/RegionOne/o.json.gz")
    assert stored.body == body
    assert stored.etag == md5_hex(body)
    assert stored.headers["x-object-meta-record-count"] == "3"
    assert stored.headers["x-object-meta-sha256"] == "ab" * 32
    assert stored.headers["x-delete-at"] == str(delete_at)
    assert stored.headers["content-type"] == "application/gzip"
    assert await s3_store.list_keys(bucket, "x/") == ["x/p1/RegionOne/o.json.gz"]
    # s3api keeps the bucket as a container of the credential's project (project-a)
    assert admin_a.listing(bucket.container) == ["x/p1/RegionOne/o.json.gz"]


async def test_missing_object_is_404(s3_store: S3Store) -> None:
    bucket = Bucket("p1", REGION, unique("st-s3"))
    await s3_store.ensure_container(bucket)
    with pytest.raises(PermanentError) as info:
        await s3_store.get(bucket, "nothing")
    assert info.value.status == 404
    assert await s3_store.list_keys(Bucket("p1", REGION, unique("st-none"))) == []


async def test_acl_mode_never_creates_the_bucket(s3_store: S3Store, admin_a: ProjectAdmin) -> None:
    bucket = Bucket("p1", REGION, unique("st-s3-acl"), WriteMode.ACL)
    await s3_store.ensure_container(bucket)
    with pytest.raises(ContainerAccessError, match="does not grant write"):
        await s3_store.put(bucket, "k", b"x", {})
    assert admin_a.request("HEAD", bucket.container).status_code == 404


async def test_wrong_secret_is_an_auth_error(service_settings: Settings) -> None:
    store = S3Store(
        endpoint_url=service_settings.s3_endpoint_url,
        access_key=service_settings.s3_access_key,
        secret_key="not-the-secret",
        region=REGION,
    )
    try:
        with pytest.raises(AuthError):
            await store.put(Bucket("p1", REGION, unique("st-s3")), "k", b"x", {})
    finally:
        await store.aclose()


async def test_unreachable_endpoint_is_transient(service_settings: Settings) -> None:
    store = S3Store(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key="k",
        secret_key="s",
        region=REGION,
    )
    try:
        with pytest.raises(TransientError, match="unreachable"):
            await store.put(Bucket("p1", REGION, "c"), "k", b"x", {})
    finally:
        await store.aclose()
