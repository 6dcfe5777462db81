"""Prometheus metrics of the pipeline (served at /metrics by the API, or on
STACKTRAIL_METRICS_LISTEN by processes without it).

Labels have bounded values only: never a project id (a label per project would grow
without bound); per-project trouble is a count of projects.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("stacktrail_messages_consumed", "Messages taken from RabbitMQ")
ACKED = Counter("stacktrail_messages_acked", "Messages acked after durable delivery")
DEAD_LETTERED = Counter(
    "stacktrail_messages_dead_lettered", "Messages sent to the dead-letter exchange", ["kind"]
)
DEAD_LETTERS_DROPPED = Counter(
    "stacktrail_dead_letters_dropped",
    "Dead letters the dead-letter queue's bound pushed out (maxlen) or that expired",
    ["reason"],
)
IGNORED = Counter(
    "stacktrail_messages_ignored",
    "Well-formed notifications without a CADF event, acked and not kept",
    ["event_type"],
)
SEARCH_INDEXED = Counter("stacktrail_search_documents_indexed", "Documents confirmed by search")
SEARCH_REJECTED = Counter("stacktrail_search_documents_rejected", "Documents search refused")
SEARCH_RETRIES = Counter("stacktrail_search_retries", "Bulk requests or items retried")
SEARCH_BULK_SECONDS = Histogram(
    "stacktrail_search_bulk_seconds",
    "Duration of bulk requests to search",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SEARCH_BULK_ERRORS = Counter(
    "stacktrail_search_bulk_errors", "Bulk requests that failed as a whole"
)
SEARCH_STALLED = Counter(
    "stacktrail_search_bulk_stalled",
    "Bulk requests abandoned and resent: they hung while search was silent (domain/stalls.py)",
)
INFLIGHT = Gauge("stacktrail_messages_in_flight", "Messages taken but not yet acked")
AMQP_CONNECTED = Gauge("stacktrail_amqp_connected", "1 while connected to RabbitMQ")
WORKERS_RUNNING = Gauge(
    "stacktrail_pipeline_workers_running",
    "Pipeline processes running: this one and its child workers (STACKTRAIL_WORKERS)",
)
OLDEST_UNACKED_AGE = Gauge(
    "stacktrail_oldest_unacked_seconds", "Age of the oldest consumed, not yet acked message"
)
SPOOL_BYTES = Gauge("stacktrail_spool_bytes", "Bytes in the archive spool")
OLDEST_UNDELIVERED_AGE = Gauge(
    "stacktrail_archive_oldest_undelivered_seconds",
    "Age of the oldest spooled segment not yet delivered to every region",
)
ARCHIVE_OBJECTS = Counter(
    "stacktrail_archive_objects", "Archive objects by result", ["result"]
)  # result: delivered | failed
ARCHIVE_BYTES = Counter("stacktrail_archive_bytes_delivered", "Archive object bytes delivered")
ARCHIVE_EVENTS = Counter("stacktrail_archive_events_delivered", "Events in delivered objects")
ARCHIVE_FAILING_PROJECTS = Gauge(
    "stacktrail_archive_failing_projects", "Projects whose archive delivery currently fails"
)
OWNER_LOOKUPS = Counter(
    "stacktrail_owner_lookups", "Owner checks against Keystone by result", ["result"]
)  # result: known | unknown | error

# Label values of IGNORED: event types are the producers' vocabulary, but nothing stops a
# producer from inventing new ones, so only this many distinct values are kept.
MAX_IGNORED_TYPES = 500
_ignored_types: set[str] = set()


def count_ignored(event_type: str) -> None:
    label = event_type[:100] or "(none)"
    if label not in _ignored_types:
        if len(_ignored_types) >= MAX_IGNORED_TYPES:
            label = "(other)"
        else:
            _ignored_types.add(label)
    IGNORED.labels(event_type=label).inc()


ARCHIVE_REDELIVERED_SKIPPED = Counter(
    "stacktrail_archive_redelivered_skipped",
    "Redelivered records not spooled again: the spool already held them durably",
)
SEARCH_REDUCED = Counter(
    "stacktrail_search_documents_reduced",
    "Documents search refused whole and took as a reduced copy (CADF core + event as text)",
)
SPOOL_OLDEST_AGE = OLDEST_UNDELIVERED_AGE  # one gauge, two names in the code
ARCHIVE_UPLOADS = Counter(
    "stacktrail_archive_uploads",
    "Archive deliveries of one segment to one region, by outcome",
    ["outcome"],
)
