"""The tool rules as plain functions: every rule on every registry where it applies."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.catalog import rules
from dockyard.errors import InvalidInput
from dockyard.registries.catalog import BUILTIN_REGISTRIES, GENERIC_REGISTRY, PrivateTools, Registry

REGISTRIES = [*BUILTIN_REGISTRIES, GENERIC_REGISTRY]
PRIVATE_ONLY = [r for r in REGISTRIES if r.private_tools is PrivateTools.REQUIRED]
ALWAYS_PUBLIC = [r for r in REGISTRIES if r.private_tools is PrivateTools.FORBIDDEN]
EITHER = [r for r in REGISTRIES if r.private_tools is PrivateTools.ALLOWED]


def ids(registries: list[Registry]) -> list[str]:
    return [r.id for r in registries]


def test_the_registry_classes_cover_the_spec() -> None:
    assert ids(PRIVATE_ONLY) == ["ecr", "sevenbridges"]
    assert ids(ALWAYS_PUBLIC) == ["ecr-public"]


@pytest.mark.parametrize("registry", PRIVATE_ONLY, ids=ids(PRIVATE_ONLY))
def test_rule_1_a_private_only_registry_refuses_public_tools(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="is private-only: register the tool as private"):
        rules.check_privacy(registry, private=False, maintainer_email="a@example.org")
    rules.check_privacy(registry, private=True, maintainer_email="a@example.org")


@pytest.mark.parametrize("registry", ALWAYS_PUBLIC, ids=ids(ALWAYS_PUBLIC))
def test_rule_2_ecr_public_refuses_private_tools(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="always public"):
        rules.check_privacy(registry, private=True, maintainer_email="a@example.org")
    rules.check_privacy(registry, private=False, maintainer_email=None)


@pytest.mark.parametrize(
    "registry", [r for r in REGISTRIES if r.id in {"ecr", "ecr-public"}], ids=["ecr-public", "ecr"]
)
def test_rule_2_ecr_tools_never_change_visibility(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="cannot change visibility"):
        rules.check_visibility_change(
            registry, was_private=registry.id == "ecr", private=registry.id != "ecr"
        )
    rules.check_visibility_change(registry, was_private=True, private=True)


@pytest.mark.parametrize("registry", EITHER, ids=ids(EITHER))
def test_other_registries_allow_both_and_allow_changes(registry: Registry) -> None:
    rules.check_privacy(registry, private=False, maintainer_email=None)
    rules.check_privacy(registry, private=True, maintainer_email="a@example.org")
    rules.check_visibility_change(registry, was_private=False, private=True)


@pytest.mark.parametrize("registry", [*PRIVATE_ONLY, *EITHER], ids=ids([*PRIVATE_ONLY, *EITHER]))
def test_rule_3_a_private_tool_needs_a_maintainer_email(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="needs a maintainer email"):
        rules.check_privacy(registry, private=True, maintainer_email=None)


@pytest.mark.parametrize(
    "toolname", ["bamstats", "bam_stats", "bam--stats", "a", "A1", "x" * 256, "bam-stats_v2"]
)
def test_rule_5_toolnames_that_fit(toolname: str) -> None:
    assert rules.check_toolname(toolname) == toolname


@pytest.mark.parametrize(
    "toolname",
    ["_bam", "bam_", "bam___stats", "bam.stats", "bam stats", "", "x" * 257, "bam/stats", "-bam"],
)
def test_rule_5_toolnames_that_do_not(toolname: str) -> None:
    with pytest.raises(InvalidInput):
        rules.check_toolname(toolname)


def test_tool_paths_lowercase_the_host_and_append_the_toolname() -> None:
    assert rules.tool_path("Quay.IO", "ns/img", None) == "quay.io/ns/img"
    assert rules.tool_path("quay.io", "ns/img", "bamstats") == "quay.io/ns/img/bamstats"


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("tool.cwl", "tool.cwl"),
        ("./tool.cwl", "tool.cwl"),
        ("a//b/./c.cwl", "a/b/c.cwl"),
        ("a/../b.cwl", "b.cwl"),
    ],
)
def test_file_paths_are_normalized(path: str, normalized: str) -> None:
    assert rules.normalize_file_path(path) == normalized


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../etc/passwd", "leaves the version"),
        ("a/../../b", "leaves the version"),
        ("..", "leaves the version"),
        ("/etc/passwd", "is absolute"),
        ("a\x00b", "NUL"),
        ("a\\b", "'\\'"),
        ("", "needs a path"),
        (".", "needs a path"),
    ],
)
def test_file_paths_that_could_escape_are_refused(path: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=None) as caught:
        rules.normalize_file_path(path)
    assert says in caught.value.message


@given(
    st.lists(st.sampled_from(["a", "..", ".", "", "b.cwl", "x"]), min_size=1, max_size=8).map(
        "/".join
    )
)
def test_no_accepted_path_escapes_the_version(path: str) -> None:
    try:
        normalized = rules.normalize_file_path(path)
    except InvalidInput:
        return
    assert not normalized.startswith(("/", "../")) and normalized != ".."


def cwl(
    path: str = "tool.cwl",
    kind: str = "PRIMARY_DESCRIPTOR",
    descriptor: str | None = "CWL",
    content: str = "cwlVersion: v1.2",
) -> tuple[str, str, str | None, str]:
    return (path, kind, descriptor, content)


def test_files_get_checksums_and_sizes() -> None:
    [spec] = rules.check_files([cwl(content="héllo")])
    assert spec.size == 6
    assert spec.sha256 == hashlib.sha256("héllo".encode()).hexdigest()


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ([cwl(), cwl()], "given twice"),
        ([cwl(), cwl("other.cwl")], "already a primary CWL descriptor"),
        ([cwl(descriptor=None)], "needs a descriptor_type"),
        ([cwl(kind="MAIN")], "file_type 'MAIN' is not one of"),
        ([cwl(descriptor="YAML")], "descriptor_type 'YAML' is not one of"),
        ([cwl(content="x" * (rules.MAX_FILE_BYTES + 1))], "at most 1,048,576"),
        (
            [
                cwl(f"f{n}.cwl", "SECONDARY_DESCRIPTOR")
                for n in range(rules.MAX_FILES_PER_VERSION + 1)
            ],
            "at most 200 files",
        ),
        (
            [cwl("Dockerfile", "CONTAINERFILE", None), cwl("b/Dockerfile", "CONTAINERFILE", None)],
            "at most one CONTAINERFILE",
        ),
        (
            [
                cwl(f"f{n}.cwl", "SECONDARY_DESCRIPTOR", content="x" * rules.MAX_FILE_BYTES)
                for n in range(17)
            ],
            "add up to",
        ),
    ],
)
def test_bad_file_sets_are_refused_with_the_limit(
    files: list[tuple[str, str, str | None, str]], says: str
) -> None:
    with pytest.raises(InvalidInput, match=None) as caught:
        rules.check_files(files)
    assert says in caught.value.message


def test_plain_descriptor_type_spellings_are_accepted() -> None:
    [spec] = rules.check_files([cwl(descriptor="plain_cwl")])
    assert spec.descriptor_type is rules.DescriptorType.CWL


def test_one_primary_per_descriptor_type_is_allowed() -> None:
    specs = rules.check_files(
        [cwl(), cwl("tool.wdl", descriptor="WDL"), cwl("t.json", "TEST_FILE")]
    )
    assert [s.file_type for s in specs] == ["PRIMARY_DESCRIPTOR", "PRIMARY_DESCRIPTOR", "TEST_FILE"]


@pytest.mark.parametrize("name", ["1.0", "latest", "1.17--h00cdaf9_0", "_x", "v" * 128])
def test_version_names_are_tags(name: str) -> None:
    assert rules.check_version_name(name) == name


@pytest.mark.parametrize("name", ["", "-1", ".x", "a b", "v" * 129, "a/b", "ü"])
def test_version_names_that_are_not_tags_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid tag"):
        rules.check_version_name(name)
