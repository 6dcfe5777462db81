"""The UI's pure parts: wording, form conversion, 422 mapping, chart, sessions."""

from __future__ import annotations

from datetime import date, timedelta
from xml.etree import ElementTree

import pytest
from starlette.datastructures import FormData
from starlette.requests import Request

from stacktrail.api.auth import Principal
from stacktrail.web import chart, explain, forms
from stacktrail.web.pages_admin import Query
from stacktrail.web.pages_project import backlog_words, delivery_view
from stacktrail.web.render import safe_next
from stacktrail.web.sessions import SessionStore
from stacktrail.web.view_trail import Spool, spool_waiting


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
    assert explain.selection_sentence({"include": [], "exclude": []}) == "Keep every event."
    assert explain.selection_sentence({"exclude": ["identity.*"]}) == (
        "Keep every event except events matching identity.*."
    )
    assert explain.size_words(48_213) == "48.2 KB"
    assert explain.size_words(None) == "not known to this server"


def test_errors_in_words() -> None:
    assert "could not be reached" in explain.error_words("PUT x: Swift unreachable: boom")
    assert "does not let stacktrail write" in explain.error_words(
        "container c in project p does not grant write to the stacktrail service user"
    )
    missing = "container c in project p does not grant write to the stacktrail service user"
    assert "does not exist" in explain.error_words(missing + " (region R, HTTP 404: Not Found)")
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
        "events": {"include": ["a.b", "x.*", "y.*"], "exclude": ["c.d"], "rules": []}
    }
    catalogue = [{"event_type": "a.b", "count": 3}, {"event_type": "c.d", "count": 1}]
    now = explain.coverage_of({"include": ["a.b", "x.*"], "exclude": ["c.d"]})
    selection = forms.event_selection(catalogue, ["a.b", "x.*"], ["c.d"], now)
    assert [(row.name, row.choice, row.recorded) for row in selection.rows] == [
        ("a.b", "include", "all"),
        ("c.d", "exclude", "none"),
    ]
    assert selection.other_include == ["x.*"]
    assert selection.other_exclude == []


def test_validation_errors_by_field() -> None:
    errors = forms.errors_by_field(
        [
            {"code": "int_parsing", "field": "retention_days", "detail": "..."},
            {"code": "too_short", "field": "archive.regions", "detail": "..."},
            {"code": "value_error", "field": "archive.regions[1]", "detail": "unknown region 'X'"},
            {
                "code": "value_error",
                "field": "default_retention_days",
                "detail": "default_retention_days 5 is above max_retention_days 3",
            },
            {"code": "json_invalid", "field": "", "detail": "invalid JSON"},
            {"code": "value_error", "field": "events.include[0]", "detail": "pattern 'a[': x"},
            {"code": "value_error", "field": "events.include[2]", "detail": "pattern 'b]': y"},
        ]
    )
    assert errors == {
        "retention_days": ["Enter a whole number."],
        "archive.regions": ["Choose at least one.", "Unknown region 'X'"],
        "default_retention_days": ["The default retention 5 is above the longest retention 3"],
        "": ["Invalid JSON"],
        "events.include": ["Pattern 'a[': x", "Pattern 'b]': y"],
    }


def per_day(counts: list[int], last: date) -> list[dict[str, object]]:
    """`events_per_day` as the status API gives it: oldest first, ending with `last`."""
    first = last - timedelta(days=len(counts) - 1)
    return [
        {"day": (first + timedelta(days=n)).isoformat(), "count": count}
        for n, count in enumerate(counts)
    ]


def svg_of(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(markup.replace("<svg ", f'<svg xmlns="{SVG}" ', 1))


SVG = "http://www.w3.org/2000/svg"


def test_chart_days_come_from_the_status() -> None:
    today = date(2025, 3, 31)
    counts = [10 * n for n in range(30)]
    days = chart.days_from_status({"events_per_day": per_day(counts, today)})
    assert len(days) == chart.DAYS
    assert days[0] == chart.DayCount(date(2025, 3, 2), 0)
    assert days[-1] == chart.DayCount(today, 290)
    assert [d.count for d in days] == counts

    # the window ends with the status's last day, whatever this server's clock says
    later = chart.days_from_status(
        {"events_per_day": per_day(counts, today)}, today=date(2025, 4, 1)
    )
    assert later == days

    # a day the status leaves out (or garbles) is not known; so is everything without it
    entries = per_day(counts, today)
    del entries[3]  # 2025-03-05
    entries[3] = {"day": "2025-03-06", "count": "many"}
    entries.append({"day": "not a day", "count": 1})
    gappy = chart.days_from_status({"events_per_day": entries}, today=today)
    assert [d.day for d in gappy] == [d.day for d in days]
    assert [i for i, d in enumerate(gappy) if d.count is None] == [3, 4]
    empty = chart.days_from_status({}, today=today)
    assert [d.day for d in empty] == [d.day for d in days]
    assert {d.count for d in empty} == {None}


def test_chart_draws_a_bar_per_day() -> None:
    today = date(2025, 3, 31)
    counts = [0] * 30
    counts[0], counts[10], counts[20], counts[28], counts[29] = 1, 1000, 3000, 1500, 7
    days = chart.days_from_status({"events_per_day": per_day(counts, today)})
    markup = str(chart.render(days, "Events <per> day"))
    assert markup.startswith('<svg class="chart"')
    assert 'style="' not in markup  # the page's CSP allows no inline styles
    svg = svg_of(markup)
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-title chart-desc"
    assert svg.findtext(f"{{{SVG}}}title") == "Events <per> day"
    assert svg.findtext(f"{{{SVG}}}desc") == (
        "2025-03-02 to 2025-03-31, UTC days: 5,508 events in total; "
        "most on 2025-03-22 (3,000); today so far 7."
    )

    bars = svg.findall(f"{{{SVG}}}rect")
    assert len(bars) == 30
    assert [bar.get("data-day") for bar in bars] == [d.day.isoformat() for d in days]
    assert [bar.get("data-count") for bar in bars] == [str(c) for c in counts]
    assert {bar.get("class") for bar in bars[:-1]} == {"bar"}
    assert bars[-1].get("class") == "bar today"
    # the scale tops at 4,000: a full bar is the plot's height, 108 units
    assert chart.PLOT_HEIGHT == 108
    heights = [float(bar.get("height", "")) for bar in bars]
    assert heights[20] == 81.0
    assert heights[28] == 40.5
    assert heights[10] == 27.0
    assert heights[0] == heights[29] == 1.5  # small counts stay visible
    assert heights.count(0.0) == 25
    for bar, height in zip(bars, heights, strict=True):
        assert float(bar.get("y", "")) + height == chart.BASE  # bars stand on the zero line
    xs = [float(bar.get("x", "")) for bar in bars]
    assert xs == sorted(xs)
    assert bars[20].findtext(f"{{{SVG}}}title") == "2025-03-22: 3,000 events"
    assert bars[-1].findtext(f"{{{SVG}}}title") == "2025-03-31 (today, so far): 7 events"

    labels = [text.text for text in svg.findall(f"{{{SVG}}}text")]
    assert labels == ["0", "2k", "4k", "Mar 3", "Mar 10", "Mar 17", "Mar 24", "today"]


def test_chart_of_unknown_and_quiet_days() -> None:
    today = date(2025, 3, 31)
    quiet = chart.render(chart.days_from_status({"events_per_day": per_day([0] * 30, today)}), "t")
    svg = svg_of(str(quiet))
    assert [float(r.get("height", "")) for r in svg.findall(f"{{{SVG}}}rect")] == [0.0] * 30
    assert [t.text for t in svg.findall(f"{{{SVG}}}text")][:3] == ["0", "2", "4"]
    assert svg.findtext(f"{{{SVG}}}desc") == (
        "2025-03-02 to 2025-03-31, UTC days: 0 events in total; today so far 0."
    )
    unknown = svg_of(str(chart.render(chart.days_from_status({}, today=today), "t")))
    assert len(unknown.findall(f"{{{SVG}}}rect[@class='unknown']")) == 30
    assert unknown.findtext(f"{{{SVG}}}desc") == (
        "2025-03-02 to 2025-03-31, UTC days: the counts are not known."
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (950, "950"), (2000, "2k"), (2500, "2.5k"), (40_000, "40k"), (3_000_000, "3M")],
)
def test_axis_numbers_are_short(value: int, text: str) -> None:
    assert chart.short_number(value) == text


def test_the_spool_is_shown_once_unless_regions_differ() -> None:
    def status(*figures: int | None) -> dict[str, object]:
        regions = [{"region": f"R{n}", "pending_spool_bytes": f} for n, f in enumerate(figures)]
        return {"regions": regions}

    assert spool_waiting(status(48_213, 48_213)) == Spool("48.2 KB", every_region=True)
    assert spool_waiting(status(48_213)) == Spool("48.2 KB", every_region=False)
    assert spool_waiting(status(0, 0)) == Spool("nothing", every_region=False)
    assert spool_waiting(status(None, None)) == Spool(
        "not known to this server", every_region=False
    )
    assert spool_waiting(status(48_213, 0)) is None  # per-region figures: shown per region
    assert spool_waiting(status(48_213, None)) is None
    assert spool_waiting(status()) is None
    assert spool_waiting(None) is None


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


def test_retention_update_in_words() -> None:
    from stacktrail.web.view_trail import retention_update_words

    assert retention_update_words({"retention_update": None}) is None
    base = {
        "retention_days": 30,
        "objects_seen": 10,
        "objects_updated": 7,
        "objects_deleted": 1,
        "error": None,
    }
    running = retention_update_words({"retention_update": base | {"status": "running"}})
    assert running == (
        "Retention changed to 30 days: updating existing files (10 checked; 7 files given "
        "the new expiry date, 1 already past it deleted)."
    )
    failed = retention_update_words(
        {"retention_update": base | {"status": "failed", "error": "403 Forbidden"}}
    )
    assert failed is not None
    assert "403 Forbidden" in failed
    assert "retried" in failed
    done = retention_update_words({"retention_update": base | {"status": "done"}})
    assert done is not None
    assert done.startswith("Retention changed to 30 days: existing files updated")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        ("007", 7),
        ("", None),
        ("-1", None),
        ("\u00b2", None),
        ("\u0661\u0662", None),
        ("9" * 12, None),
    ],
)
def test_small_numbers_from_forms_and_links(text: str, value: int | None) -> None:
    assert forms.small_int(text) == value


def test_admin_list_query_ignores_odd_paging() -> None:
    scope = {
        "type": "http",
        "query_string": "page=\u00b2&per_page=\u0661\u0660\u0660".encode(),
        "headers": [],
    }
    query = Query.of(Request(scope))
    assert (query.page, query.per_page) == (1, 50)


READS_OF_COMPUTE = {
    "effect": "exclude",
    "service": ["compute"],
    "action": ["read", "read/list", "read/get"],
}


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ({"rules": [READS_OF_COMPUTE]}, "Keep every event except reads of compute."),
        ({"rules": [{"effect": "include", "outcome": ["failure"]}]}, "Keep only failures."),
        (
            {
                "include": ["identity.*"],
                "rules": [
                    {"effect": "include", "service": ["service/network"], "action": ["delete"]},
                    {"effect": "exclude", "outcome": ["failure"], "action": ["read"]},
                    {
                        "effect": "exclude",
                        "target_type": ["compute/server"],
                        "outcome": ["pending"],
                    },
                ],
            },
            "Keep only events matching identity.* or delete actions of network, except failed "
            "read actions and events with outcome pending on compute/server.",
        ),
        (
            {"exclude": ["a.*", "b.*"], "rules": [{"effect": "exclude", "event_type": ["c.d"]}]},
            "Keep every event except events matching a.* or b.* and events of type c.d.",
        ),
    ],
)
def test_selections_in_words(events: dict[str, object], words: str) -> None:
    assert explain.selection_sentence(events) == words


def test_coverage_per_event_type() -> None:
    coverage = explain.coverage_of(
        {
            "include": ["identity.*"],
            "rules": [
                READS_OF_COMPUTE,
                {
                    "effect": "include",
                    "event_type": ["audit.http.response"],
                    "outcome": ["failure"],
                },
                {"effect": "exclude", "event_type": ["identity.user.*"]},
            ],
        }
    )
    assert coverage("identity.project.created") == "some"  # reads of compute are dropped
    assert coverage("identity.user.created") == "none"
    assert coverage("audit.http.response") == "some"
    assert coverage("port.create.end") == "none"
    assert coverage("stacktrail.trail.updated") == "all"
    assert explain.coverage_of({"include": ["a["]})("a.b") == "none"  # refused: nothing


def test_the_rules_editor_rows_and_what_they_send() -> None:
    form = FormData(
        [
            ("rule.0.existing", "1"),
            ("rule.0.effect", "exclude"),
            ("rule.0.service", "compute"),
            ("rule.0.read_only", "on"),
            ("rule.0.action", "delete\r\nread"),
            ("rule.1.existing", "1"),
            ("rule.1.effect", "include"),
            ("rule.1.outcome", "failure"),
            ("rule.1.remove", "on"),
            ("rule.2.effect", "exclude"),  # the empty row for a new rule
            ("rule.3.existing", "1"),
            ("rule.3.effect", "include"),  # emptied: sent, so the API says what is missing
            ("rule.9999.effect", "include"),
        ]
    )
    assert forms.events_patch(form)["events"]["rules"] == [
        {
            "effect": "exclude",
            "service": ["compute"],
            "action": ["read", "read/list", "read/get", "delete"],
        },
        {"effect": "include"},
    ]
    rows = forms.rule_rows([READS_OF_COMPUTE], explain.rule_words)
    assert [(r.index, r.effect, r.read_only, r.lists["action"], r.new) for r in rows] == [
        (0, "exclude", True, "", False),
        (1, "exclude", False, "", True),
    ]
    assert rows[0].words == "reads of compute"


def test_refusals_of_rules_stay_with_their_row() -> None:
    assert forms.field_of("events.rules[1].action[0]") == "events.rules[1].action"
    assert forms.field_of("events.rules[1]") == "events.rules[1]"
    assert forms.field_of("events.include[3]") == "events.include"
    assert forms.field_of("archive.regions[0]") == "archive.regions"


def test_the_held_back_backlog_in_words() -> None:
    backlog = {
        "bytes": 250_000,
        "records": 120,
        "oldest_at": "2026-01-01T00:00:00+00:00",
        "share_bytes": 268_435_456,
        "held_back": False,
    }
    words = backlog_words(backlog)
    assert words is not None
    assert words.startswith("Kept in the spool meanwhile: ")
    assert "120 events" in words
    assert "the oldest spooled" in words
    assert "dead-lettered" not in words
    held = backlog_words({**backlog, "held_back": True})
    assert held is not None
    assert "new events are dead-lettered" in held
    assert backlog_words({**backlog, "bytes": 0}) is None
    assert backlog_words(None) is None
    failing = {"regions": [{"region": "R1", "failing": True, "problem": {}}]}
    assert delivery_view({**failing, "backlog": backlog}) is None  # no problem to explain
    failing["regions"][0]["problem"] = {"answer": "no container"}
    view = delivery_view({**failing, "backlog": {**backlog, "held_back": True}})
    assert view is not None
    assert "dead-lettered" in view["held"]
