"""Launch-with links and engine commands for a published version of a tool or workflow.

The links come from URL templates: dockyard's defaults (platforms that import from any TRS
server or from git), or the operator's file named by `DOCKYARD_LAUNCH_FILE`:

    [launch.dnanexus]
    label = "DNAnexus"
    languages = ["WDL"]
    url = "https://platform.dnanexus.com/panx/tools/import-workflow?source={trs_version_url}"

A template's placeholders: `{trs_url}` (this dockyard's TRS base), `{trs_id}`, `{version}`,
`{trs_version_url}` (the version in TRS), `{descriptor_url}` (its primary descriptor, plain),
`{git_url}` (a workflow's repository, or a tool's git source). Every value is percent-encoded,
so it can stand anywhere in a query string. A template that needs a value the version has
not (a `{git_url}` without git) gives no link.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from urllib.parse import quote

from dockyard.errors import ConfigurationError
from dockyard.settings import Settings, read_toml_file

LANGUAGES = ("CWL", "WDL", "NFL", "GALAXY", "SMK")
PLACEHOLDERS = frozenset(
    {"trs_url", "trs_id", "version", "trs_version_url", "descriptor_url", "git_url"}
)


@dataclass(frozen=True)
class Template:
    """One launch-with platform."""

    key: str
    label: str
    languages: frozenset[str]
    url: str


#: Platforms that import a version from any TRS server (or from git), as Dockstore offers
#: them. Terra and AnVIL import from Dockstore only, so they are not defaults: an operator
#: whose Terra reads their TRS adds them in the launch file.
DEFAULTS = (
    Template(
        "dnanexus",
        "DNAnexus",
        frozenset({"WDL"}),
        "https://platform.dnanexus.com/panx/tools/import-workflow?source={trs_version_url}",
    ),
    Template(
        "cgc",
        "CGC (Seven Bridges)",
        frozenset({"CWL"}),
        "https://cgc.sbgenomics.com/integration/trs/import?trs_url={trs_version_url}",
    ),
    Template(
        "galaxy",
        "Galaxy (usegalaxy.org)",
        frozenset({"GALAXY"}),
        "https://usegalaxy.org/workflows/trs_import?trs_url={trs_version_url}&run_form=true",
    ),
    Template(
        "seqera",
        "Seqera Platform",
        frozenset({"NFL"}),
        "https://cloud.seqera.io/launch?pipeline={git_url}&revision={version}",
    ),
)


@dataclass(frozen=True)
class Launch:
    """What a version's page offers: links to platforms and commands to copy."""

    links: list[tuple[str, str]]
    commands: list[tuple[str, str]]


def load_templates(settings: Settings) -> tuple[Template, ...]:
    """The operator's templates, or the defaults; `ConfigurationError` for a bad file."""
    if settings.launch_file is None:
        return DEFAULTS
    return _read(settings.launch_file)


def _read(path: Path) -> tuple[Template, ...]:
    document = read_toml_file(path, what="launch file", variable="DOCKYARD_LAUNCH_FILE")
    tables = document.get("launch")
    if not isinstance(tables, dict) or set(document) - {"launch"}:
        raise ConfigurationError(f"{path}: give each platform as a [launch.KEY] table")
    found = []
    for key, table in tables.items():
        where = f"{path}: [launch.{key}]"
        if not isinstance(table, dict) or set(table) - {"label", "languages", "url"}:
            raise ConfigurationError(f"{where}: the fields are label, languages and url")
        label, url, languages = table.get("label"), table.get("url"), table.get("languages")
        if not isinstance(label, str) or not label.strip():
            raise ConfigurationError(f'{where}: give label = "..." (the button\'s text)')
        if not isinstance(url, str) or not re.match(r"https://[^/{}]+", url):
            raise ConfigurationError(f"{where}: url must be an https:// address template")
        if not (
            isinstance(languages, list)
            and languages
            and all(isinstance(each, str) and each.upper() in LANGUAGES for each in languages)
        ):
            raise ConfigurationError(
                f'{where}: languages is a list of {", ".join(LANGUAGES)}, e.g. ["WDL"]'
            )
        try:
            named = {name for _, name, _, _ in Formatter().parse(url) if name is not None}
        except ValueError as error:
            raise ConfigurationError(f"{where}: url is not a template ({error})") from None
        unknown = sorted(named - PLACEHOLDERS)
        if unknown:
            raise ConfigurationError(
                f"{where}: url names {{{unknown[0]}}}; the placeholders are "
                + ", ".join(f"{{{name}}}" for name in sorted(PLACEHOLDERS))
            )
        found.append(Template(key, label.strip(), frozenset(x.upper() for x in languages), url))
    return tuple(found)


def launch(
    templates: tuple[Template, ...],
    *,
    base: str,
    trs_id: str,
    version: str,
    languages: set[str],
    git_url: str | None = None,
) -> Launch:
    """The links and commands for one version whose primary descriptors are in `languages`."""
    trs = f"{base}/ga4gh/trs/v2"
    version_url = f"{trs}/tools/{quote(trs_id, safe='')}/versions/{quote(version, safe='')}"
    primary = sorted(languages)[0] if languages else None
    values = {
        "trs_url": trs,
        "trs_id": trs_id,
        "version": version,
        "trs_version_url": version_url,
        "descriptor_url": f"{version_url}/PLAIN_{primary}/descriptor" if primary else None,
        "git_url": git_url,
    }
    links = []
    for template in templates:
        if not template.languages & languages:
            continue
        needed = {name for _, name, _, _ in Formatter().parse(template.url) if name}
        if any(values.get(name) is None for name in needed):
            continue
        filled = {name: quote(str(values[name]), safe="") for name in needed}
        links.append((template.label, template.url.format(**filled)))
    commands = []
    if "CWL" in languages:
        commands.append(
            (
                "cwltool",
                f"cwltool --add-ga4gh-tool-registry {base} "
                f"{shlex.quote(f'{trs_id}:{version}')} job.yml",
            )
        )
    if "WDL" in languages:
        commands.append(
            ("miniwdl", f"miniwdl run {version_url}/PLAIN_WDL/descriptor -i inputs.json")
        )
    if "NFL" in languages and git_url:
        commands.append(
            ("nextflow", f"nextflow run {shlex.quote(git_url)} -r {shlex.quote(version)}")
        )
    return Launch(links, commands)
