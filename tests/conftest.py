"""Shared fixtures: every database test runs on SQLite and on the machine's PostgreSQL.

The schema is made by the Alembic migrations, once per backend and test session; each test
starts from empty tables. Emptying, not a rolled-back transaction per test: most tests reach
the database through more than one connection (the app's threads under TestClient, servers on
loopback, `dockyard` subprocesses, workers, the refresh's batches and the TRS cache's reader,
which commit on their own connections), and one test connection's transaction cannot hold
what those commit. PostgreSQL comes from `DOCKYARD_TEST_POSTGRESQL_URL` (default: the
local server with trust auth); each run creates and drops a database of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.accounts.models import User
from dockyard.app import create_app
from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, serving
from tests.support.registry import LocalRegistry, run_registry

POSTGRESQL_SERVER = os.environ.get(
    "DOCKYARD_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def _scratch_database(*, migrated: bool) -> Iterator[str]:
    """A new PostgreSQL database on the test server, dropped afterwards; its URL."""
    server = make_url(POSTGRESQL_SERVER).set(drivername="postgresql+psycopg")
    name = f"dockyard_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # the one place a missing server must stop the run loudly
        pytest.fail(
            f"PostgreSQL at {server.render_as_string(hide_password=True)} is not usable ({error}); "
            "start it or point DOCKYARD_TEST_POSTGRESQL_URL at one",
            pytrace=False,
        )
    url = server.set(database=name).render_as_string(hide_password=False)
    if migrated:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to the newest schema."""
    with _scratch_database(migrated=True) as url:
        yield url


@pytest.fixture
def empty_postgresql() -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own (a deployment migrates it)."""
    with _scratch_database(migrated=False) as url:
        yield url


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database on each backend, shared by the tests of this session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'dockyard.db'}"
    else:
        url = request.getfixturevalue("postgresql_url")
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The engine of the session's database."""
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


#: Tables whose rows the migrations insert and the app expects to find.
SEEDED_BY_MIGRATIONS = {"catalog_state"}


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that touch the database leave it empty for the next one."""
    yield
    if "engine" not in request.fixturenames:
        return
    engine: Engine = request.getfixturevalue("engine")
    with engine.begin() as connection:
        for table in reversed(db.Base.metadata.sorted_tables):
            if table.name not in SEEDED_BY_MIGRATIONS:
                connection.execute(table.delete())
        # Bulk deletes bypass the session hook; caches in a shared live server must notice.
        connection.execute(text("UPDATE catalog_state SET generation = generation + 1"))


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A unit of work on the test database, committed when the test body ends cleanly."""
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        yield session


@pytest.fixture
def settings(database_url: str, engine: Engine, tmp_path: Path) -> Settings:
    """Settings for an app on the test database."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
        allow_private_network_registries=True,
        background_refresh=False,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An HTTP client for a dockyard app on the test database."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def make_user(engine: Engine) -> Callable[..., tuple[User, str]]:
    """A factory of committed users, each with an API token."""

    def make(
        username: str = "ada", *, admin: bool = False, password: str | None = None
    ) -> tuple[User, str]:
        with db.unit_of_work(db.make_sessionmaker(engine)) as session:
            user = accounts.create_user(
                session,
                username=username,
                email=f"{username}@example.org",
                password=password,
                is_admin=admin,
            )
            _, token = accounts.create_token(session, user, name="tests")
        return user, token

    return make


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real dockyard server (uvicorn on loopback) on the session's database; its base URL."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("live"),
        secret_key=SecretStr(TEST_SECRET_KEY),
        allow_private_network_registries=True,
        background_refresh=False,
    )
    with serving(settings) as url:
        yield url


@pytest.fixture(scope="session", params=["open", "htpasswd", "token"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRegistry]:
    """Debian's docker-registry on loopback: no auth, htpasswd (Basic) or token (Bearer)."""
    with run_registry(
        request.param, tmp_path_factory.mktemp(f"registry-{request.param}")
    ) as running:
        yield running


@pytest.fixture(scope="session")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry without auth, for tests about refresh behaviour rather than auth."""
    with run_registry("open", tmp_path_factory.mktemp("registry-open-only")) as running:
        yield running


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS, with the operator's default credentials in the environment."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield
