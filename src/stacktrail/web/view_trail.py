"""A trail's status and history as what the project page shows (pure code)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stacktrail.web import explain

LABELS = {
    "enabled": "Trail on",
    "retention_days": "Retention (days)",
    "events.include": "Events included",
    "events.exclude": "Events excluded",
    "events.rules": "Event rules",
    "archive.enabled": "Delivery to container",
    "archive.container": "Container",
    "archive.prefix": "Folder",
    "archive.format": "File format",
    "archive.interval": "Delivery interval",
    "archive.regions": "Regions",
    "archive.write_mode": "Write access",
    "archive.source": "Source",
    "search.enabled": "Searchable",
}
SETTINGS_MEMBERS = tuple(name for name in LABELS if not name.startswith("events."))
ACTIONS = {
    "update/trail": "changed the trail",
    "delete/trail": "reset the trail to the cloud's defaults",
}


@dataclass(frozen=True, slots=True)
class Health:
    kind: str  # ok, error, waiting, off, unknown
    headline: str
    detail: str


def health_of(trail: dict[str, Any], status: dict[str, Any] | None) -> Health:
    archive = trail["archive"]
    if not trail["enabled"]:
        return Health("off", "Switched off", "No events of this project are recorded.")
    if status is None:
        return Health("unknown", "Status unknown", "The delivery status cannot be read now.")
    failing = [r for r in status.get("regions", []) if r.get("in_error")]
    if failing:
        first = failing[0]
        error = first.get("last_error") or {}
        where = explain.join_words([str(r["region"]) for r in failing])
        return Health(
            "error",
            f"Delivery failing in {where}",
            explain.error_words(str(error.get("message", ""))),
        )
    if not archive["enabled"]:
        return Health(
            "ok",
            "Recording",
            "Events are recorded for search only; nothing is delivered to a container.",
        )
    delivered = [
        explain.parse_time(r["last_delivery"]["at"])
        for r in status.get("regions", [])
        if r.get("last_delivery")
    ]
    latest = max((d for d in delivered if d is not None), default=None)
    if latest is None:
        return Health(
            "waiting",
            "Nothing delivered yet",
            f"The first delivery happens within {explain.duration_words(archive['interval'])} "
            "after this project's first events arrive.",
        )
    return Health(
        "ok", "Healthy", f"Last delivery {explain.ago(latest)} ({explain.time_words(latest)})."
    )


def inherited_members(trail: dict[str, Any]) -> frozenset[str]:
    """The members that follow the cloud's defaults (marked "cloud default")."""
    return frozenset(str(name) for name in trail.get("inherited") or ())


def bound_note_rows(trail: dict[str, Any]) -> list[dict[str, str]]:
    """Overrides the cloud's current limits clamp, in words for the project page."""
    return [
        {
            "label": LABELS.get(str(note.get("field")), str(note.get("field"))),
            "stored": _value(note.get("stored")),
            "effective": _value(note.get("effective")),
            "message": str(note.get("message", "")),
        }
        for note in trail.get("bound_notes") or ()
    ]


def region_rows(status: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for region in (status or {}).get("regions", []):
        delivery = region.get("last_delivery")
        error = region.get("last_error")
        rows.append(
            {
                "region": region["region"],
                "in_error": bool(region.get("in_error")),
                "delivery": delivery,
                "delivered_at": explain.parse_time(delivery["at"]) if delivery else None,
                "error": error,
                "error_at": explain.parse_time(error["at"]) if error else None,
                "error_words": explain.error_words(str(error["message"])) if error else "",
                "pending": explain.size_words(region.get("pending_spool_bytes")),
                "pending_known": region.get("pending_spool_bytes") is not None,
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class Spool:
    words: str  # how much waits, e.g. "48.2 KB"
    every_region: bool  # the same bytes go to each of several regions


def spool_waiting(status: dict[str, Any] | None) -> Spool | None:
    """What waits in the local spool, said once for the project.

    The spool keeps one copy of a project's events and delivers it to each region, so the
    status reports the project's figure with every region. None when the regions' figures
    differ: then they are per region, and each region shows its own.
    """
    regions = (status or {}).get("regions") or []
    figures = {region.get("pending_spool_bytes") for region in regions}
    if len(figures) != 1:
        return None
    [figure] = figures
    return Spool(explain.size_words(figure), len(regions) > 1 and bool(figure))


def retention_update_words(status: dict[str, Any] | None) -> str | None:
    """The progress of re-dating archived files after a retention change, in words."""
    update = (status or {}).get("retention_update")
    if not update:
        return None
    days = update["retention_days"]
    seen, updated, deleted = (
        update["objects_seen"],
        update["objects_updated"],
        update["objects_deleted"],
    )
    files = f"{updated} file{'s' if updated != 1 else ''} given the new expiry date"
    if deleted:
        files += f", {deleted} already past it deleted"
    state = update["status"]
    if state == "done":
        return f"Retention changed to {days} days: existing files updated ({files})."
    if state == "failed":
        return (
            f"Retention changed to {days} days, but updating existing files failed "
            f"({update.get('error') or 'unknown error'}); it is retried. So far: {files}."
        )
    if state == "running":
        return (
            f"Retention changed to {days} days: updating existing files ({seen} checked; {files})."
        )
    return f"Retention changed to {days} days: existing files will be updated shortly."


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {}
    result: dict[str, Any] = {}
    for name, value in doc.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            result.update(_flat(value, key + "."))
        else:
            result[key] = value
    return result


def _value(value: Any) -> str:
    if value is None:
        return "(cloud default)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        rules = [f"{v.get('effect', '')} {explain.rule_words(v)}" for v in value]
        return "; ".join(rules) or "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def defaults_baseline(
    defaults: dict[str, Any], archive_enabled: bool, prefix: str
) -> dict[str, Any]:
    """What a trail nobody configured reads as (flat), to describe a first configuration."""
    if not defaults:
        return {}
    return {
        "enabled": True,
        "retention_days": defaults.get("default_retention_days"),
        "events.include": [],
        "events.exclude": [],
        "events.rules": [],
        "archive.enabled": archive_enabled,
        "archive.container": defaults.get("default_container"),
        "archive.prefix": prefix,
        "archive.format": defaults.get("default_format"),
        "archive.interval": defaults.get("default_interval"),
        "archive.regions": defaults.get("regions"),
        "archive.write_mode": "reseller",
        "archive.source": "ingest",
        "search.enabled": True,
    }


_COMPLETE = {"enabled", "retention_days", "events", "archive", "search"}


def change_rows(
    changes: list[dict[str, Any]], baseline: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Changes newest first, each with what changed in words (a document of None is the
    cloud's defaults: compared with `baseline`, or not itemised)."""
    rows = []
    for change in changes:
        diffs = []
        new_doc = change.get("new")
        old_doc = change.get("old")
        # documents are overrides (a member left out follows the cloud's default); entries
        # recorded before hold complete documents, the first of them compared with `baseline`
        complete = isinstance(new_doc, dict) and set(new_doc) >= _COMPLETE
        if new_doc is not None and (old_doc is not None or baseline or not complete):
            new = _flat(new_doc)
            keys: Iterable[str] = LABELS
            if old_doc is not None:
                old = _flat(old_doc)
            else:
                old = baseline or {}
                if not complete:  # a first set of overrides: only what it sets changed
                    keys = [key for key in LABELS if key in new]
            for key in keys:
                label = LABELS[key]
                if old.get(key) != new.get(key):
                    diffs.append(f"{label}: {_value(old.get(key))} → {_value(new.get(key))}")
        at = explain.parse_time(change.get("changed_at"))
        rows.append(
            {
                "who": change.get("user_name") or change.get("user_id"),
                "what": ACTIONS.get(str(change.get("action")), str(change.get("action"))),
                "at": explain.time_words(at),
                "ago": explain.ago(at),
                "version": change.get("version"),
                "diffs": diffs,
            }
        )
    return rows
