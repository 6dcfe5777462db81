"""A Keystone of the test's own that notifies: CADF through oslo.messaging's `messagingv2`
driver into the test's RabbitMQ vhost (the dev stack's Keystone sends none, and is shared).

It runs from the dev stack's Keystone installation (`var/dev-stack/venvs/keystone`), with
its own SQLite database and keys in a temporary directory, on a free loopback port.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.devstack import ENV_FILE
from tests.support.paths import REPO_ROOT as ROOT
from tests.support.tcpproxy import free_port

VENV = ENV_FILE.parent / "venvs" / "keystone"
HELPERS = ROOT / "scripts" / "devstack"
ADMIN_PASSWORD = "notifier-admin-pass"


def _config(root: Path, transport_url: str) -> Path:
    conf = root / "keystone.conf"
    conf.write_text(
        f"""[DEFAULT]
debug = false
use_stderr = false
notification_format = cadf

[oslo_messaging_notifications]
driver = messagingv2
transport_url = {transport_url}
topics = notifications

[database]
connection = sqlite:///{root}/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = {root}/fernet-keys

[fernet_receipts]
key_repository = {root}/fernet-receipts

[credential]
key_repository = {root}/credential-keys

[identity]
password_hash_rounds = 4
max_password_length = 72
"""
    )
    return conf


@contextmanager
def notifying_keystone(root: Path, amqp_url: str) -> Iterator[str]:
    """Initialise (keystone-manage bootstrap notifies too), serve; yields the /v3 URL."""
    python = VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no Keystone installation at {VENV}: run scripts/dev-stack start")
    conf = _config(root, "rabbit" + amqp_url.removeprefix("amqp"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/v3"
    user, group = (
        subprocess.check_output(["id", "-un"]).decode().strip(),
        subprocess.check_output(["id", "-gn"]).decode().strip(),
    )
    subprocess.run(
        [
            str(python),
            str(HELPERS / "keystone_init.py"),
            str(conf),
            user,
            group,
            "--bootstrap-username",
            "admin",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-project-name",
            "admin",
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            "RegionOne",
            "--bootstrap-public-url",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    log = (root / "keystone.log").open("wb")
    server = subprocess.Popen(
        [
            str(VENV / "bin" / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "1",
            "--no-control-socket",
            "--pythonpath",
            str(HELPERS),
            "keystone_wsgi:application",
        ],
        env={**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"Keystone did not start; see {root / 'keystone.log'}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
