from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacktrail.config import Settings
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.names import is_valid_project_id, owner_id
from stacktrail.domain.trail import UNSCOPED, EventFilter, Trail, default_trail
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.route import Router, owner_projects
from tests.support.cadf_factory import encode, load_sample, make_cadf, make_notification, wrap_v1

SETTINGS = Settings()
P1 = "aaaa0000aaaa0000aaaa0000aaaa0000"
P2 = "bbbb1111bbbb1111bbbb1111bbbb1111"


class Directory:
    """A trail directory for tests: operator defaults unless a trail is given; records lookups."""

    def __init__(self, *trails: Trail) -> None:
        self.trails = {trail.project_id: trail for trail in trails}
        self.asked: list[str] = []

    def get(self, project_id: str) -> Trail:
        self.asked.append(project_id)
        trail = self.trails.get(project_id)
        return trail if trail is not None else default_trail(project_id, SETTINGS)


def trail(
    project_id: str,
    *,
    enabled: bool = True,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> Trail:
    return replace(
        default_trail(project_id, SETTINGS),
        enabled=enabled,
        events=EventFilter(include=include, exclude=exclude),
    )


def event(
    initiator_project_id: str | None = None,
    target_project_id: str | None = None,
    initiator_domain_id: str | None = None,
    *,
    event_type: str = "audit.http.response",
    action: str = "update",
    target_type: str = "compute/server",
) -> AuditEvent:
    return AuditEvent(
        id="e1",
        time=datetime(2024, 5, 17, 9, 41, tzinfo=UTC),
        event_type=event_type,
        action=action,
        outcome="success",
        target_type=target_type,
        initiator_project_id=initiator_project_id,
        target_project_id=target_project_id,
        initiator_domain_id=initiator_domain_id,
        body={},
    )


def projects(trails: list[Trail]) -> list[str]:
    return [t.project_id for t in trails]


# --------------------------------------------------------------------------- ownership


@pytest.mark.parametrize(
    ("initiator", "target", "domain", "expected"),
    [
        pytest.param(P1, None, None, [P1], id="initiator only"),
        pytest.param(None, P2, None, [P2], id="target only"),
        pytest.param(None, None, "default", ["default"], id="domain only"),
        pytest.param(P1, P2, None, [P1, P2], id="cross-project"),
        pytest.param(P1, P1, None, [P1], id="same project"),
        pytest.param(P1, None, "default", [P1], id="project beats domain"),
        pytest.param(None, P2, "default", [P2], id="target beats domain"),
        pytest.param(P1, P2, "default", [P1, P2], id="cross-project in a domain"),
        pytest.param(None, None, None, [UNSCOPED], id="unscoped"),
    ],
)
def test_owners(
    initiator: str | None, target: str | None, domain: str | None, expected: list[str]
) -> None:
    directory = Directory()
    routed = Router(directory).route(event(initiator, target, domain))
    assert projects(routed) == expected
    assert directory.asked == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../../etc",
        "a/b",
        "a.b",
        "a b",
        "p1\n",
        "p1\x00",
        "proj%2F",
        "x" * 65,
        "проект",
        "p\u0661",  # a non-ASCII digit
        "AUTH_p1;rm",
    ],
)
def test_invalid_ids_count_as_absent(bad: str) -> None:
    directory = Directory()
    router = Router(directory)
    assert projects(router.route(event(bad, P2))) == [P2]
    assert projects(router.route(event(bad, None, "default"))) == ["default"]
    assert projects(router.route(event(P1, bad))) == [P1]
    assert projects(router.route(event(None, bad, "default"))) == ["default"]
    assert projects(router.route(event(bad, bad, bad))) == [UNSCOPED]
    assert bad not in directory.asked


def test_custom_unscoped_project() -> None:
    router = Router(Directory(), unscoped_project="cloud-admin-audit")
    assert router.unscoped_project == "cloud-admin-audit"
    assert projects(router.route(event())) == ["cloud-admin-audit"]


@pytest.mark.parametrize("bad", ["", "un scoped", "a/b", "x" * 65, "ops_audit"])
def test_invalid_unscoped_project_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid project id"):
        Router(Directory(), unscoped_project=bad)


def test_owner_projects_without_a_directory() -> None:
    assert owner_projects(event(P1, P2)) == [P1, P2]
    assert owner_projects(event(), "ops") == ["ops"]


# --------------------------------------------------------------------------- trail settings


def test_disabled_trail_gets_nothing() -> None:
    router = Router(Directory(trail(P1, enabled=False)))
    assert router.route(event(P1)) == []
    # the other side of a cross-project event still gets its copy
    assert projects(router.route(event(P1, P2))) == [P2]
    assert projects(router.route(event(P2, P1))) == [P2]


def test_disabled_unscoped_trail() -> None:
    router = Router(Directory(trail(UNSCOPED, enabled=False)))
    assert router.route(event()) == []


def test_returns_the_directory_trails() -> None:
    configured = replace(trail(P1), retention_days=7, version=3)
    assert Router(Directory(configured)).route(event(P1)) == [configured]


@pytest.mark.parametrize(
    ("events", "routed_event", "taken"),
    [
        pytest.param({}, event(P1), True, id="no filter"),
        pytest.param({"include": ("identity.*",)}, event(P1), False, id="include type, other"),
        pytest.param(
            {"include": ("identity.*",)},
            event(P1, event_type="identity.project.created"),
            True,
            id="include type",
        ),
        pytest.param(
            {"include": ("create/*",)},
            event(P1, action="create/project"),
            True,
            id="include action",
        ),
        pytest.param(
            {"include": ("compute/*",)},
            event(P1, target_type="compute/server"),
            True,
            id="include target type",
        ),
        pytest.param({"exclude": ("read*",)}, event(P1, action="read/list"), False, id="exclude"),
        pytest.param({"exclude": ("read*",)}, event(P1, action="update"), True, id="not excluded"),
        pytest.param(
            {"include": ("compute/*",), "exclude": ("read*",)},
            event(P1, action="read", target_type="compute/server"),
            False,
            id="exclude wins",
        ),
        pytest.param(
            {"include": ("*",)}, event(P1, event_type="", target_type=""), True, id="bare event"
        ),
    ],
)
def test_event_filter(
    events: dict[str, tuple[str, ...]], routed_event: AuditEvent, taken: bool
) -> None:
    router = Router(
        Directory(trail(P1, include=events.get("include", ()), exclude=events.get("exclude", ())))
    )
    assert projects(router.route(routed_event)) == ([P1] if taken else [])


def test_filters_apply_per_project() -> None:
    directory = Directory(trail(P1, exclude=("read*",)), trail(P2, include=("read*",)))
    router = Router(directory)
    assert projects(router.route(event(P1, P2, action="read"))) == [P2]
    assert projects(router.route(event(P1, P2, action="update"))) == [P1]


# --------------------------------------------------------------------------- decoded events


def test_keystone_role_assignment_goes_to_both_projects() -> None:
    payload = make_cadf(
        initiator_project=P1,
        action="created.role_assignment",
        target_type="data/security/account/user",
        project=P2,
        role="9fe2ff9ee4384b1894a90878d3e92bab",
        user="c9f76d3c31e142af9291de2935bde98a",
    )
    decoded = decode_message(encode(wrap_v1(payload, "identity.role_assignment.created")))
    assert projects(Router(Directory()).route(decoded)) == [P1, P2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("02", ["ba8304b657fb4568addf7116f41b4a16"]),
        ("03", [UNSCOPED]),
        ("04", [UNSCOPED]),
        ("06", [UNSCOPED]),
        ("08", ["e55b158759854ea6a7852aa76632c6c1"]),
        ("09", ["90168d185e504b5580884a235ba31612"]),
    ],
)
def test_samples(name: str, expected: list[str]) -> None:
    decoded = decode_message(encode(load_sample(name)))
    assert projects(Router(DefaultTrails(SETTINGS)).route(decoded)) == expected


# --------------------------------------------------------------------------- properties

VALID_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
ANY_IDS = st.none() | VALID_IDS | st.text(max_size=70) | st.sampled_from(["", "a/b", "x" * 65])


@settings(max_examples=500, deadline=None)
@given(initiator=ANY_IDS, target=ANY_IDS, domain=ANY_IDS)
def test_default_directory_always_routes_to_valid_projects(
    initiator: str | None, target: str | None, domain: str | None
) -> None:
    directory = Directory()
    routed = Router(directory).route(event(initiator, target, domain))
    assert 1 <= len(routed) <= 2
    assert all(is_valid_project_id(t.project_id) for t in routed)
    assert all(is_valid_project_id(p) for p in directory.asked)
    assert len(set(projects(routed))) == len(routed)
    valid = [p for p in (initiator, target, domain) if owner_id(p) is not None]
    assert routed[0].project_id == (valid[0] if valid else UNSCOPED)


@settings(max_examples=200, deadline=None)
@given(
    initiator=st.none() | VALID_IDS | st.text(max_size=70),
    target=st.none() | VALID_IDS | st.text(max_size=70),
    version=st.sampled_from([1, 2]),
)
def test_decoded_events_always_route(
    initiator: str | None, target: str | None, version: int
) -> None:
    body = make_notification(
        version=1 if version == 1 else 2, initiator_project=initiator, target_project=target
    )
    routed = Router(DefaultTrails(SETTINGS)).route(decode_message(body))
    assert routed
    assert all(is_valid_project_id(t.project_id) for t in routed)


def test_placeholders_are_not_projects() -> None:
    from dataclasses import replace

    from stacktrail.domain.trail import UNSCOPED
    from stacktrail.ingest.decode import decode_message
    from stacktrail.ingest.route import owner_projects
    from tests.support.cadf_factory import make_notification

    event = decode_message(make_notification(initiator_project=None))
    for placeholder in ("unknown", "None", "", None):
        unknown = replace(event, initiator_project_id=placeholder, target_project_id=placeholder)
        assert owner_projects(unknown) == [UNSCOPED]


READS = ("read/list", "read/get")


@pytest.mark.parametrize(
    ("include", "action", "routed"),
    [
        pytest.param((), "read/list", False, id="default: list dropped"),
        pytest.param((), "read/get", False, id="default: get dropped"),
        pytest.param((), "read", True, id="other reads kept"),
        pytest.param((), "update/server", True, id="writes kept"),
        pytest.param(("read/*",), "read/list", True, id="project names them"),
        pytest.param(("*",), "read/get", True, id="project takes everything"),
        pytest.param(("identity.*",), "read/list", False, id="include not naming them"),
    ],
)
def test_the_operator_default_rule_drops_list_and_get_unless_a_project_asks(
    include: tuple[str, ...], action: str, routed: bool
) -> None:
    router = Router(Directory(trail(P1, include=include)), default_exclude=READS)
    assert bool(router.route(event(P1, action=action))) is routed


def test_the_default_rule_is_on_by_default_and_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().events_default_exclude == list(READS)
    monkeypatch.setenv("STACKTRAIL_EVENTS_DEFAULT_EXCLUDE", "")
    assert Settings().events_default_exclude == []
    monkeypatch.setenv("STACKTRAIL_EVENTS_DEFAULT_EXCLUDE", "read/*, identity.authenticate")
    assert Settings().events_default_exclude == ["read/*", "identity.authenticate"]


def test_the_default_rule_remembers_a_bounded_number_of_event_names() -> None:
    """Its answers are cached per (event type, action, target type), never more than
    EXCLUDED_CACHE_SIZE of them, and the answer stays the same after the cache is cleared."""
    from stacktrail.ingest import route

    router = Router(Directory(), default_exclude=READS)
    for n in range(route.EXCLUDED_CACHE_SIZE + 10):
        assert router.route(event(P1, action=f"update/x{n}"))
        assert len(router._excluded) <= route.EXCLUDED_CACHE_SIZE
    assert not router.route(event(P1, action="read/list"))
    assert router.route(event(P1, action="update/x1"))
