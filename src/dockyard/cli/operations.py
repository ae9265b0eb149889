"""`dockyard check`: a deployment's configuration, checked as its users will find it."""

from __future__ import annotations

import json
import sys

import click

from dockyard.checks import Finding, check_deployment
from dockyard.errors import ConfigurationError
from dockyard.settings import load_settings

_MARKS = {"ok": "ok", "warning": "warning", "problem": "PROBLEM"}


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.5, 60),
    help="Seconds to wait for the database, SMTP server and base URL.",
)
def check(as_json: bool, timeout: float) -> None:
    """Check this deployment's settings, database, email, workers and registries file.

    Exits 1 when any check finds a problem (warnings alone exit 0).
    """
    try:
        settings = load_settings(make_secret_key=False)
    except ConfigurationError as error:
        findings = [Finding("settings", "problem", error.message)]
    else:
        findings = [Finding("settings", "ok", "every DOCKYARD_ variable is valid")]
        findings += check_deployment(settings, timeout=timeout)
    if as_json:
        for finding in findings:
            click.echo(json.dumps(finding.__dict__))
    else:
        width = max(len(f.check) for f in findings)
        for finding in findings:
            click.echo(f"{_MARKS[finding.verdict]:<8} {finding.check:<{width}}  {finding.detail}")
        problems = sum(f.verdict == "problem" for f in findings)
        warnings = sum(f.verdict == "warning" for f in findings)
        click.echo(
            f"\n{len(findings)} checks: {problems} problem{'s' * (problems != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}",
            err=True,
        )
    if any(f.verdict == "problem" for f in findings):
        sys.exit(1)
