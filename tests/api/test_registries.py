"""`/api/registries`, `/api/registries/resolve` and the `/registries` page."""

from __future__ import annotations

from click.testing import CliRunner
from fastapi.testclient import TestClient

from dockyard.cli import main


def test_registries_are_listed_as_a_collection(client: TestClient) -> None:
    response = client.get("/api/registries")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(body["items"])
    assert [r["id"] for r in body["items"]][:2] == ["dockerhub", "quay"]
    assert body["items"][-1]["id"] == "generic"


def test_api_and_cli_list_the_same_registries(client: TestClient) -> None:
    import json

    result = CliRunner().invoke(
        main, ["registries", "list", "--json"], env={"DOCKYARD_DATA_DIR": "/nonexistent/x"}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == client.get("/api/registries").json()


def test_resolve_answers_200_with_the_resolution(client: TestClient) -> None:
    response = client.get(
        "/api/registries/resolve",
        params={
            "image": "ns/img:1.0",
            "registry_path": "312767926603.dkr.ecr.us-west-2.amazonaws.com",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["normalized"] == "312767926603.dkr.ecr.us-west-2.amazonaws.com/ns/img:1.0"
    assert body["region"] == "us-west-2"


def test_resolve_answers_422_with_the_same_object_when_invalid(client: TestClient) -> None:
    response = client.get("/api/registries/resolve", params={"image": "ubuntu:" + "x" * 200})
    assert response.status_code == 422
    body = response.json()
    assert body["valid"] is False
    assert body["error_kind"] == "tag_too_long"
    assert "at most 128" in body["error"]


def test_resolve_without_an_image_explains_the_missing_parameter(client: TestClient) -> None:
    response = client.get("/api/registries/resolve")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
    assert "image" in response.json()["error"]["message"]


def test_registries_page_explains_public_private_and_missing_registries(client: TestClient) -> None:
    page = client.get("/registries")
    assert page.status_code == 200
    html = page.text
    for phrase in (
        "Public registries",
        "Private registries",
        "must",
        "registry path",
        "A registry is missing?",
        "Amazon ECR (private)",
        "Quay.io",
    ):
        assert phrase in html


def test_registries_page_checks_a_reference_without_javascript(client: TestClient) -> None:
    page = client.get(
        "/registries",
        params={"image": "ns/img", "registry_path": "312767926603.dkr.ecr.us-west-2.amazonaws.com"},
    )
    assert "312767926603" in page.text and "us-west-2" in page.text
    bad = client.get("/registries", params={"image": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in bad.text
    assert 'role="alert"' in bad.text
