"""The tools REST API: rules over HTTP, visibility on every read endpoint, concurrency."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from dockyard import db
from dockyard.catalog.models import Tool
from tests.support.app import MakeUser, bearer

ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"
CWL_FILE = {
    "path": "tool.cwl",
    "file_type": "PRIMARY_DESCRIPTOR",
    "descriptor_type": "CWL",
    "content": "cwlVersion: v1.2\n",
}


def register(client: TestClient, token: str, **body: object) -> httpx.Response:
    answer: httpx.Response = client.post(
        "/api/tools",
        json={"image": "quay.io/biocontainers/samtools", **body},
        headers=bearer(token),
    )
    return answer


def test_registering_needs_a_signed_in_user(client: TestClient) -> None:
    response = client.post("/api/tools", json={"image": "quay.io/ns/img"})
    assert response.status_code == 401


def test_registration_answers_201_with_id_and_path(client: TestClient, make_user: MakeUser) -> None:
    _, token = make_user("ada")
    response = register(client, token, description="SAM tools", maintainer_email="ada@example.org")
    assert response.status_code == 201
    tool = response.json()
    assert tool["path"] == "quay.io/biocontainers/samtools"
    assert isinstance(tool["id"], int)
    assert tool["maintainers"] == ["ada"]
    assert tool["maintainer_email"] == "ada@example.org"
    assert tool["site_url"] == "https://quay.io/repository/biocontainers/samtools"
    assert tool["published"] is False


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"image": f"{ECR}/ns/img"}, 422, "private-only"),
        ({"image": "ns/img", "registry_path": ECR}, 422, "private-only"),
        (
            {"image": "public.ecr.aws/ns/img", "private": True, "maintainer_email": "a@b.org"},
            422,
            "always public",
        ),
        ({"image": "quay.io/ns/img", "private": True}, 422, "needs a maintainer email"),
        ({"image": "ns/img", "registry_path": "quay.io"}, 422, "does not take a registry path"),
        (
            {
                "image": "ns/img",
                "registry_path": "1234.dkr.ecr.us-west-2.amazonaws.com",
                "private": True,
                "maintainer_email": "a@b.org",
            },
            422,
            "12-digit",
        ),
        ({"image": "quay.io/ns/img", "toolname": "_x"}, 422, "toolname '_x' is not allowed"),
        ({"image": "Quay.io/NS/img"}, 422, "must be lowercase"),
        ({"image": "quay.io/ns/img", "registry": "nope"}, 422, "unknown registry 'nope'"),
        ({"image": "quay.io/ns/img", "privat": True}, 422, "privat"),
    ],
)
def test_rules_are_answered_with_4xx_and_what_to_change(
    client: TestClient, make_user: MakeUser, body: dict[str, object], status: int, says: str
) -> None:
    _, token = make_user("ada")
    response = client.post("/api/tools", json=body, headers=bearer(token))
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


def test_a_duplicate_path_is_a_409(client: TestClient, make_user: MakeUser) -> None:
    _, token = make_user("ada")
    assert register(client, token).status_code == 201
    again = register(client, token)
    assert again.status_code == 409
    assert "toolname" in again.json()["error"]["message"]
    assert (
        register(client, token, toolname="view").json()["path"]
        == "quay.io/biocontainers/samtools/view"
    )


def prepare_unpublished(client: TestClient, token: str) -> dict[str, object]:
    tool: dict[str, object] = register(
        client, token, private=True, maintainer_email="ada@example.org"
    ).json()
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"}, headers=bearer(token))
    client.put(
        f"/api/tools/{tool['id']}/versions/1.0/files",
        json={"files": [CWL_FILE]},
        headers=bearer(token),
    )
    return tool


def read_endpoints(tool: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    tid, path = tool["id"], tool["path"]
    plain: list[tuple[str, dict[str, object]]] = [
        (f"/api/tools/{tid}", {}),
        (f"/api/tools/{tid}/versions", {}),
        (f"/api/tools/{tid}/versions/1.0", {}),
        (f"/api/tools/{tid}/versions/1.0/files/tool.cwl", {}),
    ]
    filters: list[dict[str, object]] = [
        {},
        {"q": "samtools"},
        {"path": path},
        {"registry": "quay"},
        {"private": "true"},
        {"descriptor_type": "CWL"},
        {"namespace": "biocontainers"},
    ]
    return plain + [("/api/tools", params) for params in filters]


def test_every_read_endpoint_hides_an_unpublished_tool_from_anonymous_and_other_users(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    _, grace = make_user("grace")
    tool = prepare_unpublished(client, ada)
    for headers in ({}, bearer(grace)):
        for url, params in read_endpoints(tool):
            response = client.get(url, params=params, headers=headers)
            if url == "/api/tools":
                assert response.status_code == 200
                assert response.json() == {
                    "items": [],
                    "total": 0,
                    "total_exact": True,
                    "limit": 20,
                    "offset": 0,
                }, (
                    url,
                    params,
                )
            else:
                assert response.status_code == 404, url
                assert "samtools" not in response.text
        for method, url in [
            ("PATCH", f"/api/tools/{tool['id']}"),
            ("POST", f"/api/tools/{tool['id']}/publish"),
            ("DELETE", f"/api/tools/{tool['id']}"),
        ]:
            if headers:
                response = client.request(
                    method, url, json={} if method == "PATCH" else None, headers=headers
                )
                assert response.status_code == 404, (method, url)
    for url, params in read_endpoints(tool):
        response = client.get(url, params=params, headers=bearer(ada))
        assert response.status_code == 200, url
        if url == "/api/tools":
            assert response.json()["total"] == 1, params


def test_a_published_private_tool_is_listed_with_its_descriptors_but_not_its_email(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    tool = prepare_unpublished(client, ada)
    assert client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(ada)).status_code == 200
    for url, params in read_endpoints(tool):
        response = client.get(url, params=params)
        assert response.status_code == 200, url
        assert "ada@example.org" not in response.text
    listed = client.get("/api/tools", params={"q": "samtools"}).json()
    assert listed["total"] == 1
    assert listed["items"][0]["private"] is True
    assert listed["items"][0]["maintainer_email"] is None
    assert (
        client.get(f"/api/tools/{tool['id']}/versions/1.0/files/tool.cwl").text
        == "cwlVersion: v1.2\n"
    )


def test_publishing_without_a_version_is_refused(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    tool = register(client, ada).json()
    response = client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(ada))
    assert response.status_code == 422
    assert "add a version" in response.json()["error"]["message"]


def test_other_users_get_403_on_published_tools(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    _, grace = make_user("grace")
    tool = prepare_unpublished(client, ada)
    client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(ada))
    response = client.patch(
        f"/api/tools/{tool['id']}", json={"description": "x"}, headers=bearer(grace)
    )
    assert response.status_code == 403
    assert (
        client.post(
            f"/api/tools/{tool['id']}/versions", json={"name": "2.0"}, headers=bearer(grace)
        ).status_code
        == 403
    )


def test_versions_files_and_patches_round_trip(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    tool = register(client, ada).json()
    tid = tool["id"]
    digest = "sha256:" + "b" * 64
    added = client.post(
        f"/api/tools/{tid}/versions",
        json={
            "name": "1.0",
            "images": [
                {
                    "digest": digest,
                    "os": "linux",
                    "architecture": "arm64",
                    "variant": "v8",
                    "size": 42,
                }
            ],
        },
        headers=bearer(ada),
    )
    assert added.status_code == 201
    assert added.json()["images"] == [
        {
            "digest": digest,
            "os": "linux",
            "architecture": "arm64",
            "variant": "v8",
            "size": 42,
            "created": None,
        }
    ]
    put = client.put(
        f"/api/tools/{tid}/versions/1.0/files",
        json={
            "files": [
                CWL_FILE,
                {
                    "path": "test/params.json",
                    "file_type": "TEST_FILE",
                    "descriptor_type": "CWL",
                    "content": "{}",
                },
            ]
        },
        headers=bearer(ada),
    )
    assert put.status_code == 200
    files = put.json()["files"]
    assert [(f["path"], f["file_type"]) for f in files] == [
        ("test/params.json", "TEST_FILE"),
        ("tool.cwl", "PRIMARY_DESCRIPTOR"),
    ]
    assert files[1]["sha256"] == hashlib.sha256(CWL_FILE["content"].encode()).hexdigest()
    patched = client.patch(
        f"/api/tools/{tid}",
        json={"description": "New words", "default_version": "1.0"},
        headers=bearer(ada),
    ).json()
    assert patched["description"] == "New words"
    assert patched["default_version"] == "1.0"
    assert patched["descriptor_types"] == ["CWL"]
    described = client.patch(
        f"/api/tools/{tid}/versions/1.0",
        json={"description": "Faster sort"},
        headers=bearer(ada),
    ).json()
    assert (described["description"], described["hidden"]) == ("Faster sort", False)
    assert (
        client.patch(
            f"/api/tools/{tid}/versions/1.0", json={"hidden": True}, headers=bearer(ada)
        ).json()["hidden"]
        is True
    )
    assert client.delete(f"/api/tools/{tid}/versions/1.0", headers=bearer(ada)).status_code == 204
    assert client.get(f"/api/tools/{tid}/versions", headers=bearer(ada)).json() == {
        "items": [],
        "total": 0,
    }


def test_file_paths_that_escape_are_refused_over_http(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    tid = register(client, ada).json()["id"]
    client.post(f"/api/tools/{tid}/versions", json={"name": "1.0"}, headers=bearer(ada))
    for path in ("../evil.cwl", "/etc/passwd", "a\u0000b"):
        response = client.put(
            f"/api/tools/{tid}/versions/1.0/files",
            json={"files": [{**CWL_FILE, "path": path}]},
            headers=bearer(ada),
        )
        assert response.status_code == 422, path


def test_maintainers_over_http(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    make_user("grace")
    tid = register(client, ada).json()["id"]
    assert client.post(
        f"/api/tools/{tid}/maintainers", json={"username": "grace"}, headers=bearer(ada)
    ).json()["maintainers"] == ["ada", "grace"]
    assert client.delete(f"/api/tools/{tid}/maintainers/ada", headers=bearer(ada)).json()[
        "maintainers"
    ] == ["grace"]
    assert client.get(f"/api/tools/{tid}", headers=bearer(ada)).status_code == 404


def test_paging_and_filter_parameters_are_validated(client: TestClient) -> None:
    assert client.get("/api/tools", params={"limit": 0}).status_code == 422
    assert client.get("/api/tools", params={"limit": 101}).status_code == 422
    assert client.get("/api/tools", params={"offset": -1}).status_code == 422
    assert (
        "sort must be one of"
        in client.get("/api/tools", params={"sort": "size"}).json()["error"]["message"]
    )


def test_concurrent_registrations_of_one_path_yield_one_tool_and_clean_409s(
    live_server: str, engine: Engine, make_user: MakeUser
) -> None:
    tokens = [make_user(f"user{n}")[1] for n in range(8)]

    def attempt(token: str) -> int:
        response = httpx.post(
            f"{live_server}/api/tools",
            json={"image": "quay.io/race/img"},
            headers=bearer(token),
            timeout=60,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, tokens * 3))
    assert statuses.count(201) == 1
    assert statuses.count(409) == len(statuses) - 1
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        assert session.scalar(select(func.count()).select_from(Tool)) == 1


def test_refresh_needs_a_maintainer(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    _, grace = make_user("grace")
    tool = register(client, ada).json()
    assert client.post(f"/api/tools/{tool['id']}/refresh").status_code == 401
    assert client.post(f"/api/tools/{tool['id']}/refresh", headers=bearer(grace)).status_code == 404


def test_credentials_are_never_returned(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    tid = register(client, ada).json()["id"]
    assert client.get(f"/api/tools/{tid}/credentials", headers=bearer(ada)).json() == {
        "configured": False,
        "kind": None,
        "username": None,
        "updated_at": None,
    }
    assert (
        client.put(
            f"/api/tools/{tid}/credentials",
            json={"username": "robot", "password": "pw-123"},
            headers=bearer(ada),
        ).status_code
        == 204
    )
    shown = client.get(f"/api/tools/{tid}/credentials", headers=bearer(ada))
    assert shown.json()["configured"] is True
    assert "pw-123" not in shown.text
    wrong_kind = client.put(
        f"/api/tools/{tid}/credentials",
        json={"kind": "aws", "username": "AKIA", "password": "x"},
        headers=bearer(ada),
    )
    assert wrong_kind.status_code == 422
    assert client.delete(f"/api/tools/{tid}/credentials", headers=bearer(ada)).status_code == 204
    assert (
        client.get(f"/api/tools/{tid}/credentials", headers=bearer(ada)).json()["configured"]
        is False
    )


def test_a_tag_pattern_must_be_a_regular_expression(
    client: TestClient, make_user: MakeUser
) -> None:
    _, ada = make_user("ada")
    tid = register(client, ada).json()["id"]
    response = client.patch(f"/api/tools/{tid}", json={"tag_pattern": "v[0-9"}, headers=bearer(ada))
    assert response.status_code == 422
    assert "not a valid regular expression" in response.json()["error"]["message"]
    assert (
        client.patch(
            f"/api/tools/{tid}", json={"tag_pattern": r"v[0-9]+"}, headers=bearer(ada)
        ).json()["tag_pattern"]
        == r"v[0-9]+"
    )
