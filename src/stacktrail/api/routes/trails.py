"""/v1/projects/{project_id}/trail: a project's trail, its status and its history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import Message
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from stacktrail.api import policy
from stacktrail.api.conditional import etag, parse_if_match
from stacktrail.api.context import ApiContext
from stacktrail.api.deps import (
    UNKNOWN_PROJECT,
    VALIDATION_ERROR,
    Caller,
    Context,
    KnownProject,
    ProjectId,
    actor_of,
    raise_validation,
    refuse_unknown_query,
    require_read,
    require_write,
    validation_errors,
)
from stacktrail.api.merge_patch import MERGE_PATCH_MEDIA_TYPE, merge_patch
from stacktrail.api.schemas import (
    EVENTS_PER_DAY,
    DayCountView,
    ErrorBody,
    EventCountsView,
    LastDelivery,
    LastDigest,
    LastError,
    RegionStatusView,
    RetentionUpdateView,
    TrailChangeList,
    TrailChangeView,
    TrailStatusView,
    TrailView,
)
from stacktrail.db.digest_chain import chain_heads
from stacktrail.db.retention_updates import retention_update_status
from stacktrail.db.trail_store import PreconditionFailed, StoredTrail
from stacktrail.domain.audit import ACTION_DELETE_TRAIL, ACTION_UPDATE_TRAIL, config_change_event
from stacktrail.domain.document import (
    BoundsError,
    TrailInput,
    TrailOverrides,
    check_bounds,
    requested_spec,
)

router = APIRouter(
    prefix="/v1/projects/{project_id}/trail",
    tags=["trails"],
    dependencies=[Depends(refuse_unknown_query), KnownProject],
    responses=UNKNOWN_PROJECT,
)

IfMatch = Annotated[
    str | None,
    Header(description='The ETag (`"<version>"`) the change applies to; 412 when stale.'),
]

_ETAG = {"ETag": {"description": "The version, quoted.", "schema": {"type": "string"}}}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "The token's roles do not allow this."},
    503: {"model": ErrorBody, "description": "Keystone or the config store is unavailable."},
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH_ERRORS,
    400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8)."},
    412: {"model": ErrorBody, "description": "If-Match does not match the current version."},
}
PATCH_ATTEMPTS = 5


def _respond(response: Response, stored: StoredTrail) -> TrailView:
    response.headers["ETag"] = etag(stored.version)
    return TrailView.of(stored)


async def _validated(ctx: ApiContext, project_id: str, body: TrailInput) -> TrailOverrides:
    """The overrides the body asks for, if the trail they make is within the bounds."""
    errors: list[BoundsError] = []
    if body.project_id is not None and body.project_id != project_id:
        errors.append(
            BoundsError(("project_id",), "project_id does not match the path", body.project_id)
        )
    defaults = await ctx.store.get_defaults()
    overrides = body.requested()
    spec = requested_spec(overrides, defaults, ctx.settings)
    errors.extend(check_bounds(spec, defaults, ctx.settings, project_id=project_id))
    if errors:
        raise_validation(errors)
    return overrides


async def _emitted(
    ctx: ApiContext, request: Request, who: Caller, action: str, old: StoredTrail, new: StoredTrail
) -> None:
    assert new.updated_at is not None
    await ctx.emit_event(
        config_change_event(
            action=action,
            actor=actor_of(who, request),
            project_id=new.project_id,
            old=old.document(),
            new=new.document(),
            version=new.version,
            at=new.updated_at,
            request_path=request.url.path,
        )
    )


def _precondition_failed(exc: PreconditionFailed) -> HTTPException:
    return HTTPException(
        412,
        f"the trail changed meanwhile (now version {exc.current_version}): read it again",
        headers={"ETag": etag(exc.current_version)},
    )


@router.get(
    "",
    response_model=TrailView,
    responses={200: {"headers": _ETAG}, **_AUTH_ERRORS},
    summary="A project's trail (the operator defaults, version 0, until configured)",
)
async def get_trail(
    project_id: ProjectId, response: Response, ctx: Context, who: Caller
) -> TrailView:
    require_read(ctx, who, policy.TRAIL_GET, project_id)
    return _respond(response, await ctx.store.get_trail(project_id))


@router.put(
    "",
    response_model=TrailView,
    responses={200: {"headers": _ETAG}, **_WRITE_ERRORS},
    summary="Replace a project's overrides; omitted members follow the operator defaults",
)
async def put_trail(
    project_id: ProjectId,
    body: TrailInput,
    request: Request,
    response: Response,
    ctx: Context,
    who: Caller,
    if_match: IfMatch = None,
) -> TrailView:
    require_write(ctx, who, policy.TRAIL_UPDATE, project_id)
    precondition = parse_if_match(if_match)
    overrides = await _validated(ctx, project_id, body)
    try:
        old, new = await ctx.store.put_trail(
            project_id, overrides, actor_of(who, request), precondition
        )
    except PreconditionFailed as exc:
        raise _precondition_failed(exc) from None
    await _emitted(ctx, request, who, ACTION_UPDATE_TRAIL, old, new)
    return _respond(response, new)


def _patch_schema() -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/TrailInput"}
    return {
        "requestBody": {
            "required": True,
            "description": "A JSON merge patch (RFC 7386) on the trail's `overrides`: a "
            "member sent becomes an override, null clears an override (that member then "
            "follows the operator default again). A patch that changes no override changes "
            "nothing (same version, no history entry).",
            "content": {
                MERGE_PATCH_MEDIA_TYPE: {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }


def _patch_body(request: Request, raw: bytes) -> dict[str, Any]:
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    if message.get_content_type() not in (MERGE_PATCH_MEDIA_TYPE, "application/json"):
        raise HTTPException(
            415, f"send the patch as {MERGE_PATCH_MEDIA_TYPE} (or application/json)"
        )
    try:
        patch = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"invalid JSON: {exc}", "input": {}}]
        ) from None
    if not isinstance(patch, dict):
        raise RequestValidationError(
            [
                {
                    "type": "dict_type",
                    "loc": ("body",),
                    "msg": "the patch must be a JSON object",
                    "input": patch,
                }
            ]
        )
    return patch


@router.patch(
    "",
    response_model=TrailView,
    responses={
        200: {"headers": _ETAG},
        409: {"model": ErrorBody, "description": "Concurrent changes kept winning; retry."},
        415: {"model": ErrorBody, "description": "Not a JSON merge patch."},
        **VALIDATION_ERROR,
        **_WRITE_ERRORS,
    },
    openapi_extra=_patch_schema(),
    summary="Change part of a project's trail (JSON merge patch)",
)
async def patch_trail(
    project_id: ProjectId,
    request: Request,
    response: Response,
    ctx: Context,
    who: Caller,
    if_match: IfMatch = None,
) -> TrailView:
    require_write(ctx, who, policy.TRAIL_UPDATE, project_id)
    precondition = parse_if_match(if_match)
    patch = _patch_body(request, await request.body())
    try:  # the patch alone must already be well-formed: refused before any precondition
        TrailInput.model_validate(patch)
    except ValidationError as exc:
        raise RequestValidationError(validation_errors(exc)) from None
    actor = actor_of(who, request)
    for _attempt in range(PATCH_ATTEMPTS):
        current = await ctx.store.get_trail(project_id)
        if precondition is not None and current.version not in precondition:
            raise _precondition_failed(PreconditionFailed(current.version))
        merged = merge_patch(current.document() or {}, patch)
        try:
            body = TrailInput.model_validate(merged)
        except ValidationError as exc:
            raise RequestValidationError(validation_errors(exc)) from None
        overrides = await _validated(ctx, project_id, body)
        try:
            old, new = await ctx.store.put_trail(
                project_id, overrides, actor, frozenset({current.version}), unchanged_is_noop=True
            )
        except PreconditionFailed:
            continue  # changed between read and write: apply the patch to the new version
        if new.version != old.version:
            await _emitted(ctx, request, who, ACTION_UPDATE_TRAIL, old, new)
        return _respond(response, new)
    raise HTTPException(409, "the trail keeps changing concurrently: try again")


@router.delete(
    "",
    response_model=TrailView,
    responses={200: {"headers": _ETAG}, **_WRITE_ERRORS},
    summary="Clear every override: the trail follows the operator defaults",
)
async def delete_trail(
    project_id: ProjectId,
    request: Request,
    response: Response,
    ctx: Context,
    who: Caller,
    if_match: IfMatch = None,
) -> TrailView:
    require_write(ctx, who, policy.TRAIL_DELETE, project_id)
    precondition = parse_if_match(if_match)
    try:
        old, new = await ctx.store.delete_trail(project_id, actor_of(who, request), precondition)
    except PreconditionFailed as exc:
        raise _precondition_failed(exc) from None
    if new.version != old.version:
        await _emitted(ctx, request, who, ACTION_DELETE_TRAIL, old, new)
    return _respond(response, new)


@router.get(
    "/status",
    response_model=TrailStatusView,
    responses=_AUTH_ERRORS,
    summary="Deliveries per region, pending spool bytes, events ingested lately and per day",
)
async def trail_status(project_id: ProjectId, ctx: Context, who: Caller) -> TrailStatusView:
    require_read(ctx, who, policy.TRAIL_STATUS, project_id)
    stored = await ctx.store.get_trail(project_id)
    by_region = {status.region: status for status in await ctx.ledger.status(project_id)}
    regions = list(dict.fromkeys([*stored.spec.archive.regions, *sorted(by_region)]))
    heads = await chain_heads(ctx.store.engine, project_id)
    views = []
    for region in regions:
        status = by_region.get(region)
        head = heads.get(region)
        last_delivery = last_error = last_digest = None
        if head is not None and head.key:
            last_digest = LastDigest(
                key=head.key,
                period_start=head.start,
                period_end=head.end,
                key_fingerprint=head.fingerprint,
                delivered_at=head.delivered_at,
            )
        if status is not None and status.last_key and status.last_success_at:
            last_delivery = LastDelivery(
                container=status.last_container,
                key=status.last_key,
                day=status.last_day,
                at=status.last_success_at,
            )
        if status is not None and status.last_error and status.last_error_at:
            last_error = LastError(
                message=status.last_error,
                at=status.last_error_at,
                consecutive=status.consecutive_errors,
            )
        views.append(
            RegionStatusView(
                region=region,
                last_delivery=last_delivery,
                last_error=last_error,
                in_error=status.in_error if status is not None else False,
                last_digest=last_digest,
                pending_spool_bytes=await ctx.spool_bytes(project_id, region),
            )
        )
    now = datetime.now(UTC)
    counts = await ctx.ledger.event_counts(project_id, now)
    per_day = await ctx.ledger.events_per_day(project_id, EVENTS_PER_DAY, now)
    update = await retention_update_status(ctx.store.engine, project_id)
    return TrailStatusView(
        project_id=project_id,
        enabled=stored.spec.enabled,
        version=stored.version,
        regions=views,
        events=EventCountsView(
            last_hour=counts.last_hour,
            last_day=counts.last_day,
            since_hour=counts.since_hour,
            since_day=counts.since_day,
        ),
        events_per_day=[DayCountView(day=d.day, count=d.count) for d in per_day],
        bound_notes=TrailView.of(stored).bound_notes,
        retention_update=None
        if update is None
        else RetentionUpdateView(
            retention_days=update.retention_days,
            status=update.status,
            objects_seen=update.objects_seen,
            objects_updated=update.objects_updated,
            objects_deleted=update.objects_deleted,
            error=update.error,
            requested_at=update.requested_at,
            finished_at=update.finished_at,
        ),
    )


@router.get(
    "/changes",
    response_model=TrailChangeList,
    responses=_AUTH_ERRORS,
    summary="Who changed the trail when, from what to what (newest first)",
)
async def trail_changes(
    project_id: ProjectId,
    ctx: Context,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Changes with a smaller id.")
    ] = None,
) -> TrailChangeList:
    require_read(ctx, who, policy.TRAIL_CHANGES, project_id)
    changes = await ctx.store.changes(project_id, limit=limit, before=before)
    return TrailChangeList(changes=[TrailChangeView.of(change) for change in changes])
