"""Seed the dev stack's Keystone with the projects, users and roles tests use.

    keystone_seed.py ensure STATE_FILE

Environment: DEVSTACK_KEYSTONE_URL (the /v3 URL), DEVSTACK_ADMIN_PASSWORD,
DEVSTACK_SWIFT_URL (proxy base URL), DEVSTACK_REGION, and optionally a second
region's proxy: DEVSTACK_SWIFT2_URL, DEVSTACK_REGION2.

Idempotent: every object is looked up before it is created. When STATE_FILE
already records a seed of this version against the same URLs, nothing is sent
to Keystone at all. When only the catalog differs (a region was added), only the
regions and object-store endpoints are ensured: users and their passwords are left
alone, so no running server's token is revoked. Either way the seeded facts are
printed on stdout as shell assignments (SEED_...=...) for scripts/dev-stack to eval.

The EC2 credential (S3 access/secret) is created once, kept in STATE_FILE and
reused as long as Keystone still knows it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import urllib.error
import urllib.parse
import urllib.request

# Bump when the model below changes: the next `start` seeds again.
SEED_VERSION = 2  # 2: the ACL-mode writer stacktrail-acl

DOMAIN_ID = "default"
PASSWORD_SUFFIX = "-devpass"

# Roles keystone-manage bootstrap does not create (it makes admin, manager,
# member, reader and service).
EXTRA_ROLES = ["audit_admin", "ResellerAdmin"]

PROJECTS = ["project-a", "project-b", "service"]

# user -> [(project, role), ...]
USERS: dict[str, list[tuple[str, str]]] = {
    # cloud-level audit administrator
    "auditor": [("admin", "audit_admin")],
    # the stacktrail service user: writes into any project's Swift account
    # (ResellerAdmin), validates tokens (service); its EC2 credential is
    # scoped to project-a, so it needs a role there for S3 logins
    "stacktrail": [("service", "ResellerAdmin"), ("service", "service"), ("project-a", "member")],
    # the ACL-mode writer: no reseller role, so only a container's ACL lets it write
    "stacktrail-acl": [("service", "member")],
    # the Swift proxy's own identity (authtoken, s3token)
    "swift": [("service", "service")],
}
for _letter in ("a", "b"):
    for _role in ("admin", "member", "reader"):
        USERS[f"{_letter}-{_role}"] = [(f"project-{_letter}", _role)]

EC2_USER = "stacktrail"
EC2_PROJECT = "project-a"


def password_for(user: str) -> str:
    return user + PASSWORD_SUFFIX


class KeystoneError(Exception):
    pass


class Keystone:
    def __init__(self, url: str, admin_password: str) -> None:
        self.url = url.rstrip("/")
        self.token = ""
        _, headers, _ = self.call(
            "POST",
            "/auth/tokens",
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": "admin",
                                "domain": {"id": DOMAIN_ID},
                                "password": admin_password,
                            }
                        },
                    },
                    "scope": {"project": {"name": "admin", "domain": {"id": DOMAIN_ID}}},
                }
            },
            expect=(201,),
        )
        self.token = headers["X-Subject-Token"]

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        expect: tuple[int, ...] = (200, 201, 204),
    ):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("X-Auth-Token", self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, exc.headers, exc.read()
        if status not in expect:
            raise KeystoneError(
                f"{method} {path}: HTTP {status}: {raw[:300].decode(errors='replace')}"
            )
        return status, headers, (json.loads(raw) if raw else {})

    def find(self, collection: str, **filters: str) -> dict | None:
        query = urllib.parse.urlencode(filters)
        _, _, body = self.call("GET", f"/{collection}?{query}")
        items = body[collection]
        return items[0] if items else None

    def ensure_role(self, name: str) -> str:
        role = self.find("roles", name=name)
        if role is None:
            _, _, body = self.call("POST", "/roles", {"role": {"name": name}})
            role = body["role"]
        return role["id"]

    def ensure_project(self, name: str) -> str:
        project = self.find("projects", name=name, domain_id=DOMAIN_ID)
        if project is None:
            _, _, body = self.call(
                "POST",
                "/projects",
                {
                    "project": {
                        "name": name,
                        "domain_id": DOMAIN_ID,
                        "description": "dev-stack project",
                    }
                },
            )
            project = body["project"]
        return project["id"]

    def ensure_user(self, name: str, password: str, default_project_id: str) -> str:
        user = self.find("users", name=name, domain_id=DOMAIN_ID)
        if user is None:
            _, _, body = self.call(
                "POST",
                "/users",
                {
                    "user": {
                        "name": name,
                        "domain_id": DOMAIN_ID,
                        "password": password,
                        "default_project_id": default_project_id,
                        "enabled": True,
                    }
                },
            )
            return body["user"]["id"]
        # Keep the documented dev password even if someone changed it.
        self.call(
            "PATCH", f"/users/{user['id']}", {"user": {"password": password, "enabled": True}}
        )
        return user["id"]

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")

    def ensure_service(self, service_type: str, name: str) -> str:
        service = self.find("services", type=service_type)
        if service is None:
            _, _, body = self.call(
                "POST",
                "/services",
                {
                    "service": {
                        "type": service_type,
                        "name": name,
                        "enabled": True,
                        "description": "dev-stack " + name,
                    }
                },
            )
            service = body["service"]
        return service["id"]

    def ensure_region(self, region: str) -> None:
        status, _, _ = self.call("GET", f"/regions/{urllib.parse.quote(region)}", expect=(200, 404))
        if status == 404:
            self.call("POST", "/regions", {"region": {"id": region, "description": "dev-stack"}})

    def ensure_endpoint(self, service_id: str, interface: str, url: str, region: str) -> None:
        query = urllib.parse.urlencode({"service_id": service_id, "interface": interface})
        _, _, body = self.call("GET", f"/endpoints?{query}")
        for endpoint in body["endpoints"]:
            if endpoint.get("region_id") == region:
                if endpoint["url"] != url:
                    self.call("PATCH", f"/endpoints/{endpoint['id']}", {"endpoint": {"url": url}})
                return
        self.call(
            "POST",
            "/endpoints",
            {
                "endpoint": {
                    "service_id": service_id,
                    "interface": interface,
                    "url": url,
                    "region_id": region,
                    "enabled": True,
                }
            },
        )

    def ensure_ec2(self, user_id: str, project_id: str, previous: dict | None) -> dict:
        if previous and previous.get("project_id") == project_id:
            status, _, _ = self.call(
                "GET",
                f"/users/{user_id}/credentials/OS-EC2/{previous['access']}",
                expect=(200, 404),
            )
            if status == 200:
                return previous
        _, _, body = self.call(
            "POST", f"/users/{user_id}/credentials/OS-EC2", {"tenant_id": project_id}
        )
        cred = body["credential"]
        return {"access": cred["access"], "secret": cred["secret"], "project_id": project_id}


def ensure_catalog(ks: Keystone, catalog: dict[str, str]) -> None:
    """An object-store endpoint (public, internal, admin) per region -> proxy URL."""
    service_id = ks.ensure_service("object-store", "swift")
    for region, swift_url in catalog.items():
        ks.ensure_region(region)
        storage_url = swift_url.rstrip("/") + "/v1/AUTH_$(project_id)s"
        for interface in ("public", "internal", "admin"):
            ks.ensure_endpoint(service_id, interface, storage_url, region)


def seed(
    keystone_url: str,
    admin_password: str,
    swift_url: str,
    region: str,
    catalog: dict[str, str],
    previous: dict,
) -> dict:
    ks = Keystone(keystone_url, admin_password)
    roles = {
        name: ks.ensure_role(name)
        for name in ["admin", "member", "reader", "service", *EXTRA_ROLES]
    }
    projects = {"admin": ks.ensure_project("admin")}
    for name in PROJECTS:
        projects[name] = ks.ensure_project(name)

    users = {}
    for name, grants in USERS.items():
        user_id = ks.ensure_user(name, password_for(name), projects[grants[0][0]])
        for project, role in grants:
            ks.grant(projects[project], user_id, roles[role])
        users[name] = {"id": user_id, "password": password_for(name)}

    ensure_catalog(ks, catalog)

    ec2 = ks.ensure_ec2(users[EC2_USER]["id"], projects[EC2_PROJECT], previous.get("ec2"))
    return {
        "seed_version": SEED_VERSION,
        "keystone_url": keystone_url,
        "swift_url": swift_url,
        "region": region,
        "catalog": catalog,
        "projects": projects,
        "users": users,
        "ec2": ec2,
    }


def load_state(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def write_state(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def shell_var(name: str) -> str:
    return name.upper().replace("-", "_")


def print_shell(state: dict) -> None:
    out = {
        "SEED_SEEDED_NOW": state.get("seeded_now", "0"),
        "SEED_CATALOG_NOW": state.get("catalog_now", "0"),
        "SEED_EC2_ACCESS": state["ec2"]["access"],
        "SEED_EC2_SECRET": state["ec2"]["secret"],
        "SEED_EC2_PROJECT_ID": state["ec2"]["project_id"],
    }
    for name, project_id in state["projects"].items():
        out["SEED_PROJECT_" + shell_var(name) + "_ID"] = project_id
    for name, user in state["users"].items():
        out["SEED_PASSWORD_" + shell_var(name)] = user["password"]
    for key, value in out.items():
        print(f"{key}={shlex.quote(str(value))}")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "ensure":
        print(__doc__, file=sys.stderr)
        return 2
    state_path = argv[1]
    keystone_url = os.environ["DEVSTACK_KEYSTONE_URL"]
    swift_url = os.environ["DEVSTACK_SWIFT_URL"]
    region = os.environ.get("DEVSTACK_REGION", "RegionOne")
    catalog = {region: swift_url}
    if os.environ.get("DEVSTACK_SWIFT2_URL"):
        catalog[os.environ.get("DEVSTACK_REGION2", "RegionTwo")] = os.environ["DEVSTACK_SWIFT2_URL"]
    previous = load_state(state_path)
    current = (
        previous.get("seed_version") == SEED_VERSION
        and previous.get("keystone_url") == keystone_url
        and previous.get("swift_url") == swift_url
        and previous.get("region") == region
    )
    # a state written before the catalog was recorded had the one region only
    if current and previous.get("catalog", {region: swift_url}) == catalog:
        print_shell(previous)
        return 0
    admin_password = os.environ["DEVSTACK_ADMIN_PASSWORD"]
    try:
        if current:
            ensure_catalog(Keystone(keystone_url, admin_password), catalog)
            state = {**previous, "catalog": catalog}
        else:
            state = seed(keystone_url, admin_password, swift_url, region, catalog, previous)
    except (KeystoneError, OSError) as exc:
        print(f"seeding keystone failed: {exc}", file=sys.stderr)
        return 1
    write_state(state_path, state)
    state["seeded_now" if not current else "catalog_now"] = "1"
    print_shell(state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
