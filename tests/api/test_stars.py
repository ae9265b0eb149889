"""Stars over the REST API: per user, counted on the tool, idempotent, only on tools the
caller may see, and a sort order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from tests.support.app import MakeUser, bearer


def _published(client: TestClient, token: str, image: str) -> int:
    tool = client.post("/api/tools", json={"image": image}, headers=bearer(token)).json()
    version = {"name": "1.0", "images": []}
    assert (
        client.post(
            f"/api/tools/{tool['id']}/versions", json=version, headers=bearer(token)
        ).status_code
        == 201
    )
    assert client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(token)).status_code == 200
    return int(tool["id"])


def test_each_user_stars_a_tool_once_and_the_tool_counts_them(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    _, bob = make_user("bob")
    tool = _published(client, ada, "quay.io/lab/aligner")
    assert client.get(f"/api/tools/{tool}").json()["stars"] == 0
    first = client.put(f"/api/tools/{tool}/star", headers=bearer(ada))
    assert first.status_code == 200
    assert first.json() == {"tool": tool, "starred": True, "stars": 1}
    assert client.put(f"/api/tools/{tool}/star", headers=bearer(ada)).json()["stars"] == 1
    assert client.put(f"/api/tools/{tool}/star", headers=bearer(bob)).json()["stars"] == 2
    assert client.get(f"/api/tools/{tool}").json()["stars"] == 2
    listed = client.get("/api/tools").json()["items"]
    assert [t["stars"] for t in listed if t["id"] == tool] == [2]
    gone = client.delete(f"/api/tools/{tool}/star", headers=bearer(bob))
    assert gone.json() == {"tool": tool, "starred": False, "stars": 1}
    assert client.delete(f"/api/tools/{tool}/star", headers=bearer(bob)).json()["stars"] == 1


def test_starring_needs_a_caller_and_a_tool_they_may_see(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    _, eve = make_user("eve")
    draft = client.post(
        "/api/tools", json={"image": "quay.io/lab/draft"}, headers=bearer(ada)
    ).json()["id"]
    assert client.put(f"/api/tools/{draft}/star").status_code == 401
    refused = client.put(f"/api/tools/{draft}/star", headers=bearer(eve))
    assert refused.status_code == 404  # unpublished: as if it did not exist
    assert client.put("/api/tools/999999/star", headers=bearer(eve)).status_code == 404
    assert client.put(f"/api/tools/{draft}/star", headers=bearer(ada)).json()["stars"] == 1


def test_tools_sort_by_stars(client: TestClient, make_user: MakeUser) -> None:
    tokens = [make_user(f"user{n}")[1] for n in range(3)]
    ids = {name: _published(client, tokens[0], f"quay.io/lab/{name}") for name in "abc"}
    for token in tokens:
        client.put(f"/api/tools/{ids['b']}/star", headers=bearer(token))
    client.put(f"/api/tools/{ids['c']}/star", headers=bearer(tokens[0]))
    ordered = client.get("/api/tools", params={"sort": "-stars"}).json()["items"]
    assert [t["name"] for t in ordered] == ["b", "c", "a"]
    assert [t["stars"] for t in ordered] == [3, 1, 0]
    ascending = client.get("/api/tools", params={"sort": "stars"}).json()["items"]
    assert [t["name"] for t in ascending] == ["a", "c", "b"]


def test_stars_given_at_once_are_all_counted(live_server: str, make_user: MakeUser) -> None:
    tokens = [make_user(f"fan{n}")[1] for n in range(12)]
    with httpx.Client(base_url=live_server, headers=bearer(tokens[0])) as owner:
        tool = owner.post("/api/tools", json={"image": "quay.io/lab/popular"}).json()["id"]
        owner.post(f"/api/tools/{tool}/versions", json={"name": "1.0", "images": []})
        owner.post(f"/api/tools/{tool}/publish")

    def star(token: str) -> int:
        answer = httpx.put(f"{live_server}/api/tools/{tool}/star", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        return int(answer.json()["stars"])

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(star, tokens))
    assert httpx.get(f"{live_server}/api/tools/{tool}").json()["stars"] == 12
