"""The API documents itself: every member of every schema in /openapi.json says what it is,
and every error answer is documented as a problem document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx


def _properties(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of every (nested) object schema, with its path."""
    if isinstance(node, dict):
        for name, schema in (node.get("properties") or {}).items():
            yield f"{path}.{name}", schema
        for key, value in node.items():
            yield from _properties(value, f"{path}/{key}" if key != "properties" else path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{path}[{index}]")


async def test_every_schema_property_has_a_description(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "TrailView" in schemas
    assert "EventRuleSpec" in schemas
    properties = list(_properties(schemas, "#"))
    assert len(properties) > 200
    missing = [path for path, schema in properties if not str(schema.get("description", ""))]
    assert missing == []


async def test_every_error_answer_is_a_problem_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {
        "title",
        "status",
        "detail",
        "instance",
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    errors = 0
    for url, path in document["paths"].items():
        for method, operation in path.items():
            for status, response in operation["responses"].items():
                if status[0] in "45" and url != "/readyz":
                    errors += 1
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        url,
                        status,
                    )
    assert errors > 20
