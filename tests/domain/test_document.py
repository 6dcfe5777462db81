from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import ValidationError

from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import (
    DefaultsInput,
    TrailInput,
    TrailSpec,
    check_bounds,
    default_spec,
    requested_spec,
    resolve,
)
from stacktrail.domain.trail import ArchiveFormat, ArchiveSource, WriteMode, default_trail
from tests.support.config_store import make_settings

SETTINGS = make_settings()
DEFAULTS = OperatorDefaults.from_settings(SETTINGS)


def test_defaults_from_settings() -> None:
    assert DEFAULTS.default_retention_days == 90
    assert DEFAULTS.max_retention_days == 3650
    assert DEFAULTS.default_interval == timedelta(minutes=15)
    assert DEFAULTS.min_interval == timedelta(minutes=1)
    short = OperatorDefaults.from_settings(make_settings(archive_interval="10s"))
    assert short.min_interval == timedelta(seconds=10)  # the default must stay settable


def test_default_spec_matches_the_model_default_trail() -> None:
    effective = resolve(None, DEFAULTS, SETTINGS)
    assert effective.spec == default_spec(DEFAULTS, SETTINGS)
    assert effective.to_trail("p1") == default_trail("p1", SETTINGS)


def test_resolve_fills_what_is_missing() -> None:
    data = TrailInput.model_validate(
        {"retention_days": 30, "archive": {"container": "mine", "regions": ["RegionTwo"]}}
    )
    spec = resolve(data, DEFAULTS, SETTINGS).spec
    assert spec.retention_days == 30
    assert spec.enabled is True
    assert spec.archive.container == "mine"
    assert spec.archive.regions == ["RegionTwo"]
    assert spec.archive.interval == "15m"
    assert spec.archive.format == ArchiveFormat.JSON
    assert spec.archive.write_mode == WriteMode.RESELLER
    assert spec.search.enabled is True
    assert TrailSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_input_is_strict() -> None:
    for bad in (
        {"enabled": "yes"},
        {"retention_days": "30"},
        {"retention_days": 30.5},
        {"retention_days": True},
        {"surprise": 1},
        {"archive": {"colour": "red"}},
        {"events": {"include": "identity.*"}},
    ):
        with pytest.raises(ValidationError):
            TrailInput.model_validate(bad)


def test_bounds() -> None:
    spec = requested_spec(
        TrailInput.model_validate(
            {
                "retention_days": 4000,
                "archive": {"interval": "30s", "regions": ["RegionOne", "Atlantis", "RegionOne"]},
            }
        ),
        DEFAULTS,
        SETTINGS,
    )
    errors = {e.loc: e.msg for e in check_bounds(spec, DEFAULTS, SETTINGS)}
    assert "maximum of 3650" in errors[("retention_days",)]
    assert "minimum of 1m" in errors[("archive", "interval")]
    assert "unknown region 'Atlantis'" in errors[("archive", "regions", 1)]
    assert "listed twice" in errors[("archive", "regions", 2)]


def test_archive_from_search_needs_search() -> None:
    data = TrailInput.model_validate(
        {"archive": {"source": "search"}, "search": {"enabled": False}}
    )
    errors = check_bounds(requested_spec(data, DEFAULTS, SETTINGS), DEFAULTS, SETTINGS)
    assert [e.loc for e in errors] == [("archive", "source")]
    no_search = make_settings(search_url="")
    data = TrailInput.model_validate({"archive": {"source": "search"}})
    errors = check_bounds(requested_spec(data, DEFAULTS, no_search), DEFAULTS, no_search)
    assert "has none" in errors[0].msg


def test_s3_store_refuses_bucket_names_s3_cannot_take() -> None:
    s3 = make_settings(archive_store="s3")
    data = TrailInput.model_validate({"archive": {"container": "My Container"}})
    errors = check_bounds(requested_spec(data, DEFAULTS, s3), DEFAULTS, s3)
    assert errors[0].loc == ("archive", "container")
    assert check_bounds(requested_spec(data, DEFAULTS, SETTINGS), DEFAULTS, SETTINGS) == []


def test_to_trail_applies_lowered_bounds() -> None:
    data = TrailInput.model_validate(
        {
            "retention_days": 3000,
            "archive": {"interval": "2m", "source": "search", "write_mode": "acl"},
            "events": {"include": ["identity.*"], "exclude": ["read/*"]},
        }
    )
    tighter = replace(DEFAULTS, max_retention_days=365, min_interval=timedelta(minutes=5))
    trail = resolve(data, tighter, SETTINGS).to_trail("p1", version=4)
    assert trail.retention_days == 365
    assert trail.archive.interval == timedelta(minutes=5)
    assert trail.archive.source == ArchiveSource.SEARCH
    assert trail.archive.write_mode == WriteMode.ACL
    assert trail.version == 4
    assert trail.events.matches("identity.project.created", "create/project", "data/security")
    assert not trail.events.matches("identity.user.read", "read/list", "data/security")


def test_defaults_input() -> None:
    good = {
        "default_retention_days": 30,
        "max_retention_days": 400,
        "default_interval": "10m",
        "min_interval": "1m",
        "default_container": "audit",
        "default_format": "ndjson",
    }
    parsed = DefaultsInput.model_validate(good)
    assert parsed.bounds_errors(SETTINGS) == []
    assert parsed.to_defaults().default_interval == timedelta(minutes=10)
    crossed = DefaultsInput.model_validate(
        {**good, "default_retention_days": 500, "default_interval": "30s"}
    )
    assert {e.loc for e in crossed.bounds_errors(SETTINGS)} == {
        ("default_retention_days",),
        ("default_interval",),
    }
    for bad in ({"max_retention_days": 0}, {"min_interval": "2d"}, {"default_container": "a/b"}):
        with pytest.raises(ValidationError):
            DefaultsInput.model_validate({**good, **bad})


A, B = "aaaa1111", "bbbb2222"


@pytest.mark.parametrize(
    ("bucket", "allowed"),
    [
        ("audit-trail", True),  # the operator's shared bucket (keys hold the project)
        (A, True),
        (f"{A}-logs", True),
        (B, False),  # another project's bucket
        (f"{B}-logs", False),
        (f"{A}x", False),  # only `<id>` or `<id>-...`: `aaaa1111x` may be someone else's id
        ("someone-elses", False),
    ],
)
def test_s3_projects_name_only_shared_buckets_or_their_own(bucket: str, allowed: bool) -> None:
    s3 = make_settings(archive_store="s3")
    data = TrailInput.model_validate({"archive": {"container": bucket}})
    errors = check_bounds(requested_spec(data, DEFAULTS, s3), DEFAULTS, s3, project_id=A)
    assert (errors == []) == allowed, errors
    if not allowed:
        assert errors[0].loc == ("archive", "container")
        assert "belongs to no one this project may write for" in errors[0].msg


def test_s3_default_container_is_the_shared_bucket() -> None:
    s3 = make_settings(archive_store="s3")
    body = {
        "default_retention_days": 30,
        "max_retention_days": 400,
        "default_interval": "10m",
        "min_interval": "1m",
        "default_format": "ndjson",
    }
    shared = DefaultsInput.model_validate({**body, "default_container": "audit-trail"})
    other = DefaultsInput.model_validate({**body, "default_container": "elsewhere"})
    assert shared.bounds_errors(s3) == []
    (error,) = other.bounds_errors(s3)
    assert error.loc == ("default_container",)
    assert "STACKTRAIL_ARCHIVE_CONTAINER" in error.msg
