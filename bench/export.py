"""Export throughput: stacktrail's exporter against raw paging of the same endpoint.

In one run, on one machine, for two search endpoints:
  (osmem)  the OpenSearch-compatible test server, loaded with `--count` CADF events;
  (replay) a fast local endpoint (a server in its own process, written here) that
           answers every point-in-time page with one page recorded from osmem, until
           `--count` events were served, so the exporter itself is measured.
For each endpoint:
  baseline  raw paging: point in time + search_after pages, parsed, nothing written
            (MB/s in: response bytes);
  export    `Exporter` (jobs/export.py) into a local directory, per format
            (MB/s in: the events' uncompressed rendering; out: gzip objects written).
Prints events/s, MB/s, and the ratio of each export to the baseline of the same endpoint.

    .venv/bin/python bench/export.py --count 20000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.corpus import (  # noqa: E402
    DAY0,
    bulk_load,
    install_template,
    make_event,
    remove_indices,
)

from stacktrail.archive.export import Exporter, ExportSpec  # noqa: E402
from stacktrail.archive.stores.localdir import LocalDirStore  # noqa: E402
from stacktrail.domain.timeframe import Timeframe  # noqa: E402
from stacktrail.domain.trail import ArchiveFormat  # noqa: E402
from stacktrail.search.client import SearchClient  # noqa: E402
from stacktrail.search.documents import index_name  # noqa: E402
from stacktrail.search.reader import SORT, EventReader, event_time_query  # noqa: E402

PROJECT = "0123456789abcdef0123456789abcdef"
FRAME = Timeframe(DAY0, DAY0 + timedelta(days=3))


@dataclass
class Measure:
    label: str
    events: int
    seconds: float
    read_bytes: int  # event JSON read (uncompressed)
    written_bytes: int  # gzip objects written

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def row(self, baseline: Measure | None) -> str:
        ratio = f"{self.rate / baseline.rate:6.2f}" if baseline else "  1.00"
        read = self.read_bytes / self.seconds / 1e6
        written = self.written_bytes / self.seconds / 1e6
        out = f"{written:8.1f}" if self.written_bytes else "       -"
        return (
            f"  {self.label:<22} {self.rate:10,.0f} ev/s {read:8.1f} MB/s in {out} MB/s out"
            f"   x{ratio}"
        )


# --- the replay endpoint


def _response(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def replay_server(port: int, page: bytes, index: str, count: int, ready: Any) -> None:
    """Serve `page` for every point-in-time search until `count` hits went out."""
    hits_per_page = len(orjson.loads(page)["hits"]["hits"])
    empty = orjson.dumps({"pit_id": "replay", "hits": {"hits": []}})
    cat = orjson.dumps([{"index": index, "docs.count": str(count)}])
    state = {"served": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                method, path, _ = request_line.split(" ", 2)
                if path.startswith("/_cat/indices"):
                    body = cat
                elif "/_search/point_in_time" in path and method == "POST":
                    state["served"] = 0
                    body = b'{"pit_id":"replay"}'
                elif path.startswith("/_search") and method == "POST":
                    if state["served"] >= count:
                        body = empty
                    else:
                        state["served"] += hits_per_page
                        body = page
                elif "/_count" in path:
                    body = b'{"count":%d}' % count
                else:
                    body = b"{}"
                writer.write(_response(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- measurements


async def raw_paging(url: str, index: str, page_size: int) -> Measure:
    """The baseline: PIT + search_after pages, parsed, nothing else."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        start = time.perf_counter()
        opened = await http.post(f"/{index}/_search/point_in_time", params={"keep_alive": "5m"})
        pit = orjson.loads(opened.content)["pit_id"]
        events = read = 0
        after = None
        query = event_time_query(PROJECT, FRAME)
        while True:
            body: dict[str, Any] = {
                "size": page_size,
                "query": query,
                "sort": SORT,
                "pit": {"id": pit, "keep_alive": "5m"},
            }
            if after is not None:
                body["search_after"] = after
            response = await http.post(
                "/_search", content=orjson.dumps(body), headers={"content-type": "application/json"}
            )
            hits = orjson.loads(response.content)["hits"]["hits"]
            if not hits:
                break
            events += len(hits)
            read += len(response.content)
            after = hits[-1]["sort"]
            if len(hits) < page_size:
                break
        seconds = time.perf_counter() - start
    return Measure("raw paging (baseline)", events, seconds, read, 0)


async def export_once(
    url: str, template: str, fmt: ArchiveFormat, page_size: int, out: Path
) -> Measure:
    client = SearchClient(url)
    spec = ExportSpec(
        project_id=PROJECT,
        frame=FRAME,
        format=fmt,
        container="bench",
        prefix="",
        regions=("RegionOne",),
        retention_days=30,
    )
    await asyncio.to_thread(fresh_dir, out)
    exporter = Exporter(
        client,
        LocalDirStore(out),
        spec,
        template=template,
        reader=EventReader(client, page_size=page_size),
    )
    start = time.perf_counter()
    result = await exporter.run()
    seconds = time.perf_counter() - start
    await client.close()
    read, written = await asyncio.to_thread(sizes, out)
    return Measure(f"export {fmt.value}", result.checkpoint.events, seconds, read, written)


def fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def sizes(out: Path) -> tuple[int, int]:
    """(uncompressed, compressed) bytes of the objects written."""
    read = written = 0
    for path in out.rglob("*.gz"):
        data = path.read_bytes()
        written += len(data)
        read += len(gzip.decompress(data))
    return read, written


async def best_of(runs: int, measure: Callable[[], Awaitable[Measure]]) -> Measure:
    results = [await measure() for _ in range(runs)]
    return max(results, key=lambda m: m.rate)


async def bench_endpoint(
    label: str, url: str, index: str, template: str, page_size: int, runs: int, work: Path
) -> list[str]:
    lines = [f"{label}: {url}"]
    baseline = await best_of(runs, lambda: raw_paging(url, index, page_size))
    lines.append(baseline.row(None))
    for fmt in ArchiveFormat:
        measure = await best_of(
            runs, lambda fmt=fmt: export_once(url, template, fmt, page_size, work / fmt.value)
        )
        lines.append(measure.row(baseline))
    return lines


async def load(search_url: str, template: str, count: int) -> None:
    await install_template(search_url, template)
    step = timedelta(days=3) / count
    docs = [(PROJECT, make_event(PROJECT, DAY0 + step * i), DAY0) for i in range(count)]
    await bulk_load(search_url, template, docs)


async def record_page(search_url: str, index: str, page_size: int) -> bytes:
    async with httpx.AsyncClient(base_url=search_url, timeout=120) as http:
        opened = await http.post(f"/{index}/_search/point_in_time", params={"keep_alive": "1m"})
        pit = orjson.loads(opened.content)["pit_id"]
        body = {
            "size": page_size,
            "query": event_time_query(PROJECT, FRAME),
            "sort": SORT,
            "pit": {"id": pit, "keep_alive": "1m"},
        }
        response = await http.post("/_search", json=body)
        response.raise_for_status()
        return response.content


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--page-size", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2, help="best of this many runs")
    parser.add_argument("--search-url", default="http://127.0.0.1:29200")
    parser.add_argument("--replay-port", type=int, default=29334)
    args = parser.parse_args()

    template = f"bench{uuid.uuid4().hex[:8]}-audit-{{project_id}}-{{yyyy.MM}}"
    index = index_name(template, PROJECT, DAY0)  # all events are in March 2025
    print(f"loading {args.count} events into osmem ...", flush=True)
    t0 = time.perf_counter()
    await load(args.search_url, template, args.count)
    print(f"  loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    ready = multiprocessing.Event()
    replay = None
    try:
        page = await record_page(args.search_url, index, args.page_size)
        replay = multiprocessing.Process(
            target=replay_server,
            args=(args.replay_port, page, index, args.count, ready),
            daemon=True,
        )
        replay.start()
        ready.wait(30)
        with tempfile.TemporaryDirectory(prefix="stacktrail-bench-export-") as tmp:
            work = Path(tmp)
            lines = await bench_endpoint(
                "osmem", args.search_url, index, template, args.page_size, args.runs, work
            )
            lines += await bench_endpoint(
                "replay",
                f"http://127.0.0.1:{args.replay_port}",
                index,
                template,
                args.page_size,
                args.runs,
                work,
            )
        print(f"\n{args.count} events, pages of {args.page_size}, best of {args.runs}")
        print("\n".join(lines))
    finally:
        if replay is not None:
            replay.terminate()
            replay.join(10)
        await remove_indices(args.search_url, template)


if __name__ == "__main__":
    asyncio.run(main())
