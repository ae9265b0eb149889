"""What a reference in a descriptor resolves to, and what a user is told about it."""

from __future__ import annotations

from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.workflows.images import found, unevaluable

CATALOG = Catalog(BUILTIN_REGISTRIES)
ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"


def test_a_pinned_quay_image_resolves_with_nothing_to_say() -> None:
    image = found("quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0", "main.nf", 3, CATALOG)
    assert (image.image, image.registry, image.problems) == (
        "quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0",
        "quay",
        (),
    )
    assert (image.file, image.line, image.evaluable) == ("main.nf", 3, True)


def test_names_without_a_host_are_docker_hub_s_unless_a_default_registry_is_given() -> None:
    plain = found("biocontainers/fastqc:0.12.1--hdfd78af_0", "m.nf", 1, CATALOG)
    assert (plain.image, plain.registry) == (
        "docker.io/biocontainers/fastqc:0.12.1--hdfd78af_0",
        "dockerhub",
    )
    on_quay = found(
        "biocontainers/fastqc:0.12.1--hdfd78af_0", "m.nf", 1, CATALOG, default_registry="quay.io"
    )
    assert (on_quay.image, on_quay.registry) == (
        "quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0",
        "quay",
    )
    # A name that has its own host keeps it.
    kept = found("ghcr.io/lab/tool:1.0", "m.nf", 1, CATALOG, default_registry="quay.io")
    assert (kept.image, kept.registry) == ("ghcr.io/lab/tool:1.0", "ghcr")


def test_official_images_and_the_docker_scheme_are_normalized() -> None:
    assert found("ubuntu:22.04", "a.cwl", 5, CATALOG).image == "docker.io/library/ubuntu:22.04"
    assert found("docker://quay.io/ns/x:1", "a.smk", 2, CATALOG).image == "quay.io/ns/x:1"


def test_no_tag_and_latest_are_flagged_a_digest_is_not() -> None:
    assert found("ubuntu", "a", 1, CATALOG).problems == (
        "no tag: engines pull `latest`, which can change under the workflow",
    )
    assert found("ubuntu:latest", "a", 1, CATALOG).problems == (
        "the `latest` tag can change under the workflow: pin a version",
    )
    pinned = "ubuntu:latest@sha256:" + "a" * 64
    assert found(pinned, "a", 1, CATALOG).problems == ()


def test_private_and_unknown_registries_say_so() -> None:
    private = found(f"{ECR}/lab/aligner:2.0", "w.wdl", 9, CATALOG)
    assert private.registry == "ecr"
    assert private.problems == (
        "Amazon ECR (private) holds private images only: pulling needs permission",
    )
    unknown = found("registry.lab.example/tools/x:1", "w.wdl", 9, CATALOG)
    assert unknown.registry == "generic"
    assert unknown.problems == ("dockyard does not know the registry registry.lab.example",)


def test_what_is_not_a_registry_image_is_kept_with_the_reason() -> None:
    sif = found(
        "https://depot.galaxyproject.org/singularity/fastqc:0.12.1--hdfd78af_0",
        "m.nf",
        4,
        CATALOG,
        engine="singularity",
    )
    assert (sif.image, sif.engine) == (None, "singularity")
    assert sif.problems == (
        "a Singularity image file or another engine's address, not a registry image",
    )
    bad = found("Not A Reference", "a.cwl", 2, CATALOG)
    assert bad.image is None and "whitespace" in bad.problems[0]


def test_a_reference_built_at_run_time_is_listed_never_guessed() -> None:
    image = unevaluable("~{docker_image}", "w.wdl", 12, "it comes from the input docker_image")
    assert (image.image, image.text, image.line, image.evaluable) == (
        None,
        "~{docker_image}",
        12,
        False,
    )
    assert image.problems == (
        "cannot be evaluated before a run: it comes from the input docker_image",
    )
