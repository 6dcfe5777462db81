"""Metadata of stored objects for the archive retention sweep.

Every `ObjectStore` (clients/store.py) reads an object's metadata (`head`), changes its
expiry keeping that metadata (`set_delete_at`) and deletes it (`delete`) itself, so
there is no separate metadata adapter any more: `object_meta_for` hands the store back.
`ArchiveRetention(store, objects)` (jobs/archive_retention.py) needs nothing else; this
module stays only while `jobs/scheduler.py` still calls `object_meta_for`.
"""

from __future__ import annotations

from stacktrail.clients.store import ObjectStore


def object_meta_for(store: ObjectStore) -> ObjectStore:
    """The store that changes the metadata of `store`'s objects: the store itself."""
    return store
