"""Checking what a `dockyard` command printed and how it ended."""

from __future__ import annotations

from click.testing import CliRunner, Result

from dockyard.cli import main


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def error(result: Result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("dockyard: error: ")
    assert says in result.stderr
    assert "Traceback" not in result.output


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env, input=stdin)


def assert_one_line_error(result: Result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("dockyard: error: ")
    assert says in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
