"""A separate process following the config store, for the cross-process reload test.

Run as `python -m tests.support.reload_follower DATABASE_URL PROJECT_ID`: prints one JSON
line whenever the effective trail of PROJECT_ID changes in its own snapshot.
"""

from __future__ import annotations

import asyncio
import json
import sys

from stacktrail.db.engine import create_engine
from stacktrail.db.reload import StoreTrails
from stacktrail.db.trail_store import TrailStore
from tests.support.config_store import make_settings


async def follow(database_url: str, project_id: str) -> None:
    settings = make_settings()
    store = TrailStore(create_engine(database_url), settings)
    trails = StoreTrails(store, settings)
    await trails.load()
    reload = asyncio.create_task(trails.run_reload(0.2))
    last: tuple[object, ...] | None = None
    try:
        while True:
            trail = trails.get(project_id)
            state = (
                trail.retention_days,
                trail.enabled,
                trail.version,
                trail.archive.interval.total_seconds(),
                trail.archive.container,
                trails.version,
            )
            if state[:5] != (last or ())[:5]:
                names = ("retention_days", "enabled", "version", "interval_s", "container")
                line = dict(zip((*names, "config"), state, strict=True))
                print(json.dumps(line), flush=True)
                last = state
            await asyncio.sleep(0.02)
    finally:
        reload.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(follow(sys.argv[1], sys.argv[2]))
