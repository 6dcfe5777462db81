"""The owner check's caches, its answer when Keystone cannot say, and the pipeline going
on while it asks (pure code: Keystone's answers stand in as a table, so that one answer
can be held back)."""

from __future__ import annotations

import asyncio

from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.errors import TransientError
from stacktrail.domain.trail import UNSCOPED
from stacktrail.ingest.consumer import Delivery
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.dispatcher import Pipeline
from stacktrail.ingest.owners import ARCHIVE, LOOKUPS_AT_ONCE, SEARCH, Owners
from stacktrail.ingest.route import Router
from stacktrail.keystone import ProjectKind
from tests.support.cadf_factory import make_notification
from tests.support.polling import eventually
from tests.support.sinks import Keeps

KNOWN = "aaaa1111aaaa1111aaaa1111aaaa1111"
UNKNOWN = "bbbb1111bbbb1111bbbb1111bbbb1111"


class Answers:
    """Keystone's answers by id, counting the questions; `down` makes it fail."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.down = False

    async def project_kind(self, project_id: str) -> ProjectKind:
        self.asked.append(project_id)
        if self.down:
            raise TransientError("project lookup: Keystone unreachable")
        return {KNOWN: ProjectKind.PROJECT, "default": ProjectKind.DOMAIN}.get(
            project_id, ProjectKind.UNKNOWN
        )


def _owners(answers: Answers, **kwargs: float | str) -> Owners:
    return Owners(answers, DefaultTrails(Settings()), **kwargs)  # type: ignore[arg-type]


async def test_known_and_unknown_are_cached_for_their_own_time() -> None:
    answers = Answers()
    owners = _owners(answers, ttl=60.0, negative_ttl=0.05)
    for _ in range(3):
        assert await owners.kind(KNOWN) is ProjectKind.PROJECT
        assert await owners.kind(UNKNOWN) is ProjectKind.UNKNOWN
    assert answers.asked == [KNOWN, UNKNOWN]
    await asyncio.sleep(0.06)
    assert await owners.kind(UNKNOWN) is ProjectKind.UNKNOWN
    assert await owners.kind(KNOWN) is ProjectKind.PROJECT
    assert answers.asked == [KNOWN, UNKNOWN, UNKNOWN]


async def test_when_keystone_cannot_answer_events_go_where_their_ids_say() -> None:
    answers = Answers()
    answers.down = True
    owners = _owners(answers, retry_after=0.05)
    settings = Settings()
    event = decode_message(make_notification(initiator_project=UNKNOWN))
    trail = DefaultTrails(settings).get(UNKNOWN)
    placements = await owners.place(event, [trail])
    assert [p.project_id for p in placements] == [UNKNOWN]
    await owners.place(event, [trail])
    assert answers.asked == [UNKNOWN]  # one question per id and retry interval
    await asyncio.sleep(0.06)
    answers.down = False
    placements = await owners.place(event, [trail])
    assert answers.asked == [UNKNOWN, UNKNOWN]
    assert [p.project_id for p in placements] == [UNSCOPED]  # Keystone answered: unknown


async def test_unknown_goes_unscoped_and_a_domain_splits_search_from_archive() -> None:
    owners = _owners(Answers(), domain_container="domain-events")
    directory = DefaultTrails(Settings())
    event = decode_message(make_notification(initiator_project=UNKNOWN))
    unknown = await owners.place(event, [directory.get(UNKNOWN)])
    assert [(p.project_id, p.only) for p in unknown] == [(UNSCOPED, None)]
    domain = await owners.place(event, [directory.get("default")])
    assert [(p.project_id, p.only, p.counted) for p in domain] == [
        ("default", SEARCH, True),
        (UNSCOPED, ARCHIVE, False),
    ]
    assert domain[1].trail.archive.container == "domain-events"
    again = await owners.place(event, [directory.get("default")])
    assert again[1].trail is domain[1].trail  # one copy: the archive sink caches per trail


async def test_the_answer_cache_holds_at_most_its_size_and_forgets_the_oldest_first() -> None:
    answers = Answers()
    owners = _owners(answers, size=10)
    ids = [f"{n:032x}" for n in range(25)]
    for project_id in ids:
        await owners.kind(project_id)
    assert answers.asked == ids
    for project_id in ids[-10:]:  # the newest ten are cached ...
        await owners.kind(project_id)
    assert answers.asked == ids
    await owners.kind(ids[-11])  # ... and no more
    assert answers.asked == [*ids, ids[-11]]


SLOW = "cccc1111cccc1111cccc1111cccc1111"


class HeldBack(Answers):
    """Keystone's answers (both ids are projects), SLOW's only once `release` is set;
    counts the questions in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.in_flight = self.most_in_flight = 0

    async def project_kind(self, project_id: str) -> ProjectKind:
        self.asked.append(project_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if project_id == SLOW:
                await self.release.wait()
            else:
                await asyncio.sleep(0)
            return ProjectKind.PROJECT
        finally:
            self.in_flight -= 1


class Settled:
    """Stands in for the source's settle: what each delivery's fate was."""

    def __init__(self) -> None:
        self.outcomes: dict[int, Outcome] = {}
        self.on_delivery: object = None

    def settle(self, delivery: Delivery, outcome: Outcome, reason: str = "") -> None:
        self.outcomes[delivery.tag] = outcome


def _delivery(tag: int, project_id: str) -> Delivery:
    body = make_notification(initiator_project=project_id)
    return Delivery(body=body, tag=tag, generation=0, exchange="nova", routing_key="n.info")


async def test_messages_of_a_new_owner_wait_for_keystone_beside_the_stream_not_in_it() -> None:
    answers = HeldBack()
    source, sink = Settled(), Keeps()
    pipeline = Pipeline(
        source,  # type: ignore[arg-type]
        Router(DefaultTrails(Settings())),
        [sink],
        owners=_owners(answers),
    )
    running = asyncio.create_task(pipeline.run())
    projects = [SLOW, KNOWN, SLOW, KNOWN, KNOWN]
    for tag, project_id in enumerate(projects, 1):
        source.on_delivery(_delivery(tag, project_id))  # type: ignore[operator]
    await eventually(lambda: set(source.outcomes) == {2, 4, 5})
    assert answers.asked.count(SLOW) == 1  # its two messages share one question
    assert answers.asked.count(KNOWN) == 1
    assert pipeline.in_flight == 2  # SLOW's messages: unacked, in the window
    answers.release.set()
    await pipeline.drain()  # what a stop does: it waits for the question
    running.cancel()
    assert source.outcomes == dict.fromkeys(range(1, 6), Outcome.DELIVERED)
    assert sorted(sink.projects) == sorted(projects)  # filed under their own projects
    assert pipeline.in_flight == 0


async def test_questions_to_keystone_are_bounded_however_many_owners_are_new() -> None:
    answers = HeldBack()
    owners = _owners(answers)
    new = [f"{n:032x}" for n in range(4 * LOOKUPS_AT_ONCE)]
    kinds = await asyncio.gather(*(owners.kind(project_id) for project_id in new))
    assert kinds == [ProjectKind.PROJECT] * len(new)
    assert answers.most_in_flight == LOOKUPS_AT_ONCE


async def test_when_keystone_cannot_answer_no_other_owner_is_asked_until_the_retry() -> None:
    answers = Answers()
    answers.down = True
    owners = _owners(answers, retry_after=0.05)
    directory = DefaultTrails(Settings())
    assert await owners.kind(UNKNOWN) is None
    assert await owners.kind(KNOWN) is None
    assert owners.unanswered([directory.get(KNOWN)]) == []  # nothing to wait for: fail open
    assert answers.asked == [UNKNOWN]  # Keystone's state, not an id's
    await asyncio.sleep(0.06)
    answers.down = False
    assert owners.unanswered([directory.get(KNOWN)]) == [KNOWN]
    assert await owners.kind(KNOWN) is ProjectKind.PROJECT
    assert answers.asked == [UNKNOWN, KNOWN]
