"""Adding the web UI to the API's FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from stacktrail.api.problems import http_problem
from stacktrail.config import Settings
from stacktrail.web import pages_admin, pages_auth, pages_events, pages_project
from stacktrail.web.api_client import SignedOut
from stacktrail.web.pages_auth import CsrfRefused, csrf_refused, signed_out
from stacktrail.web.render import (
    STATIC_DIR,
    STATIC_PREFIX,
    build_context,
    current_session,
    message_page,
)


def mount_ui(app: FastAPI, settings: Settings) -> None:
    """Serve the UI from `app` (the API's application, built by `create_app`): the pages
    at `/`, `/login`, `/projects/{project_id}`, `/admin`, and the static files under
    `/static`. The pages call the API of `app` in-process with the user's token."""
    app.state.stacktrail_web = build_context(settings)
    app.include_router(pages_auth.router)
    app.include_router(pages_project.router)
    app.include_router(pages_admin.router)
    app.include_router(pages_events.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(StarletteHTTPException, browser_not_found)
    app.add_exception_handler(SignedOut, signed_out)
    app.add_exception_handler(CsrfRefused, csrf_refused)


async def browser_not_found(request: Request, exc: Exception) -> Response:
    """A page for a browser asking for an unknown address; the API's problem document
    for the rest."""
    assert isinstance(exc, StarletteHTTPException)
    wants_html = "text/html" in request.headers.get("accept", "")
    if exc.status_code == 404 and wants_html and not request.url.path.startswith("/v1/"):
        return message_page(
            request,
            "Page not found",
            f"There is no page at {request.url.path}.",
            status_code=404,
            session=current_session(request),
            link=("/", "Go to the start page"),
        )
    return await http_problem(request, exc)
