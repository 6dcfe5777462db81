"""The fault suite's short cases (bench/faults.py): each pipeline process in a network
namespace of its own, keeping its usual addresses (the Swift URLs of the Keystone
catalog among them), its servers reached through relays that cut, black-hole or delay.

The long runs with ~20,000 events per case are `bench/faults.py --count 20000`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from bench.faults import measure, parse_args

from tests.support.netns import NetNamespace, unavailable
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "-")


async def _inside(namespace: NetNamespace, code: str) -> subprocess.CompletedProcess[str]:
    argv = namespace.exec_args(sys.executable, "-c", code)
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)


CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)"
HTTP_GET = (
    "import urllib.request, sys; "
    "print(urllib.request.urlopen('http://127.0.0.1:%s/' % sys.argv[1], timeout=5).status)"
)


async def test_inside_a_namespace_the_usual_address_leads_through_the_relay_only(
    tmp_path: Path, devstack: dict[str, str]
) -> None:
    port = int(devstack["DEVSTACK_SEARCH_URL"].rsplit(":", 1)[1])
    relay = TcpProxy("127.0.0.1", port, unix=tmp_path / "search.sock")
    await relay.start()
    namespace = NetNamespace(tmp_path, "test")
    await namespace.create()
    try:
        await namespace.forward(port, tmp_path / "search.sock")
        through = await _inside(namespace, HTTP_GET.replace("sys.argv[1]", str(port)))
        assert through.stdout.strip() == "200", through.stderr
        await relay.stop()  # cut: the connection ends before any answer
        cut = await _inside(namespace, HTTP_GET.replace("sys.argv[1]", str(port)))
        assert cut.returncode != 0
        # what is not forwarded is not there at all (RabbitMQ listens outside)
        other = await _inside(namespace, CONNECT.replace("sys.argv[1]", "5672"))
        assert "ConnectionRefusedError" in other.stderr
    finally:
        await relay.stop()
        await namespace.delete()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert namespace.name not in listed.stdout


@pytest.mark.slow
async def test_a_swift_outage_at_the_catalog_url_loses_nothing_resumes_at_once_and_shows() -> None:
    (row,) = await measure(
        parse_args(["--count", "200", "--swift-outage", "8", "--only", "swift-outage"])
    )
    assert not row.other.startswith(("FAILED", "skipped")), row.other
    assert (row.lost, row.dup_ids) == (0, 0), row
    # the first new object is listed within 2 s (plus one listing of the container)
    assert row.figures["resumed"] <= 3.0, row.other
    # the pipeline's own /readyz says so while Swift is away, and recovers
    assert (row.figures["ready_during"], row.figures["ready_after"]) == (0, 1), row.other


@pytest.mark.slow
async def test_a_cut_region_catches_up_in_order_while_the_other_keeps_delivering() -> None:
    (row,) = await measure(
        parse_args(["--count", "200", "--region-outage", "8", "--only", "region-cut"])
    )
    assert not row.other.startswith(("FAILED", "skipped")), row.other
    assert (row.lost, row.dup_ids) == (0, 0), row
    assert row.figures["during"] == 0  # nothing reached the cut region while it was cut
    assert (row.figures["lost_two"], row.figures["dup_two"]) == (0, 0), row.other
    assert row.figures["same_order"] == 1.0, row.other  # the same objects in the same order
    assert row.figures["first_lag"] < 15, row.other  # RegionOne kept delivering


@pytest.mark.slow
async def test_a_black_holed_search_loses_nothing() -> None:
    (row,) = await measure(
        parse_args(["--count", "200", "--black-hole", "3", "--only", "search-black-hole"])
    )
    assert "FAILED" not in row.other, row.other
    assert (row.lost, row.dup_ids) == (0, 0), row
