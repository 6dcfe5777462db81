"""What the routes share: settings, store, ledger, token cache, policy, and the composition
root's hooks (audit event emission, spool sizes, readiness checks)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fastapi import Request

from stacktrail.api.auth import TokenCache
from stacktrail.api.policy import Policy
from stacktrail.config import Settings
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.backlog import SpoolBacklog
from stacktrail.domain.event_browse import EventBrowser

log = logging.getLogger(__name__)

# Publishes one CADF event (a dict) into the pipeline; may be sync or async.
Emit = Callable[[dict[str, Any]], Awaitable[None] | None]
# Bytes waiting in the local spool for (project_id, region); None when unknown.
PendingSpoolBytes = Callable[[str, str], Awaitable[int | None] | int | None]
# Raises (or returns False) when the dependency is not ready.
ReadinessCheck = Callable[[], Awaitable[Any]]
# The ACL-mode writer as Swift's ACL names it (`<project id>:<user id>`); None: none.
AclWriter = Callable[[], Awaitable[str | None]]


class ProjectNames(Protocol):
    async def project_name(self, project_id: str, user_token: str) -> str | None:
        """The project's name in Keystone (asked with the caller's token); None: unknown."""
        ...


class DeliveryControl(Protocol):
    """The archive deliveries of this process and its child workers (implemented by the
    composition root)."""

    async def next_retries(self, project_id: str) -> Mapping[str, datetime]:
        """Region -> when the project's failing delivery is tried next."""
        ...

    async def retry_now(self, project_id: str) -> int:
        """End the project's backoff; returns the regions woken."""
        ...

    async def backlog(self, project_id: str) -> SpoolBacklog:
        """What the project's archive holds back in the spools of this server."""
        ...


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    store: TrailStore
    ledger: SqlLedger
    tokens: TokenCache | None  # None: authentication disabled
    policy: Policy
    emit: Emit | None = None
    pending_spool_bytes: PendingSpoolBytes | None = None
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    events: EventBrowser | None = None  # None: no search server, no event browsing
    delivery: DeliveryControl | None = None  # None: this process delivers nothing
    acl_writer: AclWriter | None = None
    projects: ProjectNames | None = None  # None: project ids are not checked (no Keystone)
    project_names: dict[str, str] = field(default_factory=dict)  # known ids -> names

    async def emit_event(self, event: dict[str, Any]) -> None:
        """Hand an audit event of a configuration change to the pipeline.

        The change is already committed and recorded in `trail_changes`; a failing
        emitter is logged, not reported to the client.
        """
        if self.emit is None:
            return
        try:
            result = self.emit(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("could not emit the audit event %s (%s)", event["id"], event["action"])

    async def spool_bytes(self, project_id: str, region: str) -> int | None:
        if self.pending_spool_bytes is None:
            return None
        try:
            result = self.pending_spool_bytes(project_id, region)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            log.exception("pending spool bytes of %s/%s unavailable", project_id, region)
            return None
        return None if result is None else int(result)


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.stacktrail
    return context
