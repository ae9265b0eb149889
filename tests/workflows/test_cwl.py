"""The images of CWL workflows shaped like real ones: nested `run:` steps, inline tools, an
`$import`ed requirement, a packed `$graph`; and descriptors that try to leave the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.workflows.cwl import read_images
from tests.support.workflows import repository

CATALOG = Catalog(BUILTIN_REGISTRIES)

MAIN = """\
cwlVersion: v1.2
class: Workflow
inputs:
  reads: File
outputs:
  bam:
    type: File
    outputSource: align/bam
hints:
  DockerRequirement:
    dockerPull: ubuntu:22.04
steps:
  align:
    run: steps/align.cwl
    in: {reads: reads}
    out: [bam]
  index:
    run:
      class: CommandLineTool
      baseCommand: [samtools, index]
      requirements:
        - class: DockerRequirement
          dockerPull: quay.io/biocontainers/samtools:1.17--h00cdaf9_0
      inputs: []
      outputs: []
    in: {}
    out: []
  sort:
    run: tools/sort.cwl
    in: {}
    out: []
"""
ALIGN = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [bwa, mem]
requirements:
  DockerRequirement:
    dockerPull: biocontainers/bwa:v0.7.17_cv1
inputs:
  reads: File
outputs:
  bam: stdout
"""
SORT = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: sort
hints:
  - $import: docker.yml
inputs: []
outputs: []
"""
DOCKER = "class: DockerRequirement\ndockerPull: debian:12\n"
PACKED = """\
{
  "cwlVersion": "v1.2",
  "$graph": [
    {
      "class": "Workflow",
      "id": "#main",
      "inputs": [],
      "outputs": [],
      "steps": [{"id": "#main/count", "run": "#count.cwl", "in": [], "out": []}]
    },
    {
      "class": "CommandLineTool",
      "id": "#count.cwl",
      "baseCommand": "wc",
      "requirements": [
        {"class": "DockerRequirement", "dockerPull": "ghcr.io/lab/wc:1.0"}
      ],
      "inputs": [],
      "outputs": []
    }
  ]
}
"""


def test_every_step_s_image_is_found_with_its_file_and_line(tmp_path: Path) -> None:
    root = repository(
        tmp_path,
        {
            "main.cwl": MAIN,
            "steps/align.cwl": ALIGN,
            "tools/sort.cwl": SORT,
            "tools/docker.yml": DOCKER,
        },
    )
    reading = read_images(root, "/main.cwl", CATALOG)
    assert [(i.file, i.line, i.text, i.image, i.registry) for i in reading.images] == [
        ("/main.cwl", 11, "ubuntu:22.04", "docker.io/library/ubuntu:22.04", "dockerhub"),
        (
            "/main.cwl",
            23,
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
            "quay",
        ),
        (
            "/steps/align.cwl",
            6,
            "biocontainers/bwa:v0.7.17_cv1",
            "docker.io/biocontainers/bwa:v0.7.17_cv1",
            "dockerhub",
        ),
        # The requirement sort.cwl imports is written in docker.yml.
        ("/tools/docker.yml", 2, "debian:12", "docker.io/library/debian:12", "dockerhub"),
    ]
    assert reading.files == [
        "/main.cwl",
        "/steps/align.cwl",
        "/tools/docker.yml",
        "/tools/sort.cwl",
    ]


def test_a_packed_graph_is_read_from_its_main_workflow(tmp_path: Path) -> None:
    root = repository(tmp_path, {"packed.cwl": PACKED})
    (image,) = read_images(root, "/packed.cwl", CATALOG).images
    assert (image.file, image.line, image.image, image.registry) == (
        "/packed.cwl",
        16,
        "ghcr.io/lab/wc:1.0",
        "ghcr",
    )


def test_an_image_built_when_the_workflow_runs_is_listed_as_unevaluable(tmp_path: Path) -> None:
    built = """\
cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerImageId: lab/local-build
    dockerFile: "FROM ubuntu:22.04"
hints:
  DockerRequirement:
    dockerLoad: images/tool.tar
baseCommand: [tool]
inputs: []
outputs: []
"""
    root = repository(tmp_path, {"tool.cwl": built})

    first, second = read_images(root, "/tool.cwl", CATALOG).images

    assert (first.image, first.file, first.line) == ("docker.io/lab/local-build", "/tool.cwl", 5)
    assert (second.text, second.line, second.image) == ("dockerLoad: images/tool.tar", 9, None)
    assert "made by `dockerLoad` when the workflow runs" in second.problems[0]


def test_the_same_image_twice_in_a_file_gets_each_line(tmp_path: Path) -> None:
    twice = MAIN.replace("quay.io/biocontainers/samtools:1.17--h00cdaf9_0", "ubuntu:22.04")
    root = repository(
        tmp_path,
        {
            "main.cwl": twice,
            "steps/align.cwl": ALIGN,
            "tools/sort.cwl": SORT,
            "tools/docker.yml": DOCKER,
        },
    )
    ubuntu = [
        (i.file, i.line)
        for i in read_images(root, "/main.cwl", CATALOG).images
        if "ubuntu" in i.text
    ]
    assert ubuntu == [("/main.cwl", 11), ("/main.cwl", 23)]


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ("../outside.cwl", "is outside the repository"),
        ("https://example.org/tool.cwl", "is not a file of the repository"),
    ],
)
def test_a_step_outside_the_repository_is_refused_and_never_read(
    tmp_path: Path, step: str, says: str
) -> None:
    (tmp_path / "outside.cwl").write_text(ALIGN)
    root = repository(
        tmp_path / "repo",
        {
            "main.cwl": MAIN.replace("steps/align.cwl", step),
            "tools/sort.cwl": SORT,
            "tools/docker.yml": DOCKER,
        },
    )
    with pytest.raises(InvalidInput, match=re.escape(says)):
        read_images(root, "/main.cwl", CATALOG)


def test_an_import_outside_the_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.yml").write_text(DOCKER)
    root = repository(
        tmp_path / "repo",
        {
            "main.cwl": MAIN,
            "steps/align.cwl": ALIGN,
            "tools/sort.cwl": SORT.replace("docker.yml", "../../secret.yml"),
        },
    )
    with pytest.raises(InvalidInput, match="outside the repository"):
        read_images(root, "/main.cwl", CATALOG)


def test_a_descriptor_that_is_not_cwl_names_the_file(tmp_path: Path) -> None:
    root = repository(tmp_path, {"main.cwl": "cwlVersion: v1.2\nclass: Workflow\nsteps: 3\n"})
    with pytest.raises(InvalidInput, match=r"^/main\.cwl is not valid CWL: "):
        read_images(root, "/main.cwl", CATALOG)
    with pytest.raises(InvalidInput, match=re.escape("the repository has no file /missing.cwl")):
        read_images(root, "/missing.cwl", CATALOG)
