"""The `file` store: atomic writes under a local directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacktrail.clients.errors import PermanentError
from stacktrail.clients.localdir import LocalDirStore
from stacktrail.clients.store import Bucket, ContainerAccessError, md5_hex
from stacktrail.trails.model import WriteMode


async def test_put_get_list(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    bucket = Bucket("p1", "RegionOne", "audit")
    await store.ensure_container(bucket)
    headers = {"X-Delete-At": "1700000000", "X-Object-Meta-Record-Count": "2"}
    assert await store.put(bucket, "a/b/c.json.gz", b"body", headers) == md5_hex(b"body")
    assert (tmp_path / "audit" / "a" / "b" / "c.json.gz").read_bytes() == b"body"
    stored = await store.get(bucket, "a/b/c.json.gz")
    assert stored.body == b"body"
    assert stored.etag == md5_hex(b"body")
    assert await store.list_keys(bucket) == ["a/b/c.json.gz"]
    assert await store.list_keys(bucket, "x") == []
    # overwriting is atomic and leaves no temporary file behind
    await store.put(bucket, "a/b/c.json.gz", b"other", headers)
    assert os.listdir(tmp_path / "audit" / "a" / "b") == ["c.json.gz"]


async def test_headers_are_kept_where_xattrs_work(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.test", b"1")
    except OSError:
        pytest.skip("this file system has no user xattrs; the store still writes the objects")
    store = LocalDirStore(tmp_path)
    bucket = Bucket("p1", "RegionOne", "audit")
    await store.put(bucket, "k", b"x", {"X-Delete-At": "1700000000"})
    assert (await store.get(bucket, "k")).headers["x-delete-at"] == "1700000000"


async def test_acl_mode_needs_an_existing_directory(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    bucket = Bucket("p1", "RegionOne", "theirs", WriteMode.ACL)
    with pytest.raises(ContainerAccessError):
        await store.ensure_container(bucket)
    with pytest.raises(ContainerAccessError):
        await store.put(bucket, "k", b"x", {})
    assert not (tmp_path / "theirs").exists()
    (tmp_path / "theirs").mkdir()
    await store.ensure_container(bucket)
    assert await store.put(bucket, "k", b"x", {}) == md5_hex(b"x")


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", ""])
async def test_keys_cannot_leave_the_container(tmp_path: Path, key: str) -> None:
    store = LocalDirStore(tmp_path)
    with pytest.raises(PermanentError):
        await store.put(Bucket("p1", "RegionOne", "audit"), key, b"x", {})


async def test_missing_object_is_404(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    with pytest.raises(PermanentError) as info:
        await store.get(Bucket("p1", "RegionOne", "audit"), "nothing")
    assert info.value.status == 404
