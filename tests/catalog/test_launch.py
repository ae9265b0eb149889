"""Launch-with links from URL templates (the defaults, or the operator's file) and the
engine commands a version's page offers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from dockyard.catalog.launch import DEFAULTS, launch, load_templates
from dockyard.errors import ConfigurationError
from dockyard.settings import Settings

BASE = "https://dockyard.example.org"


def settings(tmp_path: Path, toml: str | None) -> Settings:
    values: dict[str, object] = {"database_url": f"sqlite:///{tmp_path}/d.db"}
    if toml is not None:
        (tmp_path / "launch.toml").write_text(toml)
        values["launch_file"] = tmp_path / "launch.toml"
    return Settings(**values)


def test_the_defaults_link_each_language_to_the_platforms_that_take_it() -> None:
    wdl = launch(
        DEFAULTS,
        base=BASE,
        trs_id="#workflow/github.com/lab/align",
        version="v1",
        languages={"WDL"},
    )
    version_url = f"{BASE}/ga4gh/trs/v2/tools/%23workflow%2Fgithub.com%2Flab%2Falign/versions/v1"
    assert wdl.links == [
        (
            "DNAnexus",
            "https://platform.dnanexus.com/panx/tools/import-workflow?source="
            + quote(version_url, safe=""),
        )
    ]
    assert wdl.commands == [
        ("miniwdl", f"miniwdl run {version_url}/PLAIN_WDL/descriptor -i inputs.json")
    ]
    cwl = launch(DEFAULTS, base=BASE, trs_id="quay.io/lab/tool", version="1.0", languages={"CWL"})
    assert [label for label, _ in cwl.links] == ["CGC (Seven Bridges)"]
    assert cwl.commands == [
        ("cwltool", f"cwltool --add-ga4gh-tool-registry {BASE} quay.io/lab/tool:1.0 job.yml")
    ]
    nf = launch(
        DEFAULTS,
        base=BASE,
        trs_id="#workflow/github.com/lab/rnaseq",
        version="2.0",
        languages={"NFL"},
        git_url="https://github.com/lab/rnaseq.git",
    )
    assert nf.links == [
        (
            "Seqera Platform",
            "https://cloud.seqera.io/launch?pipeline=https%3A%2F%2Fgithub.com%2Flab%2Frnaseq.git&revision=2.0",
        )
    ]
    assert nf.commands == [("nextflow", "nextflow run https://github.com/lab/rnaseq.git -r 2.0")]
    # A template that needs a value the version has not gives no link.
    assert launch(DEFAULTS, base=BASE, trs_id="x", version="1", languages={"NFL"}).links == []


def test_an_operators_file_replaces_the_defaults(tmp_path: Path) -> None:
    templates = load_templates(
        settings(
            tmp_path,
            '[launch.terra]\nlabel = "Terra"\nlanguages = ["wdl"]\n'
            'url = "https://app.terra.bio/#import-tool/lab/{trs_id}:{version}"\n',
        )
    )
    assert [t.key for t in templates] == ["terra"]
    made = launch(
        templates, base=BASE, trs_id="#workflow/github.com/lab/a", version="v 1", languages={"WDL"}
    )
    assert made.links == [
        ("Terra", "https://app.terra.bio/#import-tool/lab/%23workflow%2Fgithub.com%2Flab%2Fa:v%201")
    ]
    assert load_templates(settings(tmp_path, None)) == DEFAULTS


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (
            '[launch.x]\nlabel = "X"\nlanguages = ["WDL"]\nurl = "http://x.org/{trs_id}"\n',
            "https://",
        ),
        (
            '[launch.x]\nlabel = "X"\nlanguages = ["PERL"]\nurl = "https://x.org/{trs_id}"\n',
            "languages is a list",
        ),
        (
            '[launch.x]\nlabel = "X"\nlanguages = ["WDL"]\nurl = "https://x.org/{secret}"\n',
            "names {secret}",
        ),
        ('[launch.x]\nlanguages = ["WDL"]\nurl = "https://x.org/"\n', "give label"),
        (
            '[launch.x]\nlabel = "X"\nlanguages = ["WDL"]\nurl = "https://x.org/"\ncolour = 1\n',
            "the fields are",
        ),
        ("[x]\n", "[launch.KEY]"),
    ],
)
def test_a_bad_launch_file_says_what_to_change(tmp_path: Path, toml: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=r"launch\.toml") as raised:
        load_templates(settings(tmp_path, toml))
    assert says in raised.value.message
