"""Where an archive is read from: a folder, a Swift container or an S3 bucket.

A source knows one container. Keys are the object names in it (`/`-separated); the
folder source maps them to files below its root, the same tree `swift download` or
`aws s3 sync` leaves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx


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

    `account_url` defaults to the object-store endpoint of the session's project.
    """

    PAGE = 10_000

    def __init__(
        self,
        session: Any,  # keystoneauth1.session.Session
        container: str,
        *,
        account_url: str | None = None,
        region: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._session = session
        self._container = container
        self._url = account_url or session.get_endpoint(
            service_type="object-store", interface="public", region_name=region
        )
        self._client = httpx.Client(timeout=timeout)

    @classmethod
    def from_environment(cls, container: str) -> SwiftSource:
        """Credentials from OS_* variables (password or application credential)."""
        from keystoneauth1 import loading, session

        env = os.environ
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
        return cls(session.Session(auth=auth), container, region=env.get("OS_REGION_NAME"))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self._session.get_token()}
        url = f"{self._url}/{quote(self._container)}{path}"
        try:
            return self._client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise SourceError(f"swift: {exc}") from exc

    def list(self, prefix: str) -> Iterator[str]:
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix, "marker": marker, "limit": self.PAGE}
            response = self._request("GET", "", params=params)
            if response.status_code == 404:
                return
            if response.status_code >= 300:
                raise SourceError(f"swift: listing {prefix!r}: HTTP {response.status_code}")
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
            raise SourceError(f"swift: reading {key!r}: HTTP {response.status_code}")
        return response.content


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
