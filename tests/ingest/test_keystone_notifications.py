"""Real Keystone notifications (`notification_format = cadf`, `messagingv2`) through the
pipeline into search: bootstrap (no initiator: the unscoped trail), a project's creation
(the project's own trail), a role assignment in it, a failed login; then Hermes' queries.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from stacktrail.config import Settings
from stacktrail.domain.trail import UNSCOPED
from stacktrail.search.documents import SearchLayout
from tests.support.hermes_queries import LEGACY, Generation, hits, struct_problems
from tests.support.keystone_notifier import ADMIN_PASSWORD, notifying_keystone
from tests.support.pipeline import running, until_consuming
from tests.support.polling import eventually


def _token(url: str, user: str, password: str, project: str | None = "admin") -> httpx.Response:
    identity = {
        "methods": ["password"],
        "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
    }
    auth: dict[str, Any] = {"identity": identity}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return httpx.post(f"{url}/auth/tokens", json={"auth": auth}, timeout=60)


def keystone_changes(url: str) -> dict[str, str]:
    """Create a project and a user, grant a role, fail a login; returns their ids."""
    token = _token(url, "admin", ADMIN_PASSWORD).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as ks:
        name = f"p-{uuid.uuid4().hex[:8]}"
        project = ks.post("/projects", json={"project": {"name": name, "domain_id": "default"}})
        project.raise_for_status()
        user = ks.post("/users", json={"user": {"name": f"u-{name}", "password": "pw-1234567"}})
        user.raise_for_status()
        roles = ks.get("/roles", params={"name": "admin"}).json()["roles"]
        project_id, user_id = project.json()["project"]["id"], user.json()["user"]["id"]
        grant = ks.put(f"/projects/{project_id}/users/{user_id}/roles/{roles[0]['id']}")
        grant.raise_for_status()
    failed = _token(url, f"u-{name}", "wrong-password", None)
    assert failed.status_code == 401
    return {"project": project_id, "user": user_id}


async def test_keystone_notifications_reach_their_trails(
    amqp_url: str, search_url: str, index_template: str, tmp_path: Path
) -> None:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["keystone:notifications.#"],
        search_url=search_url,
        search_index_template=index_template,
        search_flush_interval="20ms",
        archive_enabled=False,
        shutdown_grace="5s",
    )
    layout = SearchLayout.from_settings(settings)
    prefix = index_template.split("{project_id}")[0]
    hermes = Generation(LEGACY, prefix=prefix)
    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:

        async def events(tenant: str, **filters: str) -> list[dict[str, Any]]:
            await http.post(f"/{layout.pattern}/_refresh")
            index, body = hermes.list_events(tenant, filters=filters, size=100)
            response = await http.post(
                f"/{index}/_search?ignore_unavailable=true&allow_no_indices=true", json=body
            )
            return hits(response.json()) if response.status_code == 200 else []

        try:
            async with running(settings):
                await until_consuming(settings)
                with notifying_keystone(tmp_path, amqp_url) as url:
                    ids = await asyncio.to_thread(keystone_changes, url)

                project = ids["project"]

                async def arrived() -> bool:
                    mine = await events(project)
                    actions = {d["action"] for d in mine}
                    unscoped = await events(UNSCOPED)
                    return {"create/project", "create/role_assignment"} <= actions and any(
                        d["action"] == "authenticate" and d["outcome"] == "failure"
                        for d in unscoped
                    )

                await eventually(arrived, within=90, every=0.3)
            mine = await events(project)
            for doc in mine:
                assert struct_problems(doc) == []
            (created,) = [d for d in mine if d["action"] == "create/project"]
            assert created["target"]["project_id"] == project  # Logstash's step 4
            (granted,) = await events(project, action="create/role_assignment")
            names = {a["name"]: a["content"] for a in granted["attachments"]}
            assert names["role_id"]
            assert names["inherited_to_projects"] == "false"  # a string, as Hermes decodes it
            assert granted["target"]["id"] == ids["user"]
            unscoped = await events(UNSCOPED)
            bootstrap = [d for d in unscoped if d["action"].startswith("create/")]
            assert bootstrap, "keystone-manage bootstrap's events (no initiator) are unscoped"
            assert await events(UNSCOPED, outcome="failure")
        finally:
            await http.delete(f"/{layout.pattern}")
            await http.delete(f"/_index_template/{layout.template_name}")
