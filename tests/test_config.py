from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stacktrail.config import SettingsError, load_settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults_are_the_documented_contract() -> None:
    settings = load_settings()
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.amqp_queue == "stacktrail"
    assert settings.database_url.startswith("sqlite+aiosqlite:///./var/")
    assert settings.search_url == ""
    assert not settings.search_enabled
    assert settings.spool_dir == Path("./var/spool")
    assert settings.archive_container == "audit-trail"
    assert settings.archive_interval == timedelta(minutes=15)
    assert settings.api_listen == "127.0.0.1:8080"
    assert "keystone:notifications.#" in settings.amqp_bindings


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_INTERVAL", "30s")
    monkeypatch.setenv("STACKTRAIL_AMQP_BINDINGS", "nova:notifications.info, keystone:x.#")
    settings = load_settings()
    assert settings.archive_interval == timedelta(seconds=30)
    assert settings.amqp_bindings == ["nova:notifications.info", "keystone:x.#"]


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "stacktrail.toml"
    config.write_text('amqp_queue = "audit"\narchive_interval = "1h"\n')
    monkeypatch.setenv("STACKTRAIL_CONFIG", str(config))
    monkeypatch.setenv("STACKTRAIL_AMQP_QUEUE", "from-env")
    settings = load_settings()
    assert settings.archive_interval == timedelta(hours=1)
    assert settings.amqp_queue == "from-env"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STACKTRAIL_ARCHIVE_INTERVAL", "soon", "archive_interval"),
        ("STACKTRAIL_API_LISTEN", "8080", "host:port"),
        ("STACKTRAIL_AMQP_PREFETCH", "0", "amqp_prefetch"),
        ("STACKTRAIL_AMQP_BINDINGS", "nova", "exchange:routing_key"),
        ("STACKTRAIL_ARCHIVE_STORE", "ftp", "archive_store"),
        ("STACKTRAIL_ARCHVE_CONTAINER", "x", "unknown setting"),
    ],
)
def test_bad_values_are_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_unknown_toml_key_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "stacktrail.toml"
    config.write_text('amqp_queu = "typo"\n')
    monkeypatch.setenv("STACKTRAIL_CONFIG", str(config))
    with pytest.raises(SettingsError, match="amqp_queu"):
        load_settings()


def test_missing_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STACKTRAIL_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match="no such file"):
        load_settings()


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080", "api:8080"])
def test_local_mode_is_refused_off_loopback(monkeypatch: pytest.MonkeyPatch, listen: str) -> None:
    monkeypatch.setenv("STACKTRAIL_AUTH_MODE", "noauth")
    monkeypatch.setenv("STACKTRAIL_API_LISTEN", listen)
    with pytest.raises(SettingsError, match="only on a loopback address") as refused:
        load_settings()
    assert "STACKTRAIL_NOAUTH_ALLOW_REMOTE" in str(refused.value)
    assert "(settings)" not in str(refused.value)
    monkeypatch.setenv("STACKTRAIL_NOAUTH_ALLOW_REMOTE", "true")
    assert load_settings().api_listen == listen


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "127.8.0.1:1", "localhost:80", "[::1]:8080"])
def test_local_mode_listens_on_loopback(monkeypatch: pytest.MonkeyPatch, listen: str) -> None:
    monkeypatch.setenv("STACKTRAIL_AUTH_MODE", "noauth")
    monkeypatch.setenv("STACKTRAIL_API_LISTEN", listen)
    assert load_settings().auth_mode == "noauth"


@pytest.mark.parametrize("value", ["5", "2.5", " 30 "])
def test_a_duration_needs_its_unit(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_INTERVAL", value)
    with pytest.raises(SettingsError, match="has no unit"):
        load_settings()
    monkeypatch.setenv("STACKTRAIL_TOKEN_CACHE_TTL_WRITES", "0")  # 0 needs none
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_INTERVAL", f"{value.strip()}s")
    assert load_settings().token_cache_ttl_writes == timedelta(0)


def test_a_bare_number_in_toml_needs_its_unit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "stacktrail.toml"
    config.write_text("archive_interval = 5\n")
    monkeypatch.setenv("STACKTRAIL_CONFIG", str(config))
    with pytest.raises(SettingsError, match=r"archive_interval .*in .*stacktrail\.toml.*no unit"):
        load_settings()


def test_toml_errors_name_the_file_and_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "stacktrail.toml"
    monkeypatch.setenv("STACKTRAIL_CONFIG", str(config))
    config.write_text('amqp_queue = "a"\narchive_interval = \n')
    with pytest.raises(SettingsError, match=rf"in {config}: .*line 2"):
        load_settings()
    config.write_text('amqp_queu = "typo"\n')
    with pytest.raises(SettingsError, match=rf"key `amqp_queu` in {config}: unknown setting"):
        load_settings()


def test_settings_mask_every_credential_also_in_urls() -> None:
    from stacktrail.config import display_value

    assert display_value("amqp_url", "amqp://guest:s3cret@rabbit:5672/%2F") == (
        "amqp://guest:***@rabbit:5672/%2F"
    )
    assert display_value("database_url", "postgresql+asyncpg://st:pw@db/st") == (
        "postgresql+asyncpg://st:***@db/st"
    )
    assert display_value("search_url", "https://es.example:9200") == "https://es.example:9200"
    assert display_value("s3_access_key", "AKIA123") == "***"
    assert display_value("keystone_password", "") == ""
    assert display_value("amqp_bindings", ["a:b", "c:d"]) == "a:b,c:d"


def test_the_default_interval_has_the_trails_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_INTERVAL", "3d")
    with pytest.raises(SettingsError, match="archive_interval"):
        load_settings()
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_INTERVAL", "1d")
    assert load_settings().archive_interval == timedelta(days=1)
