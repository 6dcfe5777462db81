"""Tokens of the dev stack's seeded Keystone users, issued over Keystone's REST API."""

from __future__ import annotations

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
