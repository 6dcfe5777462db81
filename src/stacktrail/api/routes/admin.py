"""Cloud-wide resources: the list of trails, the operator defaults, the event catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response

from stacktrail.api import policy
from stacktrail.api.auth import Principal
from stacktrail.api.conditional import etag, parse_if_match
from stacktrail.api.deps import (
    VALIDATION_ERROR,
    Caller,
    Context,
    actor_of,
    raise_validation,
    refuse_unknown_query,
    require,
    require_cloud_admin,
)
from stacktrail.api.schemas import (
    DefaultsView,
    ErrorBody,
    EventTypeList,
    EventTypeView,
    OutOfBoundsView,
    TrailList,
    TrailListEntry,
    TrailView,
)
from stacktrail.db.ledger import EventTypeEntry
from stacktrail.db.trail_store import PreconditionFailed, TrailPage, defaults_document
from stacktrail.domain.audit import ACTION_UPDATE_DEFAULTS, config_change_event
from stacktrail.domain.document import DefaultsInput
from stacktrail.domain.validation import PROJECT_ID_PART_PATTERN, PROJECT_ID_PATTERN

router = APIRouter(prefix="/v1", dependencies=[Depends(refuse_unknown_query)])

_ETAG = {"ETag": {"description": "The version, quoted.", "schema": {"type": "string"}}}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    **VALIDATION_ERROR,
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "Cloud admins only (event types: readers)."},
    503: {"model": ErrorBody, "description": "Keystone or the config store is unavailable."},
}


@router.get(
    "/trails",
    response_model=TrailList,
    responses=_AUTH_ERRORS,
    tags=["trails"],
    summary="Configured trails, and failing projects on the defaults, by project id (cloud admins)",
)
async def list_trails(
    ctx: Context,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    marker: Annotated[
        str | None, Query(pattern=PROJECT_ID_PATTERN, description="Start after this project.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    enabled: Annotated[bool | None, Query(description="Only enabled (or disabled) trails.")] = None,
    search: Annotated[
        str | None,
        Query(pattern=PROJECT_ID_PART_PATTERN, description="Part of the project id."),
    ] = None,
    in_error: Annotated[
        bool | None, Query(description="Only trails whose last delivery failed (or not).")
    ] = None,
) -> TrailList:
    require_cloud_admin(ctx, who, policy.TRAILS_LIST)
    page = await ctx.store.list_trails(
        limit=limit,
        marker=marker,
        offset=offset,
        enabled=enabled,
        search=search,
        in_error=in_error,
    )
    entries = [
        TrailListEntry(
            **TrailView.of(stored).model_dump(), in_error=stored.project_id in page.in_error
        )
        for stored in page.trails
    ]
    if offset == 0 and in_error is not False:
        entries += await _failing_on_defaults(ctx, page, marker, search, enabled)
        entries.sort(key=lambda entry: entry.project_id)
    return TrailList(trails=entries, next_marker=page.next_marker)


async def _failing_on_defaults(
    ctx: Context, page: TrailPage, marker: str | None, search: str | None, enabled: bool | None
) -> list[TrailListEntry]:
    """Failing projects whose trail was never changed (they follow the defaults), in the
    page's span of ids, so every project with a delivery problem is listed once."""
    listed = {stored.project_id for stored in page.trails}
    found = []
    for project_id in await ctx.ledger.failing_projects():
        if project_id in listed or (marker is not None and project_id <= marker):
            continue
        if page.next_marker is not None and project_id > page.next_marker:
            break
        if search and search.lower() not in project_id.lower():
            continue
        stored = await ctx.store.get_trail(project_id)
        if stored.configured or (enabled is not None and stored.spec.enabled != enabled):
            continue
        found.append(TrailListEntry(**TrailView.of(stored).model_dump(), in_error=True))
    return found


@router.get(
    "/defaults",
    response_model=DefaultsView,
    responses={200: {"headers": _ETAG}, **_AUTH_ERRORS},
    tags=["defaults"],
    summary="The operator's defaults and bounds, and the event type catalogue",
)
async def get_defaults(ctx: Context, who: Caller, response: Response) -> DefaultsView:
    require(ctx, who, policy.DEFAULTS_GET)
    defaults = await ctx.store.get_defaults()
    response.headers["ETag"] = etag(defaults.version)
    view = DefaultsView.of(defaults, ctx.settings, await _visible_event_types(ctx, who))
    if not who.cloud_admin:  # who changed them is the cloud admins' business
        view.updated_by = None
    else:
        view.out_of_bounds = OutOfBoundsView.of(await ctx.store.out_of_bounds())
    return view


@router.put(
    "/defaults",
    response_model=DefaultsView,
    responses={
        200: {"headers": _ETAG},
        400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8)."},
        412: {"model": ErrorBody, "description": "If-Match does not match the current version."},
        **_AUTH_ERRORS,
    },
    tags=["defaults"],
    summary="Change the operator's defaults and bounds (cloud admins)",
)
async def put_defaults(
    body: DefaultsInput,
    request: Request,
    response: Response,
    ctx: Context,
    who: Caller,
    if_match: Annotated[
        str | None, Header(description='The ETag (`"<version>"`) the change applies to.')
    ] = None,
) -> DefaultsView:
    require_cloud_admin(ctx, who, policy.DEFAULTS_UPDATE)
    precondition = parse_if_match(if_match)
    errors = body.bounds_errors(ctx.settings)
    if errors:
        raise_validation(errors)
    try:
        old, new = await ctx.store.put_defaults(
            body.to_defaults(), actor_of(who, request), precondition
        )
    except PreconditionFailed as exc:
        raise HTTPException(
            412,
            f"the defaults changed meanwhile (now version {exc.current_version}): read them again",
            headers={"ETag": etag(exc.current_version)},
        ) from None
    assert new.updated_at is not None
    await ctx.emit_event(
        config_change_event(
            action=ACTION_UPDATE_DEFAULTS,
            actor=actor_of(who, request),
            project_id=None,
            old=defaults_document(old),
            new=defaults_document(new),
            version=new.version,
            at=new.updated_at,
            request_path=request.url.path,
        )
    )
    response.headers["ETag"] = etag(new.version)
    view = DefaultsView.of(new, ctx.settings, await _visible_event_types(ctx, who))
    view.out_of_bounds = OutOfBoundsView.of(await ctx.store.out_of_bounds())
    return view


@router.get(
    "/event-types",
    response_model=EventTypeList,
    responses=_AUTH_ERRORS,
    tags=["defaults"],
    summary="Event types the pipeline has seen in the caller's project (all, for cloud admins)",
)
async def event_types(ctx: Context, who: Caller) -> EventTypeList:
    if not ctx.policy.allows(who, policy.EVENT_TYPES_LIST, who.project_id):
        raise HTTPException(
            403, "event types are shown to readers of a project: use a project-scoped token"
        )
    return EventTypeList(
        event_types=[EventTypeView.of(entry) for entry in await _visible_event_types(ctx, who)]
    )


async def _visible_event_types(ctx: Context, who: Principal) -> list[EventTypeEntry]:
    """Cloud admins see the cloud-wide catalogue; readers of a project the types of its
    events; everybody else nothing (the types and counts tell what other tenants do)."""
    if who.cloud_admin:
        return await ctx.ledger.event_types()
    if who.project_id is None or not ctx.policy.allows(
        who, policy.EVENT_TYPES_LIST, who.project_id
    ):
        return []
    return await ctx.ledger.event_types(who.project_id)
