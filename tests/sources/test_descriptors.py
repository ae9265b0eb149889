"""Finding the files a descriptor imports, in CWL and WDL, never outside the repository."""

from __future__ import annotations

import pytest

from dockyard.catalog import rules
from dockyard.sources import descriptors
from tests.support.git_repos import (
    ALIGN,
    WDL_TASK,
    WORKFLOW,
)


def test_imports_are_found_in_cwl_and_wdl_and_never_leave_the_repository() -> None:
    assert descriptors.imports(rules.DescriptorType.CWL, WORKFLOW, "Dockstore.cwl") == [
        ("types/common.yml", "yaml"),
        ("tools/align.cwl", "document"),
    ]
    assert descriptors.imports(rules.DescriptorType.CWL, ALIGN, "tools/align.cwl") == [
        ("tools/sub/index.cwl", "document")
    ]
    assert descriptors.imports(rules.DescriptorType.WDL, WDL_TASK, "tasks/align.wdl") == [
        ("common/util.wdl", "document")
    ]
    remote = 'import "https://example.org/x.wdl"\nworkflow w {}'
    assert descriptors.imports(rules.DescriptorType.WDL, remote, "a.wdl") == []
    for text in ("run: ../../etc/passwd\n", "run: /etc/passwd\n", "run: file:///etc/passwd\n"):
        with pytest.raises(descriptors.DescriptorProblem):
            descriptors.imports(rules.DescriptorType.CWL, text, "sub/a.cwl")
    with pytest.raises(descriptors.DescriptorProblem, match="not valid YAML"):
        descriptors.check(rules.DescriptorType.CWL, "a: [", "x.cwl")
    with pytest.raises(descriptors.DescriptorProblem, match="no workflow or task"):
        descriptors.check(rules.DescriptorType.WDL, "version 1.0\n", "x.wdl")
