"""An export interrupted (Ctrl-C, SIGTERM) stops cleanly: nothing left pending, exit 130."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from stacktrail.archive.export import Exporter, _Chunk
from tests.support.devstack import ROOT


async def test_an_interrupted_hand_over_leaves_no_put_pending() -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
    queue.put_nowait("full")
    writer = asyncio.create_task(asyncio.sleep(3600))
    exporter = cast(Exporter, object.__new__(Exporter))
    hand_over = asyncio.create_task(exporter._hand_over(queue, _Chunk("2026-01-01", 1), writer))
    await asyncio.sleep(0.05)
    hand_over.cancel()
    await asyncio.gather(hand_over, return_exceptions=True)
    others = asyncio.all_tasks() - {asyncio.current_task(), writer}
    assert not others, others
    writer.cancel()


@pytest.fixture
def silent_search() -> Iterator[str]:
    """A search URL that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_export_interrupted_exits_130_without_noise(
    silent_search: str, tmp_path: Path, sig: int
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")} | {
        "PYTHONPATH": str(ROOT / "src"),
        "STACKTRAIL_SEARCH_URL": silent_search,
        "STACKTRAIL_LOG_LEVEL": "DEBUG",
    }
    err = tmp_path / "stderr.txt"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "dev",
                "-m",
                "stacktrail.cli",
                "export",
                "--project",
                "da07cc4c8d3a481e90e8830fcf6aca5b",
                "--from",
                "-1d",
                "--out",
                str(tmp_path / "o"),
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 90
        while "config store" not in err.read_text():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.0)  # now waiting for search's answer
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.read_text()
    assert "interrupted; run the same command again to resume" in text
    assert "never awaited" not in text
    assert "Traceback" not in text
    assert "Task was destroyed" not in text
