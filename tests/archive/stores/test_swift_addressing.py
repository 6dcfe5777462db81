"""No name from input can move a Swift request out of its project's account.

Against the dev stack's real Swift: the URL checked is the one httpx sends.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacktrail.archive.stores.base import Bucket, md5_hex
from stacktrail.archive.stores.swift import SwiftStore, inside_container
from stacktrail.config import Settings
from stacktrail.domain.errors import PermanentError
from stacktrail.domain.trail import WriteMode
from stacktrail.keystone import KeystoneClient
from tests.support.stores import REGION, AclIdentity, ProjectAdmin, unique

ACCOUNT = "http://swift:8080/v1/AUTH_aaaa"


@pytest.fixture
async def recording_store(keystone: KeystoneClient) -> AsyncIterator[tuple[SwiftStore, list[str]]]:
    store = SwiftStore(keystone)
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(str(request.url))

    store._http.event_hooks["request"].append(record)
    yield store, sent
    await store.aclose()


@pytest.mark.parametrize("container", [".", ".."])
@pytest.mark.parametrize("mode", list(WriteMode))
async def test_a_dot_container_never_reaches_another_account(
    recording_store: tuple[SwiftStore, list[str]],
    admin_a: ProjectAdmin,
    admin_b: ProjectAdmin,
    container: str,
    mode: WriteMode,
) -> None:
    # The D1 sequence at the store layer: A's trail, container `..`, prefix `AUTH_<B>/victim`.
    store, sent = recording_store
    victim = unique("victim")
    assert admin_b.request("PUT", victim).status_code in (201, 202)
    bucket = Bucket(admin_a.project_id, REGION, container, mode)
    key = f"AUTH_{admin_b.project_id}/{victim}/2026/12/01/a.json"
    refusal = re.escape("must not be `.` or `..`")
    if mode is WriteMode.RESELLER:  # ACL mode never creates containers
        with pytest.raises(PermanentError, match=refusal):
            await store.ensure_container(bucket)
    with pytest.raises(PermanentError, match=refusal):
        await store.put(bucket, key, b"[]", {})
    assert sent == []  # refused before anything was sent
    assert admin_b.listing(victim) == []


@pytest.mark.parametrize(
    "key", ["../x", "a/../../AUTH_b/c", "./a", "a//b", "/a", "a/.", "a/..", ""]
)
async def test_dot_segments_in_keys_are_refused_before_sending(
    recording_store: tuple[SwiftStore, list[str]], admin_a: ProjectAdmin, key: str
) -> None:
    store, sent = recording_store
    with pytest.raises(PermanentError, match="object key"):
        await store.put(Bucket(admin_a.project_id, REGION, "c"), key, b"x", {})
    assert sent == []


async def test_what_httpx_sends_stays_in_the_container(
    recording_store: tuple[SwiftStore, list[str]], admin_a: ProjectAdmin
) -> None:
    store, sent = recording_store
    bucket = Bucket(admin_a.project_id, REGION, unique("st-odd %2e%2e ü"))
    await store.ensure_container(bucket)
    assert await store.put(bucket, "a/%2e%2e/b", b"x", {}) == md5_hex(b"x")
    account = await store.account(bucket)
    assert sent
    assert all(url.startswith(account + "/st-odd%20%252e%252e%20%C3%BC-") for url in sent)
    assert await store.list_keys(bucket) == ["a/%2e%2e/b"]  # a literal name, not a climb


def test_the_last_line_refuses_a_url_httpx_would_collapse() -> None:
    assert httpx.URL(f"{ACCOUNT}/../AUTH_bbbb/x").path == "/v1/AUTH_bbbb/x"  # the D1 mechanism
    with pytest.raises(PermanentError, match="leaves"):
        inside_container(f"{ACCOUNT}/../AUTH_bbbb/x", f"{ACCOUNT}/..")
    with pytest.raises(PermanentError, match="leaves"):
        inside_container(f"{ACCOUNT}/c/../../AUTH_bbbb/x", f"{ACCOUNT}/c")
    with pytest.raises(PermanentError, match="leaves"):
        inside_container("http://elsewhere:8080/v1/AUTH_aaaa/c/x", f"{ACCOUNT}/c")
    assert inside_container(f"{ACCOUNT}/c/a/b", f"{ACCOUNT}/c") == f"{ACCOUNT}/c/a/b"


@settings(max_examples=300, deadline=None)
@given(
    container=st.text(max_size=40) | st.sampled_from([".", "..", "%2e%2e", "a/..", "..%2f"]),
    key=st.lists(
        st.text(max_size=8) | st.sampled_from([".", "..", "%2e", "AUTH_b"]), min_size=1, max_size=4
    ).map("/".join),
)
async def test_no_container_or_key_changes_the_account(container: str, key: str) -> None:
    keystone = KeystoneClient(Settings(keystone_url="http://127.0.0.1:9/v3"))
    store = SwiftStore(keystone, endpoints={REGION: ACCOUNT})
    try:
        url = await store._object_url(Bucket("aaaa", REGION, container), key)
    except PermanentError:
        return
    finally:
        await store.aclose()
    sent = httpx.Request("PUT", url).url  # the URL as httpx would send it
    assert sent.host == "swift"
    assert sent.raw_path.startswith(b"/v1/AUTH_aaaa/")
    container_segment = sent.raw_path.split(b"/")[3]
    assert container_segment not in (b"", b".", b"..")
    assert httpx.URL(url).raw_path == url.removeprefix("http://swift:8080").encode()


async def test_acl_mode_without_an_acl_writer_fails_clearly(
    swift_store: SwiftStore, admin_a: ProjectAdmin
) -> None:
    container = unique("st-acl-none")
    assert admin_a.request("PUT", container).status_code in (201, 202)
    bucket = Bucket(admin_a.project_id, REGION, container, WriteMode.ACL)
    with pytest.raises(PermanentError, match="no ACL writer is configured"):
        await swift_store.put(bucket, "k", b"x", {})
    assert admin_a.listing(container) == []  # the reseller identity did not write either


async def test_an_acl_writer_with_the_reseller_role_is_refused(
    service_settings: Settings, admin_a: ProjectAdmin
) -> None:
    # The service identity holds ResellerAdmin: as ACL writer, every ACL would grant nothing.
    store = SwiftStore(
        KeystoneClient(service_settings), acl_writer=KeystoneClient(service_settings)
    )
    container = unique("st-acl-reseller")
    assert admin_a.request("PUT", container).status_code in (201, 202)
    try:
        with pytest.raises(PermanentError, match="holds the reseller role"):
            await store.put(
                Bucket(admin_a.project_id, REGION, container, WriteMode.ACL), "k", b"", {}
            )
    finally:
        await store.aclose()
    assert admin_a.listing(container) == []


async def test_acl_mode_writes_only_where_the_acl_grants(
    acl_identity: AclIdentity, admin_a: ProjectAdmin, admin_b: ProjectAdmin
) -> None:
    """The issue's case: B's private container, no grant -> Swift says 403; grant -> 201."""
    store = acl_identity.swift_store()
    private = unique("st-private")
    assert admin_b.request("PUT", private).status_code in (201, 202)
    try:
        with pytest.raises(PermanentError) as refused:
            await store.put(
                Bucket(admin_b.project_id, REGION, private, WriteMode.ACL), "k", b"x", {}
            )
        assert refused.value.status == 403
        assert admin_b.listing(private) == []
        write = {"X-Container-Write": acl_identity.grant}
        assert admin_b.request("POST", private, headers=write).status_code == 204
        bucket = Bucket(admin_b.project_id, REGION, private, WriteMode.ACL)
        assert await store.put(bucket, "k", b"x", {}) == md5_hex(b"x")
        assert admin_b.listing(private) == ["k"]
    finally:
        await store.aclose()
