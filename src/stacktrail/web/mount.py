"""Adding the web UI to the API's FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stacktrail.config import Settings
from stacktrail.web import pages_admin, pages_auth, pages_events, pages_project
from stacktrail.web.api_client import SignedOut
from stacktrail.web.pages_auth import CsrfRefused, csrf_refused, signed_out
from stacktrail.web.render import STATIC_DIR, STATIC_PREFIX, build_context


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
    app.add_exception_handler(SignedOut, signed_out)
    app.add_exception_handler(CsrfRefused, csrf_refused)
