from __future__ import annotations

import pytest

from core.settings import Profile, Settings, get_settings, reset_settings


def test_defaults_need_no_configuration(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("REDIS_URL")
    reset_settings()
    settings = get_settings()
    assert settings.app_env is Profile.test
    assert settings.effective_database_url.startswith("sqlite:///") and settings.effective_database_url.endswith("incident-responder.db")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert not settings.llm_enabled


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    settings = Settings()
    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings.model_dump())
    assert settings.llm_enabled


def test_prod_profile_logs_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    reset_settings()
    try:
        assert get_settings().log_format == "json"
    finally:
        reset_settings()


def test_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        Settings()


def test_list_settings_read_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_ALLOWED_CHANNELS", '["C1", "C2"]')
    assert Settings().slack_allowed_channels == ["C1", "C2"]


def test_connection_urls_with_passwords_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app:db-pass-123@db/ir")
    monkeypatch.setenv("REDIS_URL", "redis://:redis-pass-456@cache:6379/0")
    settings = Settings()
    assert "db-pass-123" not in repr(settings) and "redis-pass-456" not in str(settings)
    assert settings.effective_database_url.endswith("@db/ir")
