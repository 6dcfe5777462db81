"""Where `stacktrail validate` and `stacktrail read` read: a downloaded folder, Swift with
the customer's own credentials (a clouds.yaml entry, or OS_* variables), or the store
stacktrail's settings configure."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from stacktrail.archive.stores import open_store
from stacktrail.archive.stores.base import Bucket, NoSuchObject, ObjectStore
from stacktrail.config import Settings
from stacktrail.domain.errors import ClientError
from stacktrail.domain.names import is_valid_project_id
from stacktrail.domain.trail import ArchiveStore
from stacktrail.keystone import KeystoneClient
from stacktrail_reader.sources import (
    FolderSource,
    MissingObject,
    Source,
    SourceError,
    SwiftSource,
)

T = TypeVar("T")

OsCloud = Annotated[
    str | None,
    typer.Option(
        "--os-cloud",
        envvar="OS_CLOUD",
        help="Read Swift with the credentials of this clouds.yaml entry (searched in "
        "./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).",
        show_default=False,
    ),
]


class StoreSource:
    """The configured object store as a reader `Source` (its own event loop thread)."""

    def __init__(self, store: ObjectStore, bucket: Bucket) -> None:
        self._store = store
        self._bucket = bucket
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def list(self, prefix: str) -> Iterator[str]:
        try:
            yield from self._call(self._store.list_keys(self._bucket, prefix))
        except NoSuchObject:
            return
        except ClientError as exc:
            raise SourceError(str(exc)) from exc

    def get(self, key: str) -> bytes:
        try:
            return self._call(self._store.get(self._bucket, key)).body
        except NoSuchObject:
            raise MissingObject(key) from None
        except ClientError as exc:
            raise SourceError(str(exc)) from exc

    def close(self) -> None:
        self._call(self._store.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


def open_source(
    settings: Settings,
    directory: Path | None,
    project_id: str,
    region: str,
    container: str,
    os_cloud: str | None = None,
) -> Source:
    """The folder `directory`; else Swift as the clouds.yaml entry `os_cloud`, else as
    the OS_* variables when OS_AUTH_URL is set; else the configured store. Raises
    `SourceError` or `CloudConfigError` (a ValueError) when it cannot be opened."""
    if not is_valid_project_id(project_id):  # it becomes a key prefix and an account name
        raise SourceError(
            f"--project {project_id!r} is not a project id "
            "(1 to 64 lower-case letters, digits and -)"
        )
    if directory is not None:
        return FolderSource(directory)
    if os_cloud:
        return SwiftSource.from_cloud(os_cloud, container, project_id=project_id)
    if os.environ.get("OS_AUTH_URL"):
        return SwiftSource.from_environment(container, project_id=project_id)
    keystone = KeystoneClient(settings) if settings.archive_store is ArchiveStore.SWIFT else None
    store = open_store(settings, keystone)
    return StoreSource(store, Bucket(project_id, region, container))


def close_source(source: Source) -> None:
    if isinstance(source, StoreSource):
        source.close()
