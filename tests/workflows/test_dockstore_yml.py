"""A repository's `.dockstore.yml` as Dockstore's users write it, and every way it can be wrong."""

from __future__ import annotations

import re

import pytest

from dockyard.catalog.rules import DescriptorType
from dockyard.errors import InvalidInput
from dockyard.workflows.dockstore_yml import Author, Filters, parse

#: Two workflows as a lab writes them: comments, globs and a regular expression in the filters,
#: a lower-case subclass, authors by ORCID and by name.
TWO_WORKFLOWS = """\
# The first line refers to the version 1.2 of the .dockstore.yml schema
version: 1.2
workflows:
  - name: variant-calling
    subclass: wdl
    primaryDescriptorPath: /workflows/main.wdl
    testParameterFiles:
      - /workflows/test/inputs.json
    publish: true
    authors:
      - orcid: 0000-0001-5921-2022
      - name: Ada Lovelace
        email: ada@example.org
        affiliation: Analytical Engines
    filters:
      branches: [main, release/**]
      tags:
        - '/v\\d+\\.\\d+(\\.\\d+)?/'
  - name: qc
    subclass: CWL
    primaryDescriptorPath: qc/qc.cwl
    readMePath: /qc/README.md
    topic: Quality control of reads
"""


def test_two_workflows_are_read_with_their_settings() -> None:
    calling, qc = parse(TWO_WORKFLOWS)
    assert calling.name == "variant-calling"
    assert calling.subclass is DescriptorType.WDL
    assert calling.primary_descriptor_path == "/workflows/main.wdl"
    assert calling.test_parameter_files == ("/workflows/test/inputs.json",)
    assert calling.publish is True
    assert calling.authors == (
        Author(orcid="0000-0001-5921-2022"),
        Author(name="Ada Lovelace", email="ada@example.org", affiliation="Analytical Engines"),
    )
    assert calling.line == 4
    assert qc.subclass is DescriptorType.CWL
    assert qc.primary_descriptor_path == "/qc/qc.cwl"  # relative paths start at the root
    assert (qc.readme_path, qc.topic, qc.publish) == (
        "/qc/README.md",
        "Quality control of reads",
        None,
    )
    assert qc.filters == Filters()


def test_one_workflow_needs_no_name_and_every_language_is_known() -> None:
    for subclass, kind in [
        ("CWL", DescriptorType.CWL),
        ("wdl", DescriptorType.WDL),
        ("NFL", DescriptorType.NFL),
        ("galaxy", DescriptorType.GALAXY),
        ("Smk", DescriptorType.SMK),
    ]:
        (entry,) = parse(
            f"version: 1.2\nworkflows:\n  - subclass: {subclass}\n    primaryDescriptorPath: /x\n"
        )
        assert (entry.name, entry.subclass) == (None, kind)


def test_a_file_without_workflows_declares_none() -> None:
    assert parse("version: 1.2\ntools:\n  - subclass: docker\n") == []


def test_filters_admit_globs_within_and_across_segments_and_whole_regular_expressions() -> None:
    (calling, _) = parse(TWO_WORKFLOWS)
    admitted = {
        ("branch", "main"): True,
        ("branch", "release/1.0"): True,
        ("branch", "release/1.0/hotfix"): True,  # ** crosses segments
        ("branch", "mainline"): False,
        ("branch", "feature/x"): False,
        ("tag", "v1.2"): True,
        ("tag", "v1.2.3"): True,
        ("tag", "v1.2-rc1"): False,  # the expression must match the whole name
        ("tag", "main"): False,  # tags are matched against the tag patterns only
    }
    assert {key: calling.filters.admits(*key) for key in admitted} == admitted
    single = Filters(branches=("release*",))
    assert single.admits("branch", "release-2")
    assert not single.admits("branch", "release/2")  # * stays within one segment
    assert not single.admits("tag", "release-2")  # branch filters only: no tag is a version
    assert Filters().admits("tag", "anything") and Filters().admits("branch", "anything")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: 1.2\nworkflows: [\n", "cannot be read on line 3"),
        ("- a list\n", "must be a mapping"),
        ("version: 1.1\nworkflows: []\n", "line 1: `version` must be 1.2"),
        ("workflows: []\n", "`version` must be 1.2"),
        ("version: 1.2\nworkflows: {a: b}\n", "line 2: `workflows` must be a list"),
        (
            "version: 1.2\nworkflows:\n  - primaryDescriptorPath: /a.cwl\n",
            "line 3: the workflow needs `subclass`",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: XML\n    primaryDescriptorPath: /a\n",
            "line 3: subclass 'XML' is not one of CWL, WDL, NFL, GALAXY, SMK",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n",
            "line 3: the workflow needs `primaryDescriptorPath`",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "    primaryDescriptor: /b\n",
            "line 5: unknown key 'primaryDescriptor'",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /../etc/passwd\n",
            "line 4: `primaryDescriptorPath` '/../etc/passwd' must be a path inside the repository",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "    publish: maybe\n",
            "line 5: `publish` must be true or false",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "    name: has space\n",
            "line 5: name 'has space' may hold only letters",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "  - subclass: WDL\n    primaryDescriptorPath: /b\n",
            "line 3: with several workflows each needs a `name`",
        ),
        (
            "version: 1.2\nworkflows:\n  - {name: a, subclass: CWL, primaryDescriptorPath: /a}\n"
            "  - {name: A, subclass: WDL, primaryDescriptorPath: /b}\n",
            "line 4: two workflows are named 'A'",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "    filters:\n      tags: [/v(/]\n",
            "line 6: '/v(/' is not a regular expression",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "    filters:\n      branch: [main]\n",
            "line 6: filters are `branches` and `tags`, not 'branch'",
        ),
        (
            "version: 1.2\nworkflows:\n  - subclass: CWL\n    primaryDescriptorPath: /a\n"
            "    authors:\n      - email: a@example.org\n",
            "line 6: an author needs a `name` or an `orcid`",
        ),
        (
            "version: 1.2\nversion: 1.2\nworkflows: []\n",
            "line 2: 'version' is given twice",
        ),
    ],
)
def test_a_wrong_file_names_the_key_and_the_line(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        parse(text)


def test_a_huge_file_is_refused_before_it_is_read() -> None:
    with pytest.raises(InvalidInput, match="larger than 256 KiB"):
        parse("version: 1.2\n" + "# padding\n" * 30_000)
