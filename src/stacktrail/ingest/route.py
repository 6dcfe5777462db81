"""Event -> owning projects -> their enabled trails whose filters take the event.

Hermes-compatible ownership: the event belongs to `initiator.project_id`, else
`target.project_id`, else `initiator.domain_id`; when the target project differs from
the owner it gets a copy too. An event with no usable scope goes to the operator's
`unscoped` trail. Ids that are not valid project ids count as absent, so a malformed
id can never reach an index name or an object key.
"""

from __future__ import annotations

from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.names import is_valid_project_id
from stacktrail.domain.trail import UNSCOPED, Trail


def owner_projects(event: AuditEvent, unscoped_project: str = UNSCOPED) -> list[str]:
    """The project ids that receive a copy of the event, owner first (never empty)."""
    target = event.target_project_id
    if not is_valid_project_id(target):
        target = None
    owner: str
    if is_valid_project_id(event.initiator_project_id):
        owner = event.initiator_project_id
    elif target is not None:
        owner = target
    elif is_valid_project_id(event.initiator_domain_id):
        owner = event.initiator_domain_id
    else:
        return [unscoped_project]
    if target is not None and target != owner:
        return [owner, target]
    return [owner]


class Router:
    """Finds the trails an event goes to; pure code, the directory does the lookups."""

    def __init__(self, directory: TrailDirectory, unscoped_project: str = UNSCOPED) -> None:
        if not is_valid_project_id(unscoped_project):
            raise ValueError(f"unscoped project {unscoped_project!r} is not a valid project id")
        self._directory = directory
        self._unscoped = unscoped_project

    @property
    def unscoped_project(self) -> str:
        return self._unscoped

    def route(self, event: AuditEvent) -> list[Trail]:
        """Enabled trails of the event's projects whose event filter matches it."""
        trails = []
        for project_id in owner_projects(event, self._unscoped):
            trail = self._directory.get(project_id)
            if trail.enabled and trail.events.matches(
                event.event_type, event.action, event.target_type
            ):
                trails.append(trail)
        return trails
