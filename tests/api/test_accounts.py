"""Bearer authentication and the caller's tokens over the REST API."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from dockyard.accounts.models import User
from tests.support.app import bearer


def test_me_requires_a_token(client: TestClient) -> None:
    response = client.get("/api/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "authentication_required"


def test_a_bearer_token_identifies_the_caller(
    client: TestClient, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, token = make_user("ada", admin=True)
    body = client.get("/api/users/me", headers=bearer(token)).json()
    assert body["username"] == "ada"
    assert body["is_admin"] is True
    assert "password_hash" not in body


def test_a_malformed_authorization_header_is_explained(client: TestClient) -> None:
    response = client.get("/api/users/me", headers={"Authorization": "Token abc"})
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]["message"]


def test_an_invalid_token_is_refused_without_echoing_it(client: TestClient) -> None:
    response = client.get("/api/users/me", headers=bearer("dy_guessed-token-value"))
    assert response.status_code == 401
    assert "dy_guessed-token-value" not in response.text


def test_tokens_are_created_shown_once_listed_and_revoked(
    client: TestClient, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, token = make_user("ada")
    created = client.post("/api/tokens", json={"name": "ci"}, headers=bearer(token))
    assert created.status_code == 201
    new = created.json()
    assert new["token"].startswith("dy_")
    assert client.get("/api/users/me", headers=bearer(new["token"])).status_code == 200

    listing = client.get("/api/tokens", headers=bearer(token)).json()
    assert listing["total"] == 2
    assert all("token" not in item for item in listing["items"])
    assert new["token"] not in str(listing)

    assert client.delete(f"/api/tokens/{new['id']}", headers=bearer(token)).status_code == 204
    assert client.get("/api/users/me", headers=bearer(new["token"])).status_code == 401
    states = {
        item["name"]: item["active"]
        for item in client.get("/api/tokens", headers=bearer(token)).json()["items"]
    }
    assert states == {"tests": True, "ci": False}


def test_a_user_cannot_revoke_someone_elses_token(
    client: TestClient, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, ada = make_user("ada")
    _, grace = make_user("grace")
    grace_token_id = client.get("/api/tokens", headers=bearer(grace)).json()["items"][0]["id"]
    response = client.delete(f"/api/tokens/{grace_token_id}", headers=bearer(ada))
    assert response.status_code == 404
    assert client.get("/api/users/me", headers=bearer(grace)).status_code == 200


def test_an_empty_token_name_is_refused_with_the_field(
    client: TestClient, make_user: Callable[..., tuple[User, str]]
) -> None:
    _, token = make_user("ada")
    response = client.post("/api/tokens", json={"name": ""}, headers=bearer(token))
    assert response.status_code == 422
    assert "name" in response.json()["error"]["message"]
