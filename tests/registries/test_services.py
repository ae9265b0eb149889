"""Resolving references to registries, with the registry-path rules (docs/specification.md rule 4)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidInput, InvalidRegistryPath, UnknownRegistry
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.registries.services import describe, resolve

catalog = Catalog(BUILTIN_REGISTRIES)
ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"


def test_a_full_ecr_reference_yields_registry_id_region_and_login() -> None:
    answer = resolve(catalog, f"{ECR}/test_namespace/test_image:latest").as_dict()
    assert answer["registry"] == "ecr"
    assert answer["registry_id"] == "312767926603"
    assert answer["region"] == "us-west-2"
    assert answer["private_only"] is True
    assert answer["repository"] == "test_namespace/test_image"
    assert answer["tag"] == "latest"
    assert answer["site_url"] is None
    logins = answer["login_commands"]
    assert isinstance(logins, list)
    assert any("--registry-ids 312767926603" in c["command"] for c in logins)


def test_the_registry_path_supplies_the_host_of_a_bare_repository() -> None:
    resolution = resolve(catalog, "test_namespace/test_image", registry_path=ECR)
    assert str(resolution.reference) == f"{ECR}/test_namespace/test_image"
    assert resolution.registry.id == "ecr"


def test_an_image_that_repeats_the_registry_path_is_accepted() -> None:
    resolution = resolve(catalog, f"{ECR}/ns/img", registry_path=ECR)
    assert resolution.reference.path == "ns/img"


def test_an_image_whose_host_contradicts_the_registry_path_is_refused() -> None:
    with pytest.raises(
        InvalidRegistryPath, match=r"names host 'quay\.io' but the registry path is"
    ):
        resolve(catalog, "quay.io/ns/img", registry_path=ECR)


@pytest.mark.parametrize("path", ["quay.io", "docker.io", "registry.lab.example.org"])
def test_a_registry_path_is_never_accepted_for_a_registry_that_does_not_need_one(path: str) -> None:
    with pytest.raises(InvalidRegistryPath, match="does not take a registry path"):
        resolve(catalog, "ns/img", registry_path=path)


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("https://312767926603.dkr.ecr.us-west-2.amazonaws.com", "without a scheme"),
        ("312767926603.dkr.ecr.us-west-2.amazonaws.com/ns", "not a registry host"),
        ("31276792660.dkr.ecr.us-west-2.amazonaws.com", "12-digit AWS account id"),
        ("my_registry.azurecr.io", "not a registry host"),
        ("abc.azurecr.io", "5-50 letters and digits"),
    ],
)
def test_malformed_registry_paths_say_what_is_expected(path: str, says: str) -> None:
    with pytest.raises(InvalidRegistryPath, match=None) as caught:
        resolve(catalog, "ns/img", registry_path=path)
    assert says in caught.value.message


def test_a_registry_id_supplies_the_fixed_host() -> None:
    assert str(resolve(catalog, "biocontainers/samtools", registry_id="quay").reference) == (
        "quay.io/biocontainers/samtools"
    )
    assert str(resolve(catalog, "ubuntu", registry_id="dockerhub").reference) == (
        "docker.io/library/ubuntu"
    )


def test_a_registry_id_that_needs_a_path_asks_for_it() -> None:
    with pytest.raises(InvalidRegistryPath, match="needs a registry path"):
        resolve(catalog, "ns/img", registry_id="ecr")


def test_a_registry_id_that_contradicts_the_image_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"served by Quay.io \(quay\), not by Docker Hub"):
        resolve(catalog, "quay.io/ns/img", registry_id="dockerhub")


def test_an_unknown_registry_id_is_refused() -> None:
    with pytest.raises(UnknownRegistry):
        resolve(catalog, "ns/img", registry_id="nope")


def test_describe_reports_invalid_input_as_an_answer_with_an_error() -> None:
    valid, answer = describe(catalog, "Biocontainers/Samtools")
    assert valid is False
    assert answer == {
        "input": "Biocontainers/Samtools",
        "valid": False,
        "error": answer["error"],
        "error_kind": "name_contains_uppercase",
    }
    assert "lowercase" in str(answer["error"])


def test_an_uppercase_namespace_read_as_a_host_gets_a_warning() -> None:
    valid, answer = describe(catalog, "Biocontainers/samtools")
    assert valid is True
    assert answer["registry"] == "generic"
    assert "docker.io/biocontainers/samtools" in str(answer["warnings"])


def test_pull_commands_are_pinned_by_digest_when_given() -> None:
    digest = "sha256:" + "a" * 64
    answer = resolve(catalog, f"quay.io/ns/img@{digest}").as_dict()
    assert {
        "tool": "apptainer",
        "command": f"apptainer pull docker://quay.io/ns/img@{digest}",
    } in answer["pull_commands"]  # type: ignore[operator]
