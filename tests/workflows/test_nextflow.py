"""The images of an nf-core-shaped Nextflow pipeline: modules with the container-engine
ternary, `docker.registry = 'quay.io'` for names without a host, `withName` and `withLabel`
overrides, a `params` container, an included config, and references only a run can know.
Includes that leave the repository and files that do not parse are refused with the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.workflows.nextflow import read_images
from tests.support.workflows import repository

CATALOG = Catalog(BUILTIN_REGISTRIES)

CONFIG = """\
manifest {
    name = 'lab/rnaseq'
    mainScript = 'main.nf'
}

params {
    input = null
    multiqc_image = "quay.io/biocontainers/multiqc:${params.multiqc_version}"
    multiqc_version = '1.21--pyhdfd78af_0'
}

docker.registry = 'quay.io'
podman.registry = 'quay.io'

process {
    withName: 'MULTIQC' {
        container = params.multiqc_image
    }
    withLabel: 'process_big' {
        container = "biocontainers/samtools:1.19--h50ea8bc_0"
    }
}

profiles {
    docker { docker.enabled = true }
    gpu {
        process.container = 'nvcr.io/nvidia/clara/parabricks:4.2.1-1'
    }
}

includeConfig 'conf/modules.config'
"""

MODULES_CONFIG = """\
process {
    withName: 'TRIMGALORE' {
        ext.args = { "--quality ${params.min_quality ?: 20}" }
    }
}
"""

MAIN = """\
#!/usr/bin/env nextflow
nextflow.enable.dsl = 2

params.aligner_image = 'biocontainers/star:2.7.10a--h9ee0642_0'

include { FASTQC } from './modules/nf-core/fastqc/main'
include { MULTIQC; ALIGN as STAR_ALIGN } from './modules/local/tools'
include { fromSamplesheet } from 'plugin/nf-validation'

workflow {
    reads = Channel.fromPath(params.input)
    FASTQC(reads)
    STAR_ALIGN(reads)
    MULTIQC(FASTQC.out.zip.collect())
}
"""

FASTQC = """\
process FASTQC {
    tag "$meta.id"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine == 'singularity' && !task.ext.singularity_pull_docker_container ?
        'https://depot.galaxyproject.org/singularity/fastqc:0.12.1--hdfd78af_0' :
        'biocontainers/fastqc:0.12.1--hdfd78af_0' }"

    input:
    tuple val(meta), path(reads)

    output:
    tuple val(meta), path("*.html"), emit: html

    script:
    def args = task.ext.args ?: ''
    \"\"\"
    fastqc $args --threads $task.cpus $reads
    \"\"\"
}
"""

TOOLS = """\
process MULTIQC {
    label 'process_single'
    container 'ubuntu:22.04'
    script:
    "multiqc ."
}

process ALIGN {
    label 'process_big'
    container params.aligner_image
    script:
    "STAR --runMode alignReads"
}

process CUSTOM {
    container task.ext.image
    script:
    "custom"
}

process UNSET {
    container params.unset_image
    script:
    "unset"
}
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    return repository(
        tmp_path,
        {
            "nextflow.config": CONFIG,
            "conf/modules.config": MODULES_CONFIG,
            "main.nf": MAIN,
            "modules/nf-core/fastqc/main.nf": FASTQC,
            "modules/local/tools.nf": TOOLS,
        },
    )


def test_every_container_is_found_with_its_file_and_line(pipeline: Path) -> None:
    reading = read_images(pipeline, "/nextflow.config", CATALOG)

    found = {(i.file, i.line, i.engine, i.image) for i in reading.images if i.evaluable}
    assert found == {
        ("/nextflow.config", 17, None, "quay.io/biocontainers/multiqc:1.21--pyhdfd78af_0"),
        ("/nextflow.config", 20, None, "quay.io/biocontainers/samtools:1.19--h50ea8bc_0"),
        ("/nextflow.config", 27, None, "nvcr.io/nvidia/clara/parabricks:4.2.1-1"),
        ("/modules/nf-core/fastqc/main.nf", 6, "docker",
         "quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0"),
        ("/modules/local/tools.nf", 3, None, "quay.io/ubuntu:22.04"),
        ("/modules/local/tools.nf", 10, None, "quay.io/biocontainers/star:2.7.10a--h9ee0642_0"),
    }  # fmt: skip
    assert reading.files == [
        "/conf/modules.config",
        "/main.nf",
        "/modules/local/tools.nf",
        "/modules/nf-core/fastqc/main.nf",
        "/nextflow.config",
    ]


def test_the_engine_ternary_gives_both_alternatives(pipeline: Path) -> None:
    reading = read_images(pipeline, "/nextflow.config", CATALOG)

    fastqc = [i for i in reading.images if i.file == "/modules/nf-core/fastqc/main.nf"]
    assert {i.engine for i in fastqc} == {"singularity", "docker"}
    singularity = next(i for i in fastqc if i.engine == "singularity")
    assert singularity.text == (
        "https://depot.galaxyproject.org/singularity/fastqc:0.12.1--hdfd78af_0"
    )
    assert singularity.image is None  # a Singularity image file: not a registry image
    assert "Singularity image file" in singularity.problems[0]
    docker = next(i for i in fastqc if i.engine == "docker")
    assert docker.registry == "quay"
    assert docker.problems == ()


def test_what_only_a_run_knows_is_listed_not_guessed(pipeline: Path) -> None:
    reading = read_images(pipeline, "/nextflow.config", CATALOG)

    unknown = {
        (i.file, i.line, i.text): i.problems
        for i in reading.images
        if not i.evaluable and i.engine is None
    }
    assert set(unknown) == {
        ("/modules/local/tools.nf", 16, "task.ext.image"),
        ("/modules/local/tools.nf", 22, "params.unset_image"),
    }
    assert (
        "task.ext.image is set per process"
        in unknown[("/modules/local/tools.nf", 16, "task.ext.image")][0]
    )
    assert (
        "params.unset_image has no value"
        in unknown[("/modules/local/tools.nf", 22, "params.unset_image")][0]
    )


def test_the_main_script_as_primary_reads_the_config_beside_it(pipeline: Path) -> None:
    reading = read_images(pipeline, "/main.nf", CATALOG)

    assert "/nextflow.config" in reading.files
    assert any(i.image == "quay.io/ubuntu:22.04" for i in reading.images)


def test_without_a_registry_setting_names_are_docker_hubs(tmp_path: Path) -> None:
    root = repository(
        tmp_path,
        {
            "main.nf": "process A {\n  container 'biocontainers/fastqc:0.12.1'\n  script:\n"
            "  'x'\n}\n"
        },
    )

    (image,) = read_images(root, "/main.nf", CATALOG).images

    assert image.image == "docker.io/biocontainers/fastqc:0.12.1"
    assert image.registry == "dockerhub"


def test_a_moving_tag_is_flagged(tmp_path: Path) -> None:
    root = repository(
        tmp_path, {"main.nf": "process A {\n  container \"ubuntu\"\n  script:\n  'x'\n}\n"}
    )

    (image,) = read_images(root, "/main.nf", CATALOG).images

    assert image.problems and "no tag" in image.problems[0]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"main.nf": "include { A } from '../outside'\n"}, "outside the repository"),
        ({"main.nf": "include { A } from './missing'\n"}, "no ./missing.nf or ./missing/main.nf"),
        (
            {"nextflow.config": "includeConfig 'https://example.org/x.config'\n", "main.nf": ""},
            "is on the network",
        ),
        ({"main.nf": "process A {\n  container 'x'\n"}, "/main.nf is not valid Nextflow"),
        ({"nextflow.config": "params { a = 1 }\n"}, "no main script main.nf"),
    ],
)
def test_bad_pipelines_are_refused_with_a_reason(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    root = repository(tmp_path / "repository", files)
    primary = "/nextflow.config" if "nextflow.config" in files else "/main.nf"

    with pytest.raises(InvalidInput, match=re.escape(message)):
        read_images(root, primary, CATALOG)
