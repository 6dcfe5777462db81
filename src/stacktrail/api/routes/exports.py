"""/v1/projects/{project_id}/exports and /v1/exports/{id}: exports from search into the
project's own archive container, run in the background by the scheduler.

Who may: starting an export needs what changing the trail needs (the project's admin or
a cloud admin); reading one needs what reading the trail needs. An export of another
project answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

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
from stacktrail.db.export_jobs import DONE, ExportConflict, ExportJob, ExportJobs
from stacktrail.domain.timeframe import Timeframe, TimeframeError
from stacktrail.domain.trail import ArchiveFormat

router = APIRouter(tags=["exports"])

MAX_FILES_SHOWN = 1000
JOB_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "The token's roles do not allow this."},
    503: {"model": ErrorBody, "description": "Keystone, search or the config store is down."},
}


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(
        alias="from",
        min_length=1,
        max_length=64,
        description="Start (inclusive): ISO 8601 (no offset: UTC), `-7d`, `-12h` or `now`.",
        examples=["2025-03-01T00:00:00Z", "-7d"],
    )
    to: str = Field(
        "now",
        min_length=1,
        max_length=64,
        description="End (exclusive), same forms as `from`.",
        examples=["2025-03-08T00:00:00Z", "now"],
    )
    format: ArchiveFormat | None = Field(None, description="Default: the trail's format.")


class ExportProgressView(BaseModel):
    events_total: int | None = Field(description="Events in the frame when the export began.")
    events_done: int
    bytes_done: int
    files_done: int
    percent: float | None


class ExportResultView(BaseModel):
    message: str
    files: list[str] = Field(description=f"Object keys written (first {MAX_FILES_SHOWN}).")
    days: dict[str, int] = Field(description="Events per UTC event day.")


class ExportJobView(BaseModel):
    id: str
    project_id: str
    status: str = Field(description="queued, running, done or failed.")
    format: ArchiveFormat
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    container: str
    prefix: str
    regions: list[str]
    requested_by: dict[str, str]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    attempts: int
    progress: ExportProgressView
    result: ExportResultView | None
    error: str | None

    @classmethod
    def of(cls, job: ExportJob) -> ExportJobView:
        percent = None
        if job.events_total:
            percent = round(100.0 * job.events_done / job.events_total, 1)
        elif job.status == DONE:
            percent = 100.0
        result = None
        if job.status == DONE:
            files = job.files
            message = (
                "no events in the time frame: nothing written"
                if job.events_done == 0
                else f"{job.events_done} events in {len(files)} files"
            )
            result = ExportResultView(
                message=message, files=files[:MAX_FILES_SHOWN], days=job.day_counts
            )
        return cls(
            id=job.id,
            project_id=job.project_id,
            status=job.status,
            format=job.format,
            from_=job.frame.start,
            to=job.frame.end,
            container=job.container,
            prefix=job.prefix,
            regions=list(job.regions),
            requested_by={"user_id": job.requested_by_id, "user_name": job.requested_by_name},
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
            attempts=job.attempts,
            progress=ExportProgressView(
                events_total=job.events_total,
                events_done=job.events_done,
                bytes_done=job.bytes_done,
                files_done=job.files_done,
                percent=percent,
            ),
            result=result,
            error=job.error,
        )


class ExportJobList(BaseModel):
    exports: list[ExportJobView]


def _jobs(ctx: Context) -> ExportJobs:
    return ExportJobs(ctx.store.engine)


@router.post(
    "/v1/projects/{project_id}/exports",
    status_code=202,
    response_model=ExportJobView,
    response_model_by_alias=True,
    responses={
        **_ERRORS,
        409: {"model": ErrorBody, "description": "An export of the project is unfinished."},
        **UNKNOWN_PROJECT,
        422: {"description": "Unusable time frame or body."},
    },
    summary="Export the project's events of a time frame into its archive container",
    dependencies=[KnownProject],
)
async def start_export(
    project_id: ProjectId, body: ExportRequest, response: Response, ctx: Context, who: Caller
) -> ExportJobView:
    require_write(ctx, who, policy.EXPORT_CREATE, project_id)
    if not ctx.settings.search_enabled:
        raise HTTPException(503, "exports read from search, and this cloud has no search server")
    try:
        frame = Timeframe.parse(body.from_, body.to, datetime.now(UTC))
    except TimeframeError as exc:
        raise HTTPException(422, str(exc)) from None
    stored = await ctx.store.get_trail(project_id)
    trail = stored.trail()
    try:
        job = await _jobs(ctx).create(
            trail,
            frame,
            body.format or trail.archive.format,
            user_id=who.user_id,
            user_name=who.user_name,
        )
    except ExportConflict as exc:
        raise HTTPException(
            409, f"export {exc.job_id} of project {project_id} is not finished yet"
        ) from None
    response.headers["Location"] = f"/v1/exports/{job.id}"
    return ExportJobView.of(job)


@router.get(
    "/v1/projects/{project_id}/exports",
    response_model=ExportJobList,
    response_model_by_alias=True,
    responses={**_ERRORS, **UNKNOWN_PROJECT},
    summary="The project's exports, newest first",
    dependencies=[KnownProject],
)
async def list_exports(
    project_id: ProjectId,
    ctx: Context,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ExportJobList:
    require_read(ctx, who, policy.EXPORTS_LIST, project_id)
    jobs = await _jobs(ctx).list_project(project_id, limit)
    return ExportJobList(exports=[ExportJobView.of(job) for job in jobs])


@router.get(
    "/v1/exports/{export_id}",
    response_model=ExportJobView,
    response_model_by_alias=True,
    responses={**_ERRORS, 404: {"model": ErrorBody, "description": "No such export."}},
    summary="An export's progress and result",
)
async def get_export(
    export_id: Annotated[str, Path(pattern=JOB_ID_PATTERN)], ctx: Context, who: Caller
) -> ExportJobView:
    job = await _jobs(ctx).get(export_id)
    if job is None or not ctx.policy.allows(who, policy.EXPORT_GET, job.project_id):
        raise HTTPException(404, f"no export {export_id}")
    return ExportJobView.of(job)
