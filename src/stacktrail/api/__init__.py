"""The REST API: trail configuration per project, operator defaults, status, probes."""

from stacktrail.api.app import create_app
from stacktrail.api.auth import Principal, TokenCache, TokenValidator
from stacktrail.api.context import Emit, PendingSpoolBytes, ReadinessCheck
from stacktrail.api.server import serve

__all__ = [
    "Emit",
    "PendingSpoolBytes",
    "Principal",
    "ReadinessCheck",
    "TokenCache",
    "TokenValidator",
    "create_app",
    "serve",
]
