"""Web pages over HTTP: sessions, CSRF, sign-in limits, escaping and visibility."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from dockyard.app import create_app
from dockyard.settings import Settings
from tests.support.app import MakeUser, bearer

PASSWORD = "correct horse battery"


def token_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    token = token_of(client.get("/signin").text)
    answer: httpx.Response = client.post(
        "/signin",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    return answer


@pytest.fixture
def maria(make_user: MakeUser) -> str:
    return make_user("maria", password=PASSWORD)[1]


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(
    settings: Settings, maria: str
) -> None:
    with TestClient(create_app(settings), base_url="https://dockyard.example") as client:
        answer = sign_in(client, "maria")
        cookie = answer.headers["set-cookie"]
        assert "__Host-dockyard_session=" in cookie  # only this host, over HTTPS, path /
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
        assert "Domain" not in cookie and "Path=/" in cookie
        assert client.get("/my/tools").status_code == 200  # the prefixed cookie signs in
    with TestClient(create_app(settings)) as plain:
        assert "Secure" not in sign_in(plain, "maria").headers["set-cookie"]


def test_forms_without_this_browsers_csrf_token_are_refused(
    client: TestClient, maria: str, settings: Settings
) -> None:
    sign_in(client, "maria")
    no_token = client.post("/my/tools", data={"image": "quay.io/ns/forged"})
    assert no_token.status_code == 403
    assert "did not come from this site" in no_token.text
    with TestClient(create_app(settings)) as other:
        foreign = token_of(other.get("/signin").text)
    assert (
        client.post(
            "/my/tools", data={"image": "quay.io/ns/forged", "csrf_token": foreign}
        ).status_code
        == 403
    )
    assert "forged" not in client.get("/my/tools").text
    good = client.post(
        "/my/tools",
        data={"image": "quay.io/ns/real", "csrf_token": token_of(client.get("/my/tools").text)},
        follow_redirects=False,
    )
    assert good.status_code == 303


def test_a_csrf_token_works_only_with_the_session_it_was_made_in(
    settings: Settings, maria: str, make_user: MakeUser
) -> None:
    make_user("bob", password=PASSWORD)
    with TestClient(create_app(settings)) as bob, TestClient(create_app(settings)) as mine:
        sign_in(bob, "bob")
        bob_token = token_of(bob.get("/my/tools").text)
        sign_in(mine, "maria")
        # Bob's CSRF cookie and token, sent with Maria's session.
        mine.cookies.set("dockyard_csrf", bob.cookies["dockyard_csrf"])
        forged = mine.post(
            "/my/tools",
            data={"image": "quay.io/ns/crossed", "csrf_token": bob_token},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        assert "crossed" not in mine.get("/my/tools").text


def test_a_notice_after_a_form_comes_from_a_signed_cookie_not_the_address(
    client: TestClient, maria: str
) -> None:
    sign_in(client, "maria")
    done = client.post(
        "/my/tools",
        data={"image": "quay.io/ns/noticed", "csrf_token": token_of(client.get("/my/tools").text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "notice" not in done.headers["location"]
    page = client.get(done.headers["location"])
    assert "Registered quay.io/ns/noticed." in page.text
    assert "Registered quay.io/ns/noticed." not in client.get(done.headers["location"]).text
    client.cookies.set("dockyard_notice", "Rm9yZ2Vk.0000")  # "Forged", badly signed
    assert "Forged" not in client.get("/").text


def test_sign_in_is_rate_limited_per_username(client: TestClient, maria: str) -> None:
    for _ in range(5):
        assert sign_in(client, "maria", "wrong password!").status_code == 401
    limited = sign_in(client, "maria")
    assert limited.status_code == 429
    assert "too many failed sign-ins" in limited.text


def test_sign_in_never_sends_the_browser_elsewhere(client: TestClient, maria: str) -> None:
    token = token_of(client.get("/signin").text)
    answer = client.post(
        "/signin",
        data={
            "username": "maria",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/steal",
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_pages_for_signed_in_users_send_others_to_sign_in(client: TestClient) -> None:
    for path in ("/my/tools", "/access", "/account"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/signin?next={path.replace('/', '%2F')}"


def test_tool_pages_escape_what_users_wrote_and_hide_unpublished_tools(
    client: TestClient, maria: str, make_user: MakeUser
) -> None:
    tool = client.post(
        "/api/tools",
        json={"image": "quay.io/ns/xss", "description": "<script>alert(1)</script>"},
        headers=bearer(maria),
    ).json()
    assert client.get("/tools/quay.io/ns/xss").status_code == 404
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"}, headers=bearer(maria))
    client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(maria))
    page = client.get("/tools/quay.io/ns/xss")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    found = client.get("/search", params={"q": "xss"})
    assert "quay.io/ns/xss" in found.text


def test_api_tokens_are_shown_once_in_account_settings(client: TestClient, maria: str) -> None:
    sign_in(client, "maria")
    page = client.get("/account")
    created = client.post(
        "/account/tokens", data={"name": "laptop", "csrf_token": token_of(page.text)}
    )
    token = re.search(r'<code id="new-token">(dy_[^<]+)</code>', created.text)
    assert token is not None
    assert client.get("/api/users/me", headers=bearer(token.group(1))).status_code == 200
    assert token.group(1) not in client.get("/account").text


def test_signed_in_users_ask_for_a_registry_on_the_registries_page(
    client: TestClient, maria: str
) -> None:
    assert "Sign in</a> to ask for a registry" in client.get("/registries").text
    sign_in(client, "maria")
    page = client.get("/registries")
    known = client.post(
        "/registries/requests",
        data={"host": "quay.io", "reason": "x", "csrf_token": token_of(page.text)},
    )
    assert "already supported" in known.text
    asked = client.post(
        "/registries/requests",
        data={
            "host": "harbor.lab.example.org",
            "reason": "our lab",
            "csrf_token": token_of(page.text),
        },
    )
    assert "Your request for harbor.lab.example.org was sent" in asked.text
