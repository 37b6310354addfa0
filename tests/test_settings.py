"""Settings: file < environment < explicit option, typed, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimsync_console.settings import SettingsError, describe, load_settings


def test_default_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = load_settings({"CLAIMSYNC_DATA_DIR": str(tmp_path)})
    assert settings.resolved_database_url == f"sqlite+pysqlite:///{tmp_path / 'claimsync.sqlite'}"
    assert settings.resolved_ledger_path == tmp_path / "ledger.sqlite"


def test_precedence_file_then_env_then_option(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[claimsync]\ndatabase_url = "sqlite:///file.db"\noperator = "filer"\n')
    env = {"CLAIMSYNC_CONFIG": str(config), "CLAIMSYNC_DATA_DIR": str(tmp_path)}
    assert load_settings(env).database_url == "sqlite:///file.db"
    env["CLAIMSYNC_DATABASE_URL"] = "sqlite:///env.db"
    assert load_settings(env).database_url == "sqlite:///env.db"
    assert load_settings(env, database_url="sqlite:///opt.db").database_url == "sqlite:///opt.db"
    assert load_settings(env, database_url=None).operator == "filer"


def test_unknown_setting_and_bad_role_are_errors(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('databse_url = "typo"\n')
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings({"CLAIMSYNC_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="role"):
        load_settings({"CLAIMSYNC_ROLE": "owner", "CLAIMSYNC_DATA_DIR": str(tmp_path)})


def test_every_setting_says_what_it_is_for() -> None:
    documented = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    text = documented.read_text(encoding="utf-8")
    for name, env, help_text in describe():
        assert len(help_text) > 15
        assert f"`{env}`" in text, f"{name} missing from docs/configuration.md"
