"""Where an archive is read from: a folder, a Swift container or an S3 bucket.

A source knows one container. Keys are the object names in it (`/`-separated); the
folder source maps them to files below its root, the same tree `swift download` or
`aws s3 sync` leaves.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from stacktrail_reader.clouds import load_cloud


class MissingObject(LookupError):
    """The object does not exist."""


class SourceError(RuntimeError):
    """The source refused or failed a request (permission, network, bad name)."""


class Source(Protocol):
    def list(self, prefix: str) -> Iterator[str]:
        """Keys below `prefix`, sorted."""
        ...

    def get(self, key: str) -> bytes:
        """An object's bytes; `MissingObject` when it does not exist."""
        ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise SourceError(f"refusing object key {key!r}")
    return key


class FolderSource:
    """A downloaded copy of the container."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def list(self, prefix: str) -> Iterator[str]:
        start = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not start.is_dir():
            return
        keys = []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def get(self, key: str) -> bytes:
        try:
            return (self.root / _check_key(key)).read_bytes()
        except FileNotFoundError:
            raise MissingObject(key) from None


class SwiftSource:
    """A Swift container, read with a Keystone session (the customer's own credentials).

    The account is `account_url`, else the object-store endpoint of the session's
    project in `region` (through `interface`), pointed at `project_id`'s account when
    that is another project (Swift refuses it unless these credentials may read there).
    """

    PAGE = 10_000

    def __init__(
        self,
        session: Any,  # keystoneauth1.session.Session
        container: str,
        *,
        account_url: str | None = None,
        region: str | None = None,
        project_id: str | None = None,
        interface: str = "public",
        verify: ssl.SSLContext | bool = True,
        timeout: float = 60.0,
    ) -> None:
        self._session = session
        self._container = container
        self._url = account_url or _account_url(session, region, interface, project_id)
        self._client = httpx.Client(timeout=timeout, verify=verify)

    @classmethod
    def from_environment(cls, container: str, *, project_id: str | None = None) -> SwiftSource:
        """Credentials from OS_* variables (password or application credential)."""
        from keystoneauth1 import loading, session

        env = os.environ
        if not env.get("OS_AUTH_URL"):
            raise SourceError("OS_AUTH_URL is not set (source your openrc, or use a cloud)")
        if env.get("OS_APPLICATION_CREDENTIAL_ID"):
            loader: Any = loading.get_plugin_loader("v3applicationcredential")
            auth = loader.load_from_options(
                auth_url=env["OS_AUTH_URL"],
                application_credential_id=env["OS_APPLICATION_CREDENTIAL_ID"],
                application_credential_secret=env.get("OS_APPLICATION_CREDENTIAL_SECRET", ""),
            )
        else:
            loader = loading.get_plugin_loader("password")
            auth = loader.load_from_options(
                auth_url=env["OS_AUTH_URL"],
                username=env.get("OS_USERNAME"),
                password=env.get("OS_PASSWORD"),
                project_name=env.get("OS_PROJECT_NAME"),
                project_id=env.get("OS_PROJECT_ID"),
                user_domain_name=env.get("OS_USER_DOMAIN_NAME", "Default"),
                project_domain_name=env.get("OS_PROJECT_DOMAIN_NAME", "Default"),
            )
        return cls(
            session.Session(auth=auth),
            container,
            region=env.get("OS_REGION_NAME"),
            project_id=project_id,
            interface=env.get("OS_INTERFACE", "public"),
        )

    @classmethod
    def from_cloud(
        cls,
        name: str,
        container: str,
        *,
        project_id: str | None = None,
        directories: Sequence[Path] | None = None,
    ) -> SwiftSource:
        """Credentials, region and TLS settings of a clouds.yaml entry (`clouds.load_cloud`)."""
        cloud = load_cloud(name, directories)
        return cls(
            cloud.session(),
            container,
            region=cloud.region_name,
            project_id=project_id,
            interface=cloud.interface,
            verify=cloud.ssl_context(),
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": _token(self._session)}
        url = f"{self._url}/{quote(self._container)}{path}"
        try:
            return self._client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise SourceError(f"swift: {exc}") from exc

    def _refused(self, what: str, status: int) -> SourceError:
        hint = ""
        if status in {401, 403}:
            hint = f" (these credentials may not read container {self._container!r} at {self._url})"
        return SourceError(f"swift: {what}: HTTP {status}{hint}")

    def list(self, prefix: str) -> Iterator[str]:
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix, "marker": marker, "limit": self.PAGE}
            response = self._request("GET", "", params=params)
            if response.status_code == 404:
                return
            if response.status_code >= 300:
                raise self._refused(f"listing {prefix!r}", response.status_code)
            names = [item["name"] for item in response.json()]
            yield from names
            if len(names) < self.PAGE:
                return
            marker = names[-1]

    def get(self, key: str) -> bytes:
        response = self._request("GET", "/" + quote(_check_key(key)))
        if response.status_code == 404:
            raise MissingObject(key)
        if response.status_code >= 300:
            raise self._refused(f"reading {key!r}", response.status_code)
        return response.content


def _token(session: Any) -> str:
    from keystoneauth1 import exceptions

    try:
        return str(session.get_token())
    except exceptions.ClientException as exc:
        raise SourceError(f"keystone: {exc}") from exc


# Keystone project ids: lower-case letters, digits and `-` (as stacktrail accepts them)
_PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _account_url(session: Any, region: str | None, interface: str, project_id: str | None) -> str:
    """The object-store endpoint of the session's project, or of `project_id`'s account."""
    from keystoneauth1 import exceptions

    try:
        endpoint = session.get_endpoint(
            service_type="object-store", interface=interface, region_name=region
        )
        own = session.get_project_id()
    except exceptions.ClientException as exc:
        raise SourceError(f"keystone: {exc}") from exc
    if not endpoint:
        where = f" in region {region}" if region else ""
        raise SourceError(f"keystone: no {interface} object-store endpoint{where} in the catalog")
    endpoint = str(endpoint).rstrip("/")
    if project_id is None or project_id == own:
        return endpoint
    if not _PROJECT_ID.fullmatch(project_id):  # it becomes the account's path segment
        raise SourceError(f"swift: {project_id!r} is not a project id")
    if own and endpoint.endswith(own):  # .../v1/AUTH_<project id>
        return endpoint[: -len(own)] + project_id
    raise SourceError(
        f"swift: cannot tell the account of project {project_id} from endpoint {endpoint}"
    )


class S3Source:
    """An S3 bucket (needs the `s3` extra: boto3)."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self._client = client
        self._bucket = bucket

    def list(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=_check_key(key))
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in {"NoSuchKey", "404"}:
                raise MissingObject(key) from None
            raise SourceError(f"s3: reading {key!r}: {exc}") from exc
        return bytes(response["Body"].read())
