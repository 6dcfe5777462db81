"""Audit events: oslo envelope decoding, CADF validation, Hermes normalisation (pure code)."""

from stacktrail.events.decode import DEFAULT_MAX_BYTES, decode_message, encode_event
from stacktrail.events.errors import DecodeError
from stacktrail.events.limits import DEFAULT_LIMITS, EventLimits
from stacktrail.events.model import AuditEvent, JsonDict
from stacktrail.events.normalise import normalise_action, normalise_offset

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "AuditEvent",
    "DecodeError",
    "EventLimits",
    "JsonDict",
    "decode_message",
    "encode_event",
    "normalise_action",
    "normalise_offset",
]
