"""Tokens of the dev stack's seeded Keystone users, issued over Keystone's REST API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

# who -> (env prefix of user/password, project env var or name)
_USERS = {
    "a_admin": ("DEVSTACK_PROJECT_A_ADMIN", "DEVSTACK_PROJECT_A_NAME"),
    "a_member": ("DEVSTACK_PROJECT_A_MEMBER", "DEVSTACK_PROJECT_A_NAME"),
    "a_reader": ("DEVSTACK_PROJECT_A_READER", "DEVSTACK_PROJECT_A_NAME"),
    "b_admin": ("DEVSTACK_PROJECT_B_ADMIN", "DEVSTACK_PROJECT_B_NAME"),
    "cloud_admin": ("DEVSTACK_CLOUD_ADMIN", "DEVSTACK_CLOUD_ADMIN_PROJECT"),
    # the auditor holds only the audit admin role, on the cloud admin project
    "audit_admin": ("DEVSTACK_AUDIT_ADMIN", "DEVSTACK_CLOUD_ADMIN_PROJECT"),
}


@dataclass
class KeystoneUsers:
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.env["DEVSTACK_KEYSTONE_URL"]

    def project_id(self, letter: str) -> str:
        return self.env[f"DEVSTACK_PROJECT_{letter.upper()}_ID"]

    async def token(self, who: str) -> str:
        """A new project-scoped token of a seeded user."""
        prefix, project_var = _USERS[who]
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.env[f"{prefix}_USER"],
                            "domain": {"id": "default"},
                            "password": self.env[f"{prefix}_PASSWORD"],
                        }
                    },
                },
                "scope": {"project": {"name": self.env[project_var], "domain": {"id": "default"}}},
            }
        }
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"{self.url}/auth/tokens", json=body)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    async def revoke(self, token: str) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.delete(
                f"{self.url}/auth/tokens",
                headers={"X-Auth-Token": token, "X-Subject-Token": token},
            )
        assert response.status_code == 204, response.text


# who -> (project letter or the cloud admin project, role): users the seed does not have,
# provisioned by `KeystoneUsers.provision` for the role matrix
EXTRA_USERS = {
    "a_audit_viewer": ("a", "audit_viewer"),
    "a_audit_admin": ("a", "audit_admin"),
    "b_audit_admin": ("b", "audit_admin"),
}


@dataclass
class ProvisionedUser:
    name: str
    password: str
    project_id: str


async def provision(users: KeystoneUsers, run_id: str) -> dict[str, ProvisionedUser]:
    """Create (or reset the password of) each of EXTRA_USERS with exactly its one role,
    as the cloud admin over Keystone's REST API; the roles are created when missing."""
    admin = {"X-Auth-Token": await users.token("cloud_admin")}
    made: dict[str, ProvisionedUser] = {}
    async with httpx.AsyncClient(base_url=users.url + "/", timeout=30, headers=admin) as http:
        role_ids: dict[str, str] = {}
        for _letter, role in EXTRA_USERS.values():
            if role in role_ids:
                continue
            found = (await http.get("roles", params={"name": role})).json()["roles"]
            if not found:
                created = await http.post("roles", json={"role": {"name": role}})
                created.raise_for_status()
                found = [created.json()["role"]]
            role_ids[role] = found[0]["id"]
        reset = False
        for who, (letter, role) in EXTRA_USERS.items():
            name = f"stacktrail-test-{who.replace('_', '-')}"
            password = f"pw-{run_id}-{who}"
            project_id = users.project_id(letter)
            listed = (await http.get("users", params={"name": name})).json()["users"]
            if listed:
                user_id = listed[0]["id"]
                patched = await http.patch(
                    f"users/{user_id}", json={"user": {"password": password}}
                )
                patched.raise_for_status()
                reset = True
            else:
                created = await http.post(
                    "users",
                    json={"user": {"name": name, "password": password, "domain_id": "default"}},
                )
                created.raise_for_status()
                user_id = created.json()["user"]["id"]
            granted = await http.put(
                f"projects/{project_id}/users/{user_id}/roles/{role_ids[role]}"
            )
            granted.raise_for_status()
            made[who] = ProvisionedUser(name, password, project_id)
    if reset:
        # A password change revokes the user's tokens issued before it, to the second
        # (Fernet tokens carry whole seconds): a token issued within the same second
        # would count as revoked.
        await asyncio.sleep(1.1)
    return made


async def token_of(users: KeystoneUsers, user: ProvisionedUser) -> str:
    """A token of a provisioned user, scoped to its project."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": user.name,
                        "domain": {"id": "default"},
                        "password": user.password,
                    }
                },
            },
            "scope": {"project": {"id": user.project_id}},
        }
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{users.url}/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]
