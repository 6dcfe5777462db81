"""The archive's object stores behind one protocol (`base.ObjectStore`): Swift, S3 and a
local directory; `open_store` picks the one the settings name."""

from __future__ import annotations

from stacktrail.archive.stores.base import ObjectStore
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.domain.errors import ClientError
from stacktrail.domain.trail import ArchiveStore
from stacktrail.keystone import KeystoneClient, acl_identity

__all__ = ["ObjectStore", "open_store"]


def open_store(settings: Settings, keystone: KeystoneClient | None = None) -> ObjectStore:
    """The store `settings.archive_store` names (Swift needs the service's Keystone client;
    its ACL-mode writer is a second identity, `STACKTRAIL_SWIFT_ACL_*`)."""
    if settings.archive_store is ArchiveStore.SWIFT:
        if keystone is None:
            raise ClientError("the swift archive store needs Keystone (STACKTRAIL_KEYSTONE_URL)")
        writer = acl_identity(settings)
        return SwiftStore(
            keystone,
            acl_writer=KeystoneClient(settings, writer) if writer else None,
            reseller_role=settings.swift_reseller_role,
            # every region has its own upload slots (archive/uploader.py)
            max_connections=settings.archive_upload_concurrency * 2 * len(settings.archive_regions),
        )
    if settings.archive_store is ArchiveStore.S3:
        # imported here: boto3 and botocore add 8 MB to the RSS of each process that loads them
        from stacktrail.archive.stores.s3 import S3Store

        return S3Store.from_settings(settings)
    return LocalDirStore(settings.archive_dir)
