"""Readiness probes for scripts/dev-stack (standard library only).

Each probe retries until it succeeds or its deadline passes. On success it
prints the seconds it waited on stdout and exits 0; on failure it prints the
last error on stderr and exits 1. With --pid, a probe gives up as soon as that
process has exited (no point waiting for a server that died).

    probe.py tcp HOST PORT
    probe.py http URL [--status 200]
    probe.py memcached HOST PORT
    probe.py amqp HOST PORT
    probe.py keystone-token AUTH_URL USER PASSWORD PROJECT
    probe.py swift PROXY_URL AUTH_URL USER PASSWORD PROJECT

Common options: --timeout SECONDS (default 30), --pid PID.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request


class ProbeFailed(Exception):
    pass


class ProcessGone(Exception):
    pass


def _tcp(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=2):
        pass


def _http(url: str, status: int | None) -> None:
    code = _request("GET", url)[0]
    if status is not None and code != status:
        raise ProbeFailed(f"GET {url} answered {code}, expected {status}")
    if code >= 500:
        raise ProbeFailed(f"GET {url} answered {code}")


def _memcached(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(b"version\r\n")
        reply = sock.recv(128)
    if not reply.startswith(b"VERSION "):
        raise ProbeFailed(f"memcached answered {reply!r}")


def _amqp(host: str, port: int) -> None:
    # An AMQP 0-9-1 broker answers the protocol header with a
    # Connection.Start method frame (frame type 1, channel 0).
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        reply = sock.recv(7)
    if len(reply) < 7 or reply[0] != 1:
        raise ProbeFailed(f"no AMQP Connection.Start frame (got {reply!r})")


def _request(
    method: str, url: str, body: dict | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def keystone_token(auth_url: str, user: str, password: str, project: str) -> tuple[str, str]:
    """Return (token, project_id) for a project-scoped password login."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": user,
                        "domain": {"name": "Default"},
                        "password": password,
                    }
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }
    code, headers, payload = _request("POST", auth_url.rstrip("/") + "/auth/tokens?nocatalog", body)
    if code != 201:
        raise ProbeFailed(f"token for {user} on {project}: HTTP {code} {payload[:200]!r}")
    token = headers.get("X-Subject-Token") or headers.get("x-subject-token")
    project_id = json.loads(payload)["token"]["project"]["id"]
    return token, project_id


def _keystone(auth_url: str, user: str, password: str, project: str) -> None:
    keystone_token(auth_url, user, password, project)


def _swift(proxy_url: str, auth_url: str, user: str, password: str, project: str) -> None:
    code = _request("GET", proxy_url.rstrip("/") + "/healthcheck")[0]
    if code != 200:
        raise ProbeFailed(f"swift /healthcheck answered {code}")
    token, project_id = keystone_token(auth_url, user, password, project)
    url = f"{proxy_url.rstrip('/')}/v1/AUTH_{project_id}"
    code, _, payload = _request("HEAD", url, headers={"X-Auth-Token": token})
    if not 200 <= code < 300:
        raise ProbeFailed(f"HEAD {url} as {user}: HTTP {code} {payload[:200]!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait(check, timeout: float, pid: int | None) -> float:
    started = time.monotonic()
    deadline = started + timeout
    last: Exception | None = None
    delay = 0.05
    while True:
        if pid is not None and not _alive(pid):
            raise ProcessGone(f"process {pid} exited" + (f" (last error: {last})" if last else ""))
        try:
            check()
            return time.monotonic() - started
        except (OSError, ProbeFailed, ValueError, KeyError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise ProbeFailed(f"not ready after {timeout:.0f} s: {last}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--pid", type=int)
    sub = parser.add_subparsers(dest="probe", required=True)
    for name in ("tcp", "memcached", "amqp"):
        p = sub.add_parser(name)
        p.add_argument("host")
        p.add_argument("port", type=int)
    p = sub.add_parser("http")
    p.add_argument("url")
    p.add_argument("--status", type=int)
    p = sub.add_parser("keystone-token")
    p.add_argument("auth_url")
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("project")
    p = sub.add_parser("swift")
    p.add_argument("proxy_url")
    p.add_argument("auth_url")
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("project")
    args = parser.parse_args(argv)

    checks = {
        "tcp": lambda: _tcp(args.host, args.port),
        "memcached": lambda: _memcached(args.host, args.port),
        "amqp": lambda: _amqp(args.host, args.port),
        "http": lambda: _http(args.url, args.status),
        "keystone-token": lambda: _keystone(args.auth_url, args.user, args.password, args.project),
        "swift": lambda: _swift(
            args.proxy_url, args.auth_url, args.user, args.password, args.project
        ),
    }
    try:
        waited = wait(checks[args.probe], args.timeout, args.pid)
    except (ProbeFailed, ProcessGone) as exc:
        print(f"{args.probe}: {exc}", file=sys.stderr)
        return 1
    print(f"{waited:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
