"""Where the pipeline looks up a project's trail; the config store plugs in here."""

from __future__ import annotations

from typing import Protocol

from stacktrail.domain.trail import Trail, TrailSettings, default_trail


class TrailDirectory(Protocol):
    def get(self, project_id: str) -> Trail:
        """The effective trail of a project (operator defaults when none is stored)."""
        ...


class DefaultTrails:
    """Every project gets the operator defaults (no config store attached)."""

    def __init__(self, settings: TrailSettings) -> None:
        self._settings = settings
        self._cache: dict[str, Trail] = {}

    def get(self, project_id: str) -> Trail:
        trail = self._cache.get(project_id)
        if trail is None:
            trail = self._cache[project_id] = default_trail(project_id, self._settings)
        return trail
