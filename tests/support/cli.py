"""Checking what a `dockyard` command printed and how it ended."""

from __future__ import annotations

from click.testing import Result


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def error(result: Result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("dockyard: error: ")
    assert says in result.stderr
    assert "Traceback" not in result.output
