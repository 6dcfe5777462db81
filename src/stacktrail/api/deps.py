"""Request dependencies: the caller (from X-Auth-Token) and the permission checks."""

from __future__ import annotations

import logging
from typing import Annotated, Any, NoReturn

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader

from stacktrail.api.auth import Principal
from stacktrail.api.context import ApiContext, get_context
from stacktrail.domain.audit import Actor
from stacktrail.domain.document import BoundsError
from stacktrail.domain.errors import ClientError
from stacktrail.domain.trail import UNSCOPED
from stacktrail.domain.validation import PROJECT_ID_PATTERN
from stacktrail.keystone import InvalidToken

log = logging.getLogger(__name__)

token_header = APIKeyHeader(
    name="X-Auth-Token",
    auto_error=False,
    description="A Keystone token (project-scoped for project admins, members, readers).",
)

Context = Annotated[ApiContext, Depends(get_context)]
ProjectId = Annotated[
    str,
    Path(
        pattern=PROJECT_ID_PATTERN,
        description="Keystone project id (or `unscoped` for events without a project).",
    ),
]


def _unauthorized(ctx: ApiContext, detail: str) -> NoReturn:
    headers = {}
    if ctx.settings.keystone_url:
        headers["WWW-Authenticate"] = f'Keystone uri="{ctx.settings.keystone_url}"'
    raise HTTPException(401, detail, headers=headers)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _max_age(ctx: ApiContext, request: Request) -> float | None:
    """Writes trust a cached validation only `token_cache_ttl_writes` (0: ask Keystone)."""
    if request.method in _SAFE_METHODS:
        return None
    return ctx.settings.token_cache_ttl_writes.total_seconds()


async def get_principal(
    ctx: Context, request: Request, token: Annotated[str | None, Security(token_header)]
) -> Principal:
    if ctx.tokens is None:
        return Principal.unauthenticated()
    if not token:
        _unauthorized(ctx, "authentication required: send a Keystone token in X-Auth-Token")
    try:
        info = await ctx.tokens.validate(token, _max_age(ctx, request))
    except InvalidToken:
        _unauthorized(ctx, "the token is invalid, expired or revoked")
    except ClientError as exc:
        log.error("cannot validate tokens with Keystone: %s", exc)
        raise HTTPException(503, "cannot validate the token with Keystone now") from exc
    return ctx.policy.principal_of(info)


Caller = Annotated[Principal, Depends(get_principal)]

PROJECT_NAMES_MAX = 100_000  # known ids kept; beyond, the cache starts over


async def project_name_of(
    ctx: ApiContext, request: Request, who: Principal, project_id: str
) -> str | None:
    """The project's name from Keystone; 404 for an id Keystone does not know.

    Asked with the caller's own token, for cloud admins (the only callers who may name a
    project other than their token's); others' projects are refused by the policy, and
    their own project is the one Keystone scoped their token to.
    """
    if project_id == UNSCOPED:
        return None
    if who.project_id == project_id and who.project_name:
        return who.project_name
    known = ctx.project_names.get(project_id)
    if known is not None or ctx.projects is None or not who.cloud_admin:
        return known
    token = request.headers.get("x-auth-token", "")
    try:
        name = await ctx.projects.project_name(project_id, token)
    except ClientError as exc:
        log.warning("cannot check project %s with Keystone: %s", project_id, exc)
        return None  # Keystone's trouble is not the caller's mistake
    if name is None:
        raise HTTPException(
            404,
            f"Keystone knows no project with id {project_id}: a trail is kept per project "
            "id (not name), and only for projects that exist",
        )
    if len(ctx.project_names) >= PROJECT_NAMES_MAX:
        ctx.project_names.clear()
    ctx.project_names[project_id] = name
    return name


async def require_known_project(
    ctx: Context, request: Request, who: Caller, project_id: ProjectId
) -> None:
    """Refuse (404) a project id Keystone does not know."""
    await project_name_of(ctx, request, who, project_id)


KnownProject = Depends(require_known_project)
UNKNOWN_PROJECT: dict[int | str, dict[str, Any]] = {
    404: {"description": "Keystone knows no project with this id (checked for cloud admins)."}
}


def require_read(ctx: ApiContext, who: Principal, action: str, project_id: str) -> None:
    if not ctx.policy.allows(who, action, project_id):
        raise HTTPException(403, f"not allowed to read the trail of project {project_id}")


def require_write(ctx: ApiContext, who: Principal, action: str, project_id: str) -> None:
    if not ctx.policy.allows(who, action, project_id):
        raise HTTPException(
            403,
            f"not allowed to change the trail of project {project_id}: "
            "needs the audit_admin or admin role on that project",
        )


def require_cloud_admin(ctx: ApiContext, who: Principal, action: str) -> None:
    if not ctx.policy.allows(who, action):
        raise HTTPException(403, "only cloud admins may do this")


def require(ctx: ApiContext, who: Principal, action: str) -> None:
    """For actions on no project (any valid token, by default)."""
    if not ctx.policy.allows(who, action):
        raise HTTPException(403, "not allowed to do this")


def actor_of(who: Principal, request: Request) -> Actor:
    address = request.client.host if request.client else None
    return who.actor(address=address, agent=request.headers.get("user-agent"))


def raise_validation(errors: list[BoundsError], prefix: tuple[str, ...] = ("body",)) -> NoReturn:
    """422 in FastAPI's own shape, for rules that depend on the stored bounds."""
    raise RequestValidationError(
        [
            {"type": "value_error", "loc": (*prefix, *e.loc), "msg": e.msg, "input": e.input}
            for e in errors
        ]
    )


def validation_errors(exc: Any, prefix: tuple[str, ...] = ("body",)) -> list[dict[str, Any]]:
    """A pydantic ValidationError's errors with `loc` under `prefix`, JSON-safe."""
    errors: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        item = {
            "type": error["type"],
            "loc": (*prefix, *error["loc"]),
            "msg": error["msg"],
            "input": error.get("input"),
        }
        if "ctx" in error:
            item["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
        errors.append(item)
    return errors


_known_query: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def refuse_unknown_query(request: Request) -> None:
    """422 for query parameters a route does not know: a typo'd filter must not be ignored."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _known_query.get(id(route))
    if known is None:
        known = _known_query[id(route)] = frozenset(_query_names(dependant))
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "Unknown query parameter",
                    "input": request.query_params.get(name),
                }
                for name in unknown
            ]
        )


VALIDATION_ERROR: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Validation Error",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
}
