"""Which of a version's files answer which request, read from the version's own files."""

from __future__ import annotations

import re

import pytest

from dockyard.catalog import files
from dockyard.catalog.models import Tool, ToolVersion, VersionFile
from dockyard.catalog.rules import DescriptorType, FileType
from dockyard.errors import NotFound

CWL, WDL = DescriptorType.CWL, DescriptorType.WDL


def version_with(*specs: tuple[str, FileType, DescriptorType | None]) -> tuple[Tool, ToolVersion]:
    version = ToolVersion(
        name="1.0",
        files=[
            VersionFile(
                path=path, file_type=kind, descriptor_type=of, content=path, sha256="", size=0
            )
            for path, kind, of in specs
        ],
    )
    return Tool(path="quay.io/lab/tool"), version


TOOL, VERSION = version_with(
    ("tools/main.cwl", FileType.PRIMARY_DESCRIPTOR, CWL),
    ("tools/steps/align.cwl", FileType.SECONDARY_DESCRIPTOR, CWL),
    ("main.wdl", FileType.PRIMARY_DESCRIPTOR, WDL),
    ("tests/cwl.json", FileType.TEST_FILE, CWL),
    ("tests/any.json", FileType.TEST_FILE, None),
    ("tests/wdl.json", FileType.TEST_FILE, WDL),
    ("Dockerfile", FileType.CONTAINERFILE, None),
    ("README.md", FileType.OTHER, None),
)


def paths(found: list[VersionFile]) -> list[str]:
    return [f.path for f in found]


def test_the_primary_descriptor_is_the_one_of_the_asked_type() -> None:
    assert files.descriptor_file(TOOL.path, VERSION, CWL).path == "tools/main.cwl"
    assert files.descriptor_file(TOOL.path, VERSION, WDL).path == "main.wdl"
    with pytest.raises(
        NotFound, match=re.escape("version 1.0 of quay.io/lab/tool has no NFL descriptor")
    ):
        files.descriptor_file(TOOL.path, VERSION, DescriptorType.NFL)


def test_a_relative_descriptor_is_found_next_to_the_primary_and_never_outside() -> None:
    assert files.descriptor_file(TOOL.path, VERSION, CWL, "steps/align.cwl").path == (
        "tools/steps/align.cwl"
    )
    assert files.descriptor_file(TOOL.path, VERSION, CWL, "../Dockerfile").path == "Dockerfile"
    for outside in ("/etc/passwd", "../../etc/passwd", "steps/\x00.cwl"):
        with pytest.raises(NotFound, match="outside this version's files"):
            files.descriptor_file(TOOL.path, VERSION, CWL, outside)
    with pytest.raises(
        NotFound, match=re.escape("no file 'steps/missing.cwl' next to its descriptor")
    ):
        files.descriptor_file(TOOL.path, VERSION, CWL, "steps/missing.cwl")


def test_tests_are_those_of_the_type_and_those_of_any_type() -> None:
    assert paths(files.tests_of(VERSION, CWL)) == ["tests/cwl.json", "tests/any.json"]
    assert paths(files.tests_of(VERSION, WDL)) == ["tests/any.json", "tests/wdl.json"]


def test_a_runner_gets_its_type_s_files_the_untyped_ones_and_the_containerfile() -> None:
    assert paths(files.runner_files(VERSION, WDL)) == [
        "main.wdl",
        "tests/any.json",
        "tests/wdl.json",
        "Dockerfile",
        "README.md",
    ]


def test_the_containerfile_or_a_clear_not_found() -> None:
    assert paths(files.containerfiles(TOOL.path, VERSION)) == ["Dockerfile"]
    tool, bare = version_with(("main.cwl", FileType.PRIMARY_DESCRIPTOR, CWL))
    with pytest.raises(
        NotFound, match=re.escape("version 1.0 of quay.io/lab/tool has no containerfile")
    ):
        files.containerfiles(tool.path, bare)
