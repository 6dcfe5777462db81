"""Event -> owning projects -> their enabled trails whose filters take the event.

Hermes-compatible ownership: the event belongs to `initiator.project_id`, else
`target.project_id`, else `initiator.domain_id`; when the target project differs from
the owner it gets a copy too. An event with no usable scope goes to the operator's
`unscoped` trail. Ids that are not valid project ids, and placeholders (pycadf's
`unknown`, `None`, empty), count as absent, so neither a malformed id nor a stand-in
reaches an index name or an object key.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.names import is_valid_project_id, owner_id
from stacktrail.domain.trail import UNSCOPED, Trail

EXCLUDED_CACHE_SIZE = 10_000  # distinct event names remembered by the default rule


def _scope(value: str | None) -> str | None:
    return owner_id(value)


def owner_projects(event: AuditEvent, unscoped_project: str = UNSCOPED) -> list[str]:
    """The project ids that receive a copy of the event, owner first (never empty)."""
    target = _scope(event.target_project_id)
    initiator_project = _scope(event.initiator_project_id)
    initiator_domain = _scope(event.initiator_domain_id)
    owner: str
    if initiator_project is not None:
        owner = initiator_project
    elif target is not None:
        owner = target
    elif initiator_domain is not None:
        owner = initiator_domain
    else:
        return [unscoped_project]
    if target is not None and target != owner:
        return [owner, target]
    return [owner]


def _names(patterns: Sequence[str], event: AuditEvent) -> bool:
    fields = (event.event_type, event.action, event.target_type)
    return any(fnmatchcase(f, p) for p in patterns for f in fields if f)


class Router:
    """Finds the trails an event goes to; pure code, the directory does the lookups.

    `default_exclude`: the operator's default event rule (`STACKTRAIL_EVENTS_DEFAULT_EXCLUDE`,
    Hermes' Logstash dropped `read/list` and `read/get`): events it matches go to no trail
    unless the trail's own `include` patterns name them (`read/*`, or `*` for all).
    """

    def __init__(
        self,
        directory: TrailDirectory,
        unscoped_project: str = UNSCOPED,
        default_exclude: Sequence[str] = (),
    ) -> None:
        if not is_valid_project_id(unscoped_project):
            raise ValueError(f"unscoped project {unscoped_project!r} is not a valid project id")
        self._directory = directory
        self._unscoped = unscoped_project
        self._default_exclude = tuple(default_exclude)
        # (event_type, action, target_type) -> whether the default rule excludes it:
        # events come with few distinct names, and matching globs is the costly part
        self._excluded: dict[tuple[str, str, str], bool] = {}

    @property
    def unscoped_project(self) -> str:
        return self._unscoped

    def route(self, event: AuditEvent) -> list[Trail]:
        """Enabled trails of the event's projects whose event filter matches it."""
        trails = []
        excluded = bool(self._default_exclude) and self._excluded_by_default(event)
        for project_id in owner_projects(event, self._unscoped):
            trail = self._directory.get(project_id)
            if (
                trail.enabled
                and trail.events.matches(event.event_type, event.action, event.target_type)
                and not (excluded and not _names(trail.events.include, event))
            ):
                trails.append(trail)
        return trails

    def _excluded_by_default(self, event: AuditEvent) -> bool:
        key = (event.event_type, event.action, event.target_type)
        excluded = self._excluded.get(key)
        if excluded is None:
            if len(self._excluded) >= EXCLUDED_CACHE_SIZE:
                self._excluded.clear()  # crafted names must not grow it without bound
            excluded = self._excluded[key] = _names(self._default_exclude, event)
        return excluded
