"""The fault suite: stacktrail against the dev stack's real servers, with faults made by
relays in front of them (tests/support/tcpproxy.py), kill -9 of a pipeline process and
clean stops; every id is counted in search, in every archive object and in the
dead-letter queue. Prints the table of issue 17, re-measured.

Only relays and processes this script starts are cut or killed; the shared servers are
never stopped. Every loop is bounded (--kills, --cuts, --stops, --count).

    DEVSTACK_ENV_FILE=var/dev-stack/env .venv/bin/python bench/faults.py --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.broker import publish, queue_depth, take_all  # noqa: E402
from tests.support.cadf_factory import make_cadf, make_notification, wrap_v1  # noqa: E402
from tests.support.devstack import read_env_file  # noqa: E402
from tests.support.faults import archived_ids, duplicates  # noqa: E402
from tests.support.tcpproxy import TcpProxy  # noqa: E402

from stacktrail.search.documents import index_name  # noqa: E402

# A pipeline in its own process (kill -9 needs one): both sinks, the file store.
CHILD = textwrap.dedent(
    """
    import asyncio, json, logging, signal, sys
    from stacktrail.app import run_pipeline
    from stacktrail.archive.sink import ArchiveSink
    from stacktrail.archive.stores import open_store
    from stacktrail.config import Settings
    from stacktrail.domain.directory import DefaultTrails
    from stacktrail.domain.ledger import MemoryLedger
    from stacktrail.search.client import SearchClient
    from stacktrail.search.sink import SearchSink

    async def main():
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        settings = Settings(**json.loads(sys.argv[1]))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        sinks = [
            SearchSink(SearchClient.from_settings(settings), settings),
            ArchiveSink(settings, open_store(settings), MemoryLedger()),
        ]
        await run_pipeline(settings, stop, DefaultTrails(settings), sinks)

    asyncio.run(main())
    """
)


@dataclass
class Row:
    scenario: str
    published: int
    dup_ids: int = 0
    dup_copies: int = 0
    lost: int = 0
    other: str = ""


class Stack:
    """One scenario's own queue, index template, spool and archive, behind relays."""

    def __init__(self, env: dict[str, str], vhost_url: str, work: Path, **overrides: Any) -> None:
        self.search_url = env["STACKTRAIL_SEARCH_URL"]
        search = urlsplit(self.search_url)
        self.search = TcpProxy(search.hostname or "127.0.0.1", search.port or 80)
        broker = urlsplit(vhost_url)
        self.broker = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
        self.amqp_url = vhost_url
        queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.template = f"faults{uuid.uuid4().hex[:8]}-{{project_id}}-{{yyyy.MM}}"
        self.work = work / queue
        self.project = uuid.uuid4().hex
        self.values: dict[str, Any] = {
            "amqp_queue": queue,
            "amqp_dead_letter_exchange": f"{queue}.dead",
            "amqp_bindings": ["nova:notifications.#"],
            "amqp_reconnect_max": "2s",
            "search_index_template": self.template,
            "search_flush_interval": "50ms",
            "spool_dir": str(self.work / "spool"),
            "archive_store": "file",
            "archive_dir": str(self.work / "archive"),
            "archive_interval": "2s",
            "archive_worker": "faults",
            "shutdown_grace": "2s",
            **overrides,
        }
        self.child: asyncio.subprocess.Process | None = None

    async def start_relays(self) -> None:
        await self.search.start()
        await self.broker.start()

    def settings(self) -> dict[str, Any]:
        vhost = urlsplit(self.amqp_url).path
        return {
            **self.values,
            "amqp_url": f"amqp://guest:guest@{self.broker.address}{vhost}",
            "search_url": f"http://{self.search.address}",
        }

    async def spawn(self, worker: str = "") -> asyncio.subprocess.Process:
        """A pipeline process; `worker` names a second one with its own spool."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
        values = self.settings()
        if worker:
            values["spool_dir"] = str(self.work / f"spool-{worker}")
            values["archive_worker"] = worker
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            json.dumps(values),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=_append(self.work / "child.log"),
        )
        if not worker:
            self.child = child
        return child

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.child is not None and self.child.returncode is None:
            self.child.send_signal(sig)
            try:
                await asyncio.wait_for(self.child.wait(), 60)
            except TimeoutError:  # a stop that hangs is a finding, not the end of the run
                print(f"pid {self.child.pid} did not stop in 60 s: kill -9", file=sys.stderr)
                self.child.kill()
                await self.child.wait()
        self.child = None

    async def consuming(self, timeout: float = 30) -> None:
        await wait_until(lambda: _has_consumer(self.amqp_url, self.values["amqp_queue"]), timeout)

    def events(self, count: int, tag: str) -> tuple[list[str], list[bytes]]:
        now = datetime.now(UTC)
        ids = [f"{tag}-{uuid.uuid4().hex[:10]}-{i}" for i in range(count)]
        bodies = [
            make_notification(event_id=i, initiator_project=self.project, event_time=now)
            for i in ids
        ]
        return ids, bodies

    @property
    def index(self) -> str:
        return index_name(self.template, self.project, datetime.now(UTC))

    async def indexed(self) -> int:
        async with httpx.AsyncClient(base_url=self.search_url, timeout=30) as http:
            response = await http.get(f"/{self.index}/_count")
            return int(response.json().get("count", 0)) if response.status_code == 200 else 0

    async def settled(self, expected: int, timeout: float = 120) -> None:
        """Until search holds `expected` documents and the queue is empty."""

        async def done() -> bool:
            depth = await queue_depth(self.amqp_url, self.values["amqp_queue"])
            return depth == 0 and await self.indexed() >= expected

        await wait_until(done, timeout)

    async def count(self, row: Row, ids: list[str], flush: Callable[[], Awaitable[None]]) -> Row:
        await flush()
        copies = archived_ids(Path(self.values["archive_dir"]))
        row.dup_ids, row.dup_copies = duplicates(copies)
        dead = await take_all(self.amqp_url, self.values["amqp_dead_letter_exchange"], 10**6, 1)
        dead_ids = {_event_id(m.body) for m in dead}
        row.lost = len([i for i in ids if i not in copies and i not in dead_ids])
        return row

    async def stop_all(self) -> None:
        await self.kill(signal.SIGTERM)
        await self.search.stop()
        await self.broker.stop()


def _append(path: Path) -> Any:
    return path.open("ab")  # the child process owns it


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check)


def _event_id(body: bytes) -> str:
    try:
        message = json.loads(body)
        if "oslo.message" in message:
            message = json.loads(message["oslo.message"])
        payload = message.get("payload", message)
        return str(payload.get("id", ""))
    except (ValueError, AttributeError, TypeError):
        return ""


def _has_consumer(url: str, queue: str) -> Awaitable[bool]:
    async def check() -> bool:
        vhost = url.rsplit("/", 1)[1]
        result = await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "list_consumers", "-p", vhost, "queue_name"],
            capture_output=True,
            text=True,
            check=False,
        )
        return queue in result.stdout.split()

    return check()


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise TimeoutError("condition not reached")


async def _drain_archive(stack: Stack) -> None:
    """A last clean run, so every spooled segment reaches the file store."""
    await stack.spawn()
    await stack.consuming()
    await asyncio.sleep(4)  # archive_interval 2 s: sealed and delivered
    await stack.kill(signal.SIGTERM)


# --- scenarios


async def kill9(stack: Stack, count: int, kills: int) -> Row:
    ids, bodies = stack.events(count, "k9")
    await stack.spawn()
    await stack.consuming()
    publisher = asyncio.create_task(publish(stack.amqp_url, bodies))
    for _ in range(kills):
        await asyncio.sleep(0.6)
        await stack.kill()
        await stack.spawn()
        await stack.consuming()
    await publisher
    await stack.settled(count)
    await stack.kill(signal.SIGTERM)
    row = Row(f"kill -9 x {kills}", count)
    return await stack.count(row, ids, lambda: _drain_archive(stack))


async def two_consumers(stack: Stack, count: int, kills: int) -> Row:
    """Two workers on one queue, each with its own spool and worker name; one is killed -9
    again and again while the events are published, each time once it consumes again.
    The survivor gets the dead one's unacked window; every record of it that was already
    durable in the dead one's spool is a duplicate. Reported per kill as a share of that
    window (the prefetch)."""
    ids, bodies = stack.events(count, "two")
    other = await stack.spawn("second")
    await stack.spawn()
    await stack.consuming()
    publisher = asyncio.create_task(publish(stack.amqp_url, bodies))
    done = 0
    for _ in range(kills):
        await asyncio.sleep(0.6)
        if publisher.done():
            break  # a kill of an idle worker proves nothing
        await stack.kill()
        done += 1
        await stack.spawn()
        await stack.consuming()
    await publisher
    await stack.settled(count)
    await stack.kill(signal.SIGTERM)
    other.send_signal(signal.SIGTERM)
    await asyncio.wait_for(other.wait(), 60)
    row = Row(f"two consumers, kill -9 x {done} (under load)", count)
    row = await stack.count(row, ids, lambda: _drain_archive(stack))
    window = int(stack.values["amqp_prefetch"])
    per_kill = row.dup_ids / max(done, 1)
    row.other = (
        f"{per_kill:.1f} duplicates per kill = {per_kill / window:.1%} of the dead worker's "
        f"window (prefetch {window})"
    )
    return row


async def broker_cuts(stack: Stack, count: int, cuts: int) -> Row:
    ids, bodies = stack.events(count, "cut")
    await stack.spawn()
    await stack.consuming()
    publisher = asyncio.create_task(publish(stack.amqp_url, bodies))
    reconnects: list[float] = []
    for _ in range(cuts):
        await asyncio.sleep(1.0)
        await stack.broker.stop()
        await asyncio.sleep(3.0)
        await stack.broker.start()
        reconnects.append(await wait_until(_consumer_back(stack), 30))
    await publisher
    await stack.settled(count)
    await stack.kill(signal.SIGTERM)
    row = Row(f"broker cut 3 s x {cuts}", count)
    row.other = "reconnect " + ", ".join(f"{r:.1f}" for r in reconnects) + " s"
    return await stack.count(row, ids, lambda: _drain_archive(stack))


def _consumer_back(stack: Stack) -> Callable[[], Awaitable[bool]]:
    return lambda: _has_consumer(stack.amqp_url, stack.values["amqp_queue"])


async def sigterm_search_down(stack: Stack, count: int, stops: int) -> Row:
    ids, bodies = stack.events(count, "term")
    await stack.spawn()
    await stack.consuming()
    await stack.search.stop()
    await publish(stack.amqp_url, bodies)
    for _ in range(stops):
        await asyncio.sleep(2.0)
        await stack.kill(signal.SIGTERM)
        await stack.spawn()
        await stack.consuming()
    await stack.search.start()
    await stack.settled(count)
    await stack.kill(signal.SIGTERM)
    log = (stack.work / "child.log").read_text(errors="replace")
    said = [line.rsplit("(", 1)[-1] for line in log.splitlines() if "pipeline stopped" in line]
    row = Row(f"search down, then SIGTERM ({stops} stops)", count)
    row.other = "shutdown logs: " + "; ".join(s.strip(")") for s in said[:3])
    return await stack.count(row, ids, lambda: _drain_archive(stack))


async def search_back(stack: Stack, count: int, outage: float) -> Row:
    ids, bodies = stack.events(count, "back")
    await stack.spawn()
    await stack.consuming()
    await stack.search.stop()
    await publish(stack.amqp_url, bodies)
    await asyncio.sleep(outage)
    before = await stack.indexed()
    await stack.search.start()
    back = time.monotonic()

    async def moved() -> bool:
        return await stack.indexed() > before

    await wait_until(moved, 120)
    resumed = time.monotonic() - back
    await stack.settled(count)
    await stack.kill(signal.SIGTERM)
    row = Row(f"search back after {outage:.0f} s", count)
    row.other = f"indexing resumed {resumed:.1f} s after search returned"
    return await stack.count(row, ids, lambda: _drain_archive(stack))


async def poison(stack: Stack, count: int) -> Row:
    """The first event of a project's month has odd fields; then normal events."""
    now = datetime.now(UTC)
    odd = make_cadf(event_id=f"odd-{uuid.uuid4().hex[:8]}", initiator_project=stack.project)
    odd["eventTime"] = now.isoformat()
    odd["tags"] = {"x": 1}
    odd["initiator"]["host"] = "10.0.0.1"
    refused = make_cadf(event_id=f"ref-{uuid.uuid4().hex[:8]}", initiator_project=stack.project)
    refused["eventTime"] = now.isoformat()
    refused["reason"] = "a string where CADF has an object"
    ids, bodies = stack.events(count, "norm")
    first = [json.dumps(wrap_v1(c)).encode() for c in (odd, refused)]
    await stack.spawn()
    await stack.consuming()
    await publish(stack.amqp_url, first)
    await asyncio.sleep(1)
    await publish(stack.amqp_url, bodies)
    await stack.settled(count + 2)
    await stack.kill(signal.SIGTERM)
    dead = await take_all(stack.amqp_url, stack.values["amqp_dead_letter_exchange"], 10**6, 1)
    row = Row("odd first event of the month + normal ones", count + 2)
    row.other = f"dead-lettered {len(dead)}; indexed {await stack.indexed()}"
    await _drain_archive(stack)
    copies = archived_ids(Path(stack.values["archive_dir"]))
    row.dup_ids, row.dup_copies = duplicates(copies)
    row.lost = len([i for i in [*ids, odd["id"], refused["id"]] if i not in copies])
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="events per scenario")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--outage", type=float, default=15.0, help="seconds search is cut")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run")
    args = parser.parse_args()
    env = read_env_file(Path(os.environ.get("DEVSTACK_ENV_FILE", ROOT / "var/dev-stack/env")))
    vhost = f"stacktrail-faults-{uuid.uuid4().hex[:6]}"
    print(f"work directory and vhost: {vhost}", file=sys.stderr)
    await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
    await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    vhost_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    work = Path(tempfile.mkdtemp(prefix="stacktrail-faults-"))
    scenarios: dict[str, Callable[[Stack], Awaitable[Row]]] = {
        "kill9": lambda s: kill9(s, args.count, args.kills),
        "two": lambda s: two_consumers(s, args.count, args.kills),
        "broker": lambda s: broker_cuts(s, args.count, args.cuts),
        "sigterm": lambda s: sigterm_search_down(s, args.count, args.stops),
        "search-back": lambda s: search_back(s, args.count, args.outage),
        "poison": lambda s: poison(s, args.count // 10),
    }
    rows: list[Row] = []
    try:
        for name, run in scenarios.items():
            if args.only and name not in args.only:
                continue
            stack = Stack(env, vhost_url, work, amqp_prefetch=200)
            stack.work.mkdir(parents=True)
            await stack.start_relays()
            started = time.monotonic()
            try:
                rows.append(await run(stack))
            except Exception as exc:
                rows.append(Row(name, 0, other=f"FAILED: {exc!r}"))
            finally:
                await stack.stop_all()
            print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost, check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("| scenario | published | archive duplicates (ids / extra copies) | lost | other |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.scenario} | {row.published:,} | {row.dup_ids:,} / {row.dup_copies:,} "
            f"| {row.lost} | {row.other} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
