"""The environment the CLI tests run the `dockyard` command in."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.app import TEST_SECRET_KEY


@pytest.fixture
def env(database_url: str, engine: Engine, tmp_path: Path) -> dict[str, str]:
    return {
        "DOCKYARD_DATABASE_URL": database_url,
        "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
        "DOCKYARD_DATA_DIR": str(tmp_path),
    }
