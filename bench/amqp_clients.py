"""Raw drain rate of the candidate AMQP clients against the same broker, in one run.

Publishes N messages of ~1.5 KB into a scratch queue, drains them with each client
(a consumer that only acks, one ack per message, prefetch P), and prints messages/s and
the ratio against the fastest. Used to choose the client the source is built on.

    .venv/bin/python bench/amqp_clients.py --count 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

import aio_pika
import aiormq
import pika
from pika.adapters.asyncio_connection import AsyncioConnection

BODY = os.urandom(750).hex().encode()  # 1.5 KB


def publish(url: str, queue: str, count: int) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue, durable=False, auto_delete=False)
    for _ in range(count):
        ch.basic_publish("", queue, BODY)
    conn.close()


async def drain_aio_pika(url: str, queue: str, count: int, prefetch: int) -> float:
    conn = await aio_pika.connect(url)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=prefetch)
    q = await ch.declare_queue(queue, passive=True)
    done = asyncio.Event()
    seen = 0
    start = time.perf_counter()

    async def on_message(msg: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        await msg.ack()
        seen += 1
        if seen == count:
            done.set()

    await q.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - start
    await conn.close()
    return count / elapsed


async def drain_aiormq(url: str, queue: str, count: int, prefetch: int) -> float:
    conn = await aiormq.connect(url)
    ch = await conn.channel()
    await ch.basic_qos(prefetch_count=prefetch)
    done = asyncio.Event()
    seen = 0
    start = time.perf_counter()

    async def on_message(msg: aiormq.abc.DeliveredMessage) -> None:
        nonlocal seen
        assert msg.delivery_tag is not None  # a consumer's deliveries always carry one
        await ch.basic_ack(msg.delivery_tag)
        seen += 1
        if seen == count:
            done.set()

    await ch.basic_consume(queue, on_message)
    await done.wait()
    elapsed = time.perf_counter() - start
    await conn.close()
    return count / elapsed


async def drain_pika_asyncio(url: str, queue: str, count: int, prefetch: int) -> float:
    """pika's asyncio adapter, as the pipeline's source uses it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    seen = 0
    start = 0.0

    def on_message(channel: Any, method: Any, _props: Any, _body: bytes) -> None:
        nonlocal seen
        channel.basic_ack(method.delivery_tag)
        seen += 1
        if seen == count and not done.done():
            done.set_result(time.perf_counter() - start)

    def on_channel(channel: Any) -> None:
        nonlocal start
        channel.basic_qos(prefetch_count=prefetch)
        start = time.perf_counter()
        channel.basic_consume(queue, on_message)

    connection = AsyncioConnection(
        pika.URLParameters(url),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        custom_ioloop=loop,
    )
    elapsed = await done
    connection.close()
    await asyncio.sleep(0.1)
    return count / elapsed


def drain_pika(url: str, queue: str, count: int, prefetch: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    start = time.perf_counter()
    for seen, (method, _props, _body) in enumerate(ch.consume(queue), start=1):
        ch.basic_ack(method.delivery_tag)
        if seen == count:
            break
    elapsed = time.perf_counter() - start
    ch.cancel()
    conn.close()
    return count / elapsed


def drain_pika_batched(url: str, queue: str, count: int, prefetch: int, every: int = 500) -> float:
    """The strongest plain consumer: pika blocking, one `multiple` ack per `every` messages
    (the baseline the ingest benchmarks measure against)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    start = time.perf_counter()
    for seen, (method, _props, _body) in enumerate(ch.consume(queue), start=1):
        if seen % every == 0 or seen == count:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if seen == count:
            break
    elapsed = time.perf_counter() - start
    ch.cancel()
    conn.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--prefetch", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, float] = {}
    for name in ("aio-pika", "aiormq", "pika-asyncio", "pika-blocking"):
        queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        publish(args.url, queue, args.count)
        if name == "aio-pika":
            rate = asyncio.run(drain_aio_pika(args.url, queue, args.count, args.prefetch))
        elif name == "aiormq":
            rate = asyncio.run(drain_aiormq(args.url, queue, args.count, args.prefetch))
        elif name == "pika-asyncio":
            rate = asyncio.run(drain_pika_asyncio(args.url, queue, args.count, args.prefetch))
        else:
            rate = drain_pika(args.url, queue, args.count, args.prefetch)
        results[name] = rate
        conn = pika.BlockingConnection(pika.URLParameters(args.url))
        conn.channel().queue_delete(queue)
        conn.close()
    best = max(results.values())
    for name, rate in results.items():
        print(f"{name:10s} {rate:10.0f} msg/s  ratio to fastest {rate / best:.2f}")


if __name__ == "__main__":
    main()
