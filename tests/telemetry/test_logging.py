from __future__ import annotations

import io
import logging
import sys
import time

import orjson
import pytest
from prometheus_client import REGISTRY

from stacktrail.telemetry import metrics
from stacktrail.telemetry.logging import describe, setup_logging
from stacktrail.telemetry.ratelimit import RateLimitedLog


def test_log_lines_follow_a_swapped_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    # A test runner (or an embedder) replaces sys.stderr and later closes it; the
    # handler must keep writing to whichever stderr is current.
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("INFO")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("stacktrail.test").info("still heard")
    assert "still heard" in second.getvalue()


def test_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    setup_logging("INFO", "json")
    logging.getLogger("stacktrail.test").warning("as json")
    assert '"message":"as json"' in out.getvalue()
    assert '"level":"WARNING"' in out.getvalue()


def test_json_lines_carry_project_and_event_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    setup_logging("INFO", "json")
    extra = {"project_id": "p1", "event_id": "e1"}
    logging.getLogger("stacktrail.test").warning("about one event", extra=extra)
    logging.getLogger("stacktrail.test").warning("about none")
    first, second = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert (first["project_id"], first["event_id"]) == ("p1", "e1")
    assert "project_id" not in second


def test_describe_gives_the_message_not_a_repr() -> None:
    assert describe(ConnectionError("broker gone (320)")) == "broker gone (320)"
    assert describe(TimeoutError()) == "TimeoutError"


def test_a_rate_limited_line_folds_repeats_into_the_next(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stacktrail.test.rl")
    limited = RateLimitedLog(logging.getLogger("stacktrail.test.rl"), interval=0.05)
    assert limited.info("full %s", "a")
    assert not limited.info("full %s", "b")
    assert not limited.info("full %s", "c")
    time.sleep(0.06)
    assert limited.info("full %s", "d")
    assert [r.getMessage() for r in caplog.records] == [
        "full a",
        "full d (and 2 more like it since the last line)",
    ]


def test_ignored_event_types_are_bounded_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_IGNORED_TYPES", 3)
    monkeypatch.setattr(metrics, "_ignored_types", set())
    for i in range(5):
        metrics.count_ignored(f"bounded.test.{i}")
    metrics.count_ignored("x" * 300)

    def value(label: str) -> float:
        sample = REGISTRY.get_sample_value(
            "stacktrail_messages_ignored_total", {"event_type": label}
        )
        return sample or 0.0

    assert [value(f"bounded.test.{i}") for i in range(5)] == [1, 1, 1, 0, 0]
    assert value("(other)") >= 3


def test_a_child_workers_lines_say_which_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # child workers share the parent's stderr: each line names its writer
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    setup_logging("INFO", worker=2)
    logging.getLogger("stacktrail.test").info("from a child")
    setup_logging("INFO", "json", worker=2)
    logging.getLogger("stacktrail.test").info("from a child")
    setup_logging("INFO")
    logging.getLogger("stacktrail.test").info("from the parent")
    text, json_line, parent = out.getvalue().splitlines()
    assert " worker 2 stacktrail.test: from a child" in text
    assert orjson.loads(json_line)["worker"] == 2
    assert "worker" not in parent
