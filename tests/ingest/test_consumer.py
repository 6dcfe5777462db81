from __future__ import annotations

from stacktrail.ingest.consumer import redact


def test_redact_hides_only_the_password() -> None:
    assert redact("amqp://guest:s3cret@rabbit:5672/%2F") == "amqp://guest:***@rabbit:5672/%2F"
    assert redact("amqp://rabbit:5672/") == "amqp://rabbit:5672/"
