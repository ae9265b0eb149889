"""Access requests over HTTP: rules, ECR and Quay grants, and who may see what."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from dockyard.access.grants import Granter
from dockyard.registries.credentials import SecretBox
from tests.support.app import TEST_SECRET_KEY, MakeUser, bearer

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
OTHER_STATEMENT = {
    "Sid": "CiPush",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"},
    "Action": ["ecr:PutImage"],
}


def private_tool(
    client: TestClient, token: str, image: str = "quay.io/lab/secret", *, private: bool = True
) -> Any:
    body: dict[str, Any] = {"image": image, "private": private}
    if private:
        body["maintainer_email"] = "lab@example.org"
    if image.startswith(ECR):
        body = {**body, "image": image.removeprefix(ECR + "/"), "registry_path": ECR}
    tool = client.post("/api/tools", json=body, headers=bearer(token))
    assert tool.status_code == 201, tool.text
    tid = tool.json()["id"]
    client.post(f"/api/tools/{tid}/versions", json={"name": "1.0"}, headers=bearer(token))
    assert client.post(f"/api/tools/{tid}/publish", headers=bearer(token)).status_code == 200
    return tool.json()


def ask(client: TestClient, token: str, tool_id: int, identity: str, message: str = "") -> Any:
    return client.post(
        f"/api/tools/{tool_id}/access-requests",
        json={"registry_username": identity, "message": message},
        headers=bearer(token),
    )


@pytest.fixture
def people(make_user: MakeUser) -> dict[str, str]:
    return {name: make_user(name)[1] for name in ("maria", "bob", "carol")}


def test_requests_follow_the_rules(client: TestClient, people: dict[str, str]) -> None:
    tool = private_tool(client, people["maria"])
    public = private_tool(client, people["maria"], "quay.io/lab/open", private=False)
    refused = ask(client, people["bob"], public["id"], "bobby")
    assert refused.status_code == 422
    assert "is public" in refused.json()["error"]["message"]
    assert ask(client, people["bob"], tool["id"], "Not Valid!").status_code == 422
    assert ask(client, people["maria"], tool["id"], "maria").status_code == 422
    first = ask(client, people["bob"], tool["id"], "Bobby", "for the paper")
    assert first.status_code == 201
    assert (first.json()["registry_identity"], first.json()["status"]) == ("bobby", "pending")
    again = ask(client, people["bob"], tool["id"], "bobby")
    assert again.status_code == 409
    assert f"request {first.json()['id']}" in again.json()["error"]["message"]
    assert ask(client, "nobody", tool["id"], "bobby").status_code == 401


def test_requests_are_rate_limited_per_user(
    client: TestClient, people: dict[str, str], make_user: MakeUser
) -> None:
    tools = [private_tool(client, people["maria"], f"quay.io/lab/t{n}") for n in range(11)]
    for tool in tools[:10]:
        assert ask(client, people["bob"], tool["id"], "bobby").status_code == 201
    limited = ask(client, people["bob"], tools[10]["id"], "bobby")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert ask(client, people["carol"], tools[10]["id"], "carol").status_code == 201


def test_deny_needs_a_reason_and_only_maintainers_decide(
    client: TestClient, people: dict[str, str]
) -> None:
    tool = private_tool(client, people["maria"])
    request_id = ask(client, people["bob"], tool["id"], "bobby").json()["id"]
    url = f"/api/access-requests/{request_id}"
    assert client.post(f"{url}/grant", headers=bearer(people["bob"])).status_code == 403
    no_reason = client.post(f"{url}/deny", json={}, headers=bearer(people["maria"]))
    assert no_reason.status_code == 422
    denied = client.post(
        f"{url}/deny", json={"reason": "not yet public"}, headers=bearer(people["maria"])
    )
    assert denied.status_code == 200
    assert (denied.json()["request"]["status"], denied.json()["request"]["reason"]) == (
        "denied",
        "not yet public",
    )
    assert client.post(f"{url}/grant", headers=bearer(people["maria"])).status_code == 409
    pull = client.get(f"/api/tools/{tool['id']}/pull-instructions", headers=bearer(people["bob"]))
    assert pull.status_code == 403
    again = ask(client, people["bob"], tool["id"], "bobby")
    assert again.status_code == 201  # a decided request does not block a new one
    log = client.get(f"/api/tools/{tool['id']}/access-log", headers=bearer(people["maria"]))
    assert [e["action"] for e in log.json()["items"]] == ["requested", "denied", "requested"]


def test_another_user_never_sees_a_request_its_message_or_identity(
    client: TestClient, people: dict[str, str]
) -> None:
    tool = private_tool(client, people["maria"])
    request_id = ask(client, people["bob"], tool["id"], "bobsecretid", "secret message").json()[
        "id"
    ]
    tid = tool["id"]
    secrets = ("bobsecretid", "secret message")
    walk: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/access-requests", None),
        ("GET", "/api/access-requests?role=inbox", None),
        ("GET", "/api/access-requests?role=mine", None),
        ("GET", f"/api/access-requests?tool_id={tid}", None),
        ("GET", f"/api/access-requests/{request_id}", None),
        ("POST", f"/api/access-requests/{request_id}/grant", {}),
        ("POST", f"/api/access-requests/{request_id}/deny", {"reason": "x"}),
        ("POST", f"/api/access-requests/{request_id}/revoke", {}),
        ("POST", f"/api/access-requests/{request_id}/withdraw", None),
        ("GET", f"/api/tools/{tid}/access-log", None),
        ("GET", f"/api/tools/{tid}/pull-instructions", None),
        ("GET", f"/api/tools/{tid}", None),
        ("GET", f"/api/tools/{tid}/versions", None),
        ("GET", "/api/notifications", None),
        ("GET", "/ga4gh/trs/v2/tools/quay.io%2Flab%2Fsecret", None),
    ]
    for headers in ({}, bearer(people["carol"])):
        for method, url, body in walk:
            answer = client.request(method, url, json=body, headers=headers)
            assert not any(s in answer.text for s in secrets), (method, url, answer.text)
            if "access-requests/" in url:
                assert answer.status_code in (401, 404), (method, url, answer.status_code)
            if url.endswith("access-log") and headers:
                assert answer.status_code == 403
    # the people who may see it do
    mine = client.get(f"/api/access-requests/{request_id}", headers=bearer(people["bob"]))
    inbox = client.get("/api/access-requests?role=inbox", headers=bearer(people["maria"]))
    assert "bobsecretid" in mine.text and "secret message" in inbox.text
    notices = client.get("/api/notifications", headers=bearer(people["maria"])).json()
    assert notices["total"] == 1 and "bobsecretid" in notices["items"][0]["text"]


def repository_policy() -> dict[str, Any]:
    ecr = boto3.client("ecr", region_name="us-east-1")
    text = ecr.get_repository_policy(repositoryName="team/tool")["policyText"]
    return dict(json.loads(text))


def test_granting_an_ecr_request_merges_exactly_one_statement_and_revoking_removes_it(
    aws: None, client: TestClient, people: dict[str, str]
) -> None:
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="team/tool")
    ecr.set_repository_policy(
        repositoryName="team/tool",
        policyText=json.dumps({"Version": "2012-10-17", "Statement": [OTHER_STATEMENT]}),
    )
    tool = private_tool(client, people["maria"], f"{ECR}/team/tool")
    saved = client.put(
        f"/api/tools/{tool['id']}/credentials",
        json={"kind": "aws", "username": "testing", "password": "testing"},
        headers=bearer(people["maria"]),
    )
    assert saved.status_code == 204
    statement = client.get(
        f"/api/tools/{tool['id']}/ecr-policy",
        params={"principal": "210987654321"},
        headers=bearer(people["maria"]),
    ).json()["statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert (
        client.get(
            f"/api/tools/{tool['id']}/ecr-policy",
            params={"principal": "210987654321"},
            headers=bearer(people["bob"]),
        ).status_code
        == 403
    )

    first = ask(client, people["bob"], tool["id"], "210987654321").json()["id"]
    granted = client.post(f"/api/access-requests/{first}/grant", headers=bearer(people["maria"]))
    assert granted.status_code == 200, granted.text
    assert granted.json()["registry_step"]["method"] == "ecr-policy"
    after_one = repository_policy()
    assert after_one["Statement"] == [OTHER_STATEMENT, statement]

    # A second grant for the same principal (a new request after a revoke-free re-ask by
    # another user of the same account) changes nothing.
    second = ask(client, people["carol"], tool["id"], "210987654321").json()["id"]
    client.post(f"/api/access-requests/{second}/grant", headers=bearer(people["maria"]))
    assert repository_policy() == after_one

    revoked = client.post(
        f"/api/access-requests/{first}/revoke",
        json={"reason": "project ended"},
        headers=bearer(people["maria"]),
    )
    assert revoked.status_code == 200
    assert repository_policy()["Statement"] == [OTHER_STATEMENT]
    log = client.get(f"/api/tools/{tool['id']}/access-log", headers=bearer(people["maria"]))
    actions = [e["action"] for e in log.json()["items"]][::-1]
    assert actions[:4] == ["requested", "registry-applied", "granted", "requested"]
    assert actions[-2:] == ["registry-removed", "revoked"]
    assert "testing" not in log.text


def test_an_ecr_failure_grants_nothing_and_says_what_to_do(
    aws: None, client: TestClient, people: dict[str, str]
) -> None:
    tool = private_tool(client, people["maria"], f"{ECR}/team/missing")
    client.put(
        f"/api/tools/{tool['id']}/credentials",
        json={"kind": "aws", "username": "testing", "password": "testing"},
        headers=bearer(people["maria"]),
    )
    request_id = ask(client, people["bob"], tool["id"], "210987654321").json()["id"]
    failed = client.post(
        f"/api/access-requests/{request_id}/grant", headers=bearer(people["maria"])
    )
    assert failed.status_code in (404, 502)
    assert "team/missing" in failed.json()["error"]["message"]
    mine = client.get(f"/api/access-requests/{request_id}", headers=bearer(people["bob"]))
    assert mine.json()["status"] == "pending"
    manual = client.post(
        f"/api/access-requests/{request_id}/grant",
        json={"apply": False},
        headers=bearer(people["maria"]),
    )
    assert manual.json()["registry_step"]["method"] == "manual"
    assert manual.json()["request"]["status"] == "granted"


def test_quay_grants_and_revokes_through_its_permissions_api(
    client: TestClient, people: dict[str, str]
) -> None:
    calls: list[tuple[str, str, str, str]] = []

    def quay(request: httpx.Request) -> httpx.Response:
        calls.append(
            (
                request.method,
                request.url.path,
                request.headers["authorization"],
                request.content.decode(),
            )
        )
        return httpx.Response(200, json={"role": "read", "name": "bobby"})

    context = client.app.state.context  # type: ignore[attr-defined]
    client.app.state.context = dataclasses.replace(  # type: ignore[attr-defined]
        context,
        granter=Granter(SecretBox(TEST_SECRET_KEY), quay_transport=httpx.MockTransport(quay)),
    )
    tool = private_tool(client, people["maria"])
    saved = client.put(
        f"/api/tools/{tool['id']}/grant-token",
        json={"token": "quay-oauth-token"},
        headers=bearer(people["maria"]),
    )
    assert saved.status_code == 204
    request_id = ask(client, people["bob"], tool["id"], "bobby").json()["id"]
    granted = client.post(
        f"/api/access-requests/{request_id}/grant", headers=bearer(people["maria"])
    ).json()
    assert granted["registry_step"]["method"] == "quay-api"
    client.post(f"/api/access-requests/{request_id}/revoke", headers=bearer(people["maria"]))
    path = "/api/v1/repository/lab/secret/permissions/user/bobby"
    assert calls == [
        ("PUT", path, "Bearer quay-oauth-token", '{"role":"read"}'),
        ("DELETE", path, "Bearer quay-oauth-token", ""),
    ]
    log = client.get(f"/api/tools/{tool['id']}/access-log", headers=bearer(people["maria"]))
    assert "quay-oauth-token" not in log.text


def test_pull_instructions_for_public_maintainer_and_granted_callers(
    client: TestClient, people: dict[str, str]
) -> None:
    tool = private_tool(client, people["maria"])
    url = f"/api/tools/{tool['id']}/pull-instructions"
    assert client.get(url).status_code == 403
    assert client.get(url, headers=bearer(people["maria"])).json()["access"] == "maintainer"
    request_id = ask(client, people["bob"], tool["id"], "bobby").json()["id"]
    client.post(f"/api/access-requests/{request_id}/grant", headers=bearer(people["maria"]))
    answer = client.get(url, headers=bearer(people["bob"])).json()
    assert answer["access"] == "granted"
    assert answer["login"][0]["command"] == "docker login --username bobby quay.io"
    assert answer["pull"][0]["command"] == "docker pull quay.io/lab/secret:1.0"


def test_registry_requests_for_users_and_admins(
    client: TestClient, people: dict[str, str], make_user: MakeUser
) -> None:
    _, admin = make_user("root", admin=True)
    known = client.post(
        "/api/registry-requests",
        json={"host": "quay.io", "reason": "x"},
        headers=bearer(people["bob"]),
    )
    assert known.status_code == 409 and "already supported" in known.json()["error"]["message"]
    created = client.post(
        "/api/registry-requests",
        json={"host": "harbor.lab.example.org", "reason": "our lab's Harbor"},
        headers=bearer(people["bob"]),
    )
    assert created.status_code == 201
    assert (
        client.get("/api/registry-requests", headers=bearer(people["carol"])).json()["total"] == 0
    )
    assert client.get("/api/registry-requests", headers=bearer(admin)).json()["total"] == 1
    rid = created.json()["id"]
    resolve = f"/api/registry-requests/{rid}/resolve"
    body = {"status": "added", "note": "in the registries file"}
    assert client.post(resolve, json=body, headers=bearer(people["bob"])).status_code == 403
    done = client.post(resolve, json=body, headers=bearer(admin))
    assert done.json()["status"] == "added"
