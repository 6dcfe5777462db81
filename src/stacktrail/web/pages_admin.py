"""/admin: every configured trail (failing ones first) and the operator's defaults."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stacktrail.api import policy
from stacktrail.domain.durations import parse_duration
from stacktrail.domain.validation import PROJECT_ID_PATTERN
from stacktrail.web import explain, forms
from stacktrail.web.api_client import Api, ApiResponse
from stacktrail.web.pages_auth import checked_form, require_session
from stacktrail.web.pages_project import project_url
from stacktrail.web.render import message_page, page, policy_of, redirect
from stacktrail.web.sessions import Session

router = APIRouter(include_in_schema=False)

API_PAGE = 1000
MAX_TRAILS = 10_000
PAGE_SIZES = (25, 50, 100)
_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    sort: Callable[[dict[str, Any]], Any]


COLUMNS = [
    Column("project", "Project", lambda t: t["project_id"]),
    Column("status", "Status", lambda t: (not t["in_error"], not t["enabled"])),
    Column("retention", "Retention", lambda t: t["retention_days"]),
    Column("interval", "Delivery", lambda t: _interval_s(t["archive"]["interval"])),
    Column("container", "Container", lambda t: t["archive"]["container"]),
    Column("updated", "Last change", lambda t: t.get("updated_at") or ""),
]
SORTS = {column.key: column for column in COLUMNS}


def _interval_s(value: str) -> float:
    try:
        return parse_duration(value).total_seconds()
    except ValueError:
        return 0.0


@dataclass(slots=True)
class Query:
    search: str
    enabled: str  # "", "yes", "no"
    delivery: str  # "", "failing", "ok"
    sort: str
    direction: str  # "asc" or "desc"
    page: int
    per_page: int

    @classmethod
    def of(cls, request: Request) -> Query:
        params = request.query_params
        page_text = params.get("page", "1")
        per_text = params.get("per_page", "50")
        per_page = forms.small_int(per_text, 4)
        if per_page not in PAGE_SIZES:
            per_page = 50
        return cls(
            search=params.get("q", "").strip()[:64],
            enabled=params.get("enabled", "") if params.get("enabled") in ("yes", "no") else "",
            delivery=(
                params.get("delivery", "") if params.get("delivery") in ("failing", "ok") else ""
            ),
            sort=params.get("sort", "status") if params.get("sort") in SORTS else "status",
            direction="desc" if params.get("dir") == "desc" else "asc",
            page=max(1, forms.small_int(page_text, 6) or 1),
            per_page=per_page,
        )

    def url(self, **changes: Any) -> str:
        values = {
            "q": self.search,
            "enabled": self.enabled,
            "delivery": self.delivery,
            "sort": self.sort,
            "dir": self.direction,
            "page": self.page,
            "per_page": self.per_page,
            **changes,
        }
        defaults = {"sort": "status", "dir": "asc", "page": 1, "per_page": 50}
        kept = {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}
        return "/admin" + (f"?{urlencode(kept)}" if kept else "")

    def sort_url(self, key: str) -> str:
        direction = "desc" if self.sort == key and self.direction == "asc" else "asc"
        return self.url(sort=key, dir=direction, page=1)

    def api_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": API_PAGE}
        if self.search:
            params["search"] = self.search
        if self.enabled:
            params["enabled"] = self.enabled == "yes"
        if self.delivery:
            params["in_error"] = self.delivery == "failing"
        return params


async def _all_trails(api: Api, query: Query) -> tuple[list[dict[str, Any]], ApiResponse, bool]:
    """Every trail matching the filter (up to MAX_TRAILS), the last answer, and whether
    the list was cut short."""
    trails: list[dict[str, Any]] = []
    params = query.api_params()
    while True:
        answer = await api.get("/v1/trails", params)
        if not answer.ok:
            return trails, answer, False
        trails.extend(answer.body.get("trails", []))
        marker = answer.body.get("next_marker")
        if not marker:
            return trails, answer, False
        if len(trails) >= MAX_TRAILS:
            return trails, answer, True
        params = {**params, "marker": marker}


def _row(trail: dict[str, Any]) -> dict[str, Any]:
    archive = trail["archive"]
    events = trail["events"]
    updated = explain.parse_time(trail.get("updated_at"))
    # "every event", "every event except reads of compute", "only failures"
    selection = explain.selection_sentence(events).removeprefix("Keep ").removesuffix(".")
    return {
        **trail,
        "url": project_url(trail["project_id"]),
        "delivery": (
            f"{explain.every(archive['interval'])} to {archive['container']}"
            f" in {explain.join_words(archive['regions'])}"
            if archive["enabled"]
            else "no delivery to a container"
        ),
        "selection": selection,
        "updated_words": explain.time_words(updated),
        "updated_by_name": (trail.get("updated_by") or {}).get("user_name", ""),
    }


def _forbidden(request: Request, session: Session) -> Response:
    return message_page(
        request,
        "Cloud administrators only",
        "This page lists the audit trails of every project and the cloud's defaults; only "
        "cloud administrators can open it.",
        status_code=403,
        session=session,
        link=("/", "Back to your project"),
    )


async def render_admin(
    request: Request,
    session: Session,
    *,
    defaults_draft: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    query = Query.of(request)
    async with Api(request.app, session, request) as api:
        trails, answer, truncated = await _all_trails(api, query)
        defaults = await api.get("/v1/defaults")
    if answer.status == 403:
        return _forbidden(request, session)
    errors = dict(errors or {})
    list_errors = forms.errors_by_field(answer.validation_errors)
    if "search" in list_errors:
        errors["q"] = list_errors["search"]
    column = SORTS[query.sort]
    trails.sort(key=column.sort, reverse=query.direction == "desc")
    trails.sort(key=lambda t: not t["in_error"])  # stable: failing trails first
    total = len(trails)
    pages = max(1, -(-total // query.per_page))
    query.page = min(query.page, pages)
    start = (query.page - 1) * query.per_page
    shown = [_row(t) for t in trails[start : start + query.per_page]]
    async with Api(request.app, session, request) as api:
        names = await asyncio.gather(
            *(api.get(f"/v1/projects/{row['project_id']}") for row in shown)
        )
    for row, name in zip(shown, names, strict=True):
        row["project_name"] = name.body.get("name") if name.ok else None
        row["unknown_project"] = name.status == 404
    bounds = defaults.body if defaults.ok else {}
    context = {
        "title": "All audit trails",
        "nav": "admin",
        "query": query,
        "columns": COLUMNS,
        "rows": shown,
        "total": total,
        "failing": sum(1 for t in trails if t["in_error"]),
        "first": start + 1 if total else 0,
        "last": start + len(shown),
        "pages": pages,
        "page_sizes": PAGE_SIZES,
        "truncated": truncated,
        "list_error": None if answer.ok or list_errors else answer.detail,
        "defaults": bounds,
        "defaults_shown": defaults_draft if defaults_draft is not None else bounds,
        "defaults_error": None if defaults.ok else defaults.detail,
        "format_choices": explain.FORMAT_LABELS,
        "errors": errors,
        "notice": notice,
    }
    return page(request, "admin.html", context, session=session, status_code=status_code)


def _admin_session(request: Request) -> Session | Response:
    session = require_session(request)
    if isinstance(session, Session) and not (
        session.principal and policy_of(request).allows(session.principal, policy.TRAILS_LIST)
    ):
        return _forbidden(request, session)
    return session


@router.get("/admin")
async def admin_page(request: Request) -> Response:
    session = _admin_session(request)
    if not isinstance(session, Session):
        return session
    return await render_admin(request, session)


@router.get("/admin/open")
async def open_project(request: Request) -> Response:
    session = _admin_session(request)
    if not isinstance(session, Session):
        return session
    project_id = request.query_params.get("project_id", "").strip()
    if not _PROJECT_ID.fullmatch(project_id):
        return await render_admin(
            request,
            session,
            errors={"project_id": ["Enter a project ID: letters, digits, `-` and `_`."]},
            status_code=422,
        )
    return redirect(project_url(project_id))


@router.post("/admin/defaults")
async def change_defaults(request: Request) -> Response:
    session = _admin_session(request)
    if not isinstance(session, Session):
        return session
    form = await checked_form(request, session)
    version_text = forms.text(form, "version")
    version = forms.small_int(version_text)
    body = forms.defaults_body(form)
    async with Api(request.app, session, request) as api:
        answer = await api.put("/v1/defaults", body, version)
    if answer.ok:
        session.flash(
            "success",
            f"The cloud's defaults are saved (version {answer.body.get('version')}). Trails "
            "that were never changed follow them within seconds.",
        )
        return redirect("/admin#defaults")
    if answer.status == 403:
        return _forbidden(request, session)
    if answer.status == 412:
        return await render_admin(
            request,
            session,
            defaults_draft=body,
            notice="Somebody changed the defaults while you were editing them, so your changes "
            "were not saved. The form shows your values: check them and save again.",
            status_code=409,
        )
    if answer.status == 422:
        return await render_admin(
            request,
            session,
            defaults_draft=body,
            errors=forms.errors_by_field(answer.validation_errors),
            notice="Nothing was saved: please correct the fields marked below.",
            status_code=422,
        )
    session.flash("error", f"The defaults could not be saved: {answer.detail}.")
    return redirect("/admin#defaults")
