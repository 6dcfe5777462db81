"""Retention in search: indices wholly past a project's retention go, the boundary index
is trimmed.

An event of UTC day D is kept until the end of D plus the retention, the same rule as the
archive's `X-Delete-At` (sinks/archive_object.py `delete_at`). So for a project with
retention R the cut-off is `start of today (UTC) - R days`: events before it are past
retention. An index whose name's date span ends at or before the cut-off is deleted
whole; one whose span contains the cut-off loses the events before it through
delete-by-query on `eventTime`. Index names are read with the index template, so an
index that is not one of the template's is never touched.

In the shared layout (one index for every project) retention is by tenant and time: a
document's retention is its owner's (`@project_id`, the first of its `tenant_ids`), and
the owner's documents before its cut-off go by delete-by-query. The owners are found with
a terms aggregation over documents older than the shortest possible retention.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.timeframe import iso
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import PROJECT_FIELD, SearchLayout, index_pattern
from stacktrail.search.reader import ALL_TIME, TIME_FIELD, Naming, ProjectIndex, parse_index_name

log = logging.getLogger(__name__)

RetentionOf = Callable[[str], Awaitable[int]]


class Action(StrEnum):
    DELETE = "delete"  # the whole index
    TRIM = "trim"  # delete-by-query of the events before the cut-off


@dataclass(frozen=True, slots=True)
class IndexAction:
    index: ProjectIndex
    action: Action
    cutoff: datetime
    retention_days: int
    docs: int  # documents that go (the whole index, or those before the cut-off)
    shared: bool = False  # the shared layout: only the documents of `index.project_id`

    def query(self) -> dict[str, object]:
        """What a trim deletes."""
        before = before_query(self.cutoff)
        if not self.shared:
            return before
        return {"bool": {"filter": [{"term": {PROJECT_FIELD: self.index.project_id}}, before]}}

    def describe(self) -> str:
        what = "delete index" if self.action is Action.DELETE else "trim index"
        return (
            f"{what} {self.index.name} (project {self.index.project_id}, retention "
            f"{self.retention_days} d, cut-off {iso(self.cutoff)}): {self.docs} documents"
        )


def cutoff_for(now: datetime, retention_days: int) -> datetime:
    """Events before this instant are past a retention of `retention_days`."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=retention_days)


def before_query(cutoff: datetime) -> dict[str, object]:
    return {"range": {TIME_FIELD: {"lt": iso(cutoff)}}}


class StoreRetention:
    """A project's effective retention (its trail, else the operator defaults), cached."""

    def __init__(self, store: TrailStore) -> None:
        self._store = store
        self._cache: dict[str, int] = {}

    async def __call__(self, project_id: str) -> int:
        days = self._cache.get(project_id)
        if days is None:
            days = (await self._store.get_trail(project_id)).trail().retention_days
            self._cache[project_id] = days
        return days


MAX_SHARED_OWNERS = 65536  # owners with expired documents handled per round


async def _plan_shared(
    client: SearchClient,
    index: str,
    retention_of: RetentionOf,
    now: datetime,
    projects: set[str] | None,
) -> list[IndexAction]:
    body = {
        "size": 0,
        "query": before_query(cutoff_for(now, 1)),
        "aggs": {"owners": {"terms": {"field": PROJECT_FIELD, "size": MAX_SHARED_OWNERS}}},
    }
    data = await client.search(index, body)
    buckets = data.get("aggregations", {}).get("owners", {}).get("buckets", [])
    actions = []
    for bucket in buckets:
        owner = str(bucket.get("key", ""))
        if not owner or (projects is not None and owner not in projects):
            continue
        days = await retention_of(owner)
        action = IndexAction(
            ProjectIndex(index, *ALL_TIME, project_id=owner),
            Action.TRIM,
            cutoff_for(now, days),
            days,
            0,
            shared=True,
        )
        old = await client.count(index, action.query())
        if old:
            actions.append(replace(action, docs=old))
    return actions


async def plan_search_retention(
    client: SearchClient,
    template: Naming,
    retention_of: RetentionOf,
    now: datetime,
    projects: set[str] | None = None,
) -> list[IndexAction]:
    """What retention would delete now (nothing is changed)."""
    if isinstance(template, SearchLayout):
        if template.shared:
            return await _plan_shared(client, template.shared_index, retention_of, now, projects)
        template = template.template
    actions = []
    for info in await client.list_indices(index_pattern(template)):
        parsed = parse_index_name(template, info.name)
        if parsed is None or (projects is not None and parsed.project_id not in projects):
            continue
        index = replace(parsed, docs=info.docs)
        days = await retention_of(index.project_id)
        cutoff = cutoff_for(now, days)
        if index.end <= cutoff:
            actions.append(IndexAction(index, Action.DELETE, cutoff, days, index.docs))
        elif index.start < cutoff:
            old = await client.count(index.name, before_query(cutoff))
            if old:
                actions.append(IndexAction(index, Action.TRIM, cutoff, days, old))
    return actions


async def apply_search_retention(client: SearchClient, actions: list[IndexAction]) -> int:
    """Carry out a plan; returns the documents deleted. Each step is logged."""
    deleted = 0
    for action in actions:
        if action.action is Action.DELETE:
            if await client.delete_index(action.index.name):
                deleted += action.docs
        else:
            deleted += await client.delete_by_query(action.index.name, action.query())
        log.info("retention: %s", action.describe())
    return deleted
