"""/v1/projects/{project_id}/files: the archive objects delivered into the project's
container (from the delivery ledger), with size, record count, expiry and the command
that fetches each one."""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from stacktrail.api import policy
from stacktrail.api.deps import (
    UNKNOWN_PROJECT,
    Caller,
    Context,
    KnownProject,
    ProjectId,
    require_read,
)
from stacktrail.api.schemas import ErrorBody
from stacktrail.config import Settings
from stacktrail.domain.expiry import expires_at
from stacktrail.domain.trail import ArchiveStore

router = APIRouter(tags=["files"], dependencies=[KnownProject], responses=UNKNOWN_PROJECT)

FILES_MAX = 1000
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid token."},
    403: {"model": ErrorBody, "description": "The token's roles do not allow this."},
}


class FileView(BaseModel):
    day: str = Field(description="UTC event day of the events in the object.")
    region: str = Field(description="Region the object was written in.")
    container: str = Field(description="Container (or bucket, or directory) holding it.")
    key: str = Field(description="Object name inside the container.")
    bytes: int = Field(description="Object size in bytes.")
    records: int = Field(description="Events in the object.")
    delivered_at: datetime | None = Field(description="When stacktrail wrote it.")
    expires_at: datetime = Field(
        description="When the store deletes it: end of its event day plus the trail's "
        "retention (Swift's X-Delete-At; the scheduler deletes S3 and file objects)."
    )
    fetch: list[str] = Field(description="Shell commands that download the object.")


class FileList(BaseModel):
    files: list[FileView] = Field(description="Newest delivery first.")
    store: ArchiveStore = Field(description="The kind of store the objects are in.")
    retention_days: int = Field(description="The trail's retention, giving the expiry.")


def fetch_commands(settings: Settings, region: str, container: str, key: str) -> list[str]:
    c, k = shlex.quote(container), shlex.quote(key)
    if settings.archive_store is ArchiveStore.SWIFT:
        return [
            f"openstack --os-region-name {shlex.quote(region)} object save {c} {k}",
            f"swift --os-region-name {shlex.quote(region)} download {c} {k}",
        ]
    if settings.archive_store is ArchiveStore.S3:
        return [f"aws s3 cp {shlex.quote(f's3://{container}/{key}')} ."]
    return [f"cp {shlex.quote(str(settings.archive_dir / container / key))} ."]


@router.get(
    "/v1/projects/{project_id}/files",
    response_model=FileList,
    responses=_ERRORS,
    summary="Archive objects delivered into the project's container, newest first",
)
async def list_files(
    project_id: ProjectId,
    ctx: Context,
    who: Caller,
    day: Annotated[
        str | None, Query(pattern=DAY_PATTERN, description="Only this UTC event day.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=FILES_MAX, description="Most objects listed.")] = 200,
) -> FileList:
    require_read(ctx, who, policy.FILES_LIST, project_id)
    stored = await ctx.store.get_trail(project_id)
    trail = stored.effective.to_trail(project_id, stored.version)
    objects = await ctx.ledger.deliveries(project_id, day=day, limit=limit)
    return FileList(
        files=[
            FileView(
                day=obj.day,
                region=obj.region,
                container=obj.container,
                key=obj.key,
                bytes=obj.bytes,
                records=obj.records,
                delivered_at=obj.delivered_at,
                expires_at=expires_at(obj.day, trail.retention_days),
                fetch=fetch_commands(ctx.settings, obj.region, obj.container, obj.key),
            )
            for obj in objects
        ],
        store=ctx.settings.archive_store,
        retention_days=trail.retention_days,
    )
