"""Prometheus metrics of the pipeline (served by the API at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONSUMED = Counter("stacktrail_messages_consumed", "Messages taken from RabbitMQ")
ACKED = Counter("stacktrail_messages_acked", "Messages acked after durable delivery")
DEAD_LETTERED = Counter(
    "stacktrail_messages_dead_lettered", "Messages sent to the dead-letter exchange", ["kind"]
)
SEARCH_INDEXED = Counter("stacktrail_search_documents_indexed", "Documents confirmed by search")
SEARCH_REJECTED = Counter("stacktrail_search_documents_rejected", "Documents search refused")
SEARCH_RETRIES = Counter("stacktrail_search_retries", "Bulk requests or items retried")
INFLIGHT = Gauge("stacktrail_messages_in_flight", "Messages taken but not yet acked")
AMQP_CONNECTED = Gauge("stacktrail_amqp_connected", "1 while connected to RabbitMQ")
OLDEST_UNACKED_AGE = Gauge(
    "stacktrail_oldest_unacked_seconds", "Age of the oldest consumed, not yet acked message"
)
ARCHIVE_REDELIVERED_SKIPPED = Counter(
    "stacktrail_archive_redelivered_skipped",
    "Redelivered records not spooled again: the spool already held them durably",
)
SEARCH_REDUCED = Counter(
    "stacktrail_search_documents_reduced",
    "Documents search refused whole and took as a reduced copy (CADF core + event as text)",
)
SPOOL_BYTES = Gauge("stacktrail_spool_bytes", "Bytes in the archive spool (records not delivered)")
SPOOL_OLDEST_AGE = Gauge(
    "stacktrail_spool_oldest_undelivered_seconds",
    "Age of the oldest spooled segment not yet delivered to every region",
)
ARCHIVE_UPLOADS = Counter(
    "stacktrail_archive_uploads",
    "Archive deliveries of one segment to one region, by outcome",
    ["outcome"],
)
