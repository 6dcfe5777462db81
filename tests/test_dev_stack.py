"""The dev stack's servers answer the way the rest of the suite relies on.

`scripts/dev-stack start` runs Keystone, Swift (with s3api), the OpenSearch-compatible
server and memcached on 127.0.0.1 and writes `var/dev-stack/env`; this module reads that
file itself and checks each server with a real request.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import shlex
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = Path(os.environ.get("DEVSTACK_ENV_FILE", ROOT / "var" / "dev-stack" / "env"))
DEV_STACK = ROOT / "scripts" / "dev-stack"
TIMEOUT = httpx.Timeout(10.0)


def parse_env_file(text: str) -> dict[str, str]:
    """Values of the `export NAME='value'` lines of a shell env file."""
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line.startswith("export "):
            continue
        name, sep, raw = line[len("export ") :].partition("=")
        if not sep:
            continue
        words = shlex.split(raw)
        values[name.strip()] = words[0] if words else ""
    return values


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    if not ENV_FILE.exists():
        pytest.fail(f"{ENV_FILE} is missing: run `scripts/dev-stack start` first")
    return parse_env_file(ENV_FILE.read_text())


def keystone_token(env: dict[str, str], user: str, password: str, project: str) -> str:
    auth = v3.Password(
        auth_url=env["DEVSTACK_KEYSTONE_URL"],
        username=user,
        password=password,
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    token = ks_session.Session(auth=auth).get_token()
    assert token
    return str(token)


@pytest.fixture(scope="module")
def service_token(env: dict[str, str]) -> str:
    return keystone_token(
        env,
        env["DEVSTACK_SERVICE_USER"],
        env["DEVSTACK_SERVICE_PASSWORD"],
        env["DEVSTACK_SERVICE_PROJECT_NAME"],
    )


def project_token(env: dict[str, str], project: str, role: str) -> str:
    prefix = f"DEVSTACK_PROJECT_{project}"
    return keystone_token(
        env,
        env[f"{prefix}_{role}_USER"],
        env[f"{prefix}_{role}_PASSWORD"],
        env[f"{prefix}_NAME"],
    )


@pytest.fixture
def swift() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def container_url(env: dict[str, str], service_token: str, swift: httpx.Client) -> Iterator[str]:
    """A new container in project A's Swift account, removed afterwards."""
    account = f"{env['DEVSTACK_SWIFT_URL']}/v1/AUTH_{env['DEVSTACK_PROJECT_A_ID']}"
    url = f"{account}/devstack-test-{uuid.uuid4().hex[:12]}"
    yield url
    headers = {"X-Auth-Token": service_token}
    listing = swift.get(url, params={"format": "json"}, headers=headers)
    if listing.status_code == 200:
        for entry in listing.json():
            swift.delete(f"{url}/{entry['name']}", headers=headers)
    swift.delete(url, headers=headers)


def test_keystone_validates_a_member_token_with_the_service_token(env: dict[str, str]) -> None:
    subject = project_token(env, "A", "MEMBER")
    service = keystone_token(
        env,
        env["STACKTRAIL_KEYSTONE_USERNAME"],
        env["STACKTRAIL_KEYSTONE_PASSWORD"],
        env["STACKTRAIL_KEYSTONE_PROJECT_NAME"],
    )

    response = httpx.get(
        f"{env['DEVSTACK_KEYSTONE_URL']}/auth/tokens",
        headers={"X-Auth-Token": service, "X-Subject-Token": subject},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert token["user"]["name"] == env["DEVSTACK_PROJECT_A_MEMBER_USER"]
    assert token["project"]["id"] == env["DEVSTACK_PROJECT_A_ID"]
    assert "member" in {role["name"] for role in token["roles"]}


def test_swift_service_user_writes_into_project_a_and_project_b_member_is_refused(
    env: dict[str, str], service_token: str, swift: httpx.Client, container_url: str
) -> None:
    as_service = {"X-Auth-Token": service_token}

    created = swift.put(container_url, headers=as_service)
    assert created.status_code in (201, 202), created.text
    stored = swift.put(f"{container_url}/hello.txt", content=b"hello", headers=as_service)
    assert stored.status_code == 201, stored.text

    as_b_member = {"X-Auth-Token": project_token(env, "B", "MEMBER")}
    assert swift.get(container_url, headers=as_b_member).status_code == 403
    assert swift.put(f"{container_url}/x", content=b"x", headers=as_b_member).status_code == 403

    as_a_member = {"X-Auth-Token": project_token(env, "A", "MEMBER")}
    read_back = swift.get(f"{container_url}/hello.txt", headers=as_a_member)
    assert read_back.status_code == 200
    assert read_back.content == b"hello"


def test_swift_servers_use_the_hash_settings_of_the_stack_swift_dir(
    env: dict[str, str], service_token: str, swift: httpx.Client, container_url: str
) -> None:
    swift_dir = Path(env["DEVSTACK_SWIFT_DIR"])
    swift_conf = configparser.ConfigParser()
    swift_conf.read(swift_dir / "swift.conf")
    prefix = swift_conf.get("swift-hash", "swift_hash_path_prefix", fallback="")
    suffix = swift_conf.get("swift-hash", "swift_hash_path_suffix", fallback="")
    assert prefix or suffix
    object_conf = configparser.ConfigParser(interpolation=None)
    object_conf.read(swift_dir / "object-server.conf")
    devices = Path(object_conf.get("DEFAULT", "devices"))

    headers = {"X-Auth-Token": service_token}
    assert swift.put(container_url, headers=headers).status_code in (201, 202)
    assert swift.put(f"{container_url}/placed", content=b"x", headers=headers).status_code == 201

    account, container = container_url.split("/v1/", 1)[1].split("/")
    path = f"/{account}/{container}/placed"
    name_hash = hashlib.md5(f"{prefix}{path}{suffix}".encode(), usedforsecurity=False).hexdigest()
    on_disk = list(devices.glob(f"*/objects/*/{name_hash[-3:]}/{name_hash}/*.data"))
    assert on_disk, f"no object file for hash {name_hash} under {devices}"


def test_s3_put_and_get_with_the_ec2_credentials(env: dict[str, str], service_token: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=env["DEVSTACK_S3_URL"],
        aws_access_key_id=env["DEVSTACK_S3_ACCESS_KEY"],
        aws_secret_access_key=env["DEVSTACK_S3_SECRET_KEY"],
        region_name="RegionOne",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    bucket = f"devstack-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="day/events.json", Body=b'{"Records": []}')
        got = s3.get_object(Bucket=bucket, Key="day/events.json")
        assert got["Body"].read() == b'{"Records": []}'

        # The bucket is a container in the Swift account of the credential's project.
        swift_url = f"{env['DEVSTACK_SWIFT_URL']}/v1/AUTH_{env['DEVSTACK_S3_PROJECT_ID']}/{bucket}"
        head = httpx.head(swift_url, headers={"X-Auth-Token": service_token}, timeout=TIMEOUT)
        assert head.status_code == 204
        assert head.headers["X-Container-Object-Count"] == "1"
    finally:
        s3.delete_object(Bucket=bucket, Key="day/events.json")
        s3.delete_bucket(Bucket=bucket)


def test_search_server_answers(env: dict[str, str]) -> None:
    response = httpx.get(f"{env['DEVSTACK_SEARCH_URL']}/", timeout=TIMEOUT)

    assert response.status_code == 200
    assert "number" in response.json()["version"]


def test_memcached_answers_version(env: dict[str, str]) -> None:
    host, port = env["DEVSTACK_MEMCACHED"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"version\r\n")
        reply = conn.recv(128)

    assert reply.startswith(b"VERSION ")


@pytest.mark.slow
def test_expired_objects_leave_the_listing_after_dev_stack_expire(
    service_token: str, swift: httpx.Client, container_url: str
) -> None:
    headers = {"X-Auth-Token": service_token}
    assert swift.put(container_url, headers=headers).status_code in (201, 202)
    put = swift.put(
        f"{container_url}/short-lived",
        content=b"x",
        headers={**headers, "X-Delete-After": "1"},
    )
    assert put.status_code == 201

    def listed() -> list[str]:
        listing = swift.get(container_url, params={"format": "json"}, headers=headers)
        assert listing.status_code == 200
        return [entry["name"] for entry in listing.json()]

    assert listed() == ["short-lived"]
    deadline = time.monotonic() + 10
    while swift.head(f"{container_url}/short-lived", headers=headers).status_code != 404:
        assert time.monotonic() < deadline, "object did not expire"
        time.sleep(0.2)

    subprocess.run([str(DEV_STACK), "expire"], check=True, capture_output=True, timeout=120)

    assert listed() == []


def test_region_two_is_a_cluster_of_its_own_in_the_same_catalog(
    env: dict[str, str], service_token: str, swift: httpx.Client
) -> None:
    auth = v3.Password(
        auth_url=env["DEVSTACK_KEYSTONE_URL"],
        username=env["DEVSTACK_SERVICE_USER"],
        password=env["DEVSTACK_SERVICE_PASSWORD"],
        project_name=env["DEVSTACK_SERVICE_PROJECT_NAME"],
        user_domain_name="Default",
        project_domain_name="Default",
    )
    session = ks_session.Session(auth=auth)
    catalog = auth.get_access(session).service_catalog
    urls = {
        region: catalog.url_for(service_type="object-store", interface="public", region_name=region)
        for region in (env["DEVSTACK_SWIFT_REGION"], env["DEVSTACK_SWIFT2_REGION"])
    }
    assert urls[env["DEVSTACK_SWIFT_REGION"]].startswith(env["DEVSTACK_SWIFT_URL"] + "/v1/")
    assert urls[env["DEVSTACK_SWIFT2_REGION"]].startswith(env["DEVSTACK_SWIFT2_URL"] + "/v1/")

    # Same token, same account name; the container exists only where it was made.
    headers = {"X-Auth-Token": service_token}
    container = f"devstack-test-{uuid.uuid4().hex[:12]}"
    account = f"/v1/AUTH_{env['DEVSTACK_PROJECT_A_ID']}"
    two = f"{env['DEVSTACK_SWIFT2_URL']}{account}/{container}"
    one = f"{env['DEVSTACK_SWIFT_URL']}{account}/{container}"
    assert swift.put(two, headers=headers).status_code in (201, 202)
    try:
        assert swift.put(f"{two}/only-here", content=b"2", headers=headers).status_code == 201
        assert swift.head(one, headers=headers).status_code == 404
        listing = swift.get(two, params={"format": "json"}, headers=headers)
        assert [entry["name"] for entry in listing.json()] == ["only-here"]
    finally:
        swift.delete(f"{two}/only-here", headers=headers)
        swift.delete(two, headers=headers)
    assert (
        Path(env["DEVSTACK_SWIFT2_DIR"], "swift.conf").read_text()
        != Path(env["DEVSTACK_SWIFT_DIR"], "swift.conf").read_text()
    )


def test_s3_in_region_two_with_the_same_ec2_credentials(env: dict[str, str]) -> None:
    """s3api of RegionTwo's proxy answers as RegionTwo, behind the same s3token."""
    s3 = boto3.client(
        "s3",
        endpoint_url=env["DEVSTACK_S3_URL2"],
        aws_access_key_id=env["DEVSTACK_S3_ACCESS_KEY"],
        aws_secret_access_key=env["DEVSTACK_S3_SECRET_KEY"],
        region_name=env["DEVSTACK_SWIFT2_REGION"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    bucket = f"devstack-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(
        Bucket=bucket,
        CreateBucketConfiguration={"LocationConstraint": env["DEVSTACK_SWIFT2_REGION"]},
    )
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
        location = s3.get_bucket_location(Bucket=bucket)["LocationConstraint"]
        assert location == env["DEVSTACK_SWIFT2_REGION"]
    finally:
        s3.delete_object(Bucket=bucket, Key="k")
        s3.delete_bucket(Bucket=bucket)
