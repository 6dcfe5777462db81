"""The `file` object store: archives under a local directory (the embedded default).

Layout: `<root>/<container>/<key>`; the key already holds prefix, project and region.
An object is written to a temporary file in its final directory, fsync'ed, renamed into
place and the directory fsync'ed, so a reader never sees half an object and a crash
leaves at most a stray `.tmp-*` file. Headers are kept as `user.stacktrail.*` extended
attributes where the file system supports them (X-Delete-At among them, for a retention
sweep); the store deletes nothing by itself: the scheduler's expiry sweep
(jobs/expiry.py) removes files past their expiry. `set_delete_at` rewrites those
attributes in place (`x-delete-at` and the `x-object-meta-*` set); on a file system
without user xattrs it has nothing to keep the expiry in and does nothing. `head`
computes the ETag by reading the file (the store keeps no checksum of its own).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from stacktrail.archive.durable_fs import fsync_dir
from stacktrail.archive.stores.base import (
    Bucket,
    ContainerAccessError,
    NoSuchObject,
    ObjectInfo,
    StoredObject,
    check_container,
    check_key,
    delete_at_of,
    md5_hex,
    object_meta,
)
from stacktrail.domain.errors import PermanentError, TransientError
from stacktrail.domain.trail import WriteMode

_XATTR_PREFIX = "user.stacktrail."
_META_XATTR = _XATTR_PREFIX + "x-object-meta-"
_DELETE_AT_XATTR = _XATTR_PREFIX + "x-delete-at"
_CONTENT_TYPE_XATTR = _XATTR_PREFIX + "content-type"
_NO_XATTRS = {errno.ENOTSUP, errno.EPERM}
_READ_CHUNK = 1 << 20


def _read_headers(target: Path | int) -> dict[str, str]:
    """The headers kept as xattrs of a file (path or descriptor), lower-case names."""
    headers: dict[str, str] = {}
    try:
        for name in os.listxattr(target):
            if name.startswith(_XATTR_PREFIX):
                headers[name[len(_XATTR_PREFIX) :]] = os.getxattr(target, name).decode()
    except OSError as exc:
        if exc.errno not in _NO_XATTRS:
            raise
    return headers


def _translate(exc: OSError, what: str, *, existing: bool = False) -> Exception:
    """The error an `OSError` means; `existing`: the call is about an object that should
    exist (read, head, update), so a missing file is `NoSuchObject`."""
    if existing and exc.errno in {errno.ENOENT, errno.ENOTDIR, errno.EISDIR}:
        return NoSuchObject(f"{what}: no such object")
    if exc.errno in {errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EDQUOT}:
        return TransientError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc}")


class LocalDirStore:
    name = "file"
    expires_objects = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _container_dir(self, bucket: Bucket) -> Path:
        path = self.root / check_container(bucket.container)
        if os.path.normpath(path.parent) != os.path.normpath(self.root):  # last line
            raise PermanentError(f"container {bucket.container!r} leaves the archive root")
        return path

    async def ensure_container(self, bucket: Bucket) -> None:
        path = self._container_dir(bucket)
        if bucket.write_mode is WriteMode.ACL:
            if not path.is_dir():
                raise ContainerAccessError(bucket, status=404, detail="no such directory")
            return
        try:
            await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise _translate(exc, f"create {path}") from exc

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        container = self._container_dir(bucket)
        target = container / check_key(key)
        if bucket.write_mode is WriteMode.ACL and not container.is_dir():
            raise ContainerAccessError(bucket, status=404, detail="no such directory")
        try:
            await asyncio.to_thread(self._write, container, target, body, dict(headers))
        except OSError as exc:
            raise _translate(exc, f"write {target}") from exc
        return md5_hex(body)

    @staticmethod
    def _write(container: Path, target: Path, body: bytes, headers: dict[str, str]) -> None:
        container.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            for name, value in headers.items():
                try:
                    os.setxattr(fd, _XATTR_PREFIX + name.lower(), value.encode())
                except OSError as exc:  # no user xattrs here: the object still counts
                    if exc.errno not in {errno.ENOTSUP, errno.EPERM, errno.E2BIG, errno.ENOSPC}:
                        raise
                    break
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, target)
        fsync_dir(target.parent)

    async def get(self, bucket: Bucket, key: str) -> StoredObject:
        target = self._container_dir(bucket) / check_key(key)

        def read() -> StoredObject:
            body = target.read_bytes()
            try:
                headers = _read_headers(target)
            except OSError:
                headers = {}
            return StoredObject(body=body, etag=md5_hex(body), headers=headers)

        try:
            return await asyncio.to_thread(read)
        except OSError as exc:
            raise _translate(exc, f"read {target}", existing=True) from exc

    async def head(self, bucket: Bucket, key: str) -> ObjectInfo:
        target = self._container_dir(bucket) / check_key(key)

        def read() -> ObjectInfo:
            fd = os.open(target, os.O_RDONLY)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "not an object", str(target))
                headers = _read_headers(fd)
                digest = hashlib.md5(usedforsecurity=False)
                while chunk := os.read(fd, _READ_CHUNK):
                    digest.update(chunk)
            finally:
                os.close(fd)
            return ObjectInfo(
                size=info.st_size,
                etag=digest.hexdigest(),
                content_type=headers.get("content-type", ""),
                metadata=object_meta(headers),
                delete_at=delete_at_of(headers.get("x-delete-at")),
            )

        try:
            return await asyncio.to_thread(read)
        except OSError as exc:
            raise _translate(exc, f"read {target}", existing=True) from exc

    async def set_delete_at(
        self,
        bucket: Bucket,
        key: str,
        delete_at: int,
        metadata: Mapping[str, str],
        *,
        content_type: str | None = None,
    ) -> None:
        target = self._container_dir(bucket) / check_key(key)
        wanted = {_META_XATTR + name.lower(): value for name, value in metadata.items()}
        wanted[_DELETE_AT_XATTR] = str(delete_at)
        if content_type:
            wanted[_CONTENT_TYPE_XATTR] = content_type

        def write() -> None:
            fd = os.open(target, os.O_RDONLY)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise IsADirectoryError(errno.EISDIR, "not an object", str(target))
                try:
                    for name in os.listxattr(fd):
                        if name.startswith(_META_XATTR) and name not in wanted:
                            os.removexattr(fd, name)
                    for name, value in wanted.items():
                        os.setxattr(fd, name, value.encode())
                except OSError as exc:  # no user xattrs here: nothing keeps the expiry
                    if exc.errno not in _NO_XATTRS:
                        raise
                    return
                os.fsync(fd)
            finally:
                os.close(fd)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise _translate(exc, f"update {target}", existing=True) from exc

    async def delete(self, bucket: Bucket, key: str) -> None:
        target = self._container_dir(bucket) / check_key(key)

        def remove() -> None:
            try:
                os.unlink(target)
            except (FileNotFoundError, NotADirectoryError):
                return  # already gone
            fsync_dir(target.parent)

        try:
            await asyncio.to_thread(remove)
        except OSError as exc:
            raise _translate(exc, f"delete {target}") from exc

    async def list_keys(self, bucket: Bucket, prefix: str = "") -> list[str]:
        container = self._container_dir(bucket)
        # Walk only below the prefix's directory (never above the container).
        parts = prefix.split("/")[:-1]
        safe = all(part not in ("", ".", "..") for part in parts)
        top = container.joinpath(*parts) if safe else container

        def walk() -> list[str]:
            keys = []
            for dirpath, _dirs, files in os.walk(top):
                for name in files:
                    if name.startswith(".tmp-"):
                        continue
                    key = Path(dirpath, name).relative_to(container).as_posix()
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await asyncio.to_thread(walk)

    async def aclose(self) -> None:
        return None
