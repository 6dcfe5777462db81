"""Known sets of indexed events, bulk-loaded straight into the search server.

Documents look exactly like the search sink's: the normalised CADF event plus
`@ingested_at` and `@project_id`, in the template's index of the event's month, `_id` =
CADF id; the real index template (mappings) is installed first.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from stacktrail.search.documents import (
    INGESTED_FIELD,
    PROJECT_FIELD,
    index_name,
    index_pattern,
    index_template_body,
)
from tests.support.cadf_factory import make_cadf

BULK_DOCS = 2000


@dataclass
class Corpus:
    template: str
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # project -> events

    def in_frame(self, project: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [e for e in self.events.get(project, []) if start <= event_time(e) < end]

    def day_counts(self, project: str, start: datetime, end: datetime) -> Counter[str]:
        return Counter(
            event_time(e).strftime("%Y-%m-%d") for e in self.in_frame(project, start, end)
        )


def event_time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"]).astimezone(UTC)


def make_event(project: str, when: datetime, **extra: Any) -> dict[str, Any]:
    event = make_cadf(event_id=str(uuid.uuid4()), initiator_project=project, **extra)
    event["eventTime"] = when.isoformat()
    event["reporterchain"][0]["reporterTime"] = when.isoformat()
    return event


def _template_name(template: str) -> str:
    return "tmpl-" + template.split("-", 1)[0]


async def install_template(search_url: str, template: str) -> None:
    name = _template_name(template)
    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
        response = await http.put(f"/_index_template/{name}", json=index_template_body(template))
        response.raise_for_status()


async def remove_indices(search_url: str, template: str) -> None:
    """Delete every index of the template and the index template (test clean-up)."""
    async with httpx.AsyncClient(base_url=search_url, timeout=120) as http:
        await http.delete(f"/{index_pattern(template)}")
        await http.delete(f"/_index_template/{_template_name(template)}")


async def bulk_load(
    search_url: str,
    template: str,
    docs: list[tuple[str, dict[str, Any], datetime]],
) -> None:
    """Index (project, event, ingested_at) triples with `create` actions."""
    async with httpx.AsyncClient(base_url=search_url, timeout=120) as http:
        for start in range(0, len(docs), BULK_DOCS):
            lines = []
            for project, event, ingested in docs[start : start + BULK_DOCS]:
                index = index_name(template, project, event_time(event))
                lines.append(orjson.dumps({"create": {"_index": index, "_id": event["id"]}}))
                lines.append(
                    orjson.dumps(
                        {**event, INGESTED_FIELD: ingested.isoformat(), PROJECT_FIELD: project}
                    )
                )
            response = await http.post(
                "/_bulk",
                content=b"\n".join(lines) + b"\n",
                headers={"Content-Type": "application/x-ndjson"},
            )
            response.raise_for_status()
            body = response.json()
            assert not body.get("errors"), str(body)[:500]


DAY0 = datetime(2025, 3, 1, tzinfo=UTC)


async def load_export_corpus(search_url: str, template: str, a: str, b: str) -> Corpus:
    """Over 20,000 events of projects `a` and `b` over three days (2025-03-01..03), with:
    events on the day boundaries and just outside the three days, several events in the
    same millisecond, a copy of an event in both projects, and a project whose id
    starts with `a` (`<a>-old`) that an export of `a` must never read."""
    rng = random.Random(20250301)
    per_day = {a: (4100, 3600, 2900), b: (3050, 4000, 2450)}
    corpus = Corpus(template)
    docs: list[tuple[str, dict[str, Any], datetime]] = []
    ingested = datetime(2025, 3, 4, 12, tzinfo=UTC)
    for project, counts in per_day.items():
        events = []
        for day, count in enumerate(counts):
            start = DAY0 + timedelta(days=day)
            for _ in range(count):
                offset = timedelta(milliseconds=rng.randrange(86_400_000))
                events.append(make_event(project, start + offset))
            events.append(make_event(project, start))  # exactly midnight
            same = start + timedelta(hours=12, milliseconds=rng.randrange(1000))
            events.extend(make_event(project, same) for _ in range(5))  # one millisecond
        events.append(make_event(project, DAY0 - timedelta(milliseconds=1)))  # outside
        events.append(make_event(project, DAY0 + timedelta(days=3)))  # outside (end excl.)
        corpus.events[project] = events
        docs.extend((project, event, ingested) for event in events)
    shared = make_event(a, DAY0 + timedelta(hours=6), target_project=b)
    corpus.events[a].append(shared)
    corpus.events[b].append(shared)
    docs.extend([(a, shared, ingested), (b, shared, ingested)])
    other = f"{a}-old"
    corpus.events[other] = [make_event(other, DAY0 + timedelta(hours=h)) for h in range(10)]
    docs.extend((other, event, ingested) for event in corpus.events[other])
    await install_template(search_url, template)
    rng.shuffle(docs)
    await bulk_load(search_url, template, docs)
    return corpus
