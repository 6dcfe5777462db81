from __future__ import annotations

import logging

import pytest

from stacktrail.telemetry import repeats as module
from stacktrail.telemetry.repeats import Repeats


def test_a_failure_repeating_every_second_is_logged_once_per_change_plus_a_summary(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.INFO)
    repeats = Repeats(logging.getLogger("t"), "spool write", summary_interval=60)
    logged = 0
    for second in range(90):  # a full disk, retried every second for 90 s
        clock[0] = 1000.0 + second
        logged += repeats.failed("ENOSPC")
    assert logged == 2  # the first failure and one summary at 60 s
    assert repeats.failed("EIO")  # a different error is a new state
    repeats.recovered()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[1] == "spool write: still failing (61 attempts in 60 s): ENOSPC"
    assert messages[-1].startswith("spool write: works again after 91 failed attempts")
    assert not repeats.failing
