"""The whole workflow against a running server and a real SMTP server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, MakeUser, bearer, serving
from tests.support.network import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"expected {count} emails, got {len(self.messages)}", pytrace=False)
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, inbox: tuple[Inbox, int], engine: Any
) -> Iterator[str]:
    def settings(url: str) -> Settings:
        return Settings(
            database_url=database_url,
            data_dir=tmp_path,
            secret_key=SecretStr(TEST_SECRET_KEY),
            background_refresh=False,
            smtp_url=SecretStr(f"smtp://127.0.0.1:{inbox[1]}"),
            mail_from="dockyard@lab.example.org",
            base_url=url,  # email links need it
        )

    with serving(settings) as url:
        yield url


def text_of(message: Message) -> tuple[str, str]:
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    return parts["text/plain"].decode(), parts["text/html"].decode()  # type: ignore[union-attr]


def setup_tool(api: httpx.Client, maria: str) -> int:
    tool = api.post(
        "/api/tools",
        json={
            "image": "quay.io/lab/private-tool",
            "private": True,
            "maintainer_email": "lab@example.org",
        },
        headers=bearer(maria),
    ).json()
    api.post(f"/api/tools/{tool['id']}/versions", json={"name": "2.1"}, headers=bearer(maria))
    api.post(f"/api/tools/{tool['id']}/publish", headers=bearer(maria))
    return int(tool["id"])


def test_request_email_grant_email_and_pull_instructions(
    server: str, inbox: tuple[Inbox, int], make_user: MakeUser
) -> None:
    mailbox, _ = inbox
    _, maria = make_user("maria")
    _, bob = make_user("bob")
    with httpx.Client(base_url=server, timeout=30) as api:
        tool_id = setup_tool(api, maria)
        created = api.post(
            f"/api/tools/{tool_id}/access-requests",
            json={"registry_username": "bobby", "message": "for the <b>paper</b>"},
            headers=bearer(bob),
        )
        assert created.status_code == 201
        request_id = created.json()["id"]
        asked = mailbox.wait_for(1)[0]
        assert asked["To"] == "lab@example.org"
        assert asked["From"] == "dockyard@lab.example.org"
        assert "bob requests access to quay.io/lab/private-tool" in asked["Subject"]
        plain, rich = text_of(asked)
        assert "Quay.io username or robot account: bobby" in plain
        assert f"{server}/access/requests/{request_id}" in plain
        assert "&lt;b&gt;paper&lt;/b&gt;" in rich and f'href="{server}/access/requests/' in rich

        granted = api.post(f"/api/access-requests/{request_id}/grant", headers=bearer(maria))
        assert granted.status_code == 200
        told = mailbox.wait_for(2)[1]
        assert told["To"] == "bob@example.org"
        assert "granted" in told["Subject"]
        assert "was granted by maria" in text_of(told)[0]
        notices = api.get("/api/notifications?unread=true", headers=bearer(bob)).json()
        assert [n["kind"] for n in notices["items"]] == ["access-granted"]

        pull = api.get(f"/api/tools/{tool_id}/pull-instructions", headers=bearer(bob)).json()
        assert pull["access"] == "granted"
        assert [line["tool"] for line in pull["pull"]] == ["docker", "podman", "apptainer"]
        assert pull["pull"][2]["command"] == (
            "apptainer pull docker://quay.io/lab/private-tool:2.1"
        )


def test_deny_and_revoke_reach_the_requester(
    server: str, inbox: tuple[Inbox, int], make_user: MakeUser
) -> None:
    mailbox, _ = inbox
    _, maria = make_user("maria")
    _, bob = make_user("bob")
    with httpx.Client(base_url=server, timeout=30) as api:
        tool_id = setup_tool(api, maria)

        def ask() -> int:
            answer = api.post(
                f"/api/tools/{tool_id}/access-requests",
                json={"registry_username": "bobby"},
                headers=bearer(bob),
            )
            return int(answer.json()["id"])

        first = ask()
        api.post(
            f"/api/access-requests/{first}/deny",
            json={"reason": "ask your PI first"},
            headers=bearer(maria),
        )
        # Each email goes out after its answer, so two close together may arrive either way.
        [denied] = [m for m in mailbox.wait_for(2) if "denied" in m["Subject"]]
        assert "ask your PI first" in text_of(denied)[0]
        assert (
            api.get(f"/api/tools/{tool_id}/pull-instructions", headers=bearer(bob)).status_code
            == 403
        )

        second = ask()
        api.post(f"/api/access-requests/{second}/grant", headers=bearer(maria))
        api.post(
            f"/api/access-requests/{second}/revoke",
            json={"reason": "project ended"},
            headers=bearer(maria),
        )
        [revoked] = [m for m in mailbox.wait_for(5) if "revoked" in m["Subject"]]
        assert "project ended" in text_of(revoked)[0]
        assert (
            api.get(f"/api/tools/{tool_id}/pull-instructions", headers=bearer(bob)).status_code
            == 403
        )
