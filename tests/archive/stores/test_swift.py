"""Swift adapter against the dev stack's Swift behind Keystone (keystoneauth)."""

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
from stacktrail.archive.stores.swift import SwiftStore, account_url
from stacktrail.domain.errors import AuthError, PermanentError, TransientError
from stacktrail.domain.trail import UNSCOPED, WriteMode
from stacktrail.keystone import KeystoneClient
from tests.support.stores import REGION, AclIdentity, ProjectAdmin, unique
from tests.support.tcpproxy import free_port


def test_account_url_rewrites_the_service_account() -> None:
    assert (
        account_url("http://swift:8080/v1/AUTH_0123service", "abc")
        == "http://swift:8080/v1/AUTH_abc"
    )
    assert account_url("https://s/object-store/v1/KEY_x/", "p") == "https://s/object-store/v1/KEY_p"
    with pytest.raises(PermanentError):
        account_url("http://swift:8080/v1", "p")


async def test_put_get_list_in_the_projects_own_account(
    swift_store: SwiftStore, admin_a: ProjectAdmin, admin_b: ProjectAdmin
) -> None:
    container = unique("st-swift")
    delete_at = str(int(time.time()) + 86400)
    for admin in (admin_a, admin_b):
        bucket = Bucket(admin.project_id, REGION, container)
        await swift_store.ensure_container(bucket)
        body = f"body of {admin.project_id}".encode()
        headers = {"X-Delete-At": delete_at, "X-Object-Meta-Record-Count": "7"}
        etag = await swift_store.put(bucket, "p/a b/obj.json.gz", body, headers)
        assert etag == md5_hex(body)
        stored = await swift_store.get(bucket, "p/a b/obj.json.gz")
        assert stored.body == body
        assert stored.headers["x-delete-at"] == delete_at
        assert stored.headers["x-object-meta-record-count"] == "7"
        assert await swift_store.list_keys(bucket, "p/") == ["p/a b/obj.json.gz"]
        # the project's own admin sees it in its own account
        assert admin.listing(container) == ["p/a b/obj.json.gz"]


async def test_the_unscoped_trail_writes_into_the_service_account(
    swift_store: SwiftStore, keystone: KeystoneClient
) -> None:
    bucket = Bucket(UNSCOPED, REGION, unique("st-unscoped"))
    await swift_store.ensure_container(bucket)
    await swift_store.put(bucket, "k", b"x", {})
    catalog_url = (await keystone.object_store_endpoints())[REGION]
    assert await swift_store.account(bucket) == catalog_url
    assert await swift_store.list_keys(bucket) == ["k"]


async def test_an_expired_token_is_renewed_once(
    swift_store: SwiftStore, admin_a: ProjectAdmin
) -> None:
    bucket = Bucket(admin_a.project_id, REGION, unique("st-reauth"))
    await swift_store.ensure_container(bucket)
    # what a token revoked meanwhile looks like
    swift_store._tokens[WriteMode.RESELLER] = "gAAAAAB-no-such-token"
    assert await swift_store.put(bucket, "k", b"x", {}) == md5_hex(b"x")


async def test_acl_mode_never_creates_and_needs_the_grant(
    acl_identity: AclIdentity, admin_a: ProjectAdmin
) -> None:
    store = acl_identity.swift_store()
    try:
        missing = Bucket(admin_a.project_id, REGION, unique("st-acl-missing"), WriteMode.ACL)
        await store.ensure_container(missing)
        with pytest.raises(ContainerAccessError) as info:
            await store.put(missing, "k", b"x", {})
        assert f"container {missing.container} in project {admin_a.project_id}" in str(info.value)
        assert "does not grant write to the stacktrail service user" in str(info.value)
        assert admin_a.request("HEAD", missing.container).status_code == 404

        container = unique("st-acl")
        assert admin_a.request("PUT", container).status_code in (201, 202)
        bucket = Bucket(admin_a.project_id, REGION, container, WriteMode.ACL)
        with pytest.raises(ContainerAccessError) as info:
            await store.put(bucket, "k", b"x", {})
        assert info.value.status == 403

        granted = admin_a.request(
            "POST", container, headers={"X-Container-Write": acl_identity.grant}
        )
        assert granted.status_code == 204
        assert await store.put(bucket, "k", b"x", {}) == md5_hex(b"x")
        assert admin_a.listing(container) == ["k"]
    finally:
        await store.aclose()


async def test_reseller_mode_without_the_reseller_role_is_an_auth_error(
    acl_identity: AclIdentity, admin_b: ProjectAdmin
) -> None:
    store = SwiftStore(KeystoneClient(acl_identity.settings))
    try:
        with pytest.raises(AuthError, match="reseller role"):
            await store.ensure_container(Bucket(admin_b.project_id, REGION, unique("st-nores")))
    finally:
        await store.aclose()


async def test_a_container_deleted_behind_our_back_is_created_again(
    swift_store: SwiftStore, admin_b: ProjectAdmin
) -> None:
    bucket = Bucket(admin_b.project_id, REGION, unique("st-recreate"))
    await swift_store.ensure_container(bucket)
    await swift_store.put(bucket, "one", b"1", {})
    assert admin_b.request("DELETE", f"{bucket.container}/one").status_code == 204
    assert admin_b.request("DELETE", bucket.container).status_code == 204
    await swift_store.ensure_container(bucket)  # cached: no request
    assert await swift_store.put(bucket, "two", b"2", {}) == md5_hex(b"2")
    assert admin_b.listing(bucket.container) == ["two"]


async def test_unreachable_swift_is_transient(keystone: KeystoneClient) -> None:
    port = free_port()
    store = SwiftStore(keystone, endpoints={REGION: f"http://127.0.0.1:{port}/v1/AUTH_x"})
    try:
        with pytest.raises(TransientError, match="unreachable"):
            await store.put(Bucket("p1", REGION, "c"), "k", b"x", {})
    finally:
        await store.aclose()


async def test_unknown_region_is_permanent(swift_store: SwiftStore) -> None:
    with pytest.raises(PermanentError, match="no object-store endpoint"):
        await swift_store.put(Bucket("p1", "NoSuchRegion", "c"), "k", b"x", {})


async def test_head_set_delete_at_delete(swift_store: SwiftStore, admin_a: ProjectAdmin) -> None:
    bucket = Bucket(admin_a.project_id, REGION, unique("st-meta"))
    await swift_store.ensure_container(bucket)
    key = "logs/p/RegionOne/2025/06/14/o.json.gz"
    body = b"\x1f\x8b gzip bytes"
    first = int(time.time()) + 86400
    headers = {
        "Content-Type": "application/gzip",
        "X-Delete-At": str(first),
        "X-Object-Meta-Record-Count": "7",
        "X-Object-Meta-Sha256": "ab" * 32,
    }
    await swift_store.put(bucket, key, body, headers)

    info = await swift_store.head(bucket, key)
    assert info == ObjectInfo(
        size=len(body),
        etag=md5_hex(body),
        content_type="application/gzip",
        metadata={"record-count": "7", "sha256": "ab" * 32},
        delete_at=first,
    )

    later = first + 3600
    await swift_store.set_delete_at(
        bucket, key, later, info.metadata, content_type=info.content_type
    )
    assert await swift_store.head(bucket, key) == replace(info, delete_at=later)
    # the project's own admin sees the same object, body untouched
    seen = admin_a.request("GET", f"{bucket.container}/{key}")
    assert seen.content == body
    assert seen.headers["x-delete-at"] == str(later)
    assert seen.headers["x-object-meta-record-count"] == "7"
    assert seen.headers["content-type"] == "application/gzip"

    # without the content type the adapter reads it first: still kept
    await swift_store.set_delete_at(bucket, key, later + 60, {"record-count": "7"})
    again = await swift_store.head(bucket, key)
    assert again.content_type == "application/gzip"
    assert again.delete_at == later + 60
    assert again.metadata == {"record-count": "7"}  # what was given replaces the metadata

    await swift_store.delete(bucket, key)
    await swift_store.delete(bucket, key)  # already gone: fine
    assert admin_a.listing(bucket.container) == []
    with pytest.raises(NoSuchObject):
        await swift_store.head(bucket, key)
    with pytest.raises(NoSuchObject):
        await swift_store.get(bucket, key)
    with pytest.raises(NoSuchObject):
        await swift_store.set_delete_at(bucket, key, later, {}, content_type="text/plain")


async def test_an_expiry_in_the_past_is_refused(
    swift_store: SwiftStore, admin_b: ProjectAdmin
) -> None:
    bucket = Bucket(admin_b.project_id, REGION, unique("st-past"))
    await swift_store.ensure_container(bucket)
    await swift_store.put(bucket, "k", b"x", {"X-Object-Meta-A": "1"})
    with pytest.raises(PermanentError) as info:
        await swift_store.set_delete_at(bucket, "k", int(time.time()) - 60, {"a": "1"})
    assert info.value.status == 400
    assert not isinstance(info.value, NoSuchObject)
    assert (await swift_store.head(bucket, "k")).delete_at is None


async def test_head_renews_an_expired_token(swift_store: SwiftStore, admin_a: ProjectAdmin) -> None:
    bucket = Bucket(admin_a.project_id, REGION, unique("st-reauth"))
    await swift_store.ensure_container(bucket)
    await swift_store.put(bucket, "k", b"xy", {})
    swift_store._tokens[WriteMode.RESELLER] = "gAAAAAB-no-such-token"
    assert (await swift_store.head(bucket, "k")).size == 2


async def test_acl_mode_metadata_needs_the_grants(
    acl_identity: AclIdentity, admin_a: ProjectAdmin
) -> None:
    container = unique("st-acl-meta")
    assert admin_a.request("PUT", container).status_code in (201, 202)
    assert admin_a.request("PUT", f"{container}/k", content=b"x").status_code == 201
    bucket = Bucket(admin_a.project_id, REGION, container, WriteMode.ACL)
    store = acl_identity.swift_store()
    delete_at = int(time.time()) + 86400
    try:
        with pytest.raises(ContainerAccessError) as info:
            await store.head(bucket, "k")
        assert info.value.status == 403
        with pytest.raises(ContainerAccessError):
            await store.delete(bucket, "k")

        write = {"X-Container-Write": acl_identity.grant}
        assert admin_a.request("POST", container, headers=write).status_code == 204
        # a write grant allows POST and DELETE, not HEAD
        await store.set_delete_at(bucket, "k", delete_at, {"a": "1"}, content_type="text/plain")
        seen = admin_a.request("HEAD", f"{container}/k")
        assert seen.headers["x-delete-at"] == str(delete_at)
        assert seen.headers["x-object-meta-a"] == "1"
        with pytest.raises(ContainerAccessError):
            await store.head(bucket, "k")

        read = {**write, "X-Container-Read": acl_identity.grant}
        assert admin_a.request("POST", container, headers=read).status_code == 204
        assert (await store.head(bucket, "k")).delete_at == delete_at
        await store.delete(bucket, "k")
        assert admin_a.listing(container) == []
    finally:
        await store.aclose()
