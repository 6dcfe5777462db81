"""JSON Merge Patch (RFC 7386)."""

from __future__ import annotations

from typing import Any

MERGE_PATCH_MEDIA_TYPE = "application/merge-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply `patch` to `target`: objects merge recursively, null removes a member,
    anything else replaces. Neither argument is modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result
