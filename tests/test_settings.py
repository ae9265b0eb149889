"""Settings from `DOCKYARD_*` variables: defaults, the embedded secret key, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dockyard.errors import ConfigurationError
from dockyard.settings import load_settings


def test_the_embedded_default_is_sqlite_in_the_data_dir_with_a_generated_key(
    tmp_path: Path,
) -> None:
    settings = load_settings({"DOCKYARD_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'dockyard.db'}"
    assert settings.embedded
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == key_file.read_text().strip()
    again = load_settings({"DOCKYARD_DATA_DIR": str(tmp_path)})
    assert again.secret_key == settings.secret_key


def test_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings({"DOCKYARD_DATA_DIR": str(tmp_path)})
    assert settings.refresh_interval == 21600
    assert settings.allow_private_network_registries is False
    assert settings.registries_file is None
    assert settings.smtp_url is None


def test_commands_that_need_no_key_touch_nothing(tmp_path: Path) -> None:
    settings = load_settings({"DOCKYARD_DATA_DIR": str(tmp_path / "d")}, make_secret_key=False)
    assert settings.secret_key is None
    assert not (tmp_path / "d").exists()


def test_postgresql_requires_an_explicit_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="DOCKYARD_SECRET_KEY must be set"):
        load_settings({"DOCKYARD_DATABASE_URL": "postgresql://db.example.org/dockyard"})


def test_postgresql_urls_get_dockyards_driver() -> None:
    settings = load_settings(
        {"DOCKYARD_DATABASE_URL": "postgresql://u:pw@db/dockyard", "DOCKYARD_SECRET_KEY": "k" * 40}
    )
    assert not settings.embedded


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"DOCKYARD_DATABASE_URL": "not a url"}, "DOCKYARD_DATABASE_URL is not a database URL"),
        ({"DOCKYARD_DATABASE_URL": "mysql://h/db"}, "supports sqlite:// and postgresql://"),
        ({"DOCKYARD_SECRET_KEY": "short"}, "DOCKYARD_SECRET_KEY: must be at least 32 characters"),
        (
            {"DOCKYARD_REFRESH_INTERVAL": "soon"},
            "DOCKYARD_REFRESH_INTERVAL: Input should be a valid integer",
        ),
        (
            {"DOCKYARD_REFRESH_INTERVAL": "5"},
            "DOCKYARD_REFRESH_INTERVAL: Input should be greater than or equal to 60",
        ),
        (
            {"DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES": "maybe"},
            "DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES",
        ),
        ({"DOCKYARD_BASE_URL": "dockyard.example.org"}, "DOCKYARD_BASE_URL: must start with http"),
        ({"DOCKYARD_REFRESH_INTERVALL": "60"}, "unknown setting DOCKYARD_REFRESH_INTERVALL"),
    ],
)
def test_bad_settings_give_one_line_naming_the_variable(
    tmp_path: Path, environ: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"DOCKYARD_DATA_DIR": str(tmp_path), **environ})
    assert says in caught.value.message
    assert "\n" not in caught.value.message


def test_a_short_secret_key_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"DOCKYARD_SECRET_KEY": "hunter2-secret"})
    assert "hunter2" not in caught.value.message


def test_an_unwritable_data_dir_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="cannot keep the secret key"):
        load_settings({"DOCKYARD_DATA_DIR": str(blocker / "sub")})
