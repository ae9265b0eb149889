"""The registry catalog: which registry serves a host, and what each one asks of users."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidRegistryPath, UnknownRegistry
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog, PrivateTools

catalog = Catalog(BUILTIN_REGISTRIES)


@pytest.mark.parametrize(
    ("host", "registry_id"),
    [
        ("docker.io", "dockerhub"),
        ("registry.hub.docker.com", "dockerhub"),
        ("index.docker.io", "dockerhub"),
        ("registry-1.docker.io", "dockerhub"),
        ("Docker.IO", "dockerhub"),
        ("quay.io", "quay"),
        ("registry.gitlab.com", "gitlab"),
        ("ghcr.io", "ghcr"),
        ("public.ecr.aws", "ecr-public"),
        ("ecr-public.aws.com", "ecr-public"),
        ("312767926603.dkr.ecr.us-west-2.amazonaws.com", "ecr"),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", "ecr"),
        ("images.sbgenomics.com", "sevenbridges"),
        ("cgc-images.sbgenomics.com", "sevenbridges"),
        ("f4c-images.sbgenomics.com", "sevenbridges"),
        ("us-central1-docker.pkg.dev", "gar"),
        ("europe-docker.pkg.dev", "gar"),
        ("myregistry.azurecr.io", "acr"),
        ("registry.lab.example.org:5000", "generic"),
        ("localhost:5000", "generic"),
    ],
)
def test_hosts_match_their_registry(host: str, registry_id: str) -> None:
    assert catalog.match(host).id == registry_id


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("1234.dkr.ecr.us-west-2.amazonaws.com", "12-digit AWS account id"),
        ("cgc-images.sbgenomics.co", None),
        ("my-registry.sbgenomics.com", "[<platform>-]images.sbgenomics.com"),
        ("docker.pkg.dev", "<location>-docker.pkg.dev"),
        ("abc.azurecr.io", "5-50 letters and digits"),
        ("my_registry1.azurecr.io", "5-50 letters and digits"),
    ],
)
def test_near_misses_of_private_registry_hosts_are_explained(host: str, says: str | None) -> None:
    if says is None:
        assert catalog.match(host).id == "generic"
        return
    with pytest.raises(InvalidRegistryPath, match=None) as caught:
        catalog.match(host)
    assert says in caught.value.message


def test_rules_of_each_builtin_registry_follow_the_spec() -> None:
    rules = {r.id: (r.public, r.private_tools, r.needs_registry_path) for r in BUILTIN_REGISTRIES}
    assert rules == {
        "dockerhub": (True, PrivateTools.ALLOWED, False),
        "quay": (True, PrivateTools.ALLOWED, False),
        "gitlab": (True, PrivateTools.ALLOWED, False),
        "ghcr": (True, PrivateTools.ALLOWED, False),
        "ecr-public": (True, PrivateTools.FORBIDDEN, False),
        "ecr": (False, PrivateTools.REQUIRED, True),
        "sevenbridges": (False, PrivateTools.REQUIRED, True),
        "gar": (False, PrivateTools.ALLOWED, True),
        "acr": (False, PrivateTools.ALLOWED, True),
    }


def test_public_site_links_point_at_the_image_page() -> None:
    hub = catalog.get("dockerhub")
    assert hub.site_url("docker.io", "library/ubuntu") == "https://hub.docker.com/_/ubuntu"
    assert (
        hub.site_url("docker.io", "biocontainers/samtools")
        == "https://hub.docker.com/r/biocontainers/samtools"
    )
    assert (
        catalog.get("quay").site_url("quay.io", "biocontainers/samtools")
        == "https://quay.io/repository/biocontainers/samtools"
    )
    assert (
        catalog.get("ecr-public").site_url("public.ecr.aws", "a/b") == "https://gallery.ecr.aws/a/b"
    )
    assert (
        catalog.get("ecr").site_url("312767926603.dkr.ecr.us-west-2.amazonaws.com", "a/b") is None
    )


def test_login_commands_suit_each_registry() -> None:
    assert catalog.get("dockerhub").login_commands("docker.io")[0]["command"] == "docker login"
    assert catalog.get("quay").login_commands("quay.io")[0]["command"] == "docker login quay.io"
    assert (
        catalog.get("acr").login_commands("myregistry.azurecr.io")[0]["command"]
        == "az acr login --name myregistry"
    )
    ecr = catalog.get("ecr").login_commands("312767926603.dkr.ecr.us-west-2.amazonaws.com")
    assert [c["label"] for c in ecr] == ["AWS CLI v2", "AWS CLI v1 (legacy)"]


def test_unknown_registry_ids_list_the_known_ones() -> None:
    with pytest.raises(UnknownRegistry, match="use one of dockerhub, quay"):
        catalog.get("dockerhubb")


def test_without_the_catch_all_an_unknown_host_is_refused() -> None:
    strict = Catalog(BUILTIN_REGISTRIES, generic_enabled=False)
    with pytest.raises(UnknownRegistry, match="ask an administrator"):
        strict.match("registry.lab.example.org")
    assert [r.id for r in strict.all()][-1] == "acr"
    assert [r.id for r in catalog.all()][-1] == "generic"


def test_registry_descriptions_never_carry_credentials() -> None:
    for registry in catalog.all():
        described = registry.as_dict()
        assert "username" not in described
        assert "password_env" not in described
