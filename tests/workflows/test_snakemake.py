"""The images of a Snakemake workflow: global and per-rule containers, an included rule file,
one computed from the config; includes that try to leave the repository; code never run.
Each image is given with the line of its directive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.workflows.snakemake import read_images
from tests.support.workflows import repository

CATALOG = Catalog(BUILTIN_REGISTRIES)

SNAKEFILE = """\
container: "docker://continuumio/miniconda3:4.4.10"
containerized: "docker://lab/pipeline:1.0"

configfile: "config.yaml"

rule all:
    input: "out.txt"

rule align:
    input: "reads.fq"
    output: "out.txt"
    container:
        "docker://quay.io/biocontainers/bwa:0.7.17--hed695b0_7"
    shell: "bwa mem {input} > {output}"

rule qc:
    container: config["qc_image"]
    shell: "fastqc"

include: "rules/qc.smk"
"""
QC = """\
rule multiqc:
    container: "docker://quay.io/biocontainers/multiqc:" + "1.21--pyhdfd78af_0"
    shell: "multiqc ."
"""


def test_global_and_rule_containers_are_found_with_their_lines(tmp_path: Path) -> None:
    root = repository(tmp_path, {"Snakefile": SNAKEFILE, "rules/qc.smk": QC})
    reading = read_images(root, "/Snakefile", CATALOG)
    assert [(i.file, i.line, i.image, i.registry) for i in reading.images] == [
        ("/Snakefile", 1, "docker.io/continuumio/miniconda3:4.4.10", "dockerhub"),
        ("/Snakefile", 2, "docker.io/lab/pipeline:1.0", "dockerhub"),
        ("/Snakefile", 12, "quay.io/biocontainers/bwa:0.7.17--hed695b0_7", "quay"),
        ("/Snakefile", 17, None, None),
        ("/rules/qc.smk", 2, "quay.io/biocontainers/multiqc:1.21--pyhdfd78af_0", "quay"),
    ]
    computed = reading.images[3]
    assert computed.text == 'config["qc_image"]'
    assert computed.problems == (
        "cannot be evaluated before a run: rule qc computes it when it runs",
    )
    assert reading.files == ["/Snakefile", "/rules/qc.smk"]


def test_the_workflow_s_code_is_read_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f'open({str(marker)!r}, "w").write("ran")\n' + SNAKEFILE.replace(
        'include: "rules/qc.smk"\n', ""
    )
    root = repository(tmp_path / "repo", {"Snakefile": code})
    assert len(read_images(root, "/Snakefile", CATALOG).images) == 4
    assert not marker.exists()


@pytest.mark.parametrize(
    ("include", "says"),
    [
        ("../../outside.smk", "include '../../outside.smk' is outside the repository"),
        ("https://example.org/rules.smk", "is not a file of the repository"),
        ("rules/missing.smk", "the repository has no file rules/missing.smk"),
    ],
)
def test_an_include_outside_the_repository_or_missing_is_refused(
    tmp_path: Path, include: str, says: str
) -> None:
    (tmp_path / "outside.smk").write_text(QC)
    root = repository(tmp_path / "repo", {"Snakefile": SNAKEFILE.replace("rules/qc.smk", include)})
    with pytest.raises(InvalidInput, match=re.escape(says)):
        read_images(root, "/Snakefile", CATALOG)


def test_a_file_that_is_not_a_snakefile_names_it(tmp_path: Path) -> None:
    root = repository(tmp_path, {"Snakefile": "rule broken:\n    shell: (\n"})
    with pytest.raises(InvalidInput, match=r"^/Snakefile is not a valid Snakefile: "):
        read_images(root, "/Snakefile", CATALOG)
    (root / "Snakefile").write_text("rule a:\n    container:\n")
    with pytest.raises(InvalidInput, match="In container definition"):
        read_images(root, "/Snakefile", CATALOG)
