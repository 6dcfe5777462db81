"""Signing in and out, the home redirect, and what every signed-in page needs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stacktrail.api import policy
from stacktrail.api.auth import Principal
from stacktrail.web.api_client import SignedOut
from stacktrail.web.forms import MAX_FORM_FIELDS, text
from stacktrail.web.keystone_login import MAX_FIELD_LENGTH, MAX_SECRET_LENGTH, LoginError, SignedIn
from stacktrail.web.render import (
    clear_cookie,
    current_session,
    home_of,
    login_cookie_id,
    login_url,
    message_page,
    page,
    policy_of,
    redirect,
    safe_next,
    secure,
    set_cookie,
    web,
)
from stacktrail.web.sessions import LOGIN_COOKIE, LOGIN_FORM_TTL_S, SESSION_COOKIE, Session

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

MAX_SESSION_S = 12 * 3600.0
TOKEN_MARGIN_S = 30.0
REASONS = {
    "expired": ("info", "Your sign-in has ended (expired or revoked). Please sign in again."),
    "signed_out": ("success", "You are signed out."),
}


class CsrfRefused(Exception):
    """A form was posted without this session's CSRF token."""


def require_session(request: Request) -> Session | Response:
    """The signed-in session, or where to go instead (the sign-in page)."""
    session = current_session(request)
    if session is not None:
        return session
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method == "GET" and request.headers.get("sec-fetch-site") == "cross-site":
        # Arriving from a link on another site: the SameSite=Strict cookie was not sent.
        # A same-site reload sends it, so a signed-in user is not asked to sign in again.
        return page(request, "continue.html", {"title": "Opening stacktrail", "here": here})
    return redirect(login_url(here if request.method == "GET" else None))


async def checked_form(request: Request, session: Session) -> Any:
    """The posted form, when it carries the session's CSRF token (else CsrfRefused)."""
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    token = form.get("csrf_token")
    if not session.check_csrf(token if isinstance(token, str) else None):
        raise CsrfRefused()
    return form


async def csrf_refused(request: Request, exc: Exception) -> Response:
    log.warning("refused a form post without a valid CSRF token: %s", request.url.path)
    return message_page(
        request,
        "Form refused",
        "This form has expired or was not sent from this site, so nothing was changed. "
        "Go back, reload the page and try again.",
        status_code=403,
        session=current_session(request),
        link=("/", "Back to stacktrail"),
    )


async def signed_out(request: Request, exc: Exception) -> Response:
    web(request).sessions.drop(request.cookies.get(SESSION_COOKIE))
    response = redirect(login_url(reason="expired"))
    clear_cookie(request, response, SESSION_COOKIE, "/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    session = current_session(request)
    return redirect(home_of(session) if session else "/login")


def _login_page(
    request: Request,
    form_session: Session,
    *,
    values: dict[str, str] | None = None,
    error: LoginError | None = None,
    notice: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    values = values or {}
    context = {
        "title": "Sign in",
        "login_csrf": form_session.csrf,
        "values": values,
        "method": values.get("method", "password"),
        "error": str(error) if error else None,
        "error_field": error.field if error else None,
        "notice": notice,
        "next": safe_next(values.get("next")) or "",
        "keystone_configured": web(request).keystone.configured,
    }
    return page(request, "login.html", context, status_code=status_code)


def _form_session(request: Request) -> tuple[Session, str | None]:
    """The sign-in form's session, and a new cookie value when it had none."""
    forms = web(request).login_forms
    session = forms.get(login_cookie_id(request))
    if session is not None:
        return session, None
    cookie, session = forms.create(LOGIN_FORM_TTL_S)
    return session, cookie


@router.get("/login")
async def login_form(request: Request) -> Response:
    if current_session(request) is not None:
        return redirect(safe_next(request.query_params.get("next")) or "/")
    form_session, cookie = _form_session(request)
    reason = REASONS.get(request.query_params.get("reason", ""))
    response = _login_page(
        request, form_session, values={"next": request.query_params.get("next", "")}, notice=reason
    )
    if cookie:
        set_cookie(request, response, LOGIN_COOKIE, cookie, "/login")
    return response


def _login_values(form: Any) -> dict[str, str]:
    return {
        "method": text(form, "method") or "password",
        "user_name": text(form, "user_name")[:MAX_FIELD_LENGTH],
        "user_domain": text(form, "user_domain")[:MAX_FIELD_LENGTH],
        "project": text(form, "project")[:MAX_FIELD_LENGTH],
        "credential_id": text(form, "credential_id")[:MAX_FIELD_LENGTH],
        "next": text(form, "next"),
    }


async def _sign_in(request: Request, form: Any, values: dict[str, str]) -> SignedIn:
    keystone = web(request).keystone
    if values["method"] == "application_credential":
        secret = form.get("secret")
        if not values["credential_id"]:
            raise LoginError("Enter the application credential's ID.", field="credential_id")
        if not isinstance(secret, str) or not secret:
            raise LoginError("Enter the application credential's secret.", field="secret")
        return await keystone.with_application_credential(
            values["credential_id"], secret[:MAX_SECRET_LENGTH]
        )
    password = form.get("password")
    if not values["user_name"]:
        raise LoginError("Enter your user name.", field="user_name", status=422)
    if not isinstance(password, str) or not password:
        raise LoginError("Enter your password.", field="password", status=422)
    return await keystone.with_password(
        values["user_name"],
        password[:MAX_SECRET_LENGTH],
        values["user_domain"] or "Default",
        values["project"],
    )


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = web(request)
    form_cookie = login_cookie_id(request)
    form_session = ctx.login_forms.get(form_cookie)
    form = await request.form()
    token = form.get("csrf_token")
    token = token if isinstance(token, str) else None
    if form_session is None or not form_session.check_csrf(token):
        return await csrf_refused(request, CsrfRefused())
    values = _login_values(form)

    if ctx.auth_disabled:
        principal = Principal.unauthenticated()
        cookie, session = ctx.sessions.create(MAX_SESSION_S, principal=principal)
        project_name = None
    else:
        try:
            signed = await _sign_in(request, form, values)
        except LoginError as exc:
            return _login_page(
                request, form_session, values=values, error=exc, status_code=exc.status
            )
        rules = policy_of(request)
        principal = rules.principal_of(signed.info)
        if not rules.allows(principal, policy.TRAILS_LIST) and not (
            principal.project_id is not None
            and rules.allows(principal, policy.TRAIL_GET, principal.project_id)
        ):
            await ctx.keystone.revoke(signed.token)
            roles = ", ".join(sorted(principal.roles)) or "none"
            error = LoginError(
                f"You are signed in to project {signed.info.project_name or signed.info.project_id}"
                f", but your roles there ({roles}) do not include viewing its audit trail. "
                "Ask the project's administrator for the audit_viewer, reader, member "
                "or admin role.",
                field="project",
                status=403,
            )
            return _login_page(request, form_session, values=values, error=error, status_code=403)
        lifetime = min(MAX_SESSION_S, signed.expires_in_s - TOKEN_MARGIN_S)
        if lifetime <= 0:
            error = LoginError("Keystone issued a token that has already expired.", status=503)
            return _login_page(request, form_session, values=values, error=error, status_code=503)
        project_name = signed.info.project_name
        cookie, session = ctx.sessions.create(
            lifetime, principal=principal, token=signed.token, project_name=project_name
        )
    log.info(
        "web sign-in: user %s (%s) project %s%s",
        principal.user_name,
        principal.user_id,
        principal.project_id,
        " (cloud admin)" if principal.cloud_admin else "",
    )
    ctx.login_forms.drop(form_cookie)
    response = redirect(safe_next(values["next"]) or home_of(session))
    set_cookie(request, response, SESSION_COOKIE, cookie, "/")
    clear_cookie(request, response, LOGIN_COOKIE, "/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = web(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = ctx.sessions.get(cookie)
    if session is None:
        response = redirect(login_url(reason="signed_out"))
        clear_cookie(request, response, SESSION_COOKIE, "/")
        return response
    await checked_form(request, session)
    ctx.sessions.drop(cookie)
    if session.token:
        await ctx.keystone.revoke(session.token)
    response = redirect(login_url(reason="signed_out"))
    clear_cookie(request, response, SESSION_COOKIE, "/")
    return secure(response)


__all__ = ["CsrfRefused", "SignedOut", "checked_form", "require_session", "router"]
