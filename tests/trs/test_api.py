"""GA4GH TRS 2.0.1: responses valid against the official schema, ids as clients send them."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.support.app import MakeUser, bearer
from tests.support.descriptors import FILES
from tests.support.queries import statements_during

SPEC = yaml.safe_load((Path(__file__).parent / "trs-openapi-2.0.1.yaml").read_text())
DIGEST = "sha256:" + "c" * 64


def valid(instance: Any, schema_name: str, *, array: bool = False) -> None:
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{schema_name}"}
    if array:
        schema = {"type": "array", "items": schema}
    jsonschema.validate(instance, {**schema, "components": SPEC["components"]})


@pytest.fixture
def catalog(client: TestClient, make_user: MakeUser) -> dict[str, Any]:
    _, ada = make_user("ada")
    _, grace = make_user("grace")
    samtools = client.post(
        "/api/tools",
        json={"image": "quay.io/biocontainers/samtools", "description": "SAM and BAM files"},
        headers=bearer(ada),
    ).json()
    client.post(
        f"/api/tools/{samtools['id']}/versions",
        json={
            "name": "1.17",
            "description": "Adds the view subcommand",
            "images": [
                {
                    "digest": DIGEST,
                    "os": "linux",
                    "architecture": "amd64",
                    "size": 1234,
                    "created": "2024-05-01T12:00:00Z",
                },
                {
                    "digest": "sha256:" + "d" * 64,
                    "os": "linux",
                    "architecture": "arm64",
                    "variant": "v8",
                },
            ],
        },
        headers=bearer(ada),
    )
    client.put(
        f"/api/tools/{samtools['id']}/versions/1.17/files",
        json={"files": FILES},
        headers=bearer(ada),
    )
    client.post(f"/api/tools/{samtools['id']}/publish", headers=bearer(ada))
    ubuntu = client.post("/api/tools", json={"image": "ubuntu"}, headers=bearer(ada)).json()
    client.post(
        f"/api/tools/{ubuntu['id']}/versions",
        json={"name": "24.04", "images": [{"digest": DIGEST}]},
        headers=bearer(ada),
    )
    client.post(f"/api/tools/{ubuntu['id']}/publish", headers=bearer(ada))
    draft = client.post(
        "/api/tools", json={"image": "quay.io/biocontainers/draft"}, headers=bearer(ada)
    ).json()
    client.post(f"/api/tools/{draft['id']}/versions", json={"name": "0.1"}, headers=bearer(ada))
    return {"ada": ada, "grace": grace, "samtools": samtools, "ubuntu": ubuntu, "draft": draft}


@pytest.mark.parametrize("base", ["/ga4gh/trs/v2", "/api/ga4gh/v2"])
def test_every_endpoint_answers_with_the_schema_at_both_bases(
    client: TestClient, catalog: dict[str, Any], base: str
) -> None:
    tool_id = quote("quay.io/biocontainers/samtools", safe="")
    info = client.get(f"{base}/service-info").json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "trs", "version": "2.0.1"}
    valid(client.get(f"{base}/toolClasses").json(), "ToolClass", array=True)
    tools = client.get(f"{base}/tools")
    valid(tools.json(), "Tool", array=True)
    assert [t["id"] for t in tools.json()] == [
        "quay.io/biocontainers/samtools",
        "docker.io/library/ubuntu",
    ]
    tool = client.get(f"{base}/tools/{tool_id}").json()
    valid(tool, "Tool")
    assert tool["id"] == "quay.io/biocontainers/samtools"
    assert tool["organization"] == "biocontainers"
    versions = client.get(f"{base}/tools/{tool_id}/versions").json()
    valid(versions, "ToolVersion", array=True)
    version = client.get(f"{base}/tools/{tool_id}/versions/1.17").json()
    valid(version, "ToolVersion")
    assert version["descriptor_type"] == ["CWL"]
    assert version["containerfile"] is True
    assert [i["image_name"] for i in version["images"]] == [
        f"quay.io/biocontainers/samtools@{DIGEST}",
        "quay.io/biocontainers/samtools@sha256:" + "d" * 64,
    ]
    assert version["images"][0]["registry_host"] == "quay.io"
    assert version["images"][0]["checksum"] == [{"checksum": "c" * 64, "type": "sha-256"}]
    assert "updated" not in version["images"][1] and "size" not in version["images"][1]
    descriptor = client.get(f"{base}/tools/{tool_id}/versions/1.17/CWL/descriptor").json()
    valid(descriptor, "FileWrapper")
    assert descriptor["content"].startswith("cwlVersion")
    for kind in ("CWL", "PLAIN_CWL"):
        tests = client.get(f"{base}/tools/{tool_id}/versions/1.17/{kind}/tests").json()
        valid(tests, "FileWrapper", array=True)
        assert tests and all("content" in test for test in tests)
    files = client.get(f"{base}/tools/{tool_id}/versions/1.17/CWL/files").json()
    valid(files, "ToolFile", array=True)
    assert {f["path"] for f in files} == {"samtools.cwl", "lib/view.cwl", "test.json", "Dockerfile"}
    valid(
        client.get(f"{base}/tools/{tool_id}/versions/1.17/containerfile").json(),
        "FileWrapper",
        array=True,
    )
    error = client.get(f"{base}/tools/nope%2Fnothing")
    assert error.status_code == 404
    valid(error.json(), "Error")


def test_docker_hub_images_leave_out_the_host(client: TestClient, catalog: dict[str, Any]) -> None:
    version = client.get("/ga4gh/trs/v2/tools/docker.io%2Flibrary%2Fubuntu/versions/24.04").json()
    assert version["images"][0]["image_name"] == f"library/ubuntu@{DIGEST}"
    assert version["images"][0]["registry_host"] == "docker.io"


def test_versions_carry_the_trs_2_1_description_only_when_they_have_one(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    tool = client.get("/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools").json()
    assert tool["versions"][0]["description"] == "Adds the view subcommand"
    bare = client.get("/ga4gh/trs/v2/tools/docker.io%2Flibrary%2Fubuntu/versions/24.04").json()
    assert "description" not in bare


@pytest.mark.parametrize(
    "path",
    [
        "quay.io%2Fbiocontainers%2Fsamtools/versions/1.17",
        "quay.io/biocontainers/samtools/versions/1.17",
        "quay.io%2Fbiocontainers%2Fsamtools/versions/quay.io%2Fbiocontainers%2Fsamtools%3A1.17",
    ],
)
def test_ids_are_accepted_encoded_or_plain_and_with_the_tool_prefix(
    client: TestClient, catalog: dict[str, Any], path: str
) -> None:
    response = client.get(f"/ga4gh/trs/v2/tools/{path}")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "1.17"


def test_registry_hub_docker_com_is_an_alias_of_docker_io(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    assert (
        client.get("/ga4gh/trs/v2/tools/registry.hub.docker.com%2Flibrary%2Fubuntu").json()["id"]
        == "docker.io/library/ubuntu"
    )
    assert (
        client.get("/ga4gh/trs/v2/tools/registry.hub.docker.com/ubuntu").json()["id"]
        == "docker.io/library/ubuntu"
    )


@pytest.mark.parametrize("kind", ["PLAIN_CWL", "plain_cwl", "plain-CWL"])
def test_plain_types_and_text_plain_return_the_raw_descriptor(
    client: TestClient, catalog: dict[str, Any], kind: str
) -> None:
    response = client.get(
        f"/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/{kind}/descriptor"
    )
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == FILES[0]["content"]
    negotiated = client.get(
        "/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/CWL/descriptor",
        headers={"Accept": "text/plain"},
    )
    assert negotiated.text == FILES[0]["content"]


@pytest.mark.parametrize("relative", ["lib/view.cwl", "lib%2Fview.cwl", "./lib/view.cwl"])
def test_relative_paths_resolve_from_the_primary_descriptor(
    client: TestClient, catalog: dict[str, Any], relative: str
) -> None:
    response = client.get(
        f"/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/PLAIN_CWL/descriptor/{relative}"
    )
    assert response.status_code == 200, response.text
    assert response.text == "cwlVersion: v1.2\n"


@pytest.mark.parametrize(
    "relative", ["..%2F..%2Fetc%2Fpasswd", "../../Dockerfile", "%2Fetc%2Fpasswd", "/etc/passwd"]
)
def test_relative_paths_never_escape_the_version(
    client: TestClient, catalog: dict[str, Any], relative: str
) -> None:
    response = client.get(
        f"/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/CWL/descriptor/{relative}"
    )
    assert response.status_code == 404
    assert "FROM ubuntu" not in response.text


def test_a_relative_path_may_reach_any_file_of_the_version(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    response = client.get(
        "/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/PLAIN_CWL/descriptor/..%2FDockerfile"
    )
    assert response.text == "FROM ubuntu:24.04\n"


def test_files_come_as_a_zip_on_request(client: TestClient, catalog: dict[str, Any]) -> None:
    response = client.get(
        "/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/CWL/files",
        params={"format": "zip"},
    )
    assert response.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(names) == ["Dockerfile", "lib/view.cwl", "samtools.cwl", "test.json"]


def test_paging_headers_use_record_offsets_and_next_page_only_when_more_exist(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    first = client.get("/ga4gh/trs/v2/tools", params={"limit": 1})
    assert len(first.json()) == 1
    assert first.headers["current_offset"] == "0" and first.headers["current_limit"] == "1"
    assert "offset=1" in first.headers["next_page"]
    assert "offset=1" in first.headers["last_page"]
    second = client.get("/ga4gh/trs/v2/tools", params={"limit": 1, "offset": 1})
    assert [t["id"] for t in second.json()] == ["docker.io/library/ubuntu"]
    assert "next_page" not in second.headers
    assert client.get("/ga4gh/trs/v2/tools", params={"offset": "abc"}).status_code == 422


def test_filters_combine_instead_of_the_last_one_winning(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    def ids(**params: Any) -> list[str]:
        return [t["id"] for t in client.get("/ga4gh/trs/v2/tools", params=params).json()]

    assert ids(registry="quay.io") == ["quay.io/biocontainers/samtools"]
    assert ids(registry="quay.io", organization="library") == []
    assert ids(organization="library", name="ubuntu") == ["docker.io/library/ubuntu"]
    assert ids(description="bam", registry="docker.io") == []
    assert ids(description="BAM") == ["quay.io/biocontainers/samtools"]
    assert ids(author="ada", name="samtools") == ["quay.io/biocontainers/samtools"]
    assert ids(id="quay.io/biocontainers/samtools") == ["quay.io/biocontainers/samtools"]
    assert ids(toolClass="Workflow") == []
    assert ids(checker="true") == []


def test_unpublished_tools_only_for_their_maintainers_bearer_token(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    draft = "/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fdraft"
    for headers in ({}, bearer(catalog["grace"])):
        assert client.get(draft, headers=headers).status_code == 404
        assert client.get(f"{draft}/versions/0.1", headers=headers).status_code == 404
        assert "draft" not in client.get("/ga4gh/trs/v2/tools", headers=headers).text
    assert client.get(draft, headers=bearer(catalog["ada"])).status_code == 200
    assert (
        "quay.io/biocontainers/draft"
        in client.get("/ga4gh/trs/v2/tools", headers=bearer(catalog["ada"])).text
    )


def test_head_and_cors_are_served(client: TestClient, catalog: dict[str, Any]) -> None:
    head = client.head("/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools")
    assert head.status_code == 200
    assert head.headers["access-control-allow-origin"] == "*"


def test_tool_and_version_answers_carry_etags_and_honour_if_none_match(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    url = "/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17"
    first = client.get(url)
    etag = first.headers["etag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    client.patch(
        f"/api/tools/{catalog['samtools']['id']}/versions/1.17",
        json={"images": []},
        headers=bearer(catalog["ada"]),
    )
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (
            "/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17/CWL/descriptor/a%0Ab",
            {},
            404,
        ),
        ("/ga4gh/trs/v2/tools", {"Authorization": "Bearer dy_not-a-real-token"}, 401),
        ("/api/ga4gh/v2/tools", {"Authorization": "Basic abc"}, 401),
        ("/ga4gh/trs/v2/tools?limit=abc", {}, 422),
        ("/ga4gh/trs/v2/no-such-endpoint", {}, 404),
    ],
)
def test_every_error_under_the_trs_bases_is_a_trs_error_object(
    client: TestClient, catalog: dict[str, Any], path: str, headers: dict[str, str], status: int
) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == status
    valid(response.json(), "Error")
    assert response.json()["code"] == status
    assert response.headers["access-control-allow-origin"] == "*"


def test_listing_costs_the_same_queries_however_many_versions_there_are(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    engine = client.app.state.context.engine  # type: ignore[attr-defined]

    def listing_queries() -> int:
        listing = lambda: client.get("/ga4gh/trs/v2/tools").raise_for_status()  # noqa: E731
        return len(statements_during(engine, listing))

    before = listing_queries()
    for n in range(6):
        client.post(
            f"/api/tools/{catalog['samtools']['id']}/versions",
            json={"name": f"2.{n}", "images": [{"digest": DIGEST}]},
            headers=bearer(catalog["ada"]),
        )
    assert listing_queries() == before


def test_a_tool_is_located_by_its_path_in_one_query_however_many_cuts_could_name_it(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    engine = client.app.state.context.engine  # type: ignore[attr-defined]
    # "quay.io/biocontainers/samtools/versions" could be a tool's id, or samtools and its
    # versions; so could the id of a missing tool.
    for path, status in [
        ("quay.io/biocontainers/samtools/versions", 200),
        ("quay.io/biocontainers/missing/versions", 404),
    ]:
        asked = statements_during(
            engine,
            lambda: client.get(f"/ga4gh/trs/v2/tools/{path}"),  # noqa: B023
        )
        assert client.get(f"/ga4gh/trs/v2/tools/{path}").status_code == status
        looked_up = [s for s in asked if re.search(r"FROM tools\b", s) and "lower(tools.path)" in s]
        assert len(looked_up) == 1, looked_up
