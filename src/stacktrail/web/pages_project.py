"""/projects/{project_id}: a project's trail, its delivery status, and the forms to change it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from stacktrail.api import policy
from stacktrail.api.merge_patch import merge_patch
from stacktrail.api.problems import problem_error
from stacktrail.domain.document import EventsInput
from stacktrail.domain.durations import parse_duration
from stacktrail.domain.event_rules import OUTCOMES, READ_ONLY_ACTIONS
from stacktrail.domain.trail import UNSCOPED
from stacktrail.domain.validation import PROJECT_ID_PATTERN
from stacktrail.web import chart, explain, forms
from stacktrail.web.api_client import Api, ApiResponse, trail_path
from stacktrail.web.digest_view import digest_lines
from stacktrail.web.pages_auth import checked_form, require_session
from stacktrail.web.render import message_page, page, policy_of, redirect, web
from stacktrail.web.sessions import Session
from stacktrail.web.view_trail import (
    SETTINGS_MEMBERS,
    bound_note_rows,
    change_rows,
    defaults_baseline,
    health_of,
    inherited_members,
    region_rows,
    retention_update_words,
    spool_waiting,
)

router = APIRouter(include_in_schema=False)

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
INTERVAL_CHOICES = ["1m", "5m", "15m", "30m", "1h", "6h", "12h", "1d"]


def project_url(project_id: str, anchor: str = "") -> str:
    return f"/projects/{quote(project_id, safe='')}" + (f"#{anchor}" if anchor else "")


def _not_found(request: Request, session: Session, project_id: str) -> Response:
    return message_page(
        request,
        "No such project",
        f"{project_id!r} is not a project ID. Project IDs have letters, digits, `-` and `_`.",
        status_code=404,
        session=session,
        link=("/", "Back"),
    )


def _refused(request: Request, session: Session, project_id: str, answer: ApiResponse) -> Response:
    who = session.principal
    own = who.project_id if who else None
    return message_page(
        request,
        "Not allowed",
        f"You cannot see the audit trail of project {project_id}: {answer.detail}. "
        + (f"You are signed in to project {session.project_name or own}." if own else ""),
        status_code=403,
        session=session,
        link=("/", "Back to your project"),
    )


def _unavailable(request: Request, session: Session, answer: ApiResponse) -> Response:
    return message_page(
        request,
        "Temporarily unavailable",
        f"The trail cannot be shown right now ({answer.detail}). Please try again shortly.",
        status_code=503 if answer.status >= 500 else answer.status,
        session=session,
        link=("", "Try again"),
    )


async def render_project(
    request: Request,
    session: Session,
    project_id: str,
    *,
    draft: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    notice: str | None = None,
    status_code: int = 200,
    review: str | None = None,
) -> Response:
    """The project page; with `draft`, the forms show it instead of the stored trail, and
    with `review` (the draft's token) the event selection's draft is explained before it
    is saved."""
    path = trail_path(project_id)
    async with Api(request.app, session, request) as api:
        trail, status, defaults, changes, digests, delivery, project = await asyncio.gather(
            api.get(path),
            api.get(path + "/status"),
            api.get("/v1/defaults"),
            api.get(path + "/changes", {"limit": 10}),
            api.get("/v1/digest-keys"),
            api.get(path + "/delivery"),
            api.get(f"/v1/projects/{project_id}"),
        )
    if trail.status == 403:
        return _refused(request, session, project_id, trail)
    if trail.status == 404:
        return message_page(
            request,
            "No such project",
            trail.detail,
            status_code=404,
            session=session,
            link=("/", "Back"),
        )
    if trail.status == 422:
        return _not_found(request, session, project_id)
    if not trail.ok:
        return _unavailable(request, session, trail)

    ctx = web(request)
    who = session.principal
    assert who is not None
    current: dict[str, Any] = trail.body
    shown: dict[str, Any] = draft if draft is not None else current
    bounds: dict[str, Any] = defaults.body if defaults.ok else {}
    catalogue = bounds.get("event_types") or []
    events = shown.get("events") or {}
    include, exclude = list(events.get("include") or []), list(events.get("exclude") or [])
    archive = shown.get("archive") or {}
    regions = list(bounds.get("regions") or [])
    regions += [r for r in archive.get("regions") or [] if r not in regions]
    min_interval = str(bounds.get("min_interval") or "")
    status_body: dict[str, Any] | None = status.body if status.ok else None
    days = chart.days_from_status(status_body) if status_body else []
    own = who.project_id == project_id
    keystone_name = project.body.get("name") if project.ok else None
    errors = errors or {}
    advanced = [
        "archive.prefix",
        "archive.format",
        "archive.write_mode",
        "archive.source",
        "search.enabled",
    ]
    context = {
        "title": "Audit trail of events without a project"
        if project_id == UNSCOPED
        else f"Audit trail of {(session.project_name if own else keystone_name) or project_id}",
        "nav": "own" if own else None,
        "project_id": project_id,
        "project_name": session.project_name if own else keystone_name,
        "own": own,
        "can_write": policy_of(request).allows(who, policy.TRAIL_UPDATE, project_id),
        "trail": current,
        "shown": shown,
        "version": current.get("version", 0),
        "summary": {
            "retention": explain.retention_sentence(
                int(current["retention_days"]),
                bool(current["archive"]["enabled"]),
                bool(current["search"]["enabled"]) and ctx.settings.search_enabled,
            ),
            "delivery": explain.delivery_sentence(current["archive"]),
            "format": explain.FORMATS.get(str(current["archive"]["format"]), ""),
            "write_mode": explain.write_mode_words(str(current["archive"]["write_mode"])),
            "source": explain.source_words(str(current["archive"]["source"])),
            "filter": explain.selection_sentence(current["events"]),
        },
        "inherited": inherited_members(current),
        "bound_notes": bound_note_rows(current),
        "health": health_of(current, status_body),
        "regions": region_rows(status_body),
        "spool": spool_waiting(status_body),
        "retention_update": retention_update_words(status_body),
        "digests": digests.body if digests.ok else None,
        "digest_lines": digest_lines(
            status_body, bool(current["enabled"]) and bool(current["archive"]["enabled"])
        ),
        "status": status_body,
        "status_error": None if status.ok else status.detail,
        "chart": chart.render(days, f"Events recorded per day, last {len(days)} days")
        if status_body
        else None,
        "chart_days": days,
        "bounds": bounds,
        "bounds_error": None if defaults.ok else defaults.detail,
        "region_choices": regions,
        "format_choices": explain.FORMAT_LABELS,
        "interval_choices": [
            i for i in INTERVAL_CHOICES if not min_interval or _seconds(i) >= _seconds(min_interval)
        ],
        "offer_search": ctx.settings.search_enabled,
        "offer_source": ctx.settings.search_enabled,
        "selection": forms.event_selection(
            catalogue,
            include,
            exclude,
            explain.coverage_of(current["events"]),
            explain.coverage_of(events) if review else None,
        ),
        "rule_rows": forms.rule_rows(events.get("rules") or [], explain.rule_words),
        "review": {"token": review, "sentence": explain.selection_sentence(events)}
        if review
        else None,
        "always_kept": explain.ALWAYS_KEPT_WORDS,
        "cloud_excludes": explain.join_words(list(ctx.settings.events_default_exclude), "or"),
        "outcome_choices": OUTCOMES,
        "read_only_actions": READ_ONLY_ACTIONS,
        "changes": change_rows(
            changes.body.get("changes", []) if changes.ok else [],
            defaults_baseline(
                bounds, ctx.settings.archive_enabled, ctx.settings.archive_prefix.strip("/")
            ),
        ),
        "errors": errors,
        "open_advanced": any(name in errors for name in advanced),
        "notice": notice,
        "delivery": delivery_view(delivery.body) if delivery.ok else None,
        "can_retry": policy_of(request).allows(who, policy.DELIVERY_RETRY, project_id),
    }
    return page(request, "project.html", context, session=session, status_code=status_code)


def delivery_view(body: dict[str, Any]) -> dict[str, Any] | None:
    """The failing regions with what fixes them, for the "Fix delivery" panel."""
    failing = [r for r in body.get("regions", []) if r.get("failing") and r.get("problem")]
    if not failing:
        return None
    for region in failing:
        when = explain.parse_time(region.get("next_retry_at"))
        region["next_retry_words"] = (
            f"{explain.time_words(when)} ({explain.until(when)})" if when is not None else None
        )
    return {**body, "failing": failing, "held": backlog_words(body.get("backlog"))}


def backlog_words(backlog: dict[str, Any] | None) -> str | None:
    """What the failing delivery holds back in the spool, in words (None: nothing)."""
    if not backlog or not backlog.get("bytes"):
        return None
    records = int(backlog.get("records") or 0)
    oldest = explain.parse_time(backlog.get("oldest_at"))
    words = f"Kept in the spool meanwhile: {explain.size_words(int(backlog['bytes']))}"
    if records:
        words += f", {explain.plural(records, 'event')}"
    if oldest is not None:
        words += f", the oldest spooled {explain.ago(oldest)}"
    words += f" (this project's share: {explain.size_words(int(backlog['share_bytes']))})."
    if backlog.get("held_back"):
        words += (
            " The share is full: new events are dead-lettered with the reason until "
            "delivery works again; other projects are not held up."
        )
    return words


def _seconds(interval: str) -> float:
    try:
        return parse_duration(interval).total_seconds()
    except ValueError:
        return 0.0


@router.get("/projects/{project_id}")
async def project_page(request: Request, project_id: str) -> Response:
    session = require_session(request)
    if not isinstance(session, Session):
        return session
    if not _PROJECT_ID.fullmatch(project_id):
        return _not_found(request, session, project_id)
    return await render_project(request, session, project_id)


def _version(form: Any) -> int | None:
    return forms.small_int(forms.text(form, "version"))


async def _change(request: Request, project_id: str, kind: str) -> Response:
    session = require_session(request)
    if not isinstance(session, Session):
        return session
    form = await checked_form(request, session)
    if not _PROJECT_ID.fullmatch(project_id):
        return _not_found(request, session, project_id)
    version = _version(form)
    settings = web(request).settings
    path = trail_path(project_id)
    anchor = {"settings": "settings", "events": "events", "reset": "summary"}[kind]
    patch: dict[str, Any] = {}
    async with Api(request.app, session, request) as api:
        if kind == "reset":
            answer = await api.delete(path, version)
        else:
            if kind == "settings":
                patch = forms.settings_patch(
                    form,
                    offer_search=settings.search_enabled,
                    offer_source=settings.search_enabled,
                )
                members = SETTINGS_MEMBERS
            else:
                patch = forms.events_patch(form)
                members = ("events.include", "events.exclude", "events.rules")
            shown = await api.get(path)  # which members follow the cloud's defaults
            if shown.ok:
                patch = forms.with_inheritance(patch, form, shown.body, members)
            if kind == "events" and shown.ok:
                token = review_token(patch)
                if forms.text(form, "step") != "save" or forms.text(form, "reviewed") != token:
                    return await _review_events(request, session, project_id, shown, patch)
            answer = await api.patch(path, patch, version)
        current = await api.get(path) if answer.status in (412, 422) else None
    if answer.ok:
        body = answer.body
        done = {
            "settings": "Your settings are saved",
            "events": "Your event selection is saved",
            "reset": "The trail uses the cloud's defaults again",
        }[kind]
        session.flash(
            "success",
            f"{done} (version {body.get('version')}). The pipeline follows within seconds.",
        )
        return redirect(project_url(project_id, anchor))
    if answer.status == 403:
        return _refused(request, session, project_id, answer)
    if answer.status in (412, 422) and current is not None and current.ok:
        base = current.body
        draft = merge_patch(base, forms.without_nulls(patch)) if patch else base
        draft["version"] = base.get("version", 0)
        if answer.status == 412:
            return await render_project(
                request,
                session,
                project_id,
                draft=draft,
                notice="Somebody changed this trail while you were editing it, so your changes "
                "were not saved. The form below shows your changes on top of the current "
                "version: check them and save again.",
                status_code=409,
            )
        return await render_project(
            request,
            session,
            project_id,
            draft=draft,
            errors=forms.errors_by_field(answer.validation_errors),
            notice="Nothing was saved: please correct the fields marked below.",
            status_code=422,
        )
    return _unavailable(request, session, answer)


def review_token(patch: dict[str, Any]) -> str:
    """Names the draft a person reviewed, so a changed draft is explained again."""
    canonical = json.dumps(patch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


async def _review_events(
    request: Request,
    session: Session,
    project_id: str,
    current: ApiResponse,
    patch: dict[str, Any],
) -> Response:
    """The event selection's draft, in words and per event type, before it is saved; or
    its refused values, before anything is sent."""
    base = current.body
    draft = merge_patch(base, forms.without_nulls(patch))
    draft["version"] = base.get("version", 0)
    events = patch.get("events") or {}
    try:
        EventsInput.model_validate(events)
    except ValidationError as exc:
        errors = [
            problem_error({**e, "loc": ("events", *e["loc"])})
            for e in exc.errors(include_url=False)
        ]
        return await render_project(
            request,
            session,
            project_id,
            draft=draft,
            errors=forms.errors_by_field(errors),
            notice="Nothing was saved: please correct the fields marked below.",
            status_code=422,
        )
    return await render_project(
        request, session, project_id, draft=draft, review=review_token(patch)
    )


@router.post("/projects/{project_id}/settings")
async def change_settings(request: Request, project_id: str) -> Response:
    return await _change(request, project_id, "settings")


@router.post("/projects/{project_id}/events")
async def change_events(request: Request, project_id: str) -> Response:
    return await _change(request, project_id, "events")


@router.post("/projects/{project_id}/reset")
async def reset_trail(request: Request, project_id: str) -> Response:
    return await _change(request, project_id, "reset")
