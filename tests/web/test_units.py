"""The UI's pure parts: wording, form conversion, 422 mapping, chart, sessions."""

from __future__ import annotations

from datetime import date

import pytest
from starlette.datastructures import FormData

from stacktrail.api.auth import Principal
from stacktrail.web import chart, explain, forms
from stacktrail.web.render import safe_next
from stacktrail.web.sessions import SessionStore


@pytest.mark.parametrize(
    ("interval", "words"),
    [
        ("15m", "Every 15 minutes"),
        ("1m", "Every minute"),
        ("1h", "Every hour"),
        ("6h", "Every 6 hours"),
        ("90s", "Every 90 seconds"),
        ("1d", "Once a day"),
    ],
)
def test_intervals_in_words(interval: str, words: str) -> None:
    assert explain.every(interval) == words


def test_sentences() -> None:
    assert (
        explain.retention_sentence(90, archive=True, search=False)
        == "Events older than 90 days are deleted from your container."
    )
    archive = {"interval": "15m", "container": "audit-trail", "regions": ["RegionOne"]}
    assert (
        explain.delivery_sentence(archive)
        == "Every 15 minutes, new events are delivered to container audit-trail in RegionOne."
    )
    assert explain.filter_sentence([], []) == "Every event of this project is recorded."
    assert explain.filter_sentence([], ["identity.*"]) == (
        "Every event is recorded, except those matching identity.*."
    )
    assert explain.size_words(48_213) == "48.2 KB"
    assert explain.size_words(None) == "not known to this server"


def test_errors_in_words() -> None:
    assert "could not be reached" in explain.error_words("PUT x: Swift unreachable: boom")
    assert "does not let stacktrail write" in explain.error_words(
        "container c in project p does not grant write to the stacktrail service user"
    )
    assert "quota" in explain.error_words("PUT x: HTTP 413 Quota exceeded")
    assert explain.error_words("something new").startswith("Delivering events failed")


def test_form_fields_become_a_patch() -> None:
    form = FormData(
        [
            ("enabled", "on"),
            ("retention_days", "30"),
            ("archive.container", " c "),
            ("archive.interval", "1h"),
            ("archive.regions", "RegionOne"),
            ("archive.regions", "RegionTwo"),
            ("archive.format", "csv"),
            ("archive.write_mode", "reseller"),
            ("archive.prefix", ""),
        ]
    )
    patch = forms.settings_patch(form, offer_search=False, offer_source=False)
    assert patch == {
        "enabled": True,
        "retention_days": 30,
        "archive": {
            "enabled": False,
            "container": "c",
            "prefix": "",
            "format": "csv",
            "interval": "1h",
            "regions": ["RegionOne", "RegionTwo"],
            "write_mode": "reseller",
        },
    }
    typed = FormData([("retention_days", "12.5")])
    assert forms.settings_patch(typed, offer_search=True, offer_source=True)["retention_days"] == (
        "12.5"
    )


def test_event_toggles_and_patterns_become_lists() -> None:
    form = FormData(
        [
            ("event:a.b", "include"),
            ("event:c.d", "exclude"),
            ("event:e.f", ""),
            ("other", "include"),
            ("events.include_other", "x.*\r\n\r\nx.*, y.*"),
        ]
    )
    assert forms.events_patch(form) == {
        "events": {"include": ["a.b", "x.*", "y.*"], "exclude": ["c.d"]}
    }
    catalogue = [{"event_type": "a.b", "count": 3}, {"event_type": "c.d", "count": 1}]
    selection = forms.event_selection(catalogue, ["a.b", "x.*"], ["c.d"], explain.recorded)
    assert [(row.name, row.choice, row.recorded) for row in selection.rows] == [
        ("a.b", "include", True),
        ("c.d", "exclude", False),
    ]
    assert selection.other_include == ["x.*"]
    assert selection.other_exclude == []


def test_validation_errors_by_field() -> None:
    errors = forms.errors_by_field(
        [
            {"type": "int_parsing", "loc": ["body", "retention_days"], "msg": "..."},
            {"type": "too_short", "loc": ["body", "archive", "regions"], "msg": "..."},
            {
                "type": "value_error",
                "loc": ["body", "archive", "regions", 1],
                "msg": "unknown region 'X'",
            },
            {
                "type": "value_error",
                "loc": ["body", "default_retention_days"],
                "msg": "default_retention_days 5 is above max_retention_days 3",
            },
            {"type": "json_invalid", "loc": ["body"], "msg": "invalid JSON"},
        ]
    )
    assert errors == {
        "retention_days": ["Enter a whole number."],
        "archive.regions": ["Choose at least one.", "Unknown region 'X'"],
        "default_retention_days": ["The default retention 5 is above the longest retention 3"],
        "": ["Invalid JSON"],
    }


def test_chart_marks_unknown_days() -> None:
    days = chart.days_from_status({"events": {"last_day": 1234}}, today=date(2025, 3, 31))
    assert len(days) == chart.DAYS
    assert days[-1].count == 1234
    assert days[0] == chart.DayCount(date(2025, 3, 2), None)
    svg = str(chart.render(days, "Events <per> day"))
    assert svg.startswith('<svg class="chart"')
    assert "Events &lt;per&gt; day" in svg
    assert svg.count('class="unknown"') == chart.DAYS - 1
    assert "last 24 hours: 1,234 events" in svg
    assert 'style="' not in svg  # the page's CSP allows no inline styles


def test_sessions_expire_and_evict() -> None:
    who = Principal("u", "user", "p", "proj", "d", frozenset({"reader"}), False)
    store = SessionStore(idle_s=60, max_entries=2)
    first, session = store.create(3600, principal=who, token="t")
    assert store.get(first) is session
    assert session.check_csrf(session.csrf)
    assert not session.check_csrf("")
    assert not session.check_csrf(None)
    assert not session.check_csrf(session.csrf + "x")
    expired, _ = store.create(-1)
    assert store.get(expired) is None
    store.create(3600)
    store.create(3600)
    assert store.get(first) is None  # least recently used, evicted
    assert store.get("x" * 200) is None
    assert store.drop("unknown") is None


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("/projects/p1", "/projects/p1"),
        ("/admin?q=a&page=2", "/admin?q=a&page=2"),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("https://evil.example/", None),
        ("javascript:alert(1)", None),
        ("", None),
        (None, None),
    ],
)
def test_return_paths_stay_on_this_site(value: str | None, safe: str | None) -> None:
    assert safe_next(value) == safe
