"""The project page's digest panel in the browser: the key, the command, and per region
when the last digest was delivered (by the real digest writer), with 0 axe violations."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stacktrail.archive.digests import SETTLE, DigestWriter, period_start
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.config import Settings
from stacktrail.signing import SigningKey, generate_key_files
from stacktrail.web.digest_view import DASH
from stacktrail_reader import digest as d
from tests.support.digests import REGION, configure_trail
from tests.support.web import assert_accessible, seed_history, shot, sign_in
from tests.web.live import UiServer

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SigningKey]:
    path = tmp_path_factory.mktemp("digest-key") / "digest.key"
    return path, generate_key_files(path)


@pytest.fixture(scope="module")
def digest_ui(
    ui_settings: Settings,
    devstack: dict[str, str],
    signing: tuple[Path, SigningKey],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[UiServer]:
    settings = ui_settings.model_copy(update={"digest_key_file": signing[0]})
    directory = tmp_path_factory.mktemp("ui-digests-db")
    seed = functools.partial(
        seed_history, a=devstack["DEVSTACK_PROJECT_A_ID"], b=devstack["DEVSTACK_PROJECT_B_ID"]
    )
    server = UiServer(settings, f"sqlite+aiosqlite:///{directory}/ui.db", seed)
    server.start()
    yield server
    server.stop()


def test_the_digest_panel_says_when_the_last_digest_was_delivered(
    page: Page,
    digest_ui: UiServer,
    devstack: dict[str, str],
    signing: tuple[Path, SigningKey],
    tmp_path: Path,
) -> None:
    a = devstack["DEVSTACK_PROJECT_A_ID"]
    key = signing[1]
    store = digest_ui.store
    assert store is not None
    digest_ui.call(lambda: configure_trail(store, a, "audit-trail"))
    sign_in(page, digest_ui.url, devstack, "a_admin")
    expect(page).to_have_url(f"{digest_ui.url}/projects/{a}")
    panel = page.locator("#status .digests")
    expect(panel).to_contain_text("Signed digests: on, one per 1h and region")
    expect(panel).to_contain_text(f"stacktrail validate --project {a} --public-key")
    expect(panel.locator("li")).to_have_text([f"No digest delivered yet for {REGION}."])

    hour = period_start(datetime.now(UTC), HOUR)
    clock = hour + SETTLE + timedelta(seconds=1)
    writer = DigestWriter(store, LocalDirStore(tmp_path), key, interval=HOUR)
    assert digest_ui.call(lambda: writer.run_due(clock - 2 * HOUR)) == 0  # the chain starts
    assert digest_ui.call(lambda: writer.run_due(clock)) == 2
    assert (tmp_path / "audit-trail" / d.digest_key(a, REGION, hour - HOUR)).is_file()

    page.reload()
    period = f"{hour - HOUR:%H:%M}{DASH}{hour:%H:%M} UTC"
    if (hour - HOUR).date() != datetime.now(UTC).date():
        period = f"{hour - HOUR:%Y-%m-%d} {hour - HOUR:%H:%M}{DASH}24:00 UTC"
    expect(panel.locator("li")).to_have_text(
        [re.compile(rf"^Last digest delivered just now, covering {period}, {REGION}\.$")]
    )
    expect(panel.locator("code").first).to_have_text(key.fingerprint)
    shot(page, "digests-01-last-digest")
    assert_accessible(page)

    # project B's page has digests of its own (none yet), never A's
    page.context.clear_cookies()
    b = devstack["DEVSTACK_PROJECT_B_ID"]
    sign_in(page, digest_ui.url, devstack, "b_admin")
    expect(page).to_have_url(f"{digest_ui.url}/projects/{b}")
    expect(page.locator("#status .digests li").first).to_have_text(
        re.compile(r"^No digest delivered yet for ")
    )
    expect(page.locator("#status")).not_to_contain_text("Last digest delivered")
