"""What every page shares: the web context, templates, session cookies, security headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import stacktrail
from stacktrail.api.policy import Policy
from stacktrail.config import AuthMode, Settings
from stacktrail.web import explain
from stacktrail.web.keystone_login import KeystoneLogin
from stacktrail.web.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_IDLE_S,
    Session,
    SessionStore,
)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
STATIC_PREFIX = "/static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(slots=True)
class WebContext:
    settings: Settings
    sessions: SessionStore
    login_forms: SessionStore
    keystone: KeystoneLogin
    templates: Jinja2Templates

    @property
    def auth_disabled(self) -> bool:
        return self.settings.auth_mode == AuthMode.NOAUTH


def build_context(settings: Settings) -> WebContext:
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    env = templates.env
    env.globals["static"] = lambda name: f"{STATIC_PREFIX}/{name}?v={stacktrail.__version__}"
    env.globals["app_version"] = stacktrail.__version__
    env.filters["every"] = explain.every
    env.filters["duration_words"] = explain.duration_words
    env.filters["size_words"] = explain.size_words
    env.filters["time_words"] = lambda v: explain.time_words(explain.parse_time(v))
    env.filters["ago"] = lambda v: explain.ago(explain.parse_time(v))
    env.filters["plural"] = explain.plural
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    env.trim_blocks = True
    env.lstrip_blocks = True
    return WebContext(
        settings=settings,
        sessions=SessionStore(SESSION_IDLE_S),
        login_forms=SessionStore(SESSION_IDLE_S),
        keystone=KeystoneLogin(settings.keystone_url),
        templates=templates,
    )


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.stacktrail_web
    return context


def policy_of(request: Request) -> Policy:
    """The API's policy: the pages decide what to offer by the rules the API enforces."""
    policy: Policy = request.app.state.stacktrail.policy
    return policy


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str, path: str) -> None:
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def current_session(request: Request) -> Session | None:
    session = web(request).sessions.get(request.cookies.get(SESSION_COOKIE))
    return session if session is not None and session.principal is not None else None


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    session: Session | None = None,
    status_code: int = 200,
) -> Response:
    ctx = web(request)
    values: dict[str, Any] = {
        "session": session,
        "who": session.principal if session else None,
        "csrf": session.csrf if session else "",
        "flashes": session.take_flashes() if session else [],
        "auth_disabled": ctx.auth_disabled,
        "role_words": (
            explain.role_words(session.principal.roles, session.principal.cloud_admin)
            if session and session.principal
            else ""
        ),
        **context,
    }
    response = ctx.templates.TemplateResponse(request, template, values, status_code=status_code)
    return secure(response)


def message_page(
    request: Request,
    title: str,
    message: str,
    *,
    status_code: int,
    session: Session | None = None,
    link: tuple[str, str] | None = None,
) -> Response:
    return page(
        request,
        "message.html",
        {"title": title, "message": message, "link": link},
        session=session,
        status_code=status_code,
    )


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


_SAFE_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")


def safe_next(value: str | None) -> str | None:
    """A local path to return to after signing in (never another site)."""
    if value and len(value) <= 512 and _SAFE_NEXT.fullmatch(value) and "\\" not in value:
        return value
    return None


def login_url(next_path: str | None = None, reason: str | None = None) -> str:
    params = {}
    if next_path and safe_next(next_path):
        params["next"] = next_path
    if reason:
        params["reason"] = reason
    return "/login" + (f"?{urlencode(params)}" if params else "")


def login_cookie_id(request: Request) -> str | None:
    return request.cookies.get(LOGIN_COOKIE)


def home_of(session: Session) -> str:
    who = session.principal
    if who is None:
        return "/login"
    if who.cloud_admin:
        return "/admin"
    if who.project_id:
        return f"/projects/{quote(who.project_id, safe='')}"
    return "/login"
