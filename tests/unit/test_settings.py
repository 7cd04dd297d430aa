"""Settings parse strictly, refuse unsafe production values, and stay documented."""

import re
from pathlib import Path

import pytest

from app.settings import DEV_DATA_KEY, DEV_SECRET, SettingsError, documented_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_load_for_development():
    settings = load_settings({})
    assert settings.ops.environment == "development"
    assert settings.web.default_locale == "fr"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEB_PORT", "eighty"),
        ("DATABASE_ECHO", "maybe"),
        ("APP_ENV", "staging"),
        ("WEB_DEFAULT_LOCALE", "de"),
    ],
)
def test_malformed_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


@pytest.mark.parametrize("secret", ["", DEV_SECRET, "short"])
def test_production_refuses_a_missing_or_default_secret(secret):
    env = {"APP_ENV": "production", "DATABASE_URL": "postgresql://u:p@db/app", "SECRET_KEY": secret}
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings(env)


@pytest.mark.parametrize("key", ["", DEV_DATA_KEY, "short"])
def test_production_refuses_a_missing_or_default_data_key(key):
    env = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://u:p@db/app",
        "SECRET_KEY": "x" * 40,
        "DATA_KEY": key,
    }
    with pytest.raises(SettingsError, match="DATA_KEY"):
        load_settings(env)


def test_production_requires_an_external_database():
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings({"APP_ENV": "production", "SECRET_KEY": "x" * 40, "DATA_KEY": "k" * 40})


def test_production_accepts_safe_values():
    settings = load_settings(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "x" * 40,
            "DATA_KEY": "k" * 40,
            "DATABASE_URL": "postgresql://u:p@db/app",
        }
    )
    assert settings.production


@pytest.mark.parametrize("printer", ["printer", "printer:", "printer:http", ":9100", "printer:70000"])
def test_a_label_printer_must_be_host_and_port(printer):
    with pytest.raises(SettingsError, match="LABEL_PRINTER"):
        load_settings({"LABEL_PRINTER": printer})


def test_env_example_lists_every_setting_and_nothing_else():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert listed == {name for name, _default, _doc in documented_variables()}


def test_readme_configuration_table_matches_the_settings():
    text = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, flags=re.M))
    assert rows == {name for name, _default, _doc in documented_variables()}
