"""Swift adapter: plain HTTP (httpx) with the service user's Keystone token.

Each region's object-store URL comes from the Keystone catalog; it names the service
project's account (`.../v1/AUTH_<service project>`), which is rewritten to the project's
own account `AUTH_<project_id>` (events of the operator's `unscoped` trail stay in the
service project's account). Two write modes:

- `reseller`: the service user holds the reseller role and may write into any account;
  the container is created when missing (PUT container, once per process), then the
  object is PUT.
- `acl`: the customer created the container and granted `X-Container-Write` to the
  ACL writer, a second identity (`STACKTRAIL_SWIFT_ACL_*`) that holds no reseller role,
  so Swift's ACL alone decides. The container is never created; 403/404 become
  `ContainerAccessError` ("container X in project P does not grant write to the
  stacktrail service user"). Without an ACL writer configured, or with one that holds
  the reseller role, ACL-mode requests fail (`PermanentError`): the reseller identity
  would make the grant meaningless.

Addressing: the account comes only from the catalog and a valid project id; the
container and key follow the rules of `store_names` and are quoted (`safe=''` for the
container), and the URL httpx will send is checked once more to lie inside the
container (`inside_container`), so no name can ever climb into another account.

Every response is classified in `_error`: 401 -> the token is renewed once and the
request repeated (then `AuthError`); 404 of a request about an existing object (GET,
HEAD, POST) -> `NoSuchObject`; 403/404 in ACL mode -> `ContainerAccessError`;
408/422 (checksum mismatch)/429/5xx and connection errors -> `TransientError`; anything
else -> `PermanentError`. Object PUTs carry `ETag: <md5>`, so Swift itself refuses a body
damaged in transit, and the returned ETag is handed back for the caller to compare.

A new expiry is a POST to the object with `X-Delete-At`, every `X-Object-Meta-*` header
and the content type: a Swift POST replaces all user metadata (and, on clusters that
implement it as a copy, the content type), so what is not repeated is lost. Swift
refuses an `X-Delete-At` in the past (400, `PermanentError`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

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
    meta_headers,
    object_meta,
)
from stacktrail.domain.errors import AuthError, ClientError, PermanentError, TransientError
from stacktrail.domain.names import is_valid_project_id
from stacktrail.domain.store_names import DOT_SEGMENTS
from stacktrail.domain.trail import UNSCOPED, WriteMode
from stacktrail.http import release
from stacktrail.keystone import KeystoneClient

_TAGS = re.compile(r"<[^>]*>")


def account_url(catalog_url: str, project_id: str) -> str:
    """`http://proxy/v1/AUTH_<service project>` -> `http://proxy/v1/AUTH_<project_id>`."""
    base, _, account = catalog_url.rstrip("/").rpartition("/")
    reseller, sep, _ = account.partition("_")
    if not sep or not base:
        raise PermanentError(f"object-store URL {catalog_url!r} does not end in an account")
    return f"{base}/{reseller}_{project_id}"


def inside_container(url: str, container_url: str) -> str:
    """`url`, refused unless httpx will send it inside `container_url`'s container.

    httpx resolves dot segments (`AUTH_A/../AUTH_B` is `AUTH_B`), so the check compares
    what httpx parses with the path as written: a last line after the rules of the parts.
    """
    sent, base = httpx.URL(url), httpx.URL(container_url)
    written = urlsplit(container_url).path.encode("ascii")
    root = base.raw_path
    if (
        (sent.scheme, sent.host, sent.port) != (base.scheme, base.host, base.port)
        or root != written
        or any(segment in DOT_SEGMENTS for segment in urlsplit(url).path.split("/"))
        or (not sent.raw_path.startswith(root + b"/") and sent.raw_path.partition(b"?")[0] != root)
    ):
        raise PermanentError(f"refused to send {url!r}: it leaves {container_url!r}")
    return url


class SwiftStore:
    name = "swift"
    expires_objects = True

    def __init__(
        self,
        keystone: KeystoneClient,
        *,
        acl_writer: KeystoneClient | None = None,
        reseller_role: str = "ResellerAdmin",
        endpoints: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        max_connections: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`keystone`: the service identity (catalog, reseller-mode writes); `acl_writer`:
        the identity without reseller rights for ACL-mode trails (None: they fail);
        `endpoints` (region -> URL like the catalog's) replaces the catalog lookup;
        `transport` replaces the network (a relay, a test double)."""
        self._keystone = keystone
        self._acl_writer = acl_writer
        self._reseller_role = reseller_role.lower()
        self._endpoints: dict[str, str] | None = dict(endpoints) if endpoints else None
        self._tokens: dict[WriteMode, str] = {}
        self._acl_checked = False
        self._containers: set[tuple[str, str]] = set()  # (account URL, container) known
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- addressing

    async def account(self, bucket: Bucket) -> str:
        if self._endpoints is None:
            self._endpoints = await self._keystone.object_store_endpoints()
        catalog_url = self._endpoints.get(bucket.region)
        if catalog_url is None:
            raise PermanentError(f"no object-store endpoint for region {bucket.region!r}")
        if bucket.project_id == UNSCOPED:  # the operator's trail: the service's own account
            return catalog_url.rstrip("/")
        if not is_valid_project_id(bucket.project_id):
            raise PermanentError(f"invalid project id {bucket.project_id!r}")
        return account_url(catalog_url, bucket.project_id)

    async def _container_url(self, bucket: Bucket) -> str:
        return f"{await self.account(bucket)}/{quote(check_container(bucket.container), safe='')}"

    async def _object_url(self, bucket: Bucket, key: str) -> str:
        return f"{await self._container_url(bucket)}/{quote(check_key(key), safe='/')}"

    # --- one place for identities, auth and error classification

    async def _identity(self, bucket: Bucket) -> KeystoneClient:
        if bucket.write_mode is not WriteMode.ACL:
            return self._keystone
        if self._acl_writer is None:
            raise PermanentError(
                f"container {bucket.container} of project {bucket.project_id} is in ACL mode, "
                "and no ACL writer is configured (STACKTRAIL_SWIFT_ACL_USERNAME, _PASSWORD, "
                "_PROJECT_NAME): stacktrail never writes ACL-mode trails with its reseller "
                "identity"
            )
        if not self._acl_checked:
            if self._reseller_role in {r.lower() for r in await self._acl_writer.role_names()}:
                raise PermanentError(
                    f"the ACL writer {self._acl_writer.identity.username!r} holds the reseller "
                    f"role {self._reseller_role!r}, so container ACLs would grant nothing; "
                    "give ACL mode a user without it"
                )
            self._acl_checked = True
        return self._acl_writer

    async def _send(
        self,
        method: str,
        url: str,
        bucket: Bucket,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        inside_container(url, await self._container_url(bucket))
        identity = await self._identity(bucket)
        mode = bucket.write_mode
        for attempt in range(2):
            token = self._tokens.get(mode)
            if token is None:
                token = self._tokens[mode] = await identity.service_token()
            try:
                response = await self._http.request(
                    method,
                    url,
                    headers={**(headers or {}), "X-Auth-Token": token},
                    content=content,
                    params=params,
                )
            except httpx.TransportError as exc:
                kind = type(exc).__name__
                raise TransientError(f"{what}: Swift unreachable: {kind}: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                self._tokens.pop(mode, None)
                identity.session.invalidate()
                continue
            return release(response)
        return response

    @staticmethod
    def _error(
        response: httpx.Response, bucket: Bucket, what: str, *, existing: bool = False
    ) -> ClientError:
        """The error a response means; `existing`: the request is about an object that
        should exist (GET, HEAD, POST), so its 404 is `NoSuchObject`."""
        status = response.status_code
        if status == 404 and existing:
            return NoSuchObject(f"{what}: no such object")
        detail = " ".join(_TAGS.sub(" ", response.text[:300]).split())
        if status in (403, 404) and bucket.write_mode is WriteMode.ACL:
            return ContainerAccessError(bucket, status=status, detail=detail)
        message = f"{what}: HTTP {status} {detail}".strip()
        if status == 401:
            return AuthError(message + " (token refused after renewal)", status=status)
        if status == 403:
            return AuthError(
                f"{message} (the stacktrail service user may not write into project "
                f"{bucket.project_id}: reseller role missing?)",
                status=status,
            )
        if status in (408, 422, 429, 498) or status >= 500:
            return TransientError(message, status=status)
        return PermanentError(message, status=status)

    # --- ObjectStore

    async def ensure_container(self, bucket: Bucket) -> None:
        if bucket.write_mode is WriteMode.ACL:
            return  # the customer's container; a write-only grant may not allow HEAD
        url = await self._container_url(bucket)
        known = (url.rpartition("/")[0], bucket.container)
        if known in self._containers:
            return
        what = f"create container {bucket.container} in project {bucket.project_id}"
        response = await self._send("PUT", url, bucket, what=what)
        if response.status_code not in (201, 202, 204):
            raise self._error(response, bucket, what)
        self._containers.add(known)

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        container_url = await self._container_url(bucket)
        url = await self._object_url(bucket, key)
        sent = {**headers, "ETag": md5_hex(body)}
        what = f"PUT {bucket.container}/{key} in project {bucket.project_id}"
        response = await self._send("PUT", url, bucket, what=what, headers=sent, content=body)
        if response.status_code == 404 and bucket.write_mode is WriteMode.RESELLER:
            self._containers.discard((container_url.rpartition("/")[0], bucket.container))
            await self.ensure_container(bucket)  # deleted since we created it
            response = await self._send("PUT", url, bucket, what=what, headers=sent, content=body)
        if response.status_code not in (201, 202):
            raise self._error(response, bucket, what)
        return str(response.headers.get("etag", "")).strip('"')

    async def get(self, bucket: Bucket, key: str) -> StoredObject:
        url = await self._object_url(bucket, key)
        what = f"GET {bucket.container}/{key} in project {bucket.project_id}"
        response = await self._send("GET", url, bucket, what=what)
        if response.status_code != 200:
            raise self._error(response, bucket, what, existing=True)
        return StoredObject(
            body=response.content,
            etag=response.headers.get("etag", "").strip('"'),
            headers={k.lower(): v for k, v in response.headers.items()},
        )

    async def head(self, bucket: Bucket, key: str) -> ObjectInfo:
        url = await self._object_url(bucket, key)
        what = f"HEAD {bucket.container}/{key} in project {bucket.project_id}"
        response = await self._send("HEAD", url, bucket, what=what)
        if response.status_code not in (200, 204):
            raise self._error(response, bucket, what, existing=True)
        headers = response.headers
        return ObjectInfo(
            size=int(headers.get("content-length") or 0),
            etag=headers.get("etag", "").strip('"'),
            content_type=headers.get("content-type", ""),
            metadata=object_meta(headers),
            delete_at=delete_at_of(headers.get("x-delete-at")),
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
        url = await self._object_url(bucket, key)
        what = f"POST {bucket.container}/{key} in project {bucket.project_id}"
        sent = {**meta_headers(metadata), "X-Delete-At": str(delete_at)}
        if content_type:
            sent["Content-Type"] = content_type
        response = await self._send("POST", url, bucket, what=what, headers=sent)
        if response.status_code not in (200, 202, 204):
            raise self._error(response, bucket, what, existing=True)

    async def delete(self, bucket: Bucket, key: str) -> None:
        url = await self._object_url(bucket, key)
        what = f"DELETE {bucket.container}/{key} in project {bucket.project_id}"
        response = await self._send("DELETE", url, bucket, what=what)
        if response.status_code not in (200, 204, 404):  # 404: already gone
            raise self._error(response, bucket, what)

    async def list_keys(self, bucket: Bucket, prefix: str = "") -> list[str]:
        url = await self._container_url(bucket)
        what = f"list {bucket.container} in project {bucket.project_id}"
        keys: list[str] = []
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix, "marker": marker}
            response = await self._send("GET", url, bucket, what=what, params=params)
            if response.status_code == 404:
                return keys
            if response.status_code not in (200, 204):
                raise self._error(response, bucket, what)
            page: list[dict[str, Any]] = orjson.loads(response.content or b"[]")
            if not page:
                return keys
            keys.extend(item["name"] for item in page)
            marker = keys[-1]
