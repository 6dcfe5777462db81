"""The object-store interface the archive uploader writes through, and what adapters share.

One adapter per system implements `ObjectStore`: Swift (`clients/swift.py`), S3
(`clients/s3.py`) and a local directory (`clients/localdir.py`). Every adapter raises
only the project's own errors (`clients/errors.py`):

- `TransientError`: worth retrying soon (connection, timeout, 429, 5xx, a checksum the
  store computed differently from ours);
- `ContainerAccessError`: the container/bucket is missing or refuses the service user
  in a mode where stacktrail must not create it (ACL mode). Retried with long backoff,
  shown in the project's status;
- `AuthError` / `PermanentError`: the request as built will not succeed (bad name, no
  permission); also retried with long backoff, because configuration can change;
- `NoSuchObject` (a `PermanentError`, status 404): `get`, `head` or `set_delete_at`
  addressed an object that does not exist.

Besides writing and reading whole objects, a store reads an object's headers (`head`),
changes its expiry keeping its metadata (`set_delete_at`, for retention changes) and
deletes it (`delete`). Metadata travels as a plain mapping of lower-case names without
any prefix (`{"record-count": "3"}`); each adapter maps it to its system's headers
(`X-Object-Meta-*`, `x-amz-meta-*`, extended attributes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from stacktrail.domain.errors import PermanentError
from stacktrail.domain.store_names import container_problem, key_problem
from stacktrail.domain.trail import WriteMode

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class Bucket:
    """Where objects of one project go in one region.

    Swift writes into the account `AUTH_<project_id>` of the region's proxy; S3 and the
    local directory use only `container` (the key already holds project and region).
    """

    project_id: str
    region: str
    container: str
    write_mode: WriteMode = WriteMode.RESELLER


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    etag: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What `head` tells about a stored object."""

    size: int
    etag: str  # hex MD5 of the body, as `put` returned it
    content_type: str  # "" when the store does not know it
    metadata: Mapping[str, str] = field(default_factory=dict)  # lower-case names, no prefix
    delete_at: int | None = None  # unix seconds; None when the object does not expire


class NoSuchObject(PermanentError):
    """The object addressed does not exist (HTTP 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class ContainerAccessError(PermanentError):
    """The container is missing or does not let the service user write (ACL mode)."""

    def __init__(self, bucket: Bucket, *, status: int | None = None, detail: str = "") -> None:
        message = (
            f"container {bucket.container} in project {bucket.project_id} does not grant write "
            f"to the stacktrail service user (region {bucket.region}"
            + (f", HTTP {status}" if status is not None else "")
            + (f": {detail}" if detail else "")
            + ")"
        )
        super().__init__(message, status=status)
        self.bucket = bucket


class ObjectStore(Protocol):
    name: str
    # Whether the store deletes an object at its X-Delete-At by itself (Swift's expirer);
    # for the others stacktrail's scheduler sweeps expired objects away (jobs/expiry.py).
    expires_objects: bool

    async def ensure_container(self, bucket: Bucket) -> None:
        """Create the container if this mode may (reseller); in ACL mode only check it."""
        ...

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        """Store `body` under `key`; return the ETag (hex MD5) the store computed.

        `headers` use Swift names (`X-Delete-At`, `X-Object-Meta-*`, `Content-Type`);
        adapters for other systems translate them.
        """
        ...

    async def get(self, bucket: Bucket, key: str) -> StoredObject:
        """Read an object back; `NoSuchObject` when it does not exist."""
        ...

    async def head(self, bucket: Bucket, key: str) -> ObjectInfo:
        """Size, ETag, content type, metadata and expiry of an object, without its body;
        `NoSuchObject` when it does not exist."""
        ...

    async def set_delete_at(
        self,
        bucket: Bucket,
        key: str,
        delete_at: int,
        metadata: Mapping[str, str],
        *,
        content_type: str | None = None,
    ) -> None:
        """Make an object expire at `delete_at` (unix seconds, in the future).

        The object's user metadata becomes `metadata` (pass `head(...).metadata` to keep
        it: some stores replace all of it on any metadata change) and its content type
        stays (`content_type` as `head` returned it saves the adapter reading it again).
        `NoSuchObject` when the object does not exist.
        """
        ...

    async def delete(self, bucket: Bucket, key: str) -> None:
        """Delete an object; one that is already gone counts as deleted."""
        ...

    async def list_keys(self, bucket: Bucket, prefix: str = "") -> list[str]:
        """Keys below `prefix`, sorted."""
        ...

    async def aclose(self) -> None: ...


def md5_hex(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def object_meta(headers: Mapping[str, str]) -> dict[str, str]:
    """`X-Object-Meta-Record-Count: 3` -> `{"record-count": "3"}` (names lower-cased)."""
    prefix = "x-object-meta-"
    return {
        name.lower()[len(prefix) :]: value
        for name, value in headers.items()
        if name.lower().startswith(prefix)
    }


def meta_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    """`{"record-count": "3"}` -> `{"X-Object-Meta-record-count": "3"}` (`object_meta` reversed)."""
    return {f"X-Object-Meta-{name}": value for name, value in metadata.items()}


def delete_at_of(value: str | None) -> int | None:
    """An `X-Delete-At` value as unix seconds; None when absent or not a number."""
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def check_key(key: str) -> str:
    """Refuse keys that could leave the container's namespace (adapters call this)."""
    problem = key_problem(key)
    if problem:
        raise PermanentError(f"invalid object key {key!r}: {problem}")
    return key


def check_container(container: str) -> str:
    """Swift's container rule, also the `file` store's (adapters call this)."""
    problem = container_problem(container)
    if problem:
        raise PermanentError(f"invalid container name {container!r}: {problem}")
    return container
