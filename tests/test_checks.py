"""`dockyard check` run as an operator runs it: each misconfiguration it is given is reported
as a problem or warning that says what to change, and a sound deployment passes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from dockyard import db
from tests.support.app import TEST_SECRET_KEY
from tests.support.network import free_port
from tests.support.oidc import Client, oidc_provider, providers_file
from tests.support.processes import clean_environment, serving, start, stop


def check(env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]]]:
    """Exit status and the findings by check name."""
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "check", "--json", "--timeout", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, {f["check"]: f for f in findings}


@pytest.fixture
def sound(tmp_path: Path) -> dict[str, str]:
    """An embedded deployment with nothing wrong: migrated, a real key, SMTP answering."""
    data = tmp_path / "data"
    data.mkdir()
    engine = db.make_engine(f"sqlite:///{data / 'dockyard.db'}")
    db.upgrade(engine)
    engine.dispose()
    return clean_environment(
        DOCKYARD_DATA_DIR=str(data),
        DOCKYARD_SECRET_KEY="k3y-" + "Zq8vR2mW5tY1" * 4,
        DOCKYARD_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )


class Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _lab_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"lab", b"pw")
    return AuthResult(success=good)


@pytest.fixture
def smtp() -> Iterator[int]:
    """A real SMTP server (aiosmtpd) that wants the login lab / pw."""
    port = free_port()
    controller = Controller(
        Accept(),
        hostname="127.0.0.1",
        port=port,
        authenticator=_lab_login,
        auth_require_tls=False,
    )
    controller.start()
    yield port
    controller.stop()


def test_a_sound_deployment_passes(sound: dict[str, str], smtp: int, tmp_path: Path) -> None:
    env = sound | {"DOCKYARD_SMTP_URL": f"smtp://lab:pw@127.0.0.1:{smtp}"}
    port = int(env["DOCKYARD_BASE_URL"].rpartition(":")[2])
    with serving(env, tmp_path / "serve.log", port=port):
        status, found = check(env)
    assert status == 0, found
    assert {name: f["verdict"] for name, f in found.items()} == {
        "settings": "ok",
        "base URL": "ok",
        "secret key": "ok",
        "database": "ok",
        "email": "ok",
        "workers": "ok",
        "registries": "ok",
        "sign-in": "ok",
    }


@pytest.mark.parametrize(
    ("change", "name", "says"),
    [
        ({"DOCKYARD_REFRESH_EVERY": "1h"}, "settings", "unknown setting DOCKYARD_REFRESH_EVERY"),
        ({"DOCKYARD_SECRET_KEY": "change-me-" + "x" * 30}, "secret key", "looks like an example"),
        ({"DOCKYARD_SMTP_URL": "smtp://127.0.0.1:{closed}"}, "email", "cannot reach the SMTP"),
        ({"DOCKYARD_SMTP_URL": "smtp://lab:wrong@127.0.0.1:{smtp}"}, "email", "refused the user"),
        ({"DOCKYARD_REGISTRIES_FILE": "{bad_registries}"}, "registries", "registries.toml"),
        (
            {
                "DOCKYARD_OIDC_ISSUER": "http://127.0.0.1:{closed}",
                "DOCKYARD_OIDC_CLIENT_ID": "dockyard",
                "DOCKYARD_OIDC_CLIENT_SECRET": "wrong",
                "DOCKYARD_OIDC_NAME": "Lab login",
            },
            "sign-in",
            "default: Lab login could not be reached",
        ),
        ({"DOCKYARD_AUTH_PROVIDERS_FILE": "{bad_providers}"}, "sign-in", "needs issuer"),
    ],
)
def test_each_misconfiguration_is_a_problem_that_says_what_to_change(
    sound: dict[str, str],
    smtp: int,
    tmp_path: Path,
    change: dict[str, str],
    name: str,
    says: str,
) -> None:
    bad_registries = tmp_path / "registries.toml"
    bad_registries.write_text('[[registry]]\nid = "lab"\n')  # no host
    bad_providers = tmp_path / "auth.toml"
    bad_providers.write_text('[providers.lab]\nclient_id = "a"\nclient_secret = "wrong"\n')
    values = {
        "closed": free_port(),
        "smtp": smtp,
        "bad_registries": bad_registries,
        "bad_providers": bad_providers,
    }
    status, found = check(sound | {k: v.format(**values) for k, v in change.items()})
    assert status == 1
    assert found[name]["verdict"] == "problem", found
    assert says in found[name]["detail"], found[name]
    assert "wrong" not in json.dumps(found)  # no password in what it prints


def test_an_unmigrated_database_asks_for_db_upgrade(tmp_path: Path) -> None:
    env = clean_environment(DOCKYARD_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    status, found = check(env | {"DOCKYARD_SECRET_KEY": "k3y-" + "Zq8vR2mW5tY1" * 4})
    assert status == 1
    assert "run `dockyard db upgrade`" in found["database"]["detail"]


def test_an_unreachable_database_says_so_without_its_password() -> None:
    url = f"postgresql://dockyard:hunter2pass@127.0.0.1:{free_port()}/dockyard"
    status, found = check(
        clean_environment(DOCKYARD_DATABASE_URL=url, DOCKYARD_SECRET_KEY=TEST_SECRET_KEY)
    )
    assert status == 1
    assert "did not answer" in found["database"]["detail"]
    assert found["workers"]["verdict"] == "problem"
    assert "hunter2pass" not in json.dumps(found)


def test_a_readable_key_file_and_plain_http_are_reported(sound: dict[str, str]) -> None:
    data = Path(sound["DOCKYARD_DATA_DIR"])
    env = {k: v for k, v in sound.items() if k != "DOCKYARD_SECRET_KEY"}
    key = data / "secret_key"
    key.write_text("Zq8vR2mW5tY1" * 4)
    key.chmod(0o644)
    status, found = check(env | {"DOCKYARD_BASE_URL": f"http://tools.example.org:{free_port()}"})
    assert status == 1
    assert "chmod 600" in found["secret key"]["detail"]
    assert found["base URL"]["verdict"] == "warning"
    assert "plain HTTP" in found["base URL"]["detail"]


@pytest.mark.postgresql
def test_postgresql_without_a_worker_is_a_problem_and_with_one_is_not(
    postgresql_url: str, tmp_path: Path
) -> None:
    env = clean_environment(
        DOCKYARD_DATABASE_URL=postgresql_url,
        DOCKYARD_SECRET_KEY="k3y-" + "Zq8vR2mW5tY1" * 4,
        DOCKYARD_BASE_URL="https://tools.example.org",
    )
    engine = db.make_engine(postgresql_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM procrastinate_workers")
    engine.dispose()
    status, found = check(env)
    assert status == 1 and found["workers"]["verdict"] == "problem"
    assert "no `dockyard worker`" in found["workers"]["detail"]
    assert found["base URL"]["verdict"] == "warning"  # it does not answer from here
    worker = start(["worker"], env, tmp_path / "worker.log")
    try:
        for _ in range(60):
            status, found = check(env)
            if found["workers"]["verdict"] == "ok":
                break
        assert found["workers"]["detail"] == "1 worker alive", stop(worker)
    finally:
        stop(worker)


def test_a_real_provider_that_answers_passes_the_sign_in_check(
    sound: dict[str, str], tmp_path: Path
) -> None:
    lab = Client("lab", "dockyard-lab")
    with oidc_provider(tmp_path, sound["DOCKYARD_BASE_URL"], [lab]) as issuer:
        auth = providers_file(tmp_path / "auth.toml", issuer, [lab])
        _, found = check(sound | {"DOCKYARD_AUTH_PROVIDERS_FILE": str(auth)})
    assert found["sign-in"]["verdict"] == "ok", found["sign-in"]
    assert "lab answer; self sign-up false" in found["sign-in"]["detail"]
