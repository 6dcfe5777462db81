"""/v1/projects/{project_id}/trail/delivery: what a failing delivery means, what fixes
it (the writer to grant, the exact command), when it is retried; and "retry now"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from stacktrail.api import policy
from stacktrail.api.deps import (
    UNKNOWN_PROJECT,
    Caller,
    Context,
    KnownProject,
    ProjectId,
    require_read,
    require_write,
)
from stacktrail.api.schemas import ErrorBody
from stacktrail.domain.backlog import SpoolBacklog
from stacktrail.domain.delivery_problem import ProblemKind, diagnose
from stacktrail.domain.trail import WriteMode

router = APIRouter(tags=["trails"], dependencies=[KnownProject], responses=UNKNOWN_PROJECT)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "The token's roles do not allow this."},
}


class ProblemView(BaseModel):
    kind: ProblemKind = Field(description="The kind of problem the store's answer means.")
    answer: str = Field(description="What the store answered, in words.")
    fix: str = Field(description="What to do about it.")
    commands: list[str] = Field(description="Exact commands that fix it, in order.")
    operator: bool = Field(description="Only the cloud operator can fix it.")
    message: str = Field(description="The error as recorded.")


class RegionDeliveryView(BaseModel):
    region: str = Field(description="The region delivered to.")
    failing: bool = Field(description="The last attempt failed and none succeeded since.")
    failing_since: datetime | None = Field(description="The last failed attempt.")
    consecutive_errors: int = Field(description="Failed attempts in a row.")
    problem: ProblemView | None = Field(description="Null while delivery works.")
    next_retry_at: datetime | None = Field(
        description="When the delivering process tries again; null: unknown here."
    )
    last_delivery_at: datetime | None = Field(description="The last object delivered.")


class BacklogView(BaseModel):
    bytes: int = Field(description="Bytes of the project's events waiting in the spool.")
    records: int = Field(description="Events waiting in the spool (counted when known).")
    oldest_at: datetime | None = Field(description="When the oldest waiting event was spooled.")
    share_bytes: int = Field(
        description="Bytes the project may hold in the spool while its deliveries fail."
    )
    held_back: bool = Field(
        description="Deliveries fail and the share is full: new events are dead-lettered "
        "with the reason until delivery works; what is spooled is kept, other projects "
        "are not held up."
    )


class DeliveryView(BaseModel):
    project_id: str = Field(description="The project.")
    container: str = Field(description="The trail's container now.")
    write_mode: WriteMode = Field(description="Who creates the container and writes.")
    acl_writer: str | None = Field(
        description="ACL mode: the identity to grant write (`<project id>:<user id>`)."
    )
    service_user: str = Field(description="The identity writing reseller-mode trails.")
    retry_available: bool = Field(description="This server can retry the delivery now.")
    regions: list[RegionDeliveryView] = Field(description="One entry per region.")
    backlog: BacklogView | None = Field(
        None,
        description="What waits in this server's spools (those of all its pipeline workers); "
        "null: it delivers nothing.",
    )


class RetryView(BaseModel):
    regions: int = Field(description="Failing regions whose next attempt starts now.")
    message: str = Field(description="What happens next, in words.")


@router.get(
    "/v1/projects/{project_id}/trail/delivery",
    response_model=DeliveryView,
    responses=_ERRORS,
    summary="What a failing delivery means, how to fix it, and the next retry",
)
async def delivery(project_id: ProjectId, ctx: Context, who: Caller) -> DeliveryView:
    require_read(ctx, who, policy.DELIVERY_GET, project_id)
    stored = await ctx.store.get_trail(project_id)
    trail = stored.effective.to_trail(project_id, stored.version)
    archive = trail.archive
    acl_mode = archive.write_mode is WriteMode.ACL
    writer = await ctx.acl_writer() if acl_mode and ctx.acl_writer is not None else None
    retries = await ctx.delivery.next_retries(project_id) if ctx.delivery is not None else {}
    by_region = {s.region: s for s in await ctx.ledger.status(project_id)}
    regions = list(dict.fromkeys([*archive.regions, *sorted(by_region)]))
    views = []
    for region in regions:
        status = by_region.get(region)
        failing = status is not None and status.in_error
        problem = None
        if failing and status is not None and status.last_error:
            found = diagnose(
                status.last_error,
                container=archive.container,
                acl_mode=acl_mode,
                acl_writer=writer,
                service_user=ctx.settings.keystone_username or "stacktrail",
            )
            problem = ProblemView(
                kind=found.kind,
                answer=found.answer,
                fix=found.fix,
                commands=list(found.commands),
                operator=found.operator,
                message=status.last_error,
            )
        views.append(
            RegionDeliveryView(
                region=region,
                failing=failing,
                failing_since=status.last_error_at if failing and status else None,
                consecutive_errors=status.consecutive_errors if failing and status else 0,
                problem=problem,
                next_retry_at=retries.get(region) if failing else None,
                last_delivery_at=status.last_success_at if status else None,
            )
        )
    return DeliveryView(
        project_id=project_id,
        container=archive.container,
        write_mode=archive.write_mode,
        acl_writer=writer,
        service_user=ctx.settings.keystone_username or "stacktrail",
        retry_available=ctx.delivery is not None,
        regions=views,
        backlog=_backlog(await ctx.delivery.backlog(project_id))
        if ctx.delivery is not None
        else None,
    )


def _backlog(held: SpoolBacklog) -> BacklogView:
    return BacklogView(
        bytes=held.bytes,
        records=held.records,
        oldest_at=held.oldest,
        share_bytes=held.share,
        held_back=held.held_back,
    )


@router.post(
    "/v1/projects/{project_id}/trail/delivery/retry",
    status_code=202,
    response_model=RetryView,
    responses={
        **_ERRORS,
        503: {"model": ErrorBody, "description": "This server delivers nothing."},
    },
    summary="Retry the project's failing delivery now",
)
async def retry(project_id: ProjectId, ctx: Context, who: Caller) -> RetryView:
    require_write(ctx, who, policy.DELIVERY_RETRY, project_id)
    if ctx.delivery is None:
        raise HTTPException(
            503,
            "this server does not deliver archives (it runs the API only); the delivering "
            "process retries by itself",
        )
    woken = await ctx.delivery.retry_now(project_id)
    message = (
        f"retrying {woken} region{'s' if woken != 1 else ''} now"
        if woken
        else "no delivery of this project is waiting for a retry"
    )
    return RetryView(regions=woken, message=message)
