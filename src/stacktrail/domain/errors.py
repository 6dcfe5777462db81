"""Errors every adapter translates its library's exceptions into."""

from __future__ import annotations


class ClientError(Exception):
    """A call to an external system failed."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(ClientError):
    """Worth retrying with backoff: timeouts, connection errors, 429, 5xx."""

    transient = True


class PermanentError(ClientError):
    """Retrying the same request will not help: 4xx other than 429, bad data."""


class AuthError(PermanentError):
    """The identity or token was refused (401/403)."""
