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

from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.event_rules import EventSelection
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


class Router:
    """Finds the trails an event goes to; pure code, the directory does the lookups.

    `default_exclude`: the operator's default event rule (`STACKTRAIL_EVENTS_DEFAULT_EXCLUDE`,
    Hermes' Logstash dropped `read/list` and `read/get`): events it matches go to no trail
    unless the trail's own includes (a pattern such as `read/*`, or `*` for all, or an
    include rule) name them.
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
        # compiled once: matched as includes are (a pattern on type, action or target type)
        self._default_exclude = EventSelection(include=tuple(default_exclude))
        self._has_default_exclude = bool(default_exclude)
        # (event_type, action, target_type) -> whether the default rule excludes it:
        # events come with few distinct names, and matching globs is the costly part
        self._excluded: dict[tuple[str, str, str], bool] = {}

    @property
    def unscoped_project(self) -> str:
        return self._unscoped

    def route(self, event: AuditEvent) -> list[Trail]:
        """Enabled trails of the event's projects whose event filter matches it."""
        trails = []
        excluded = self._has_default_exclude and self._excluded_by_default(event)
        for project_id in owner_projects(event, self._unscoped):
            trail = self._directory.get(project_id)
            if trail.enabled and trail.events.keeps(event, default_excluded=excluded):
                trails.append(trail)
        return trails

    def _excluded_by_default(self, event: AuditEvent) -> bool:
        key = (event.event_type, event.action, event.target_type)
        excluded = self._excluded.get(key)
        if excluded is None:
            if len(self._excluded) >= EXCLUDED_CACHE_SIZE:
                self._excluded.clear()  # crafted names must not grow it without bound
            excluded = self._excluded[key] = self._default_exclude.includes(event)
        return excluded
