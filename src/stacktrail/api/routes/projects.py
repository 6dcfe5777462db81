"""/v1/projects/{project_id}: a project as Keystone knows it (its name), for the UI's lists."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from stacktrail.api import policy
from stacktrail.api.deps import (
    UNKNOWN_PROJECT,
    Caller,
    Context,
    ProjectId,
    project_name_of,
    require_read,
)

router = APIRouter(tags=["projects"], responses=UNKNOWN_PROJECT)


class ProjectView(BaseModel):
    id: str = Field(description="The Keystone project id.")
    name: str | None = Field(description="Its name in Keystone; null when not known here.")


@router.get(
    "/v1/projects/{project_id}",
    response_model=ProjectView,
    summary="A project's name in Keystone (404 for an id Keystone does not know)",
)
async def get_project(
    project_id: ProjectId, request: Request, ctx: Context, who: Caller
) -> ProjectView:
    require_read(ctx, who, policy.TRAIL_GET, project_id)
    return ProjectView(id=project_id, name=await project_name_of(ctx, request, who, project_id))
