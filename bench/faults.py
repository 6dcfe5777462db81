"""The fault suite: stacktrail against the dev stack's real servers, with faults made by
relays in front of them (tests/support/tcpproxy.py), kill -9 of a pipeline process and
clean stops; every id is counted in search, in every archive object (file store, or both
Swift regions) and in the dead-letter queue. Prints the table of issue 17, re-measured.

Each pipeline process runs in a network namespace of its own (tests/support/netns.py),
where it keeps its usual addresses (127.0.0.1:5672, the search server, Keystone, the
Swift URLs of the Keystone catalog) and socat forwards each of them to a relay in the
root namespace that cuts, black-holes or delays it. Without network namespaces (not
root, no `ip` or `socat`; or --no-netns) the relays listen on ports of their own and the
process is pointed at them; the Swift cases, whose URLs come from the catalog, then skip.

Only relays and processes this script starts are cut or killed; the shared servers are
never stopped. Every loop is bounded (--kills, --cuts, --stops, --count, the outages).

    DEVSTACK_ENV_FILE=var/dev-stack/env .venv/bin/python bench/faults.py --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from tests.support.netns import NetNamespace, unavailable  # noqa: E402
from tests.support.tcpproxy import TcpProxy  # noqa: E402

from stacktrail.archive.stores.base import Bucket  # noqa: E402
from stacktrail.archive.stores.swift import SwiftStore  # noqa: E402
from stacktrail.config import Settings  # noqa: E402
from stacktrail.domain.trail import WriteMode  # noqa: E402
from stacktrail.keystone import KeystoneClient  # noqa: E402
from stacktrail.search.documents import index_name  # noqa: E402

# A pipeline in its own process (kill -9 needs one): both sinks, the file store or Swift.
# With argv[2] == "probes" it serves /readyz and /metrics as `run --only pipeline` does
# (on 127.0.0.1:9464: in a namespace of its own that address is its alone).
CHILD = textwrap.dedent(
    """
    import asyncio, json, logging, signal, sys, types
    from stacktrail.app import _readiness, run_pipeline
    from stacktrail.archive.sink import ArchiveSink
    from stacktrail.archive.stores import open_store
    from stacktrail.config import Settings
    from stacktrail.domain.directory import DefaultTrails
    from stacktrail.domain.ledger import MemoryLedger
    from stacktrail.keystone import KeystoneClient
    from stacktrail.search.client import SearchClient
    from stacktrail.search.sink import SearchSink

    async def main():
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        settings = Settings(**json.loads(sys.argv[1]))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        keystone = KeystoneClient(settings) if settings.keystone_url else None
        archive = ArchiveSink(settings, open_store(settings, keystone), MemoryLedger())
        sinks = [SearchSink(SearchClient.from_settings(settings), settings), archive]
        services = types.SimpleNamespace(
            settings=settings,
            keystone=keystone,
            source=None,
            archive=archive,
            workers=None,
            closing=[],
        )
        tasks = []
        if sys.argv[2:] == ["probes"]:
            from stacktrail.telemetry.probes import serve_probes

            checks = _readiness(services)
            tasks.append(serve_probes(checks, "127.0.0.1", PROBES_PORT, stop))
        on_source = lambda source: setattr(services, "source", source)
        pipeline = run_pipeline(settings, stop, DefaultTrails(settings), sinks, on_source=on_source)
        await asyncio.gather(pipeline, *tasks)

    asyncio.run(main())
    """
).replace("PROBES_PORT", "9464")
PROBES_PORT = 9464

# Run inside a pipeline's namespace: its /readyz and a few /metrics samples, as JSON.
PROBE = textwrap.dedent(
    """
    import json, sys, urllib.error, urllib.request
    base = "http://127.0.0.1:%d" % int(sys.argv[1])
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=10) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    wanted = ("stacktrail_spool_bytes", "stacktrail_archive_oldest_undelivered_seconds",
              'stacktrail_archive_uploads_total{outcome="failed"}')
    samples = {l.split(" ")[0]: float(l.split(" ")[1]) for l in lines if l.startswith(wanted)}
    print(json.dumps({"status": status, "readyz": json.loads(body), "metrics": samples}))
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
    figures: dict[str, float] = field(default_factory=dict)  # for the tests


class Stack:
    """One scenario's own queue, index template, spool and archive, behind relays.

    `netns`: every pipeline process in a network namespace of its own, its servers'
    usual addresses forwarded to the relays; `swift`: archive into the dev stack's
    Swift (the catalog's URLs, so only with `netns`), into these `regions`."""

    def __init__(
        self,
        env: dict[str, str],
        vhost_url: str,
        work: Path,
        *,
        netns: bool = False,
        swift: bool = False,
        regions: tuple[str, ...] = ("RegionOne",),
        **overrides: Any,
    ) -> None:
        self.env = env
        self.netns = netns
        self.swift = swift
        self.regions = regions
        queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.template = f"faults{uuid.uuid4().hex[:8]}-{{project_id}}-{{yyyy.MM}}"
        self.work = work / queue
        self.search_url = env["STACKTRAIL_SEARCH_URL"]
        self.amqp_url = vhost_url
        servers = {"broker": vhost_url, "search": self.search_url}
        if netns:
            servers["keystone"] = env["DEVSTACK_KEYSTONE_URL"]
            servers["swift"] = env["DEVSTACK_SWIFT_URL"]
            if "DEVSTACK_SWIFT2_URL" in env:
                servers["swift2"] = env["DEVSTACK_SWIFT2_URL"]
        self.relays: dict[str, TcpProxy] = {}
        self.ports: dict[str, int] = {}
        for name, url in servers.items():
            parts = urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            unix = self.work / "relays" / f"{name}.sock" if netns else None
            self.relays[name] = TcpProxy(host, port, unix=unix)
            self.ports[name] = port
        self.search = self.relays["search"]
        self.broker = self.relays["broker"]
        self._namespaces: dict[str, NetNamespace] = {}
        self.project = env["DEVSTACK_PROJECT_B_ID"] if swift else uuid.uuid4().hex
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
        if swift:
            self.values |= {
                "archive_store": "swift",
                "archive_container": f"faults-{uuid.uuid4().hex[:10]}",
                "archive_format": "ndjson",
                "archive_regions": list(regions),
                "archive_probe_interval": "500ms",
                "keystone_url": env["DEVSTACK_KEYSTONE_URL"],
                "keystone_username": env["STACKTRAIL_KEYSTONE_USERNAME"],
                "keystone_password": env["STACKTRAIL_KEYSTONE_PASSWORD"],
                "keystone_project_name": env["STACKTRAIL_KEYSTONE_PROJECT_NAME"],
            }
        self.child: asyncio.subprocess.Process | None = None

    async def start_relays(self) -> None:
        (self.work / "relays").mkdir(parents=True, exist_ok=True)
        for relay in self.relays.values():
            await relay.start()

    def settings(self) -> dict[str, Any]:
        if self.netns:  # the usual addresses: inside the namespace they lead to the relays
            return {**self.values, "amqp_url": self.amqp_url, "search_url": self.search_url}
        vhost = urlsplit(self.amqp_url).path
        return {
            **self.values,
            "amqp_url": f"amqp://guest:guest@{self.broker.address}{vhost}",
            "search_url": f"http://{self.search.address}",
        }

    async def _namespace(self, worker: str) -> NetNamespace:
        """The worker's own network namespace, its servers forwarded to the relays."""
        if worker not in self._namespaces:
            namespace = NetNamespace(self.work / "relays", tag=worker or "main")
            await namespace.create()
            self._namespaces[worker] = namespace
            for name, relay in self.relays.items():
                assert relay.unix is not None
                await namespace.forward(self.ports[name], relay.unix)
        return self._namespaces[worker]

    async def spawn(self, worker: str = "") -> asyncio.subprocess.Process:
        """A pipeline process; `worker` names a second one with its own spool."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
        values = self.settings()
        if worker:
            values["spool_dir"] = str(self.work / f"spool-{worker}")
            values["archive_worker"] = worker
        argv = [sys.executable, "-c", CHILD, json.dumps(values)]
        if self.netns:
            argv = (await self._namespace(worker)).exec_args(*argv, "probes")
        child = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=_append(self.work / "child.log"),
        )
        if not worker:
            self.child = child
        return child

    async def probes(self, worker: str = "") -> dict[str, Any]:
        """The pipeline's /readyz answer and spool and upload figures (netns only)."""
        argv = (await self._namespace(worker)).exec_args(
            sys.executable, "-c", PROBE, str(PROBES_PORT)
        )
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
        if done.returncode != 0:
            return {"status": 0, "error": done.stderr.strip().splitlines()[-1:]}
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

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

    async def archived(self, region: str) -> list[str]:
        """The ids in a Swift region's objects, objects in name order (= sealing order)."""
        settings = Settings(**{**self.values, "amqp_url": self.amqp_url})
        store = SwiftStore(KeystoneClient(settings))  # straight to Swift, no relay
        bucket = Bucket(self.project, region, self.values["archive_container"], WriteMode.RESELLER)
        ids: list[str] = []
        try:
            for key in sorted(await store.list_keys(bucket)):
                body = gzip.decompress((await store.get(bucket, key)).body)
                ids += [json.loads(line)["id"] for line in body.splitlines() if line.strip()]
        finally:
            await store.aclose()
        return ids

    async def copies(self) -> Counter[str]:
        if not self.swift:
            return archived_ids(Path(self.values["archive_dir"]))
        return Counter(await self.archived(self.regions[0]))

    async def count(self, row: Row, ids: list[str], flush: Callable[[], Awaitable[None]]) -> Row:
        await flush()
        copies = await self.copies()
        row.dup_ids, row.dup_copies = duplicates(copies)
        dead = await take_all(self.amqp_url, self.values["amqp_dead_letter_exchange"], 10**6, 1)
        dead_ids = {_event_id(m.body) for m in dead}
        row.lost = len([i for i in ids if i not in copies and i not in dead_ids])
        return row

    async def stop_all(self) -> None:
        await self.kill(signal.SIGTERM)
        for relay in self.relays.values():
            await relay.stop()
        for namespace in self._namespaces.values():
            await namespace.delete()
        self._namespaces.clear()


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


async def broker_cuts(stack: Stack, count: int, cuts: int, seconds: float = 3.0) -> Row:
    ids, bodies = stack.events(count, "cut")
    await stack.spawn()
    await stack.consuming()
    publisher = asyncio.create_task(publish(stack.amqp_url, bodies))
    reconnects: list[float] = []
    for _ in range(cuts):
        await asyncio.sleep(1.0)
        await stack.broker.stop()
        await asyncio.sleep(seconds)
        await stack.broker.start()
        reconnects.append(await wait_until(_consumer_back(stack), 30))
    await publisher
    await stack.settled(count)
    await stack.kill(signal.SIGTERM)
    row = Row(f"broker cut {seconds:.0f} s x {cuts}", count)
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


async def _publish_paced(stack: Stack, bodies: list[bytes], seconds: float) -> None:
    """Publish `bodies` spread over about `seconds` (in 20 slices)."""
    slices = 20
    step = max(len(bodies) // slices, 1)
    for start in range(0, len(bodies), step):
        await publish(stack.amqp_url, bodies[start : start + step])
        await asyncio.sleep(seconds / slices)


async def _max_depth_while(stack: Stack, until: asyncio.Event) -> int:
    """The deepest the queue got (ready messages) until `until` is set."""
    deepest = 0
    while not until.is_set():
        deepest = max(deepest, await queue_depth(stack.amqp_url, stack.values["amqp_queue"]))
        await asyncio.sleep(1.0)
    return deepest


async def swift_outage(stack: Stack, count: int, outage: float) -> Row:
    """Swift (the catalog's URL, through the relay) is cut for `outage` seconds while
    events arrive; the spool holds them and delivers everything once Swift is back."""
    ids, bodies = stack.events(count, "swift")
    await stack.spawn()
    await stack.consuming()
    swift = stack.relays["swift"]
    await swift.stop()
    cut_at = time.monotonic()
    cut = asyncio.Event()
    depth = asyncio.create_task(_max_depth_while(stack, cut))
    await _publish_paced(stack, bodies, min(outage / 2, 30.0))
    await stack.settled(count, timeout=outage + 120)  # indexed and acked, Swift away
    acked_in = time.monotonic() - cut_at
    await asyncio.sleep(max(outage - (time.monotonic() - cut_at), 0))
    cut.set()
    deepest = await depth
    during = await stack.probes()
    delivered_before = len(await stack.archived(stack.regions[0]))
    await swift.start()
    back = time.monotonic()

    async def moved() -> bool:
        return len(await stack.archived(stack.regions[0])) > delivered_before

    await wait_until(moved, 300)
    resumed = time.monotonic() - back

    async def complete() -> bool:
        return len(set(await stack.archived(stack.regions[0]))) >= count

    await wait_until(complete, 600)
    caught_up = time.monotonic() - back
    await asyncio.sleep(1.0)
    after = await stack.probes()
    await stack.kill(signal.SIGTERM)
    row = Row(f"Swift cut {outage:.0f} s (netns, catalog URL)", count)
    row.figures = {
        "resumed": resumed,
        "caught_up": caught_up,
        "ready_during": float(during.get("status") == 200),
        "ready_after": float(after.get("status") == 200),
    }
    figures = during.get("metrics", {})
    failed = figures.get('stacktrail_archive_uploads_total{outcome="failed"}', -1)
    row.other = (
        f"all acked {acked_in:.0f} s into the cut (queue depth ≤ {deepest}); at the end of "
        f"the cut /readyz {during.get('status')} (archive: "
        f"{during.get('readyz', {}).get('checks', {}).get('archive', '?')}), spool "
        f"{figures.get('stacktrail_spool_bytes', -1) / 1e6:.1f} MB, oldest undelivered "
        f"{figures.get('stacktrail_archive_oldest_undelivered_seconds', -1):.0f} s, "
        f"failed uploads {failed:.0f}; "
        f"uploads resumed {resumed:.1f} s and all archived {caught_up:.1f} s after Swift "
        f"returned, then /readyz {after.get('status')}"
    )
    return await stack.count(row, ids, lambda: _drain_archive(stack))


async def search_black_hole(stack: Stack, count: int, outage: float) -> Row:
    """Search accepts connections and never answers for `outage` seconds (only timeouts
    notice); then it answers again."""
    ids, bodies = stack.events(count, "hole")
    await stack.spawn()
    await stack.consuming()
    stack.search.black_hole()
    await publish(stack.amqp_url, bodies)
    await asyncio.sleep(outage)
    before = await stack.indexed()
    stack.search.clear()
    back = time.monotonic()

    async def moved() -> bool:
        return await stack.indexed() > before

    await wait_until(moved, 300)
    resumed = time.monotonic() - back
    await stack.settled(count, timeout=600)
    settled = time.monotonic() - back
    await stack.kill(signal.SIGTERM)
    row = Row(f"search black-holed {outage:.0f} s", count)
    row.figures = {"resumed": resumed}
    row.other = (
        f"indexing resumed {resumed:.1f} s after search answered again "
        f"(search_timeout {stack.values.get('search_timeout', '30s')}), all indexed in "
        f"{settled:.1f} s"
    )
    return await stack.count(row, ids, lambda: _drain_archive(stack))


async def search_latency(stack: Stack, count: int, delay: float) -> Row:
    """Every chunk to and from search is delayed by `delay` seconds; the pipeline keeps
    up and loses nothing. Throughput is compared with the same count without delay."""
    rates: list[float] = []
    all_ids: list[str] = []
    await stack.spawn()
    await stack.consuming()
    for tag, latency in (("fast", 0.0), ("slow", delay)):
        stack.search.delay(latency)
        ids, bodies = stack.events(count // 2, tag)
        all_ids += ids
        started = time.monotonic()
        await publish(stack.amqp_url, bodies)
        await stack.settled(len(all_ids), timeout=600)
        rates.append(len(ids) / (time.monotonic() - started))
    stack.search.clear()
    await stack.kill(signal.SIGTERM)
    row = Row(f"search latency +{delay * 1000:.0f} ms per chunk", count)
    row.other = (
        f"{rates[1]:,.0f} ev/s with the latency vs {rates[0]:,.0f} ev/s without "
        f"(ratio {rates[1] / rates[0]:.2f})"
    )
    return await stack.count(row, all_ids, lambda: _drain_archive(stack))


async def region_cut(stack: Stack, count: int, outage: float) -> Row:
    """A trail of two regions; RegionTwo's proxy (through its relay) is cut for `outage`
    seconds while events arrive: RegionOne keeps delivering, RegionTwo catches up."""
    first, second = stack.regions
    ids, bodies = stack.events(count, "region")
    await stack.spawn()
    await stack.consuming()
    relay = stack.relays["swift2"]
    await relay.stop()
    cut_at = time.monotonic()
    await _publish_paced(stack, bodies, min(outage / 2, 30.0))
    published = time.monotonic()

    async def first_complete() -> bool:
        return len(set(await stack.archived(first))) >= count

    await wait_until(first_complete, outage + 300)
    first_lag = time.monotonic() - published
    during = len(await stack.archived(second))
    await asyncio.sleep(max(outage - (time.monotonic() - cut_at), 0))
    await relay.start()
    back = time.monotonic()

    async def second_moved() -> bool:
        return len(await stack.archived(second)) > during

    async def second_complete() -> bool:
        return len(set(await stack.archived(second))) >= count

    await wait_until(second_moved, 600)
    resumed = time.monotonic() - back
    await wait_until(second_complete, 600)
    caught_up = time.monotonic() - back
    await stack.kill(signal.SIGTERM)
    await _drain_archive(stack)
    one, two = await stack.archived(first), await stack.archived(second)
    row = Row(f"{second} cut {outage:.0f} s, trail in {first} + {second}", count)
    dead = await take_all(stack.amqp_url, stack.values["amqp_dead_letter_exchange"], 10**6, 1)
    dead_ids = {_event_id(m.body) for m in dead}
    row.dup_ids, row.dup_copies = duplicates(Counter(one))
    row.lost = len([i for i in ids if i not in set(one) and i not in dead_ids])
    lost_two = len([i for i in ids if i not in set(two) and i not in dead_ids])
    dup_two = duplicates(Counter(two))
    row.figures = {
        "first_lag": first_lag,
        "resumed": resumed,
        "caught_up": caught_up,
        "lost_two": lost_two,
        "dup_two": dup_two[1],
        "same_order": float(one == two),
        "during": during,
    }
    row.other = (
        f"{first} complete {first_lag:.1f} s after the last publish (during the cut); "
        f"{second} held {during} during the cut, its first object {resumed:.1f} s and all "
        f"{caught_up:.1f} s after its return: lost {lost_two}, duplicates {dup_two[0]} / "
        f"{dup_two[1]}, same objects in the same order: {'yes' if one == two else 'NO'}"
    )
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="scenarios: " + ", ".join(SCENARIOS),
    )
    parser.add_argument("--count", type=int, default=2000, help="events per scenario")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--cut-seconds", type=float, default=3.0, help="each broker cut")
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--outage", type=float, default=15.0, help="seconds search is cut")
    parser.add_argument("--black-hole", type=float, default=20.0, help="seconds search hangs")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per chunk")
    parser.add_argument("--swift-outage", type=float, default=120.0, help="seconds Swift is cut")
    parser.add_argument("--region-outage", type=float, default=60.0, help="RegionTwo cut")
    parser.add_argument("--no-netns", action="store_true", help="relays on ports of their own")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run")
    return parser.parse_args(argv)


Scenario = Callable[[Stack, argparse.Namespace], Awaitable[Row]]

# name -> (run, Stack options); Swift cases need the catalog's URLs, so network namespaces
SCENARIOS: dict[str, tuple[Scenario, dict[str, Any]]] = {
    "kill9": (lambda s, a: kill9(s, a.count, a.kills), {}),
    "swift-outage": (
        lambda s, a: swift_outage(s, a.count, a.swift_outage),
        {"swift": True, "archive_retry_max": "5m"},
    ),
    "region-cut": (
        lambda s, a: region_cut(s, a.count, a.region_outage),
        {"swift": True, "regions": ("RegionOne", "RegionTwo"), "archive_retry_max": "5m"},
    ),
    "search-black-hole": (
        lambda s, a: search_black_hole(s, a.count, a.black_hole),
        {"search_timeout": "10s"},
    ),
    "search-latency": (lambda s, a: search_latency(s, a.count, a.latency), {}),
    "search-back": (lambda s, a: search_back(s, a.count, a.outage), {}),
    "broker": (lambda s, a: broker_cuts(s, a.count, a.cuts, a.cut_seconds), {}),
    "sigterm": (lambda s, a: sigterm_search_down(s, a.count, a.stops), {}),
    "two": (lambda s, a: two_consumers(s, a.count, a.kills), {}),
    "poison": (lambda s, a: poison(s, a.count // 10), {}),
}


async def measure(args: argparse.Namespace) -> list[Row]:
    """Run the chosen scenarios, each on its own queue, spool, archive and relays."""
    env = read_env_file(Path(os.environ.get("DEVSTACK_ENV_FILE", ROOT / "var/dev-stack/env")))
    why_not = "--no-netns" if args.no_netns else unavailable()
    netns = not why_not
    print(
        "network namespaces: " + ("yes" if netns else f"no ({why_not})"),
        file=sys.stderr,
    )
    vhost = f"stacktrail-faults-{uuid.uuid4().hex[:6]}"
    print(f"work directory and vhost: {vhost}", file=sys.stderr)
    await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
    await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    vhost_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    work = Path(tempfile.mkdtemp(prefix="stacktrail-faults-"))
    rows: list[Row] = []
    try:
        for name, (run, options) in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            options = {"amqp_prefetch": 200, **options}
            if options.get("swift") and not netns:
                rows.append(Row(name, 0, other=f"skipped: needs network namespaces ({why_not})"))
                continue
            if len(options.get("regions", ())) > 1 and "DEVSTACK_SWIFT2_URL" not in env:
                rows.append(Row(name, 0, other="skipped: the dev stack has no RegionTwo"))
                continue
            stack = Stack(env, vhost_url, work, netns=netns, **options)
            stack.work.mkdir(parents=True)
            await stack.start_relays()
            started = time.monotonic()
            try:
                rows.append(await run(stack, args))
            except Exception as exc:
                rows.append(Row(name, 0, other=f"FAILED: {exc!r}"))
            finally:
                await stack.stop_all()
            took = time.monotonic() - started
            print(f"{name}: {took:.0f} s: {table(rows[-1:]).splitlines()[-1]}", file=sys.stderr)
    finally:
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", vhost, check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | published | archive duplicates (ids / extra copies) | lost | other |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.published:,} | {row.dup_ids:,} / {row.dup_copies:,} "
            f"| {row.lost} | {row.other} |"
        )
    return "\n".join(lines)


async def main() -> None:
    print(table(await measure(parse_args())))


if __name__ == "__main__":
    asyncio.run(main())
