"""/projects/{project_id}/events, /files and /exports: a project's recent events (from
search, through the API), one event's JSON, the files in its container, and "Download
events" (an export job, with its progress)."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stacktrail.api import policy
from stacktrail.domain.event_browse import FILTER_MAX_CHARS, PAGE_SIZE_DEFAULT
from stacktrail.domain.event_rules import OUTCOMES as CADF_OUTCOMES
from stacktrail.domain.validation import PROJECT_ID_PATTERN
from stacktrail.web.api_client import Api, ApiResponse
from stacktrail.web.pages_auth import checked_form, require_session
from stacktrail.web.render import message_page, page, policy_of, redirect
from stacktrail.web.sessions import Session

router = APIRouter(include_in_schema=False)

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FILTERS = ("action", "outcome", "observer", "initiator", "target_type")
FRAMES = [
    ("-1h", "Last hour"),
    ("-1d", "Last 24 hours"),
    ("-7d", "Last 7 days"),
    ("-30d", "Last 30 days"),
]
OUTCOMES = list(CADF_OUTCOMES)
PAGE_SIZE = PAGE_SIZE_DEFAULT


def base(project_id: str) -> str:
    return f"/projects/{quote(project_id, safe='')}"


def _answer_page(
    request: Request, session: Session, project_id: str, answer: ApiResponse
) -> Response:
    if answer.status in (404, 422) and not answer.validation_errors:
        return message_page(
            request,
            "Not found",
            answer.detail,
            status_code=404,
            session=session,
            link=(base(project_id), "Back to the trail"),
        )
    if answer.status == 403:
        return message_page(
            request,
            "Not allowed",
            answer.detail,
            status_code=403,
            session=session,
            link=("/", "Back"),
        )
    return message_page(
        request,
        "Temporarily unavailable",
        answer.detail,
        status_code=answer.status if answer.status >= 400 else 503,
        session=session,
        link=("", "Try again"),
    )


def _checked(request: Request, project_id: str) -> Session | Response:
    session = require_session(request)
    if not isinstance(session, Session):
        return session
    if not _PROJECT_ID.fullmatch(project_id):
        return message_page(
            request,
            "No such project",
            f"{project_id!r} is not a project ID.",
            status_code=404,
            session=session,
            link=("/", "Back"),
        )
    return session


def _row(event: dict[str, Any]) -> dict[str, Any]:
    def part(name: str, key: str) -> str:
        value = event.get(name)
        return str(value.get(key) or "") if isinstance(value, dict) else ""

    return {
        "id": str(event.get("id") or ""),
        "time": str(event.get("eventTime") or ""),
        "action": str(event.get("action") or ""),
        "outcome": str(event.get("outcome") or ""),
        "observer": part("observer", "typeURI")
        or part("observer", "name")
        or part("observer", "id"),
        "initiator": part("initiator", "name") or part("initiator", "id"),
        "target_type": part("target", "typeURI"),
        "path": str(event.get("requestPath") or ""),
    }


@router.get("/projects/{project_id}/events")
async def events_page(request: Request, project_id: str) -> Response:
    session = _checked(request, project_id)
    if not isinstance(session, Session):
        return session
    q = request.query_params
    chosen = {name: q.get(name, "").strip()[:255] for name in FILTERS}
    frame_from = q.get("from", "-1d")[:64] or "-1d"
    frame_to = q.get("to", "now")[:64] or "now"
    params: dict[str, Any] = {"from": frame_from, "to": frame_to, "limit": PAGE_SIZE}
    params.update({k: v for k, v in chosen.items() if v})
    cursor = q.get("cursor")
    if cursor:
        params["cursor"] = cursor[:512]
    async with Api(request.app, session, request) as api:
        answer = await api.get(f"/v1/projects/{project_id}/events", params)
        exports = await api.get(f"/v1/projects/{project_id}/exports", {"limit": 5})
    error = None
    if answer.status == 422:
        error = (
            answer.detail
            if not answer.validation_errors
            else "; ".join(f"{e.get('field')}: {e.get('detail')}" for e in answer.validation_errors)
        )
    elif not answer.ok:
        return _answer_page(request, session, project_id, answer)
    body: dict[str, Any] = answer.body if answer.ok else {}
    kept = {k: v for k, v in params.items() if k not in ("limit", "cursor")}
    next_url = None
    if body.get("next_cursor"):
        next_url = f"{base(project_id)}/events?" + urlencode(
            {**kept, "cursor": body["next_cursor"]}
        )
    who = session.principal
    assert who is not None
    return page(
        request,
        "events.html",
        {
            "title": f"Recent events of {project_id}",
            "project_id": project_id,
            "rows": [_row(e) for e in body.get("events", [])],
            "total": body.get("total"),
            "frame": {"from": frame_from, "to": frame_to},
            "frames": FRAMES,
            "outcomes": OUTCOMES,
            "filter_max_chars": FILTER_MAX_CHARS,
            "chosen": chosen,
            "error": error,
            "next_url": next_url,
            "first_url": f"{base(project_id)}/events?" + urlencode(kept) if cursor else None,
            "can_export": policy_of(request).allows(who, policy.EXPORT_CREATE, project_id),
            "exports": exports.body.get("exports", []) if exports.ok else [],
            "base": base(project_id),
        },
        session=session,
        status_code=422 if error else 200,
    )


@router.get("/projects/{project_id}/events/{event_id}")
async def event_page(request: Request, project_id: str, event_id: str) -> Response:
    session = _checked(request, project_id)
    if not isinstance(session, Session):
        return session
    async with Api(request.app, session, request) as api:
        answer = await api.get(f"/v1/projects/{project_id}/events/{quote(event_id[:128], safe='')}")
    if not answer.ok:
        return _answer_page(request, session, project_id, answer)
    return page(
        request,
        "event.html",
        {
            "title": f"Event {event_id}",
            "project_id": project_id,
            "row": _row(answer.body),
            "json": json.dumps(answer.body, indent=2, sort_keys=True, ensure_ascii=False),
            "base": base(project_id),
        },
        session=session,
    )


@router.get("/projects/{project_id}/files")
async def files_page(request: Request, project_id: str) -> Response:
    session = _checked(request, project_id)
    if not isinstance(session, Session):
        return session
    async with Api(request.app, session, request) as api:
        answer = await api.get(f"/v1/projects/{project_id}/files", {"limit": 500})
    if not answer.ok:
        return _answer_page(request, session, project_id, answer)
    days: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for item in sorted(answer.body["files"], key=lambda f: (f["day"], f["key"]), reverse=True):
        days.setdefault(item["day"], []).append(item)
    return page(
        request,
        "files.html",
        {
            "title": f"Files in the container of {project_id}",
            "project_id": project_id,
            "days": [
                {
                    "day": day,
                    "files": files,
                    "records": sum(f["records"] for f in files),
                    "bytes": sum(f["bytes"] for f in files),
                }
                for day, files in days.items()
            ],
            "store": answer.body["store"],
            "retention_days": answer.body["retention_days"],
            "base": base(project_id),
        },
        session=session,
    )


@router.post("/projects/{project_id}/exports")
async def start_export(request: Request, project_id: str) -> Response:
    session = _checked(request, project_id)
    if not isinstance(session, Session):
        return session
    form = await checked_form(request, session)
    body = {"from": str(form.get("from") or "-1d")[:64], "to": str(form.get("to") or "now")[:64]}
    if form.get("format"):
        body["format"] = str(form.get("format"))[:16]
    async with Api(request.app, session, request) as api:
        answer = await api.post(f"/v1/projects/{project_id}/exports", body)
    if answer.status == 409:
        job = re.search(r"export (\S+) of project", answer.detail)
        if job and _JOB_ID.fullmatch(job[1]):
            session.flash(
                "error", "An export of this project is still running; here is its progress."
            )
            return redirect(f"{base(project_id)}/exports/{job[1]}")
    if not answer.ok:
        return _answer_page(request, session, project_id, answer)
    return redirect(f"{base(project_id)}/exports/{answer.body['id']}")


@router.get("/projects/{project_id}/exports/{export_id}")
async def export_page(request: Request, project_id: str, export_id: str) -> Response:
    session = _checked(request, project_id)
    if not isinstance(session, Session):
        return session
    if not _JOB_ID.fullmatch(export_id):
        return message_page(
            request,
            "No such export",
            "That is not an export ID.",
            status_code=404,
            session=session,
            link=(base(project_id), "Back"),
        )
    async with Api(request.app, session, request) as api:
        answer = await api.get(f"/v1/exports/{export_id}")
    if not answer.ok or answer.body.get("project_id") != project_id:
        return _answer_page(
            request,
            session,
            project_id,
            answer
            if not answer.ok
            else ApiResponse(404, {"detail": f"no export {export_id}"}, None),
        )
    job = answer.body
    return page(
        request,
        "export.html",
        {
            "title": "Download events",
            "project_id": project_id,
            "job": job,
            "running": job["status"] in ("queued", "running"),
            "base": base(project_id),
        },
        session=session,
    )


@router.post("/projects/{project_id}/retry")
async def retry_delivery(request: Request, project_id: str) -> Response:
    session = _checked(request, project_id)
    if not isinstance(session, Session):
        return session
    await checked_form(request, session)
    async with Api(request.app, session, request) as api:
        answer = await api.post(f"/v1/projects/{project_id}/trail/delivery/retry", {})
    if not answer.ok:
        return _answer_page(request, session, project_id, answer)
    session.flash("success", f"Delivery: {answer.body['message']}.")
    return redirect(f"{base(project_id)}#fix-delivery")
