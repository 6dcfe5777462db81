"""Hermes-compatible normalisation of CADF events (what its Logstash pipeline did).

Keystone's own notifications name actions `<past tense verb>.<resource>`
(`created.project`, `deleted.role_assignment`); the CADF taxonomy and every other
OpenStack service use `<verb>/<resource>`. Python's `isoformat` with `%z`-style
formatting produces `+0000` offsets, which strict ISO 8601 readers (Elasticsearch's
`date_optional_time` among them) reject; they become `+00:00`.

Everything here mutates the freshly decoded event in place: no copies.
"""

from __future__ import annotations

from typing import Any

# Keystone's notification verbs (keystone.notifications.ACTIONS) and their CADF form.
_PAST_TENSE = {
    "created": "create",
    "deleted": "delete",
    "updated": "update",
    "disabled": "disable",
    "enabled": "enable",
}


def normalise_action(action: str) -> str:
    """`created.project` -> `create/project`, then every other `.` -> `/` (Logstash's
    rule: `created.role_assignment` -> `create/role_assignment`)."""
    verb, dot, rest = action.partition(".")
    if not dot:
        return action
    present = _PAST_TENSE.get(verb)
    if present is not None:
        return f"{present}/{rest.replace('.', '/')}"
    return action.replace(".", "/")


PROJECT_TYPE = "data/security/project"
# keystone's role assignment notification: top-level member -> (attachment typeURI)
_ASSIGNMENT_ATTACHMENTS = {
    "role": ("role_id", "/data/security/role"),
    "group": ("group_id", "/data/security/group"),
    "inherited_to_projects": ("inherited_to_projects", "xs:boolean"),
}


def _present(value: Any) -> bool:
    return type(value) is str and value != "" and value != "unknown"


def normalise_keystone(cadf: dict[str, Any]) -> None:
    """Logstash's keystone rules, in place (steps 4-7 of Hermes' pipeline):

    - a project's own events: `target.project_id` := `target.id`;
    - `initiator.user_id` -> `initiator.id`, `initiator.domain_name` -> `initiator.domain`;
    - top-level `project` -> `target.project_id`, `domain` -> `target.domain_id` when the
      initiator has neither a project nor a domain;
    - role assignments: `role`, `group`, `inherited_to_projects` are also attachments, and
      a user target's id is the top-level `user`.
    Only members of the right type are moved; anything else is left as it is.
    """
    initiator = cadf.get("initiator")
    target = cadf.get("target")
    if type(initiator) is not dict or type(target) is not dict:
        return
    project_target = target.get("typeURI") == PROJECT_TYPE
    if project_target and _present(target.get("id")) and not _present(target.get("project_id")):
        target["project_id"] = target["id"]
    user_id = initiator.pop("user_id", None)
    if _present(user_id):
        initiator["id"] = user_id
    elif user_id is not None:
        initiator["user_id"] = user_id
    domain_name = initiator.pop("domain_name", None)
    if _present(domain_name):
        initiator["domain"] = domain_name
    elif domain_name is not None:
        initiator["domain_name"] = domain_name
    if not _present(initiator.get("project_id")) and not _present(initiator.get("domain_id")):
        project, domain = cadf.get("project"), cadf.get("domain")
        if _present(project) and not _present(target.get("project_id")):
            target["project_id"] = project
        if _present(domain) and not _present(target.get("domain_id")):
            target["domain_id"] = domain
    existing = cadf.get("attachments")
    if existing is None or type(existing) is list:  # else not CADF: leave it all be
        moved: list[dict[str, Any]] = []
        for member, (name, type_uri) in _ASSIGNMENT_ATTACHMENTS.items():
            value = cadf.get(member)
            if type(value) is str or type(value) is bool:  # the member stays (as received)
                moved.append({"name": name, "typeURI": type_uri, "content": value})
        if moved:
            cadf["attachments"] = [*(existing or ()), *moved]
    user = cadf.get("user")
    if _present(user) and str(target.get("typeURI", "")).endswith("account/user"):
        target["id"] = user


def normalise_offset(value: str) -> str:
    """`...T01:20:47.93+0000` -> `...T01:20:47.93+00:00`; other strings are returned as is.

    Only a trailing `+HHMM`/`-HHMM` (ASCII digits) is rewritten, as in Hermes.
    """
    if len(value) > 5 and value[-5] in "+-":
        digits = value[-4:]
        if digits.isascii() and digits.isdigit():
            return f"{value[:-2]}:{value[-2:]}"
    return value


def normalise_reporterchain(chain: Any) -> None:
    """Fix the offsets of `reporterTime` in a CADF reporterchain, in place.

    The chain is optional and not validated: entries that are not objects, or times
    that are not strings, are left alone.
    """
    if type(chain) is not list:
        return
    for step in chain:
        if type(step) is dict:
            when = step.get("reporterTime")
            if type(when) is str:
                fixed = normalise_offset(when)
                if fixed is not when:
                    step["reporterTime"] = fixed
