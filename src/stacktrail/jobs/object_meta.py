"""Changing the expiry of objects already stored (retention changes), per store.

`ObjectStore` (clients/store.py) writes and reads whole objects; a retention change only
needs an object's headers and a new `X-Delete-At`:

- Swift: HEAD, then POST with the new `X-Delete-At` *and every existing
  `X-Object-Meta-*` header* (a Swift POST replaces all user metadata), and the content
  type. An object whose new expiry has passed is deleted (Swift refuses an
  `X-Delete-At` in the past). Requests go through the Swift adapter's authenticated
  sender, so token renewal and error classification stay in one place.
- local directory: the `user.stacktrail.x-delete-at` extended attribute; expired files
  are removed.
- S3: a copy onto itself with the metadata replaced (`delete-at`, `Expires`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from stacktrail.clients.errors import PermanentError
from stacktrail.clients.localdir import LocalDirStore
from stacktrail.clients.s3 import S3Store
from stacktrail.clients.store import Bucket, ObjectStore, check_key
from stacktrail.clients.swift import SwiftStore

META_PREFIX = "x-object-meta-"
DELETE_AT = "x-delete-at"


class ObjectMeta(Protocol):
    async def head(self, bucket: Bucket, key: str) -> dict[str, str] | None:
        """Lower-cased headers of an object (`x-delete-at`, `x-object-meta-*`, ...);
        None when it does not exist."""
        ...

    async def set_delete_at(
        self, bucket: Bucket, key: str, delete_at: int, headers: Mapping[str, str]
    ) -> None:
        """Set the expiry, keeping the metadata in `headers` (as `head` returned it)."""
        ...

    async def delete(self, bucket: Bucket, key: str) -> None: ...


def kept_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The user metadata a Swift POST must repeat to keep it."""
    return {name: value for name, value in headers.items() if name.lower().startswith(META_PREFIX)}


class SwiftObjectMeta:
    def __init__(self, store: SwiftStore) -> None:
        self._store = store

    async def _url(self, bucket: Bucket, key: str) -> str:
        account = await self._store.account(bucket)
        return f"{account}/{quote(bucket.container, safe='')}/{quote(check_key(key))}"

    async def head(self, bucket: Bucket, key: str) -> dict[str, str] | None:
        url = await self._url(bucket, key)
        what = f"HEAD {bucket.container}/{key} in project {bucket.project_id}"
        response = await self._store._send("HEAD", url, what=what)
        if response.status_code == 404:
            return None
        if response.status_code not in (200, 204):
            raise self._store._error(response, bucket, what)
        return {name.lower(): value for name, value in response.headers.items()}

    async def set_delete_at(
        self, bucket: Bucket, key: str, delete_at: int, headers: Mapping[str, str]
    ) -> None:
        url = await self._url(bucket, key)
        what = f"POST {bucket.container}/{key} in project {bucket.project_id}"
        sent = {**kept_metadata(headers), "X-Delete-At": str(delete_at)}
        if headers.get("content-type"):
            sent["Content-Type"] = headers["content-type"]
        response = await self._store._send("POST", url, what=what, headers=sent)
        if response.status_code not in (200, 202, 204):
            raise self._store._error(response, bucket, what)

    async def delete(self, bucket: Bucket, key: str) -> None:
        url = await self._url(bucket, key)
        what = f"DELETE {bucket.container}/{key} in project {bucket.project_id}"
        response = await self._store._send("DELETE", url, what=what)
        if response.status_code not in (200, 204, 404):
            raise self._store._error(response, bucket, what)


_XATTR = "user.stacktrail."


class LocalDirObjectMeta:
    def __init__(self, store: LocalDirStore) -> None:
        self._root = store.root

    def _path(self, bucket: Bucket, key: str) -> str:
        if not bucket.container or "/" in bucket.container or bucket.container in {".", ".."}:
            raise PermanentError(f"invalid container name {bucket.container!r}")
        return os.path.join(self._root, bucket.container, check_key(key))

    async def head(self, bucket: Bucket, key: str) -> dict[str, str] | None:
        path = self._path(bucket, key)

        def read() -> dict[str, str] | None:
            if not os.path.isfile(path):
                return None
            headers: dict[str, str] = {}
            try:
                for name in os.listxattr(path):
                    if name.startswith(_XATTR):
                        headers[name[len(_XATTR) :]] = os.getxattr(path, name).decode()
            except OSError:
                pass
            return headers

        return await asyncio.to_thread(read)

    async def set_delete_at(
        self, bucket: Bucket, key: str, delete_at: int, headers: Mapping[str, str]
    ) -> None:
        path = self._path(bucket, key)

        def write() -> None:
            try:
                os.setxattr(path, _XATTR + DELETE_AT, str(delete_at).encode())
            except OSError as exc:
                if exc.errno not in {errno.ENOTSUP, errno.EPERM}:
                    raise

        await asyncio.to_thread(write)

    async def delete(self, bucket: Bucket, key: str) -> None:
        path = self._path(bucket, key)

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

        await asyncio.to_thread(remove)


class S3ObjectMeta:
    def __init__(self, store: S3Store) -> None:
        self._store = store
        self._client: Any = store._client

    async def head(self, bucket: Bucket, key: str) -> dict[str, str] | None:
        try:
            response = await self._store._call(
                bucket,
                f"HEAD {bucket.container}/{key}",
                self._client.head_object,
                Bucket=bucket.container,
                Key=check_key(key),
            )
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        headers = {
            META_PREFIX + name.lower(): value
            for name, value in response.get("Metadata", {}).items()
        }
        if META_PREFIX + "delete-at" in headers:
            headers[DELETE_AT] = headers[META_PREFIX + "delete-at"]
        headers["content-type"] = response.get("ContentType", "")
        return headers

    async def set_delete_at(
        self, bucket: Bucket, key: str, delete_at: int, headers: Mapping[str, str]
    ) -> None:
        metadata = {
            name[len(META_PREFIX) :]: value
            for name, value in headers.items()
            if name.startswith(META_PREFIX)
        }
        metadata["delete-at"] = str(delete_at)
        await self._store._call(
            bucket,
            f"COPY {bucket.container}/{key}",
            self._client.copy_object,
            Bucket=bucket.container,
            Key=check_key(key),
            CopySource={"Bucket": bucket.container, "Key": key},
            Metadata=metadata,
            MetadataDirective="REPLACE",
            ContentType=headers.get("content-type") or "application/gzip",
            Expires=datetime.fromtimestamp(delete_at, UTC),
        )

    async def delete(self, bucket: Bucket, key: str) -> None:
        await self._store._call(
            bucket,
            f"DELETE {bucket.container}/{key}",
            self._client.delete_object,
            Bucket=bucket.container,
            Key=check_key(key),
        )


def object_meta_for(store: ObjectStore) -> ObjectMeta | None:
    """The metadata adapter of a store; None for a store this module does not know."""
    if isinstance(store, SwiftStore):
        return SwiftObjectMeta(store)
    if isinstance(store, LocalDirStore):
        return LocalDirObjectMeta(store)
    if isinstance(store, S3Store):
        return S3ObjectMeta(store)
    return None
