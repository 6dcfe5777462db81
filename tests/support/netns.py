"""A network namespace of its own for a process under test that must keep its usual
server addresses (127.0.0.1:5672, the search server, Keystone, and the Swift URLs the
Keystone catalog names), while every byte to those servers passes a relay that can cut,
black-hole or delay it.

Inside the namespace only `lo` exists. For each forwarded port a socat listens on
127.0.0.1:PORT there and connects, per connection, to a UNIX socket in a directory of
the shared file system, where a relay of the root namespace listens
(`TcpProxy(..., unix=PATH)`) and connects to the real server. Whatever the process
reaches that is not forwarded is refused: nothing bypasses the relays.

Needs root, `ip` (iproute2) and `socat`; `unavailable()` says why not otherwise.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

PREFIX = "stacktrail-"  # namespaces this module makes (and removes)


@functools.cache
def unavailable() -> str:
    """Why network namespaces cannot be used here ("" when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            return f"network namespaces need `{tool}`, which is not installed"
    name = f"{PREFIX}probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return ""


def _listening(pid: int, namespace: str, port: int) -> bool:
    """Whether process `pid` is in `namespace` (not still on its way in, where the root
    namespace's servers listen) and that has a TCP listener on 127.0.0.1:`port`."""
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat(f"/run/netns/{namespace}").st_ino:
            return False
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    wanted = f"0100007F:{port:04X}"
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


class NetNamespace:
    """`ip netns add` on `create()`, `ip netns del` (and the socats gone) on `delete()`."""

    def __init__(self, sockets: Path, tag: str = "") -> None:
        self.name = f"{PREFIX}{tag + '-' if tag else ''}{uuid.uuid4().hex[:8]}"
        self.sockets = sockets  # where the relays' UNIX sockets are
        self._socats: list[asyncio.subprocess.Process] = []

    async def create(self) -> None:
        await _run("ip", "netns", "add", self.name)
        await _run("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")

    def exec_args(self, *argv: str) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: the pid is its own)."""
        return ["ip", "netns", "exec", self.name, *argv]

    async def forward(self, port: int, unix: Path, timeout: float = 10.0) -> None:
        """127.0.0.1:`port` inside leads to the UNIX socket `unix` (a relay)."""
        socat = await asyncio.create_subprocess_exec(
            *self.exec_args(
                "socat",
                f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                f"UNIX-CONNECT:{unix}",
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._socats.append(socat)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not _listening(socat.pid, self.name, port):
            if socat.returncode is not None or loop.time() > deadline:
                raise RuntimeError(f"socat in {self.name} does not listen on 127.0.0.1:{port}")
            await asyncio.sleep(0.02)

    async def delete(self) -> None:
        for socat in self._socats:
            if socat.returncode is None:
                socat.send_signal(signal.SIGTERM)  # socat's fork children follow it
        for socat in self._socats:
            try:
                await asyncio.wait_for(socat.wait(), 5)
            except TimeoutError:
                socat.kill()
                await socat.wait()
        self._socats.clear()
        await _run("ip", "netns", "del", self.name, check=False)


async def _run(*argv: str, check: bool = True) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode(errors='replace').strip()}")
