from __future__ import annotations

from datetime import timedelta
from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.domain.validation import (
    check_container,
    check_interval,
    check_pattern,
    check_prefix,
    parse_interval,
    s3_bucket_problem,
)


@pytest.mark.parametrize(
    "pattern", ["identity.*", "read/*", "service/compute/servers", "compute.instance.[cd]*", "a?c"]
)
def test_good_patterns(pattern: str) -> None:
    assert check_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("x" * 257, "longer than 256"),
        ("identity *", "may contain only"),
        ("identity.\n", "may contain only"),
        ("réseau.*", "may contain only"),
        ("[ab", "without a matching `]`"),
        ("ab]", "without a matching `[`"),
        ("a[]b", "empty character class"),
        ("a[b[c]]", "inside a character class"),
        ("a{b,c}", "may contain only"),
    ],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("*", r"\*")):
        check_pattern(pattern)


@given(st.text(alphabet="abc.*?[]/:-_", min_size=1, max_size=40))
def test_accepted_patterns_never_break_fnmatch(pattern: str) -> None:
    try:
        check_pattern(pattern)
    except ValueError:
        return
    fnmatchcase("identity.project.created", pattern)  # must not raise


@pytest.mark.parametrize(
    "name", ["audit", "a", "Audit Trail 2024", "x" * 256, "ünïcode", "a.b-c_d"]
)
def test_good_containers(name: str) -> None:
    assert check_container(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("a/b", "must not contain `/`"),
        ("x" * 257, "longer than 256 bytes"),
        ("é" * 129, "longer than 256 bytes"),  # 258 bytes of UTF-8
        ("tab\there", "control"),
        ("nul\x00", "control"),
    ],
)
def test_bad_containers(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_container(name)


def test_s3_bucket_rules() -> None:
    assert s3_bucket_problem("audit-trail.2024") is None
    for bad in ("ab", "Audit", "-audit", "audit-", "a" * 64, "a..b", "192.168.1.1", "a_b"):
        assert s3_bucket_problem(bad) is not None, bad


@pytest.mark.parametrize(
    ("prefix", "stored"),
    [("", ""), ("audit", "audit"), ("audit/", "audit"), ("a/b.c/d-e_f", "a/b.c/d-e_f")],
)
def test_good_prefixes(prefix: str, stored: str) -> None:
    assert check_prefix(prefix) == stored


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("/audit", "must not start with `/`"),
        ("../x", "`..`"),
        ("a/../b", "`..`"),
        ("a..b", "`..`"),
        ("a//b", "empty segments"),
        ("a/./b", "segments"),
        ("a b", "may contain only"),
        ("a\\b", "may contain only"),
        ("x" * 257, "longer than 256"),
    ],
)
def test_bad_prefixes(prefix: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        check_prefix(prefix)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("15m", "15m"), ("900s", "15m"), ("900", "15m"), ("1d", "1d"), ("90s", "90s")],
)
def test_intervals(text: str, canonical: str) -> None:
    assert check_interval(text) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0s", "positive"),
        ("-5m", "invalid duration"),
        ("soon", "invalid duration"),
        ("1.5s", "whole number of seconds"),
        ("25h", "longer than 1d"),
        ("2d", "longer than 1d"),
    ],
)
def test_bad_intervals(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_interval(text)


def test_interval_value() -> None:
    assert parse_interval("1h") == timedelta(hours=1)
