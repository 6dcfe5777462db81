"""/v1/projects/{project_id}/events: a project's recent events from search, newest first.

Who may: whoever may read the project's trail. The project comes from the path only;
the browser adds the project filter itself, so no parameter reaches another project.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from stacktrail.api import policy
from stacktrail.api.deps import (
    UNKNOWN_PROJECT,
    VALIDATION_ERROR,
    Caller,
    Context,
    KnownProject,
    ProjectId,
    require_read,
)
from stacktrail.api.schemas import ErrorBody
from stacktrail.domain.event_browse import (
    FILTER_MAX_CHARS,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    CursorError,
    EventBrowser,
    EventFilter,
    decode_cursor,
)
from stacktrail.domain.timeframe import Timeframe, TimeframeError

router = APIRouter(tags=["events"], dependencies=[KnownProject], responses=UNKNOWN_PROJECT)

EVENT_ID_MAX_CHARS = 128

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "The token's roles do not allow this."},
    503: {"model": ErrorBody, "description": "This cloud has no search server, or it is down."},
}

FilterValue = Annotated[str | None, Query(max_length=FILTER_MAX_CHARS)]


class EventList(BaseModel):
    events: list[dict[str, Any]] = Field(
        description="CADF events, newest first, as indexed (without stacktrail's stamps)."
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
    total: int | None = Field(description="Events matching in the time frame, when known.")
    from_: datetime = Field(serialization_alias="from", description="Start of the frame (UTC).")
    to: datetime = Field(description="End of the frame (UTC, exclusive).")


def browser_of(ctx: Context) -> EventBrowser:
    if ctx.events is None:
        raise HTTPException(503, "events are read from search, and this cloud has no search server")
    return ctx.events


@router.get(
    "/v1/projects/{project_id}/events",
    response_model=EventList,
    response_model_by_alias=True,
    responses={**_ERRORS, **VALIDATION_ERROR},
    summary="The project's recent events, newest first, filtered and paginated",
)
async def list_events(
    project_id: ProjectId,
    ctx: Context,
    who: Caller,
    from_: Annotated[
        str,
        Query(
            alias="from",
            max_length=64,
            description="Start (inclusive): ISO 8601, `-7d`, `-12h`, `-30m` or `now`.",
        ),
    ] = "-1d",
    to: Annotated[
        str, Query(max_length=64, description="End (exclusive), same forms as `from`.")
    ] = "now",
    action: Annotated[FilterValue, Query(description="CADF action, e.g. `create`.")] = None,
    outcome: Annotated[FilterValue, Query(description="`success`, `failure`, ...")] = None,
    observer: Annotated[
        FilterValue, Query(description="The service: observer typeURI or name.")
    ] = None,
    initiator: Annotated[FilterValue, Query(description="Initiator id or name.")] = None,
    target_type: Annotated[FilterValue, Query(description="Target typeURI.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=PAGE_SIZE_MAX, description="Events per page.")
    ] = PAGE_SIZE_DEFAULT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the page before.")
    ] = None,
) -> EventList:
    require_read(ctx, who, policy.EVENTS_LIST, project_id)
    browser = browser_of(ctx)
    try:
        frame = Timeframe.parse(from_, to, datetime.now(UTC))
    except TimeframeError as exc:
        raise HTTPException(422, str(exc)) from None
    filters = EventFilter(action, outcome, observer, initiator, target_type)
    try:
        if cursor is not None:
            decode_cursor(cursor)  # refused even when no index could use it
        found = await browser.page(project_id, frame, filters, size=limit, cursor=cursor)
    except CursorError as exc:
        raise HTTPException(422, f"cursor: {exc}") from None
    return EventList(
        events=found.events,
        next_cursor=found.next_cursor,
        total=found.total,
        from_=frame.start,
        to=frame.end,
    )


@router.get(
    "/v1/projects/{project_id}/events/{event_id}",
    response_model=dict[str, Any],
    responses={**_ERRORS, 404: {"model": ErrorBody, "description": "No such event."}},
    summary="One event of the project in full (CADF JSON)",
)
async def get_event(
    project_id: ProjectId,
    event_id: Annotated[
        str, Path(min_length=1, max_length=EVENT_ID_MAX_CHARS, description="The CADF id.")
    ],
    ctx: Context,
    who: Caller,
) -> dict[str, Any]:
    require_read(ctx, who, policy.EVENT_GET, project_id)
    event = await browser_of(ctx).get(project_id, event_id)
    if event is None:
        raise HTTPException(404, f"project {project_id} has no event {event_id} in search")
    return event
