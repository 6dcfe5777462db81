"""The pipeline's view of every trail: an in-memory snapshot that follows the store.

`get` is synchronous and never touches the database. `run_reload` polls the store's
config version counter (one indexed single-row read) and, when it moved, reads only the
trails changed since the last version it saw. Works across processes on SQLite and
PostgreSQL alike, since every writer bumps the counter in its own transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import TrailOverrides, resolve
from stacktrail.domain.trail import Trail

log = logging.getLogger(__name__)

# Called after a refresh with the projects whose trail changed; None: possibly all of them
# (the operator defaults changed, or the first load).
ChangeListener = Callable[[frozenset[str] | None], None]

_ERROR_LOG_EVERY_S = 60.0


class StoreTrails:
    """Implements `TrailDirectory` from the config store, with hot reload."""

    def __init__(self, store: TrailStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._version = -1  # nothing loaded yet
        self._defaults = OperatorDefaults.from_settings(settings)
        self._overrides: dict[str, tuple[TrailOverrides, int]] = {}
        self._trails: dict[str, Trail] = {}
        self._default_trails: dict[str, Trail] = {}
        self._listeners: list[ChangeListener] = []
        self._last_error_log = 0.0

    @property
    def version(self) -> int:
        """The config version of the snapshot; -1 before the first load."""
        return self._version

    @property
    def defaults(self) -> OperatorDefaults:
        return self._defaults

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def get(self, project_id: str) -> Trail:
        trail = self._trails.get(project_id)
        if trail is not None:
            return trail
        trail = self._default_trails.get(project_id)
        if trail is None:
            effective = resolve(None, self._defaults, self._settings)
            trail = self._default_trails[project_id] = effective.to_trail(project_id)
        return trail

    async def load(self) -> None:
        """Read everything; raises when the store cannot be read (call at start)."""
        await self.refresh()

    async def refresh(self) -> bool:
        """Apply what changed in the store since the snapshot; True when anything did."""
        delta = await self._store.changed_since(self._version if self._version >= 0 else None)
        if delta.version == self._version:
            return False
        everything = self._version < 0 or delta.defaults_changed
        overrides = dict(self._overrides)
        for stored in delta.trails:
            if stored.configured:
                overrides[stored.project_id] = (stored.overrides, stored.version)
            else:
                overrides.pop(stored.project_id, None)
        defaults = delta.defaults
        if everything:  # every trail follows the defaults it does not override
            trails = {
                project_id: resolve(own, defaults, self._settings).to_trail(project_id, version)
                for project_id, (own, version) in overrides.items()
            }
            self._default_trails = {}
        else:
            trails = dict(self._trails)
            for stored in delta.trails:
                self._default_trails.pop(stored.project_id, None)
                if stored.project_id in overrides:
                    trails[stored.project_id] = stored.trail()
                else:
                    trails.pop(stored.project_id, None)
        self._overrides, self._trails, self._defaults = overrides, trails, defaults
        self._version = delta.version
        changed = None if everything else frozenset(s.project_id for s in delta.trails)
        log.debug("trail snapshot at config version %d", delta.version)
        for listener in self._listeners:
            try:
                listener(changed)
            except Exception:
                log.exception("trail change listener failed")
        return True

    async def run_reload(self, interval: float | timedelta | None = None) -> None:
        """Poll the store until cancelled; a failing database keeps the last snapshot."""
        if interval is None:
            interval = self._settings.reload_interval
        period = interval.total_seconds() if isinstance(interval, timedelta) else interval
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = time.monotonic()
                if now - self._last_error_log >= _ERROR_LOG_EVERY_S:
                    self._last_error_log = now
                    log.warning("cannot reload trails, keeping the last snapshot: %s", exc)
            await asyncio.sleep(period)
