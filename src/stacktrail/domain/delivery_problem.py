"""What a failed delivery means and what fixes it (pure code).

The uploader records the store's answer as text (`HTTP 404`, `no such directory`, ...);
this turns it into the kind of problem, the answer in words, what to do, and, for a
container the project owns (ACL mode), the exact command that grants stacktrail write.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum


class ProblemKind(StrEnum):
    MISSING_CONTAINER = "missing_container"
    NO_PERMISSION = "no_permission"
    QUOTA = "quota"
    AUTH = "auth"
    NO_ACL_WRITER = "no_acl_writer"
    NO_ENDPOINT = "no_endpoint"
    UNREACHABLE = "unreachable"
    LATE_EVENTS = "late_events"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    kind: ProblemKind
    answer: str  # what the store said, in words
    fix: str  # what to do
    commands: tuple[str, ...] = ()  # exact commands that fix it, in order
    operator: bool = False  # only the cloud operator can fix it


_RULES: list[tuple[ProblemKind, re.Pattern[str]]] = [
    (ProblemKind.LATE_EVENTS, re.compile(r"arrived after their retention", re.I)),
    (
        ProblemKind.NO_ACL_WRITER,
        re.compile(r"no ACL writer is configured|holds the reseller", re.I),
    ),
    (ProblemKind.NO_ENDPOINT, re.compile(r"no object-store endpoint", re.I)),
    (ProblemKind.QUOTA, re.compile(r"quota|HTTP 413|HTTP 507", re.I)),
    (ProblemKind.MISSING_CONTAINER, re.compile(r"HTTP 404|no such directory|NoSuchBucket", re.I)),
    (ProblemKind.AUTH, re.compile(r"HTTP 401|token refused|Keystone|authenticat", re.I)),
    (ProblemKind.NO_PERMISSION, re.compile(r"HTTP 403|does not grant write|AccessDenied", re.I)),
    (ProblemKind.UNREACHABLE, re.compile(r"unreachable|timed? ?out|HTTP 5\d\d", re.I)),
]


def kind_of(message: str) -> ProblemKind:
    for kind, pattern in _RULES:
        if pattern.search(message):
            return kind
    return ProblemKind.OTHER


def grant_command(container: str, writer: str) -> str:
    """The Swift ACL line granting `writer` (`<project id>:<user id>`) write access."""
    return f"swift post -w {shlex.quote(writer)} {shlex.quote(container)}"


def diagnose(
    message: str,
    *,
    container: str,
    acl_mode: bool,
    acl_writer: str | None,
    service_user: str,
) -> Diagnosis:
    """`acl_writer`: the ACL-mode writer as Swift's ACL names it (None: not configured);
    `service_user`: the identity writing reseller-mode trails."""
    kind = kind_of(message)
    grant = (grant_command(container, acl_writer),) if acl_writer else ()
    if kind is ProblemKind.MISSING_CONTAINER:
        if acl_mode:
            return Diagnosis(
                kind,
                f"The container {container} does not exist (the store answered 404).",
                "Create the container in your project, then grant stacktrail's writer "
                "write access to it; or let stacktrail manage the container.",
                (f"openstack container create {shlex.quote(container)}", *grant),
            )
        return Diagnosis(
            kind,
            f"The store answered that container {container} does not exist (404).",
            "stacktrail creates it at the next attempt; if this stays, the cloud operator "
            "needs to check the object storage.",
            operator=True,
        )
    if kind is ProblemKind.NO_PERMISSION:
        if acl_mode:
            return Diagnosis(
                kind,
                f"The container {container} exists but does not let stacktrail write into it "
                "(the store answered 403).",
                "Grant stacktrail's writer write access to the container (this replaces the "
                "container's write ACL: add other writers after a comma).",
                grant,
            )
        return Diagnosis(
            kind,
            f"The object storage refused the writes of stacktrail's service user "
            f"{service_user} (403).",
            f"The cloud operator needs to give {service_user} the reseller role, or you "
            "switch the trail to a container of your own (ACL mode).",
            operator=True,
        )
    if kind is ProblemKind.QUOTA:
        return Diagnosis(
            kind,
            "Your project's object storage is full: the store refused the object (quota).",
            "Free space in your project's object storage or ask for a larger quota; delivery "
            "resumes by itself.",
        )
    if kind is ProblemKind.AUTH:
        return Diagnosis(
            kind,
            "The object storage did not accept stacktrail's credentials (401).",
            "The cloud operator needs to check stacktrail's service credentials "
            "(STACKTRAIL_KEYSTONE_* or STACKTRAIL_SWIFT_ACL_*).",
            operator=True,
        )
    if kind is ProblemKind.NO_ACL_WRITER:
        return Diagnosis(
            kind,
            "This cloud has no usable writer for containers in ACL mode.",
            "Let stacktrail manage the container (write mode: reseller), or ask the cloud "
            "operator to configure the ACL writer (STACKTRAIL_SWIFT_ACL_*).",
            operator=True,
        )
    if kind is ProblemKind.NO_ENDPOINT:
        return Diagnosis(
            kind,
            "This region has no object storage service.",
            "Choose another region or ask the cloud operator.",
        )
    if kind is ProblemKind.UNREACHABLE:
        return Diagnosis(
            kind,
            "The object storage did not answer (unreachable, timed out or a server error).",
            "Nothing to do: stacktrail keeps retrying and loses no events meanwhile.",
            operator=True,
        )
    if kind is ProblemKind.LATE_EVENTS:
        return Diagnosis(
            kind,
            "Some late events were already older than your retention, so they were not stored.",
            "Nothing needs to be done.",
        )
    return Diagnosis(
        kind,
        "Delivering events failed.",
        "stacktrail keeps retrying; no events are lost meanwhile.",
    )
