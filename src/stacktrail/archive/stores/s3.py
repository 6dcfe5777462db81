"""S3 adapter: boto3, each call in a worker thread.

boto3 rather than aiobotocore: boto3 is already a dependency, its client is thread-safe,
and aiobotocore pins exact botocore versions, which fights with boto3's own pin. Uploads
are few and large (one object per sealed segment), so a thread per call costs nothing
that matters; `max_pool_connections` matches the upload concurrency.

Endpoint and keys come from `settings.s3_*`; addressing is path-style, one bucket per
trail container (all projects share the S3 identity; keys hold project and region).
Because of that shared identity, every call checks the bucket's owner first
(`store_names.s3_owner_problem`): a project writes only into the operator's shared
buckets (`STACKTRAIL_ARCHIVE_CONTAINER`) or a bucket named `<project_id>` or
`<project_id>-...`, so it can never name another project's bucket.
Swift-style headers from the uploader are translated: `X-Object-Meta-<name>` ->
`x-amz-meta-<name>`, `X-Delete-At` -> `x-amz-meta-delete-at` plus `Expires` (S3 has no
per-object expiry: the scheduler's expiry sweep, jobs/expiry.py, deletes objects past
their `delete-at`; a bucket lifecycle rule may do the same on the server). Every PUT
carries Content-MD5, so the server checks the body. A new expiry (`set_delete_at`) is
a copy of the object onto itself with `MetadataDirective=REPLACE`: the metadata given,
`delete-at`, `Expires` and the content type are written as `put` writes them; the body
stays.

Errors (all in `_translate`): connection errors, timeouts, 429/5xx -> `TransientError`;
404 of a request naming a key (`NoSuchKey`, or a bare 404 from HEAD) -> `NoSuchObject`;
in ACL mode 403/404 (no bucket, no grant) -> `ContainerAccessError`; other 403 ->
`AuthError`; the rest -> `PermanentError`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from stacktrail.archive.stores.base import (
    Bucket,
    ContainerAccessError,
    NoSuchObject,
    ObjectInfo,
    StoredObject,
    check_key,
    delete_at_of,
)
from stacktrail.config import Settings
from stacktrail.domain.errors import AuthError, ClientError, PermanentError, TransientError
from stacktrail.domain.store_names import s3_bucket_problem, s3_owner_problem
from stacktrail.domain.trail import WriteMode

_META = "x-object-meta-"
_DELETE_AT = "delete-at"  # the metadata entry that carries X-Delete-At


def _translate(exc: Exception, bucket: Bucket, what: str, *, keyed: bool = False) -> ClientError:
    """The error a boto exception means; `keyed`: the request named an object key, so a
    bare 404 (HEAD has no error body) means the object is missing."""
    if isinstance(exc, BotoClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = error.get("Code", "")
        message = f"{what}: {code or status} {error.get('Message', '')}".strip()
        if code == "NoSuchKey" or (code == "404" and keyed):
            return NoSuchObject(message)
        if code == "404":
            return PermanentError(message, status=404)
        if status in (403, 404) and bucket.write_mode is WriteMode.ACL:
            return ContainerAccessError(bucket, status=status, detail=code)
        if status in (401, 403):
            return AuthError(message, status=status)
        if status in (408, 429) or status >= 500 or code in {"SlowDown", "RequestTimeout"}:
            return TransientError(message, status=status)
        return PermanentError(message, status=status or None)
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{what}: S3 unreachable: {exc}")
    return PermanentError(f"{what}: {exc}")


class S3Store:
    name = "s3"
    expires_objects = False

    def __init__(
        self,
        *,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        timeout: float = 60.0,
        max_connections: int = 16,
        shared_buckets: Collection[str] = (),
    ) -> None:
        """`shared_buckets`: the operator's buckets every project may write into (keys
        hold the project); any other bucket must be named after its project."""
        self._shared = frozenset(shared_buckets)
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 1, "mode": "standard"},  # the uploader retries
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            max_pool_connections=max_connections,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._region = region
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
        )
        self._buckets: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
            max_connections=settings.archive_upload_concurrency * 2,
            shared_buckets={settings.archive_container},
        )

    async def _call(self, bucket: Bucket, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        problem = s3_bucket_problem(bucket.container) or s3_owner_problem(
            bucket.container, bucket.project_id, self._shared
        )
        if problem:
            raise PermanentError(f"{what}: {problem}")
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (BotoClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket, what, keyed="Key" in kwargs) from exc

    async def aclose(self) -> None:
        self._client.close()

    async def ensure_container(self, bucket: Bucket) -> None:
        if bucket.write_mode is WriteMode.ACL or bucket.container in self._buckets:
            return
        what = f"bucket {bucket.container}"
        try:
            await self._call(bucket, what, self._client.head_bucket, Bucket=bucket.container)
        except PermanentError as exc:
            if exc.status != 404:
                raise
            kwargs: dict[str, Any] = {"Bucket": bucket.container}
            if self._region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
            try:
                await self._call(bucket, f"create {what}", self._client.create_bucket, **kwargs)
            except PermanentError as create_exc:  # created meanwhile by somebody else
                if "BucketAlreadyOwnedByYou" not in str(create_exc):
                    raise
        self._buckets.add(bucket.container)

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        metadata: dict[str, str] = {}
        kwargs: dict[str, Any] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower.startswith(_META):
                metadata[lower[len(_META) :]] = value
            elif lower == "x-delete-at":
                metadata[_DELETE_AT] = value
                kwargs["Expires"] = datetime.fromtimestamp(int(value), UTC)
            elif lower == "content-type":
                kwargs["ContentType"] = value
        md5 = hashlib.md5(body, usedforsecurity=False).digest()
        response = await self._call(
            bucket,
            f"PUT {bucket.container}/{key}",
            self._client.put_object,
            Bucket=bucket.container,
            Key=check_key(key),
            Body=body,
            ContentMD5=base64.b64encode(md5).decode(),
            Metadata=metadata,
            **kwargs,
        )
        return str(response.get("ETag", "")).strip('"')

    async def get(self, bucket: Bucket, key: str) -> StoredObject:
        what = f"GET {bucket.container}/{key}"
        response = await self._call(
            bucket, what, self._client.get_object, Bucket=bucket.container, Key=check_key(key)
        )
        body = await asyncio.to_thread(response["Body"].read)
        headers = {
            _META + name.lower(): value for name, value in response.get("Metadata", {}).items()
        }
        if "x-object-meta-delete-at" in headers:
            headers["x-delete-at"] = headers["x-object-meta-delete-at"]
        headers["content-type"] = response.get("ContentType", "")
        return StoredObject(
            body=body, etag=str(response.get("ETag", "")).strip('"'), headers=headers
        )

    async def head(self, bucket: Bucket, key: str) -> ObjectInfo:
        response = await self._call(
            bucket,
            f"HEAD {bucket.container}/{key}",
            self._client.head_object,
            Bucket=bucket.container,
            Key=check_key(key),
        )
        metadata = {name.lower(): value for name, value in response.get("Metadata", {}).items()}
        delete_at = delete_at_of(metadata.pop(_DELETE_AT, None))
        return ObjectInfo(
            size=int(response.get("ContentLength") or 0),
            etag=str(response.get("ETag", "")).strip('"'),
            content_type=str(response.get("ContentType") or ""),
            metadata=metadata,
            delete_at=delete_at,
        )

    async def set_delete_at(
        self,
        bucket: Bucket,
        key: str,
        delete_at: int,
        metadata: Mapping[str, str],
        *,
        content_type: str | None = None,
    ) -> None:
        if content_type is None:
            content_type = (await self.head(bucket, key)).content_type
        kwargs: dict[str, Any] = {}
        if content_type:
            kwargs["ContentType"] = content_type
        await self._call(
            bucket,
            f"COPY {bucket.container}/{key}",
            self._client.copy_object,
            Bucket=bucket.container,
            Key=check_key(key),
            CopySource={"Bucket": bucket.container, "Key": key},
            MetadataDirective="REPLACE",
            Metadata={**metadata, _DELETE_AT: str(delete_at)},
            Expires=datetime.fromtimestamp(delete_at, UTC),
            **kwargs,
        )

    async def delete(self, bucket: Bucket, key: str) -> None:
        try:
            await self._call(
                bucket,
                f"DELETE {bucket.container}/{key}",
                self._client.delete_object,
                Bucket=bucket.container,
                Key=check_key(key),
            )
        except NoSuchObject:
            return  # already gone (S3 itself answers 204 for a missing key)

    async def list_keys(self, bucket: Bucket, prefix: str = "") -> list[str]:
        def list_all() -> list[str]:
            paginator = self._client.get_paginator("list_objects_v2")
            keys: list[str] = []
            for page in paginator.paginate(Bucket=bucket.container, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
            return sorted(keys)

        try:
            result: list[str] = await self._call(bucket, f"list {bucket.container}", list_all)
        except PermanentError as exc:
            if exc.status == 404:
                return []
            raise
        return result
