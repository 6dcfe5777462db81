"""The owner check's caches and its answer when Keystone cannot say (pure code)."""

from __future__ import annotations

import asyncio

from stacktrail.config import Settings
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.errors import TransientError
from stacktrail.domain.trail import UNSCOPED
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.owners import ARCHIVE, SEARCH, Owners
from stacktrail.keystone import ProjectKind
from tests.support.cadf_factory import make_notification

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
