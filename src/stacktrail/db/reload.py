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
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

import orjson

from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import resolve
from stacktrail.domain.trail import ArchiveConfig, EventFilter, Trail

log = logging.getLogger(__name__)

# Called after a refresh with the projects whose trail changed; None: possibly all of them
# (the operator defaults changed, or the first load).
ChangeListener = Callable[[frozenset[str] | None], None]

_ERROR_LOG_EVERY_S = 60.0
_NOTHING_STORED = ""  # the shape of a project without overrides
_YIELD_EVERY = 500  # trails resolved between two turns of the event loop
_Part = TypeVar("_Part", ArchiveConfig, EventFilter)


class StoreTrails:
    """Implements `TrailDirectory` from the config store, with hot reload.

    Sized for tens of thousands of trails: each project keeps its stored overrides as
    one canonical JSON string (equal documents share one object) and its `Trail`; a
    document is resolved once per defaults (`_shapes`), and every trail resolved from
    it shares the same `ArchiveConfig` and `EventFilter` objects. A reload resolves only
    the changed rows, and a change of the defaults resolves each distinct document once
    instead of every trail.
    """

    def __init__(self, store: TrailStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._version = -1  # nothing loaded yet
        self._defaults = OperatorDefaults.from_settings(settings)
        self._stored: dict[str, str] = {}  # project -> its overrides document
        self._documents: dict[str, str] = {}  # equal documents -> one object
        self._shapes: dict[str, Trail] = {}  # overrides -> trail without project (current defaults)
        self._parts: dict[object, object] = {}  # equal ArchiveConfig / EventFilter -> one object
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
            trail = self._default_trails[project_id] = replace(
                self._shape(_NOTHING_STORED), project_id=project_id
            )
        return trail

    def _shape(self, document: str) -> Trail:
        """The trail an overrides document resolves to under the current defaults."""
        shape = self._shapes.get(document)
        if shape is None:
            stored = orjson.loads(document) if document != _NOTHING_STORED else None
            trail = resolve(stored, self._defaults, self._settings).to_trail("")
            shape = replace(
                trail, archive=self._part(trail.archive), events=self._part(trail.events)
            )
            self._shapes[document] = shape
        return shape

    def _part(self, part: _Part) -> _Part:
        return self._parts.setdefault(part, part)  # type: ignore[return-value]

    def _trail(self, project_id: str, document: str, version: int) -> Trail:
        return replace(self._shape(document), project_id=project_id, version=version)

    def _document(self, project_id: str, config: object) -> str:
        """The stored overrides as canonical JSON; one object per distinct document."""
        if not isinstance(config, Mapping):
            log.error("stored trail of project %s is not a JSON object: defaults apply", project_id)
            config = {}
        # decoded: orjson's bytes keep a buffer of several kB, a str is its exact size
        document = orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()
        return self._documents.setdefault(document, document)

    async def load(self) -> None:
        """Read everything; raises when the store cannot be read (call at start)."""
        await self.refresh()

    async def refresh(self) -> bool:
        """Apply what changed in the store since the snapshot; True when anything did."""
        delta = await self._store.changed_rows_since(self._version if self._version >= 0 else None)
        if delta.version == self._version:
            return False
        everything = self._version < 0 or delta.defaults_changed
        if everything:  # every trail follows the defaults it does not override
            self._defaults = delta.defaults
            self._shapes, self._parts = {}, {}
            self._documents = {d: d for d in self._stored.values()}
            versions = {p: trail.version for p, trail in self._trails.items()}
            stored = dict(self._stored)
            for row in delta.rows:
                versions[row.project_id] = row.version
                if row.config is not None:
                    stored[row.project_id] = self._document(row.project_id, row.config)
                else:
                    stored.pop(row.project_id, None)
            trails: dict[str, Trail] = {}
            for n, (project_id, document) in enumerate(stored.items(), 1):
                trails[project_id] = self._trail(project_id, document, versions[project_id])
                if not n % _YIELD_EVERY:  # thousands of distinct documents: let events flow
                    await asyncio.sleep(0)
            self._trails, self._stored, self._default_trails = trails, stored, {}
        else:
            for row in delta.rows:
                project_id = row.project_id
                self._default_trails.pop(project_id, None)
                if row.config is not None:
                    document = self._stored[project_id] = self._document(project_id, row.config)
                    self._trails[project_id] = self._trail(project_id, document, row.version)
                else:
                    self._stored.pop(project_id, None)
                    self._trails.pop(project_id, None)
        if len(self._documents) > 2 * len(self._stored) + 64:  # documents nobody has now
            live = set(self._stored.values())
            self._documents = {d: d for d in live}
            self._shapes = {d: s for d, s in self._shapes.items() if d in live}
        self._version = delta.version
        changed = None if everything else frozenset(row.project_id for row in delta.rows)
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
