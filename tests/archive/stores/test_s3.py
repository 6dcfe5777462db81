"""S3 adapter against Swift's s3api on the dev stack (Keystone EC2 credentials)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from stacktrail.archive.stores.base import (
    Bucket,
    ContainerAccessError,
    NoSuchObject,
    ObjectInfo,
    md5_hex,
)
from stacktrail.archive.stores.s3 import S3Store
from stacktrail.config import Settings
from stacktrail.domain.errors import AuthError, PermanentError, TransientError
from stacktrail.domain.trail import WriteMode
from tests.support.stores import REGION, ProjectAdmin, unique
from tests.support.tcpproxy import free_port


async def test_put_get_list_with_metadata(s3_store: S3Store, admin_a: ProjectAdmin) -> None:
    bucket = Bucket("p1", REGION, unique("p1-st-s3"))
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
    bucket = Bucket("p1", REGION, unique("p1-st-s3"))
    await s3_store.ensure_container(bucket)
    with pytest.raises(PermanentError) as info:
        await s3_store.get(bucket, "nothing")
    assert info.value.status == 404
    assert await s3_store.list_keys(Bucket("p1", REGION, unique("p1-st-none"))) == []


async def test_acl_mode_never_creates_the_bucket(s3_store: S3Store, admin_a: ProjectAdmin) -> None:
    bucket = Bucket("p1", REGION, unique("p1-st-s3-acl"), WriteMode.ACL)
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
            await store.put(Bucket("p1", REGION, unique("p1-st-s3")), "k", b"x", {})
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
            await store.put(Bucket("p1", REGION, "p1-c"), "k", b"x", {})
    finally:
        await store.aclose()


async def test_head_set_delete_at_delete(s3_store: S3Store, admin_a: ProjectAdmin) -> None:
    bucket = Bucket("p1", REGION, unique("p1-st-s3-meta"))
    await s3_store.ensure_container(bucket)
    key = "x/p1/RegionOne/2025/06/14/o.json.gz"
    body = b"\x1f\x8b gzip bytes"
    first = int(time.time()) + 86400
    headers = {
        "Content-Type": "application/gzip",
        "X-Delete-At": str(first),
        "X-Object-Meta-Record-Count": "3",
        "X-Object-Meta-Sha256": "ab" * 32,
    }
    await s3_store.put(bucket, key, body, headers)

    info = await s3_store.head(bucket, key)
    assert info == ObjectInfo(
        size=len(body),
        etag=md5_hex(body),
        content_type="application/gzip",
        metadata={"record-count": "3", "sha256": "ab" * 32},
        delete_at=first,
    )

    later = first + 3600
    await s3_store.set_delete_at(bucket, key, later, info.metadata, content_type=info.content_type)
    assert await s3_store.head(bucket, key) == replace(info, delete_at=later)
    stored = await s3_store.get(bucket, key)
    assert stored.body == body
    assert stored.headers["x-delete-at"] == str(later)
    assert stored.headers["x-object-meta-sha256"] == "ab" * 32
    # what Swift keeps under the s3api bucket (project-a's container of that name)
    seen = admin_a.request("HEAD", f"{bucket.container}/{key}")
    assert seen.headers["x-object-meta-delete-at"] == str(later)
    assert seen.headers["x-object-meta-record-count"] == "3"
    assert seen.headers["content-type"] == "application/gzip"

    # without the content type the adapter reads it first: still kept
    await s3_store.set_delete_at(bucket, key, later + 60, {"record-count": "3"})
    again = await s3_store.head(bucket, key)
    assert again.content_type == "application/gzip"
    assert again.delete_at == later + 60
    assert again.metadata == {"record-count": "3"}  # what was given replaces the metadata
    assert again.etag == md5_hex(body)

    await s3_store.delete(bucket, key)
    await s3_store.delete(bucket, key)  # already gone: fine
    assert await s3_store.list_keys(bucket) == []
    with pytest.raises(NoSuchObject):
        await s3_store.head(bucket, key)
    with pytest.raises(NoSuchObject):
        await s3_store.get(bucket, key)
    with pytest.raises(NoSuchObject):
        await s3_store.set_delete_at(bucket, key, later, {}, content_type="text/plain")


async def test_head_of_a_missing_bucket_is_no_such_object(s3_store: S3Store) -> None:
    bucket = Bucket("p1", REGION, unique("p1-st-s3-none"))
    with pytest.raises(NoSuchObject):
        await s3_store.head(bucket, "k")
    with pytest.raises(PermanentError) as info:  # the bucket, not the object, is missing
        await s3_store.set_delete_at(bucket, "k", int(time.time()) + 60, {}, content_type="a/b")
    assert info.value.status == 404


async def test_metadata_calls_with_a_wrong_secret_are_auth_errors(
    s3_store: S3Store, service_settings: Settings
) -> None:
    bucket = Bucket("p1", REGION, unique("p1-st-s3"))
    await s3_store.ensure_container(bucket)
    await s3_store.put(bucket, "k", b"x", {})
    store = S3Store(
        endpoint_url=service_settings.s3_endpoint_url,
        access_key=service_settings.s3_access_key,
        secret_key="not-the-secret",
        region=REGION,
    )
    try:
        with pytest.raises(AuthError):
            await store.set_delete_at(bucket, "k", int(time.time()) + 60, {}, content_type="a/b")
        with pytest.raises(AuthError):
            await store.delete(bucket, "k")
        with pytest.raises(AuthError):
            await store.head(bucket, "k")
    finally:
        await store.aclose()
    assert (await s3_store.head(bucket, "k")).size == 1
