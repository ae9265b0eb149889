"""The images of a WDL workflow with imports: literal, built from constants, from an input's
default, or from an input only a run gives; and imports that try to leave the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.workflows.wdl import read_images
from tests.support.workflows import repository

CATALOG = Catalog(BUILTIN_REGISTRIES)

MAIN = """\
version 1.0
import "tasks/align.wdl" as align

workflow main {
  input {
    File reads
    String qc_image = "quay.io/biocontainers/fastqc:0.12.1--hdfd78af_0"
  }
  call align.run { input: reads = reads }
  call align.index
  call qc { input: image = qc_image }
}

task qc {
  input {
    String image
  }
  command <<< fastqc >>>
  runtime {
    docker: image
  }
}
"""
ALIGN = """\
version 1.0
import "../common/util.wdl"

task run {
  input {
    File reads
    String version = "0.7.17"
  }
  String tag = "v~{version}_cv1"
  command <<< bwa mem ~{reads} >>>
  runtime {
    docker: "biocontainers/bwa:~{tag}"
    cpu: 2
  }
}

task index {
  String registry = "quay.io/biocontainers"
  String samtools = registry + "/samtools:1.17--h00cdaf9_0"
  command <<< samtools index >>>
  runtime {
    container: samtools
  }
}
"""
UTIL = """\
version 1.0
task util {
  input {
    String docker_image
  }
  command <<< true >>>
  runtime {
    docker: ["ubuntu:22.04", docker_image]
  }
}
"""


def test_each_task_s_image_is_evaluated_where_constants_allow_and_listed_where_not(
    tmp_path: Path,
) -> None:
    root = repository(
        tmp_path, {"main.wdl": MAIN, "tasks/align.wdl": ALIGN, "common/util.wdl": UTIL}
    )
    reading = read_images(root, "/main.wdl", CATALOG)
    assert [(i.file, i.line, i.text, i.image, i.problems) for i in reading.images] == [
        (
            "/main.wdl",
            20,
            "image",
            None,
            ("cannot be evaluated before a run: it comes from the input `image` of task qc",),
        ),
        (
            "/tasks/align.wdl",
            12,
            "biocontainers/bwa:v0.7.17_cv1",
            "docker.io/biocontainers/bwa:v0.7.17_cv1",
            ("built from the default of `version` (task run): a run may pass another image",),
        ),
        # Built from constants only: nothing a run can change.
        (
            "/tasks/align.wdl",
            22,
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
            (),
        ),
        ("/common/util.wdl", 8, "ubuntu:22.04", "docker.io/library/ubuntu:22.04", ()),
        (
            "/common/util.wdl",
            8,
            "docker_image",
            None,
            (
                "cannot be evaluated before a run: it comes from the input `docker_image` of "
                "task util",
            ),
        ),
    ]
    assert reading.files == ["/common/util.wdl", "/main.wdl", "/tasks/align.wdl"]


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("../../outside.wdl", "import '../../outside.wdl' is outside the repository"),
        (
            "https://raw.githubusercontent.com/x/y/main/t.wdl",
            "is not a file of the repository",
        ),
        ("tasks/missing.wdl", "import 'tasks/missing.wdl': the repository has no such file"),
    ],
)
def test_an_import_outside_the_repository_or_missing_is_refused(
    tmp_path: Path, target: str, says: str
) -> None:
    (tmp_path / "outside.wdl").write_text(UTIL)
    root = repository(tmp_path / "repo", {"main.wdl": MAIN.replace("tasks/align.wdl", target)})
    with pytest.raises(InvalidInput, match=re.escape(says)):
        read_images(root, "/main.wdl", CATALOG)


def test_a_document_that_is_not_wdl_names_the_file_and_line(tmp_path: Path) -> None:
    root = repository(tmp_path, {"main.wdl": "version 1.0\nworkflow main {\n  call\n}\n"})
    with pytest.raises(InvalidInput, match=r"^/main\.wdl line \d+ is not valid WDL"):
        read_images(root, "/main.wdl", CATALOG)
