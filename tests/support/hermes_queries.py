"""The search requests Hermes sends, both generations, written from what its storage
code does (sapcc/hermes `pkg/storage/elasticsearch.go`: per-tenant indices `audit-{tenant}*`;
SAP-cloud-infrastructure/hermez `pkg/storage/opensearch.go`: one index `hermes`, tenants
isolated by a `term` on `tenant_ids`).

Each helper returns (index expression, request body) for `POST /<index>/_search`.
"""

from __future__ import annotations

from typing import Any

Body = dict[str, Any]

# Hermes API filter -> the field it queries (every filter an exact `term` on `.keyword`)
FILTER_FIELDS = {
    "action": "action.keyword",
    "outcome": "outcome.keyword",
    "request_path": "requestPath.keyword",
    "observer_id": "observer.id.keyword",
    "observer_type": "observer.typeURI.keyword",
    "target_id": "target.id.keyword",
    "target_type": "target.typeURI.keyword",
    "initiator_id": "initiator.id.keyword",
    "initiator_type": "initiator.typeURI.keyword",
    "initiator_name": "initiator.name.keyword",
}
TIME_FIELD = "eventTime"
MAX_PAGE = 20000  # Hermes' largest page (index.max_result_window)


class Generation:
    """One Hermes generation: where it reads and how it scopes a tenant."""

    def __init__(self, name: str, *, prefix: str = "audit-", shared_index: str = "hermes"):
        self.name = name
        self.prefix = prefix
        self.shared_index = shared_index

    @property
    def shared(self) -> bool:
        return self.name == "hermez"

    def index(self, tenant: str) -> str:
        return self.shared_index if self.shared else f"{self.prefix}{tenant}*"

    def _bool(self, tenant: str) -> dict[str, list[Any]]:
        clause: dict[str, list[Any]] = {"must": [], "filter": [], "must_not": []}
        if self.shared:
            clause["filter"].append({"term": {"tenant_ids": tenant}})
        return clause

    def list_events(
        self,
        tenant: str,
        *,
        filters: dict[str, str] | None = None,
        time: dict[str, str] | None = None,
        search: str = "",
        size: int = 10,
        offset: int = 0,
    ) -> tuple[str, Body]:
        """GET /v1/events: filters (`!value` negates), a time range, a search string."""
        clause = self._bool(tenant)
        for name, value in (filters or {}).items():
            field = FILTER_FIELDS[name]
            if value.startswith("!"):
                clause["must_not"].append({"term": {field: value[1:]}})
            else:
                clause["filter"].append({"term": {field: value}})
        if time:
            if self.shared:  # one range with every bound
                clause["filter"].append({"range": {TIME_FIELD: dict(time)}})
            else:  # one range per bound
                for op, value in time.items():
                    clause["filter"].append({"range": {TIME_FIELD: {op: value}}})
        if search:
            clause["must"].append({"query_string": {"query": search}})
        body: Body = {
            "query": {"bool": {k: v for k, v in clause.items() if v}},
            "sort": [{TIME_FIELD: {"order": "desc"}}],
            "from": offset,
            "size": size,
        }
        return self.index(tenant), body

    def get_event(self, tenant: str, event_id: str) -> tuple[str, Body]:
        """GET /v1/events/{id}: a `term` on `id`."""
        if self.shared:
            query: Body = {
                "bool": {
                    "must": [{"term": {"id": event_id}}],
                    "filter": [{"term": {"tenant_ids": tenant}}],
                }
            }
        else:
            query = {"term": {"id": event_id}}
        return self.index(tenant), {"query": query}

    def attributes(self, tenant: str, name: str, limit: int = 50) -> tuple[str, Body]:
        """GET /v1/attributes/{name}: a `terms` aggregation on the `.keyword` field."""
        body: Body = {
            "size": 0,
            "aggs": {"attributes": {"terms": {"field": FILTER_FIELDS[name], "size": limit}}},
        }
        if self.shared:
            body["query"] = {"bool": {"filter": [{"term": {"tenant_ids": tenant}}]}}
        return self.index(tenant), body


LEGACY = "hermes"
CURRENT = "hermez"


def hits(response: Body) -> list[Body]:
    found: list[Body] = response["hits"]["hits"]
    return [hit["_source"] for hit in found]


def buckets(response: Body) -> list[str]:
    return [str(b["key"]) for b in response["aggregations"]["attributes"]["buckets"]]


# Where Hermes' Go CADF struct (sapcc/go-api-declarations `cadf.Event`) has a string.
_EVENT_STRINGS = ("typeURI", "id", "eventTime", "eventType", "action", "outcome", "requestPath")
_RESOURCE_STRINGS = (
    "typeURI",
    "name",
    "domain",
    "id",
    "project_id",
    "domain_id",
    "project_name",
    "project_domain_name",
    "domain_name",
)


def struct_problems(doc: Body) -> list[str]:
    """Why Hermes could not decode this hit into its struct ([] when it can)."""
    problems: list[str] = []

    def strings(obj: Any, names: tuple[str, ...], where: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            problems.append(f"{where} is not an object")
            return
        for name in names:
            value = obj.get(name)
            if value is not None and not isinstance(value, str):
                problems.append(f"{where}{name} is {type(value).__name__}")

    def attachments(items: Any, where: str) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            problems.append(f"{where}attachments is not a list")
            return
        for item in items:
            strings(item, ("name", "typeURI", "content"), f"{where}attachments[].")

    strings(doc, _EVENT_STRINGS, "")
    strings(doc.get("reason"), ("reasonType", "reasonCode"), "reason.")
    attachments(doc.get("attachments"), "")
    for name in ("initiator", "target", "observer"):
        resource = doc.get(name)
        strings(resource, _RESOURCE_STRINGS, f"{name}.")
        if isinstance(resource, dict):
            strings(resource.get("host"), ("id", "address", "agent", "platform"), f"{name}.host.")
            for address in resource.get("addresses") or []:
                strings(address, ("url", "name"), f"{name}.addresses[].")
            attachments(resource.get("attachments"), f"{name}.")
    return problems
