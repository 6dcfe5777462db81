"""The SQL config store: trails, their change history, and the operator's defaults.

Every change runs in one transaction that first bumps the `config_version` counter.
That serialises all configuration writers (a row lock on PostgreSQL, the write lock on
SQLite), makes the If-Match check atomic, and tells every polling process that
something changed; each changed row carries the counter value (`seq`) of its change so
that a reload reads only what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stacktrail.config import Settings
from stacktrail.db import tables as t
from stacktrail.domain.audit import (
    ACTION_DELETE_TRAIL,
    ACTION_UPDATE_DEFAULTS,
    ACTION_UPDATE_TRAIL,
    Actor,
)
from stacktrail.domain.defaults import Editor, OperatorDefaults
from stacktrail.domain.document import (
    BoundNote,
    EffectiveTrail,
    TrailOverrides,
    TrailSpec,
    resolve,
)
from stacktrail.domain.durations import format_duration
from stacktrail.domain.trail import ArchiveFormat, Trail

log = logging.getLogger(__name__)

IfMatch = frozenset[int] | None  # None: no precondition


class PreconditionFailed(Exception):
    """The stored version is not one the client expected (If-Match)."""

    def __init__(self, current_version: int) -> None:
        super().__init__(f"the current version is {current_version}")
        self.current_version = current_version


@dataclass(frozen=True, slots=True)
class StoredTrail:
    project_id: str
    effective: EffectiveTrail  # the overrides over the defaults read in the same transaction
    version: int  # 0: never configured
    configured: bool  # False: the operator defaults apply (never set, or deleted)
    updated_at: datetime | None = None
    updated_by: Editor | None = None

    @property
    def spec(self) -> TrailSpec:
        """The effective configuration."""
        return self.effective.spec

    @property
    def overrides(self) -> TrailOverrides:
        return self.effective.overrides

    def trail(self) -> Trail:
        """The plain trail the pipeline reads."""
        return self.effective.to_trail(self.project_id, self.version)

    def document(self) -> dict[str, Any] | None:
        """The stored overrides as JSON (what the history records), None when nothing is
        stored and the defaults apply."""
        return self.overrides.document() if self.configured else None


@dataclass(frozen=True, slots=True)
class OutOfBounds:
    """The stored overrides the current bounds clamp, for the operator."""

    count: int
    notes: list[tuple[str, BoundNote]]  # (project id, note), the first ones by project id


@dataclass(frozen=True, slots=True)
class TrailChange:
    id: int
    project_id: str | None
    action: str
    version: int
    changed_at: datetime
    user_id: str
    user_name: str
    user_project_id: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ConfigDelta:
    """What changed after a given config version (everything when there is none)."""

    version: int
    defaults: OperatorDefaults
    defaults_changed: bool
    trails: list[StoredTrail]


@dataclass(frozen=True, slots=True)
class ConfigRows:
    """`ConfigDelta` with the changed trails as stored rows (`project_id`, `config`: the
    overrides document or None, `version`)."""

    version: int
    defaults: OperatorDefaults
    defaults_changed: bool
    rows: Sequence[Row[Any]]


@dataclass(frozen=True, slots=True)
class TrailPage:
    trails: list[StoredTrail]
    in_error: frozenset[str]
    next_marker: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class TrailStore:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def settings(self) -> Settings:
        return self._settings

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self._engine.connect() as conn:
            await conn.execute(select(t.config_version.c.version))

    async def config_version(self) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(t.config_version.c.version).where(t.config_version.c.id == 1)
            )
        return int(value or 0)

    # --- defaults

    def _defaults_from_row(self, row: Row[Any] | None) -> OperatorDefaults:
        if row is None:
            return OperatorDefaults.from_settings(self._settings)
        return OperatorDefaults(
            default_retention_days=row.default_retention_days,
            max_retention_days=row.max_retention_days,
            default_interval=timedelta(seconds=row.default_interval_seconds),
            min_interval=timedelta(seconds=row.min_interval_seconds),
            default_container=row.default_container,
            default_format=ArchiveFormat(row.default_format),
            version=row.version,
            updated_at=row.updated_at,
            updated_by=Editor(row.updated_by_id, row.updated_by_name),
        )

    async def _defaults(self, conn: AsyncConnection) -> OperatorDefaults:
        row = (await conn.execute(select(t.defaults).where(t.defaults.c.id == 1))).first()
        return self._defaults_from_row(row)

    async def get_defaults(self) -> OperatorDefaults:
        async with self._engine.connect() as conn:
            return await self._defaults(conn)

    async def put_defaults(
        self, new: OperatorDefaults, actor: Actor, if_match: IfMatch = None
    ) -> tuple[OperatorDefaults, OperatorDefaults]:
        """Store the defaults; returns (old, new). PreconditionFailed on a stale If-Match."""
        async with self._engine.begin() as conn:
            seq = await self._bump(conn)
            old = await self._defaults(conn)
            if if_match is not None and old.version not in if_match:
                raise PreconditionFailed(old.version)
            now = _now()
            values = {
                "default_retention_days": new.default_retention_days,
                "max_retention_days": new.max_retention_days,
                "default_interval_seconds": int(new.default_interval.total_seconds()),
                "min_interval_seconds": int(new.min_interval.total_seconds()),
                "default_container": new.default_container,
                "default_format": new.default_format.value,
                "version": old.version + 1,
                "seq": seq,
                "updated_at": now,
                "updated_by_id": actor.user_id,
                "updated_by_name": actor.user_name,
            }
            if old.version == 0:
                await conn.execute(t.defaults.insert().values(id=1, **values))
            else:
                await conn.execute(t.defaults.update().where(t.defaults.c.id == 1).values(**values))
            stored = await self._defaults(conn)
            await self._record_change(
                conn,
                project_id=None,
                action=ACTION_UPDATE_DEFAULTS,
                version=stored.version,
                at=now,
                actor=actor,
                old=defaults_document(old),
                new=defaults_document(stored),
            )
            return old, stored

    # --- trails

    def _trail_from_row(
        self, project_id: str, row: Row[Any] | None, defaults: OperatorDefaults
    ) -> StoredTrail:
        if row is None:
            return StoredTrail(project_id, resolve(None, defaults, self._settings), 0, False)
        editor = Editor(row.updated_by_id, row.updated_by_name)
        document = row.config
        if document is not None and not isinstance(document, Mapping):
            log.error("stored trail of project %s is not a JSON object: defaults apply", project_id)
            document = {}
        effective = resolve(document, defaults, self._settings)
        if effective.notes:
            log.debug("trail of project %s: %s", project_id, [n.message for n in effective.notes])
        return StoredTrail(
            project_id, effective, row.version, document is not None, row.updated_at, editor
        )

    async def get_trail(self, project_id: str) -> StoredTrail:
        """The stored trail, or the operator defaults (version 0) when none is stored."""
        async with self._engine.connect() as conn:
            return await self._get_trail(conn, project_id)

    async def _get_trail(self, conn: AsyncConnection, project_id: str) -> StoredTrail:
        row = (
            await conn.execute(select(t.trails).where(t.trails.c.project_id == project_id))
        ).first()
        return self._trail_from_row(project_id, row, await self._defaults(conn))

    async def put_trail(
        self,
        project_id: str,
        overrides: TrailOverrides | TrailSpec,
        actor: Actor,
        if_match: IfMatch = None,
        *,
        unchanged_is_noop: bool = False,
    ) -> tuple[StoredTrail, StoredTrail]:
        """Store a project's overrides (a complete spec overrides everything); returns
        (old, new). With `unchanged_is_noop`, the same overrides again write nothing."""
        if isinstance(overrides, TrailSpec):
            overrides = TrailOverrides.model_validate(overrides.model_dump(mode="json"))
        return await self._write_trail(project_id, overrides, actor, if_match, unchanged_is_noop)

    async def delete_trail(
        self, project_id: str, actor: Actor, if_match: IfMatch = None
    ) -> tuple[StoredTrail, StoredTrail]:
        """Reset a project's trail to the operator defaults; returns (old, new)."""
        return await self._write_trail(project_id, None, actor, if_match)

    async def _write_trail(
        self,
        project_id: str,
        overrides: TrailOverrides | None,
        actor: Actor,
        if_match: IfMatch,
        unchanged_is_noop: bool = False,
    ) -> tuple[StoredTrail, StoredTrail]:
        async with self._engine.connect() as conn, conn.begin() as transaction:
            seq = await self._bump(conn)
            old = await self._get_trail(conn, project_id)
            if if_match is not None and old.version not in if_match:
                raise PreconditionFailed(old.version)
            document = overrides.document() if overrides is not None else None
            if (document is None and not old.configured) or (
                unchanged_is_noop and document == (old.document() or {})
            ):
                await transaction.rollback()  # nothing changes: no version, no history
                return old, old
            now = _now()
            values = {
                "config": document,
                "enabled": None if overrides is None else overrides.enabled is not False,
                "version": old.version + 1,
                "seq": seq,
                "updated_at": now,
                "updated_by_id": actor.user_id,
                "updated_by_name": actor.user_name,
            }
            if old.version == 0:
                await conn.execute(t.trails.insert().values(project_id=project_id, **values))
            else:
                await conn.execute(
                    t.trails.update().where(t.trails.c.project_id == project_id).values(**values)
                )
            new = await self._get_trail(conn, project_id)
            await self._record_change(
                conn,
                project_id=project_id,
                action=ACTION_UPDATE_TRAIL if overrides is not None else ACTION_DELETE_TRAIL,
                version=new.version,
                at=now,
                actor=actor,
                old=old.document(),
                new=new.document(),
            )
            return old, new

    async def list_trails(
        self,
        *,
        limit: int = 100,
        marker: str | None = None,
        offset: int = 0,
        enabled: bool | None = None,
        search: str | None = None,
        in_error: bool | None = None,
    ) -> TrailPage:
        """Configured trails ordered by project id, after `marker` or from `offset`."""
        failing = exists().where(
            and_(
                t.delivery_status.c.project_id == t.trails.c.project_id,
                t.delivery_status.c.last_error_at.is_not(None),
                or_(
                    t.delivery_status.c.last_success_at.is_(None),
                    t.delivery_status.c.last_error_at > t.delivery_status.c.last_success_at,
                ),
            )
        )
        query = select(t.trails, failing.label("in_error")).where(t.trails.c.config.is_not(None))
        if enabled is not None:
            query = query.where(t.trails.c.enabled == enabled)
        if search:
            query = query.where(
                func.lower(t.trails.c.project_id).like(
                    f"%{_like_escape(search.lower())}%", escape="\\"
                )
            )
        if in_error is not None:
            query = query.where(failing if in_error else ~failing)
        if marker:
            query = query.where(t.trails.c.project_id > marker)
        query = query.order_by(t.trails.c.project_id).offset(offset).limit(limit + 1)
        async with self._engine.connect() as conn:
            defaults = await self._defaults(conn)
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        trails = [self._trail_from_row(row.project_id, row, defaults) for row in rows]
        return TrailPage(
            trails=trails,
            in_error=frozenset(row.project_id for row in rows if row.in_error),
            next_marker=rows[-1].project_id if more and rows else None,
        )

    async def out_of_bounds(self, *, listed: int = 100, batch: int = 500) -> OutOfBounds:
        """Stored overrides the current bounds clamp (all of them counted, the first
        `listed` itemised), read in batches by project id."""
        count = 0
        notes: list[tuple[str, BoundNote]] = []
        marker = ""
        async with self._engine.connect() as conn:
            defaults = await self._defaults(conn)
            while True:
                rows = (
                    await conn.execute(
                        select(t.trails)
                        .where(t.trails.c.config.is_not(None), t.trails.c.project_id > marker)
                        .order_by(t.trails.c.project_id)
                        .limit(batch)
                    )
                ).all()
                for row in rows:
                    stored = self._trail_from_row(row.project_id, row, defaults)
                    count += len(stored.effective.notes)
                    room = max(0, listed - len(notes))
                    notes.extend((row.project_id, n) for n in stored.effective.notes[:room])
                if len(rows) < batch:
                    return OutOfBounds(count, notes)
                marker = rows[-1].project_id

    async def changes(
        self, project_id: str | None, *, limit: int = 50, before: int | None = None
    ) -> list[TrailChange]:
        """A trail's change history (None: the defaults'), newest first."""
        c = t.trail_changes.c
        query = select(t.trail_changes).where(
            c.project_id == project_id if project_id is not None else c.project_id.is_(None)
        )
        if before is not None:
            query = query.where(c.id < before)
        query = query.order_by(c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            TrailChange(
                id=row.id,
                project_id=row.project_id,
                action=row.action,
                version=row.version,
                changed_at=row.changed_at,
                user_id=row.user_id,
                user_name=row.user_name,
                user_project_id=row.user_project_id,
                old=row.old,
                new=row.new,
            )
            for row in rows
        ]

    async def changed_since(self, seq: int | None) -> ConfigDelta:
        """Trails changed after config version `seq` (all of them for None), the defaults."""
        rows = await self.changed_rows_since(seq)
        defaults = rows.defaults
        return ConfigDelta(
            version=rows.version,
            defaults=defaults,
            defaults_changed=rows.defaults_changed,
            trails=[self._trail_from_row(row.project_id, row, defaults) for row in rows.rows],
        )

    async def changed_rows_since(self, seq: int | None) -> ConfigRows:
        """Like `changed_since`, with the trails as stored rows, not resolved: the
        pipeline's snapshot resolves each distinct overrides document only once."""
        async with self._engine.connect() as conn:
            version = int(
                await conn.scalar(
                    select(t.config_version.c.version).where(t.config_version.c.id == 1)
                )
                or 0
            )
            defaults_row = (
                await conn.execute(select(t.defaults).where(t.defaults.c.id == 1))
            ).first()
            defaults = self._defaults_from_row(defaults_row)
            rows: Sequence[Row[Any]] = []
            if seq is None:
                rows = (await conn.execute(select(t.trails))).all()
            elif version != seq:
                rows = (await conn.execute(select(t.trails).where(t.trails.c.seq > seq))).all()
        return ConfigRows(
            version=version,
            defaults=defaults,
            defaults_changed=seq is None or (defaults_row is not None and defaults_row.seq > seq),
            rows=rows,
        )

    # --- helpers

    @staticmethod
    async def _bump(conn: AsyncConnection) -> int:
        result = await conn.execute(
            update(t.config_version)
            .where(t.config_version.c.id == 1)
            .values(version=t.config_version.c.version + 1)
            .returning(t.config_version.c.version)
        )
        return int(result.scalar_one())

    @staticmethod
    async def _record_change(
        conn: AsyncConnection,
        *,
        project_id: str | None,
        action: str,
        version: int,
        at: datetime,
        actor: Actor,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        await conn.execute(
            t.trail_changes.insert().values(
                project_id=project_id,
                action=action,
                version=version,
                changed_at=at,
                user_id=actor.user_id,
                user_name=actor.user_name,
                user_project_id=actor.project_id,
                old=old,
                new=new,
            )
        )


def defaults_document(defaults: OperatorDefaults) -> dict[str, Any]:
    """The writable part of the defaults as JSON (for the history and audit events)."""
    return {
        "default_retention_days": defaults.default_retention_days,
        "max_retention_days": defaults.max_retention_days,
        "default_interval": format_duration(defaults.default_interval),
        "min_interval": format_duration(defaults.min_interval),
        "default_container": defaults.default_container,
        "default_format": defaults.default_format.value,
    }
