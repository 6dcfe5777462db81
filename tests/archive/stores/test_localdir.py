"""The `file` store: atomic writes under a local directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from stacktrail.archive.stores.base import (
    Bucket,
    ContainerAccessError,
    NoSuchObject,
    ObjectInfo,
    md5_hex,
)
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.domain.errors import PermanentError
from stacktrail.domain.trail import WriteMode


def xattrs_work(directory: Path) -> bool:
    probe = directory / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.test", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


StoreT = TypeVar("StoreT", bound=LocalDirStore)


def store_keeping_expiry(root: Path, kind: Callable[[Path], StoreT]) -> StoreT:
    """A file store under `root`; skips the test where the file system cannot keep the
    expiry (no user xattrs)."""
    if not xattrs_work(root):
        pytest.skip("this file system has no user xattrs: the file store keeps no expiry")
    return kind(root)


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
    if not xattrs_work(tmp_path):
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


@pytest.mark.parametrize("container", [".", "..", "a/b", "", "a\x00b", "é" * 129])
@pytest.mark.parametrize("mode", list(WriteMode))
async def test_containers_cannot_leave_the_root(
    tmp_path: Path, container: str, mode: WriteMode
) -> None:
    root = tmp_path / "archive"
    os.mkdir(root)
    store = LocalDirStore(root)
    bucket = Bucket("p1", "RegionOne", container, mode)
    with pytest.raises(PermanentError, match="invalid container name"):
        await store.put(bucket, "AUTH_b/victim/k", b"x", {})
    assert os.listdir(tmp_path) == ["archive"]  # nothing written beside the root
    assert os.listdir(root) == []  # nor inside it


async def test_missing_object_is_404(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    with pytest.raises(PermanentError) as info:
        await store.get(Bucket("p1", "RegionOne", "audit"), "nothing")
    assert info.value.status == 404


async def test_head_set_delete_at_delete(tmp_path: Path) -> None:
    if not xattrs_work(tmp_path):
        pytest.skip("this file system has no user xattrs: there is no metadata to keep")
    store = LocalDirStore(tmp_path)
    bucket = Bucket("p1", "RegionOne", "audit")
    key = "logs/p1/RegionOne/2025/06/14/o.json.gz"
    headers = {
        "Content-Type": "application/gzip",
        "X-Delete-At": "1900000000",
        "X-Object-Meta-Record-Count": "2",
        "X-Object-Meta-Sha256": "ab" * 32,
    }
    await store.put(bucket, key, b"body", headers)

    info = await store.head(bucket, key)
    assert info == ObjectInfo(
        size=4,
        etag=md5_hex(b"body"),
        content_type="application/gzip",
        metadata={"record-count": "2", "sha256": "ab" * 32},
        delete_at=1900000000,
    )

    await store.set_delete_at(bucket, key, 1900003600, info.metadata)
    assert await store.head(bucket, key) == replace(info, delete_at=1900003600)
    stored = await store.get(bucket, key)
    assert stored.body == b"body"
    assert stored.headers["x-delete-at"] == "1900003600"
    assert os.getxattr(tmp_path / "audit" / key, "user.stacktrail.x-delete-at") == b"1900003600"

    await store.set_delete_at(bucket, key, 1900007200, {"record-count": "2"}, content_type="a/b")
    again = await store.head(bucket, key)
    assert again.metadata == {"record-count": "2"}  # what was given replaces the metadata
    assert (again.content_type, again.delete_at) == ("a/b", 1900007200)

    await store.delete(bucket, key)
    await store.delete(bucket, key)  # already gone: fine
    assert await store.list_keys(bucket) == []
    with pytest.raises(NoSuchObject):
        await store.head(bucket, key)
    with pytest.raises(NoSuchObject):
        await store.set_delete_at(bucket, key, 1900000000, {})


async def test_head_without_xattrs_still_answers(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    bucket = Bucket("p1", "RegionOne", "audit")
    (tmp_path / "audit" / "a").mkdir(parents=True)
    (tmp_path / "audit" / "a" / "k").write_bytes(b"copied in by hand")
    info = await store.head(bucket, "a/k")
    assert info == ObjectInfo(size=17, etag=md5_hex(b"copied in by hand"), content_type="")
    with pytest.raises(NoSuchObject):  # a directory is not an object
        await store.head(bucket, "a")
    with pytest.raises(NoSuchObject):
        await store.head(bucket, "a/k/deeper")
    with pytest.raises(NoSuchObject):
        await store.head(Bucket("p1", "RegionOne", "nothing"), "a/k")
    with pytest.raises(PermanentError):
        await store.head(bucket, "../audit/a/k")
    with pytest.raises(PermanentError):
        await store.delete(bucket, "a")  # a directory: refused, not removed
    assert (tmp_path / "audit" / "a" / "k").exists()
