"""The app as operators see it: probes, error envelopes, no leaked internals."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from dockyard.app import create_app
from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY


def test_healthz_answers_without_the_database(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://u:topsecret@127.0.0.1:1/nowhere",
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").text == "ok"
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_unavailable"
    assert "127.0.0.1:1" in ready.json()["error"]["message"]
    assert "topsecret" not in ready.text


def test_readyz_answers_200_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_unknown_paths_get_the_error_envelope(client: TestClient) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no such resource: check the URL"}
    }


def test_wrong_methods_get_the_error_envelope(client: TestClient) -> None:
    response = client.delete("/api/registries")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unexpected_failure_answers_500_without_internals(client: TestClient) -> None:
    app = client.app

    @app.get("/api/boom")  # type: ignore[attr-defined, untyped-decorator]
    def boom() -> None:
        raise RuntimeError("db password is hunter2")

    response = client.get("/api/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert "reference" in body["error"]["message"]
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


def test_the_openapi_document_is_served_where_the_contract_says(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    assert "/api/registries/resolve" in document["paths"]
    assert "/api/tokens" in document["paths"]


def test_the_home_page_and_stylesheet_are_served(client: TestClient) -> None:
    assert "dockyard" in client.get("/").text
    assert client.get("/static/dockyard.css").status_code == 200
