"""Every error the API answers is an RFC 9457 problem document (`application/problem+json`).

`type` is `about:blank` (the status says what went wrong, `title` is its phrase), `detail`
says it for a person, `instance` is the request's path. A refused request (422) also lists
`errors`: one per bad value, with its `field` path (`events.rules[1].action[0]`), where it
was (`in`: body, query, path or header), a JSON `pointer` into the body, the message and a
stable `code` (pydantic's error type, e.g. `less_than_equal`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
LOCATIONS = ("body", "query", "path", "header", "cookie")
REPORTS = frozenset({"/readyz"})  # its 503 is the readiness report, not a problem
MAX_DETAIL_ERRORS = 5  # bad values named in `detail`; `errors` lists them all


class ProblemError(BaseModel):
    """One refused value."""

    field: str = Field(
        description="Where the value is, dotted with list indexes: `retention_days`, "
        "`events.rules[1].action[0]`, a query parameter's name; empty: the whole body.",
        examples=["events.rules[1].action[0]"],
    )
    location: str = Field(
        alias="in",
        description="`body`, `query`, `path`, `header` or `cookie`.",
        examples=["body"],
    )
    pointer: str | None = Field(
        None,
        description="For a body value: a JSON pointer (RFC 6901) as a URI fragment, e.g. "
        "`#/events/rules/1/action/0`.",
    )
    detail: str = Field(description="Why the value is refused, for a person.")
    code: str = Field(
        description="What kind of refusal (pydantic's error type), e.g. `less_than_equal`, "
        "`value_error`, `extra_forbidden`.",
        examples=["less_than_equal"],
    )
    context: dict[str, str] | None = Field(
        None, description='The bound that was broken, e.g. `{"le": "36500"}`.'
    )


class Problem(BaseModel):
    """An error answer (RFC 9457)."""

    type: str = Field("about:blank", description="`about:blank`: `status` says it all.")
    title: str = Field(description="The HTTP status phrase, e.g. `Unprocessable Content`.")
    status: int = Field(description="The HTTP status code, repeated.")
    detail: str = Field(description="What went wrong and, where it helps, what to do.")
    instance: str = Field(description="The path of the request that failed.")
    errors: list[ProblemError] | None = Field(
        None, description="For a refused request (422): every refused value."
    )


# RFC 9110's names where Python's http module still has the older ones
_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def _title(status: int) -> str:
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def field_path(path: Sequence[Any]) -> str:
    """`("events", "rules", 1, "action", 0)` -> `events.rules[1].action[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _pointer(path: Sequence[Any]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def problem_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic/FastAPI error (`loc`, `msg`, `type`, `ctx`) as a problem's error entry."""
    loc = list(error.get("loc") or ())
    location = "body"
    if loc and loc[0] in LOCATIONS:
        location = str(loc.pop(0))
    if location == "body" and loc and isinstance(loc[0], int):
        loc = []  # FastAPI's JSON decode errors carry the character position
    entry: dict[str, Any] = {
        "field": field_path(loc),
        "in": location,
        "detail": str(error.get("msg", "")).removeprefix("Value error, "),
        "code": str(error.get("type", "value_error")),
    }
    if location == "body":
        entry["pointer"] = _pointer(loc)
    ctx = error.get("ctx")
    if isinstance(ctx, Mapping) and ctx:
        entry["context"] = {str(k): str(v) for k, v in ctx.items() if k != "error"} or None
        if entry["context"] is None:
            del entry["context"]
    return entry


def problem_body(
    status: int, detail: str, instance: str, errors: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: Iterable[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, request.url.path, errors),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """Every refused value in one sentence (the first few), each named by its field."""
    named = [
        f"{error['field'] or 'the body'}: {error['detail']}" for error in errors[:MAX_DETAIL_ERRORS]
    ]
    more = len(errors) - len(named)
    text = "; ".join(named) + (f"; and {more} more (see errors)" if more > 0 else "")
    if len(errors) == 1:
        return f"The request is not accepted: {text}"
    return f"{len(errors)} values are not accepted: {text}"


async def http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"There is nothing at {request.url.path}."
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        allowed = (exc.headers or {}).get("allow") or (exc.headers or {}).get("Allow")
        detail = f"{request.method} is not allowed on {request.url.path}" + (
            f"; allowed: {allowed}." if allowed else "."
        )
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    return problem_response(request, exc.status_code, detail, headers=exc.headers)


async def validation_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [problem_error(error) for error in exc.errors()]
    return problem_response(request, 422, validation_detail(errors), errors=errors)


async def internal_problem(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request, 500, "stacktrail failed unexpectedly; the error is logged. Try again shortly."
    )


def install(app: FastAPI) -> None:
    """Problem documents for every error, and the OpenAPI document saying so."""
    app.add_exception_handler(StarletteHTTPException, http_problem)
    app.add_exception_handler(RequestValidationError, validation_problem)
    app.add_exception_handler(Exception, internal_problem)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = problem_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx answer documented as a problem document (FastAPI documents its own
    `HTTPValidationError` and our models as `application/json`)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    for name, definition in problem.pop("$defs", {}).items():
        components[name] = definition
    components["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError", "ErrorBody"):
        components.pop(name, None)
    for url, path in schema.get("paths", {}).items():
        if url in REPORTS:
            continue
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}}
    return schema
