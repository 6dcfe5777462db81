from __future__ import annotations

import io
import logging
import sys

import pytest

from stacktrail.telemetry.logging import setup_logging


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
