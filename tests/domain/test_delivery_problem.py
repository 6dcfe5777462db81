"""What a recorded delivery error means and what fixes it: the uploader's real messages."""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from stacktrail.domain.delivery_problem import ProblemKind, diagnose, grant_command, kind_of

P = "da07cc4c8d3a481e90e8830fcf6aca5b"
WRITER = "5e1f0000aaaa:9c2b0000bbbb"
MISSING = (
    f"container customer in project {P} does not grant write to the stacktrail service user "
    "(region RegionOne, HTTP 404: Not Found The resource could not be found.)"
)
FORBIDDEN = (
    f"container customer in project {P} does not grant write to the stacktrail service user "
    "(region RegionOne, HTTP 403: Forbidden)"
)
RESELLER_403 = (
    f"PUT audit-trail/x.json.gz in project {P}: HTTP 403 Forbidden (the stacktrail service "
    f"user may not write into project {P}: reseller role missing?)"
)


def test_a_missing_container_is_not_a_refused_grant() -> None:
    d = diagnose(MISSING, container="customer", acl_mode=True, acl_writer=WRITER, service_user="st")
    assert d.kind is ProblemKind.MISSING_CONTAINER
    assert "does not exist" in d.answer
    assert d.commands == (
        "openstack container create customer",
        f"swift post -w {WRITER} customer",
    )


def test_a_refused_grant_names_the_writer_to_grant() -> None:
    d = diagnose(
        FORBIDDEN, container="customer", acl_mode=True, acl_writer=WRITER, service_user="st"
    )
    assert d.kind is ProblemKind.NO_PERMISSION
    assert d.commands == (f"swift post -w {WRITER} customer",)
    assert not d.operator


def test_reseller_mode_refusals_are_the_operators() -> None:
    d = diagnose(
        RESELLER_403,
        container="audit-trail",
        acl_mode=False,
        acl_writer=None,
        service_user="stacktrail",
    )
    assert d.kind is ProblemKind.NO_PERMISSION
    assert d.operator
    assert "stacktrail" in d.fix
    assert d.commands == ()


def test_quota_auth_and_late_events() -> None:
    assert kind_of("PUT x: HTTP 413 Request Entity Too Large (quota exceeded)") is ProblemKind.QUOTA
    assert kind_of("PUT x: HTTP 401 Unauthorized (token refused after renewal)") is ProblemKind.AUTH
    assert kind_of("events of 2025-01-01 arrived after their retention of 30 days had passed") is (
        ProblemKind.LATE_EVENTS
    )
    assert kind_of("PUT x: Swift unreachable: ConnectError()") is ProblemKind.UNREACHABLE


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_the_grant_line_is_one_safe_shell_command(container: str, writer: str) -> None:
    line = grant_command(container, writer)
    assert shlex.split(line) == ["swift", "post", "-w", writer, container]
