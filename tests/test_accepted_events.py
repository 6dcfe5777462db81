"""Whatever the decoder accepts, both sinks can write: no event passes validation and then
fails later (a failure there would dead-letter it as an internal error, or leave a spool
segment that can never be delivered)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stacktrail.archive.layout import (
    build_body,
    check_spec,
    object_headers,
    object_key,
    spec_delete_at,
)
from stacktrail.archive.spool.segment import SegmentSpec
from stacktrail.config import Settings
from stacktrail.domain.defaults import RETENTION_LIMIT_DAYS
from stacktrail.domain.delivery import Record, Ticket
from stacktrail.domain.event import DecodeError
from stacktrail.domain.trail import Trail, default_trail
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.route import Router
from stacktrail.search.documents import BulkEncoder
from tests.support.cadf_factory import make_notification

SETTINGS = Settings()
ENCODER = BulkEncoder(SETTINGS.search_index_template)


class LongestRetention:
    """Every project keeps its events as long as any operator may allow."""

    def get(self, project_id: str) -> Trail:
        return replace(default_trail(project_id, SETTINGS), retention_days=RETENTION_LIMIT_DAYS)


ROUTER = Router(LongestRetention())  # type: ignore[arg-type]

OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
TIMES = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS
    ).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    ),
)
PROJECTS = st.one_of(st.none(), st.just(uuid.uuid4().hex), st.text(max_size=40))


@given(TIMES, PROJECTS, PROJECTS)
@example("9999-12-30T23:59:59+00:00", None, None)  # the far end of what datetime holds
@example("8999-12-31T23:59:59-23:59", "default", None)
@example("0001-01-02T00:00:00+23:59", None, "p1")  # before year 1 in UTC
@example("2025-03-01T12:00:00.5+0000", "a_b", "c-d")
@settings(max_examples=300)
def test_every_accepted_event_can_be_indexed_and_archived(
    event_time: str, initiator: str | None, target: str | None
) -> None:
    body = make_notification(
        event_time=event_time, initiator_project=initiator, target_project=target
    )
    try:
        event = decode_message(body)
    except DecodeError:
        return
    now = datetime.now(UTC)
    for trail in ROUTER.route(event):
        record = Record(trail.project_id, event, trail, now, Ticket(None, lambda _t: None))
        action, document = ENCODER.lines(record).splitlines()
        assert orjson.loads(action)["create"]["_id"] == event.id
        assert orjson.loads(document)["id"] == event.id

        spec = SegmentSpec.for_trail(
            trail.project_id, event.time.date().isoformat(), trail, ("RegionOne",)
        )
        check_spec(spec)
        key = object_key(spec, "RegionOne", "20260101T0000Z", "w1", "1")
        assert key.startswith(f"{trail.project_id}/RegionOne/")
        archived = build_body(spec, [orjson.dumps(event.body)])
        object_headers(archived, spec_delete_at(spec))
