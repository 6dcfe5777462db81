"""Owners that exist: the step after routing that asks Keystone who an owner is.

Routing trusts the ids in the event. An id Keystone does not know would create an
archive account of its own (`AUTH_<anything>`) that nobody can read, so events of
unknown projects go to the unscoped trail instead. A domain (e.g. a failed login of an
unknown user, owner `default`) keeps its own search index, which Hermes reads with
domain-scoped tokens, and is archived into the unscoped trail's account, in the
container the operator chose (STACKTRAIL_DOMAIN_ARCHIVE_CONTAINER).

Answers are cached, known ids longer than unknown ones (a new project's first events
go to the unscoped trail at most the negative TTL). When Keystone cannot answer, the
event goes where its ids say (fail open): audit events of real projects must not
vanish from their trail during a Keystone outage. The failure is remembered for
`retry_after` for every id, since an outage (or a service user without
`identity:get_project`) is Keystone's state, not an id's: it costs one question per
interval, not one per id (5,000 active projects asked every 30 s would be 166 a
second).

Keystone's lists of projects and domains (`learn_all`, at start and before the answers
expire) answer for every owner that exists in two requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Final, Protocol

from stacktrail.config import Settings
from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.errors import ClientError
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import UNSCOPED, Trail
from stacktrail.keystone import ProjectKind
from stacktrail.telemetry import metrics
from stacktrail.telemetry.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

SEARCH = "search"
ARCHIVE = "archive"
# Keystone questions in flight at once: each takes a thread of the default pool, which
# the archive spool's writes need too.
LOOKUPS_AT_ONCE: Final = 4


class ProjectLookup(Protocol):
    async def project_kind(self, project_id: str) -> ProjectKind: ...


class ProjectLister(ProjectLookup, Protocol):
    async def project_kinds(self) -> dict[str, ProjectKind]: ...


@dataclass(slots=True)
class Placement:
    """One copy of an event: the project it is filed under, its trail, which sinks.

    Made once per copy of every event and never changed (not frozen: a frozen
    dataclass's constructor costs several times as much)."""

    project_id: str
    trail: Trail
    only: str | None = None  # a sink name: this copy goes to that sink alone
    counted: bool = True  # counts in the project's ingest statistics


def everywhere(trails: Sequence[Trail]) -> list[Placement]:
    """The placements when owners are not checked: each trail as routed."""
    return [Placement(trail.project_id, trail) for trail in trails]


class Owners:
    def __init__(
        self,
        lookup: ProjectLookup,
        directory: TrailDirectory,
        *,
        unscoped_project: str = UNSCOPED,
        ttl: float = 3600.0,
        negative_ttl: float = 300.0,
        size: int = 100_000,
        domain_container: str = "",
        retry_after: float = 30.0,
        lister: ProjectLister | None = None,
    ) -> None:
        """`lister`: Keystone's lists of projects and domains (see `learn_all`)."""
        self._lookup = lookup
        self._lister = lister
        self._directory = directory
        self._unscoped = unscoped_project
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._size = size
        # id -> (Keystone's answer, monotonic deadline). A plain dict, because it is read
        # once per event: a cachetools TTLCache read cost 0.9 µs, this 0.1 µs.
        self._answers: dict[str, tuple[ProjectKind, float]] = {}
        self._retry_after = retry_after
        self._refused_until = 0.0  # monotonic: Keystone could not answer, ask again then
        self._asking: dict[str, asyncio.Task[ProjectKind | None]] = {}  # one question per id
        self._slots = asyncio.Semaphore(LOOKUPS_AT_ONCE)
        self._domain_container = domain_container
        self._errors = RateLimitedLog(log, interval=60.0)
        self._domain_trail: tuple[Trail, Trail] | None = None  # (unscoped, its copy)

    @classmethod
    def from_settings(
        cls, keystone: ProjectLister, directory: TrailDirectory, settings: Settings
    ) -> Owners:
        return cls(
            keystone,
            directory,
            ttl=settings.owner_cache_ttl.total_seconds(),
            negative_ttl=settings.owner_negative_cache_ttl.total_seconds(),
            size=settings.owner_cache_size,
            domain_container=settings.domain_archive_container,
            retry_after=settings.owner_lookup_retry.total_seconds(),
            lister=keystone,
        )

    @property
    def relist_interval(self) -> float:
        """Seconds between two `learn_all` rounds: listed answers are renewed before
        they expire, so owners that exist are never asked about one by one."""
        return self._ttl * 0.9

    async def learn_all(self) -> bool:
        """Learn every project and domain from Keystone's lists (two requests, however
        many projects); False, logged, when Keystone refuses or fails: then each new
        owner is asked about on its own, as without lists."""
        if self._lister is None:
            return False
        started = monotonic()
        try:
            kinds = await self._lister.project_kinds()
        except (ClientError, ValueError) as exc:  # ValueError: a body that is not JSON
            log.warning(
                "owner check: could not list Keystone's projects (%s); each new owner is "
                "asked about on its own",
                exc,
            )
            return False
        for project_id, kind in kinds.items():
            self._remember(project_id, kind)
        log.info(
            "owner check: %d projects and domains listed by Keystone in %.1f s",
            len(kinds),
            monotonic() - started,
        )
        return True

    def unanswered(self, trails: Sequence[Trail]) -> list[str]:
        """The owners of `trails` Keystone must be asked about before `place` can answer
        at once: no fresh answer, and not asked in vain within `retry_after`."""
        now = monotonic()
        missing = []
        for trail in trails:
            project_id = trail.project_id
            if project_id == self._unscoped:
                continue
            if self._fresh(project_id, now) is None:
                missing.append(project_id)
        return missing if now >= self._refused_until else []

    def _fresh(self, project_id: str, now: float) -> ProjectKind | None:
        """The cached answer for `project_id` while it holds (None: none, or expired)."""
        answer = self._answers.get(project_id)
        return answer[0] if answer is not None and answer[1] > now else None

    async def kind(self, project_id: str) -> ProjectKind | None:
        """What Keystone says the id is (cached); None when it could not answer.

        Callers asking about the same id at once share one question."""
        now = monotonic()
        kind = self._fresh(project_id, now)
        if kind is not None:
            return kind
        if now < self._refused_until:
            return None
        asking = self._asking.get(project_id)
        if asking is None:
            asking = self._asking[project_id] = asyncio.create_task(self._ask(project_id))
            asking.add_done_callback(lambda _task: self._asking.pop(project_id, None))
        # a cancelled caller leaves the question to the others
        return await asyncio.shield(asking)

    async def _ask(self, project_id: str) -> ProjectKind | None:
        async with self._slots:
            if monotonic() < self._refused_until:  # failed while this one waited its turn
                return None
            try:
                kind = await self._lookup.project_kind(project_id)
            except ClientError as exc:
                self._refused_until = monotonic() + self._retry_after
                metrics.OWNER_LOOKUPS.labels(result="error").inc()
                self._errors.warning(
                    "owner check: Keystone could not answer for %s (%s); events go where "
                    "their ids say for %g s, then it is asked again",
                    project_id,
                    exc,
                    self._retry_after,
                )
                return None
        metrics.OWNER_LOOKUPS.labels(result=kind.value).inc()
        self._remember(project_id, kind)
        return kind

    def _remember(self, project_id: str, kind: ProjectKind) -> None:
        """Cache an answer, known ids for `ttl`, unknown ones for `negative_ttl`; when
        `size` answers are held, the expired ones go, and if that is not a tenth of them,
        the oldest too, down to nine tenths (so a full cache is not scanned per answer)."""
        answers = self._answers
        now = monotonic()
        answers.pop(project_id, None)  # re-inserted last: the dict's order is by age
        if len(answers) >= self._size:
            for key in [key for key, (_kind, deadline) in answers.items() if deadline <= now]:
                del answers[key]
            keep = self._size * 9 // 10
            while len(answers) > keep:
                del answers[next(iter(answers))]
        ttl = self._negative_ttl if kind is ProjectKind.UNKNOWN else self._ttl
        answers[project_id] = (kind, now + ttl)

    async def place(self, event: AuditEvent, trails: Sequence[Trail]) -> list[Placement]:
        placements: list[Placement] = []
        unscoped_added = False
        for trail in trails:
            if trail.project_id == self._unscoped:
                if not unscoped_added:
                    placements.append(Placement(trail.project_id, trail))
                    unscoped_added = True
                continue
            # `kind`'s cache first: no coroutine per event for an owner already answered
            kind = self._fresh(trail.project_id, monotonic()) or await self.kind(trail.project_id)
            if kind is ProjectKind.UNKNOWN:
                unscoped = self._unscoped_trail(event)
                if unscoped is not None and not unscoped_added:
                    placements.append(Placement(self._unscoped, unscoped))
                    unscoped_added = True
                log.debug(
                    "event %s: owner %s unknown to Keystone; filed under the unscoped trail",
                    event.id,
                    trail.project_id,
                    extra={"event_id": event.id, "project_id": trail.project_id},
                )
            elif kind is ProjectKind.DOMAIN:
                placements.append(Placement(trail.project_id, trail, only=SEARCH))
                archive = self._domain_archive_trail()
                if archive is not None:
                    placements.append(
                        Placement(self._unscoped, archive, only=ARCHIVE, counted=False)
                    )
            else:  # a project, or Keystone could not say: as routed
                placements.append(Placement(trail.project_id, trail))
        return placements

    def _unscoped_trail(self, event: AuditEvent) -> Trail | None:
        trail = self._directory.get(self._unscoped)
        if trail.enabled and trail.events.keeps(event):
            return trail
        return None

    def _domain_archive_trail(self) -> Trail | None:
        """The unscoped trail's archive, in the operator's container for domain events."""
        trail = self._directory.get(self._unscoped)
        if not trail.enabled:
            return None
        container = self._domain_container or trail.archive.container
        if container == trail.archive.container:
            return trail
        # one copy per version of the unscoped trail: the archive sink caches per trail
        if self._domain_trail is None or self._domain_trail[0] is not trail:
            copy = dataclasses.replace(
                trail, archive=dataclasses.replace(trail.archive, container=container)
            )
            self._domain_trail = (trail, copy)
        return self._domain_trail[1]
