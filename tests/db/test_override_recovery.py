"""Recovering a project's overrides from a complete document and the change history."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stacktrail.db.override_recovery import Change, recover
from stacktrail.db.trail_store import defaults_document
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.document import TrailOverrides, resolve
from stacktrail.domain.trail import ArchiveFormat
from tests.support.config_store import make_settings

SETTINGS = make_settings()
SETTINGS_VALUES = {
    "archive.enabled": SETTINGS.archive_enabled,
    "archive.prefix": SETTINGS.archive_prefix.strip("/"),
    "archive.regions": list(SETTINGS.archive_regions),
}


def doc(defaults: OperatorDefaults) -> dict[str, Any]:
    return defaults_document(defaults)


D0 = OperatorDefaults.from_settings(SETTINGS)
D1 = OperatorDefaults(30, 400, D0.default_interval * 2, D0.min_interval, "v1", ArchiveFormat.CSV)


def full(overrides: dict[str, Any], defaults: OperatorDefaults) -> dict[str, Any]:
    """What a write stored before overrides: the complete effective document."""
    return resolve(overrides, defaults, SETTINGS).spec.model_dump(mode="json")


def test_members_equal_to_the_defaults_of_their_write_become_inherited() -> None:
    v1 = full({"retention_days": 7}, D0)
    v2 = {**v1, "archive": {**v1["archive"], "format": "ndjson"}}  # later PATCH, under D1
    history = [Change(10, None, v1), Change(30, v1, v2)]
    defaults_changes = [Change(20, doc(D0), doc(D1))]
    found = recover(v2, history, defaults_changes, doc(D1), SETTINGS_VALUES)
    # interval/container/format of v1 were D0's: inherited, although D1 differs now
    assert found.overrides == {"retention_days": 7, "archive": {"format": "ndjson"}}


def test_without_history_members_are_compared_with_todays_defaults() -> None:
    stored = full({"archive": {"container": "mine"}}, D1)
    found = recover(stored, [], [], doc(D1), SETTINGS_VALUES)
    assert found.overrides == {"archive": {"container": "mine"}}
    assert "archive.interval" in found.guessed
    unknown = recover(stored, [], [], None, None)  # only the fixed defaults are known
    archive = {k: v for k, v in stored["archive"].items() if k not in ("write_mode", "source")}
    assert unknown.overrides == {"retention_days": stored["retention_days"], "archive": archive}


OVERRIDES = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "retention_days": st.integers(1, 400),
        "archive": st.fixed_dictionaries(
            {},
            optional={
                "container": st.sampled_from(["audit-trail", "v1", "mine"]),
                "interval": st.sampled_from(["15m", "30m", "1h"]),
                "format": st.sampled_from(["json", "csv", "ndjson"]),
                "write_mode": st.sampled_from(["reseller", "acl"]),
            },
        ),
        "search": st.fixed_dictionaries({"enabled": st.booleans()}),
    },
)


@given(OVERRIDES, st.sampled_from([D0, D1]), st.sampled_from([D0, D1]))
def test_recovery_keeps_every_trail_as_it_was(
    overrides: dict[str, Any], then: OperatorDefaults, now: OperatorDefaults
) -> None:
    """Under the defaults of its write, the recovered trail is the trail that was written,
    and it overrides no more than the client sent."""
    stored = full(overrides, then)
    defaults_changes = [] if then is now else [Change(20, doc(then), doc(now))]
    found = recover(stored, [Change(10, None, stored)], defaults_changes, doc(now), None)
    recovered = TrailOverrides.model_validate(found.overrides)
    assert resolve(recovered, then, SETTINGS).spec == resolve(overrides, then, SETTINGS).spec
    sent = TrailOverrides.model_validate(overrides).fields()
    assert recovered.fields() - {"archive.enabled", "archive.prefix", "archive.regions"} <= sent
