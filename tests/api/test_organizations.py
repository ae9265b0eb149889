"""Organizations and collections over the REST API: roles decide who manages and who
maintains, a tool that belongs to an organization is maintained by its maintainers, and a
collection shows each caller only what they may see."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.app import MakeUser, bearer


def _tool(client: TestClient, token: str, image: str, *, publish: bool = True) -> int:
    tool = client.post("/api/tools", json={"image": image}, headers=bearer(token)).json()
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"}, headers=bearer(token))
    if publish:
        assert client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(token)).is_success
    return int(tool["id"])


def test_the_creator_is_admin_and_adds_members_with_roles(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    _, bob = make_user("bob")
    _, eve = make_user("eve")
    made = client.post(
        "/api/organizations",
        json={"name": "smith-lab", "display_name": "Smith Lab", "description": "Genomics."},
        headers=bearer(ada),
    )
    assert made.status_code == 201, made.text
    assert made.json()["members"] == [{"username": "ada", "role": "admin"}]
    assert (
        client.post(
            "/api/organizations", json={"name": "Smith-Lab"}, headers=bearer(bob)
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/organizations", json={"name": "no spaces"}, headers=bearer(bob)
        ).status_code
        == 422
    )
    assert client.post("/api/organizations", json={"name": "x"}).status_code == 401

    added = client.post(
        "/api/organizations/smith-lab/members",
        json={"username": "bob", "role": "maintainer"},
        headers=bearer(ada),
    )
    assert added.status_code == 201 and added.json() == {"username": "bob", "role": "maintainer"}
    # Only admins manage members; a maintainer cannot.
    refused = client.post(
        "/api/organizations/smith-lab/members",
        json={"username": "eve", "role": "admin"},
        headers=bearer(bob),
    )
    assert (
        refused.status_code == 403 and "ask one of them (ada)" in refused.json()["error"]["message"]
    )
    wrong_role = client.post(
        "/api/organizations/smith-lab/members",
        json={"username": "eve", "role": "owner"},
        headers=bearer(ada),
    )
    assert wrong_role.status_code == 422
    nobody = client.post(
        "/api/organizations/smith-lab/members",
        json={"username": "nobody", "role": "member"},
        headers=bearer(ada),
    )
    assert nobody.status_code == 404

    # The last admin stays admin.
    last = client.post(
        "/api/organizations/smith-lab/members",
        json={"username": "ada", "role": "member"},
        headers=bearer(ada),
    )
    assert last.status_code == 409 and "last admin" in last.json()["error"]["message"]
    assert (
        client.delete("/api/organizations/smith-lab/members/ada", headers=bearer(ada)).status_code
        == 409
    )
    assert (
        client.delete("/api/organizations/smith-lab/members/bob", headers=bearer(bob)).status_code
        == 204
    )
    shown = client.get("/api/organizations/smith-lab").json()
    assert shown["display_name"] == "Smith Lab" and shown["members"] == [
        {"username": "ada", "role": "admin"}
    ]
    assert [o["name"] for o in client.get("/api/organizations").json()["items"]] == ["smith-lab"]
    del eve


def test_an_organizations_maintainers_maintain_its_tools(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    _, bob = make_user("bob")
    _, eve = make_user("eve")
    client.post("/api/organizations", json={"name": "lab"}, headers=bearer(ada))
    draft = _tool(client, ada, "quay.io/lab/draft", publish=False)
    assert client.get(f"/api/tools/{draft}", headers=bearer(bob)).status_code == 404

    # Moving a tool in takes a maintainer of the tool who maintains the organization too.
    refused = client.patch(f"/api/tools/{draft}", json={"organization": "lab"}, headers=bearer(bob))
    assert refused.status_code == 404
    moved = client.patch(
        f"/api/tools/{draft}",
        json={"organization": "lab", "labels": ["Alignment", "long-reads"]},
        headers=bearer(ada),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["organization"] == "lab"
    assert moved.json()["labels"] == ["alignment", "long-reads"]
    bad = client.patch(f"/api/tools/{draft}", json={"labels": ["no spaces"]}, headers=bearer(ada))
    assert bad.status_code == 422 and "lowercase letters" in bad.json()["error"]["message"]

    client.post(
        "/api/organizations/lab/members",
        json={"username": "bob", "role": "maintainer"},
        headers=bearer(ada),
    )
    client.post(
        "/api/organizations/lab/members",
        json={"username": "eve", "role": "member"},
        headers=bearer(ada),
    )
    # bob now sees the unpublished tool and changes it; eve, a plain member, does neither.
    assert client.get(f"/api/tools/{draft}", headers=bearer(bob)).status_code == 200
    changed = client.patch(
        f"/api/tools/{draft}", json={"description": "Aligns reads."}, headers=bearer(bob)
    )
    assert changed.status_code == 200 and changed.json()["maintainer_email"] is None
    assert client.get(f"/api/tools/{draft}", headers=bearer(eve)).status_code == 404
    mine = client.get("/api/tools", params={"mine": "true"}, headers=bearer(bob)).json()
    assert [t["id"] for t in mine["items"]] == [draft]
    # Another organization's maintainer cannot take it there.
    client.post("/api/organizations", json={"name": "other"}, headers=bearer(eve))
    taken = client.patch(f"/api/tools/{draft}", json={"organization": "other"}, headers=bearer(bob))
    assert taken.status_code == 403
    listed = client.get("/api/organizations/lab", headers=bearer(bob)).json()
    assert [t["trs_id"] for t in listed["tools"]] == ["quay.io/lab/draft"]
    assert client.get("/api/organizations/lab").json()["tools"] == []  # unpublished


def test_a_collection_keeps_its_order_and_shows_each_caller_what_they_may_see(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    _, eve = make_user("eve")
    client.post("/api/organizations", json={"name": "lab"}, headers=bearer(ada))
    bwa = _tool(client, ada, "quay.io/lab/bwa")
    star = _tool(client, ada, "quay.io/lab/star")
    draft = _tool(client, ada, "quay.io/lab/draft", publish=False)
    made = client.post(
        "/api/organizations/lab/collections",
        json={
            "name": "aligners",
            "description": "What we align with.",
            "entries": ["quay.io/lab/star", bwa, draft],
        },
        headers=bearer(ada),
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["label"] == "collection:lab/aligners"
    assert [e["id"] for e in body["entries"]] == [star, bwa, draft]
    anonymous = client.get("/api/organizations/lab/collections/aligners").json()
    assert [e["trs_id"] for e in anonymous["entries"]] == ["quay.io/lab/star", "quay.io/lab/bwa"]

    # Curating takes an admin or maintainer of the organization.
    assert (
        client.post(
            "/api/organizations/lab/collections", json={"name": "mine"}, headers=bearer(eve)
        ).status_code
        == 403
    )
    # Entries are checked: unknown ones and repeats are refused, nothing is stored.
    unknown = client.post(
        "/api/organizations/lab/collections",
        json={"name": "bad", "entries": ["quay.io/lab/missing"]},
        headers=bearer(ada),
    )
    assert (
        unknown.status_code == 422 and "no tool or workflow" in unknown.json()["error"]["message"]
    )
    twice = client.patch(
        "/api/organizations/lab/collections/aligners",
        json={"entries": [bwa, bwa]},
        headers=bearer(ada),
    )
    assert twice.status_code == 422
    reordered = client.patch(
        "/api/organizations/lab/collections/aligners",
        json={"entries": [bwa, star]},
        headers=bearer(ada),
    )
    assert [e["id"] for e in reordered.json()["entries"]] == [bwa, star]
    assert client.get("/api/organizations/lab").json()["collections"] == ["aligners"]
    assert client.get("/api/organizations/lab/collections").json()["total"] == 1
    assert (
        client.delete(
            "/api/organizations/lab/collections/aligners", headers=bearer(ada)
        ).status_code
        == 204
    )
    assert client.get("/api/organizations/lab/collections/aligners").status_code == 404
    assert client.get(f"/api/tools/{bwa}").status_code == 200  # its tools stay


def test_trs_shows_organization_and_collection_labels_as_aliases_and_finds_by_them(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    client.post("/api/organizations", json={"name": "lab"}, headers=bearer(ada))
    bwa = _tool(client, ada, "quay.io/lab/bwa")
    _tool(client, ada, "quay.io/lab/other")
    client.patch(f"/api/tools/{bwa}", json={"organization": "lab"}, headers=bearer(ada))
    client.post(
        "/api/organizations/lab/collections",
        json={"name": "aligners", "entries": [bwa]},
        headers=bearer(ada),
    )
    trs = "/ga4gh/trs/v2/tools"
    anonymous = client.get(f"{trs}/quay.io%2Flab%2Fbwa").json()  # read from rows
    signed_in = client.get(f"{trs}/quay.io%2Flab%2Fbwa", headers=bearer(ada)).json()  # the app
    assert anonymous["aliases"] == ["collection:lab/aligners", "organization:lab"]
    assert signed_in == anonymous
    assert "aliases" not in client.get(f"{trs}/quay.io%2Flab%2Fother").json()
    listed = client.get(trs).json()
    assert [t.get("aliases") for t in listed] == [anonymous["aliases"], None]

    for alias in ("collection:lab/aligners", "organization:lab"):
        found = client.get(trs, params={"alias": alias})
        assert [t["id"] for t in found.json()] == ["quay.io/lab/bwa"], alias
    assert client.get(trs, params={"alias": "collection:lab/none"}).json() == []
    assert client.get(trs, params={"alias": "something-else"}).json() == []
