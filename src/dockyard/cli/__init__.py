"""The `dockyard` command: server, local administration and registry tools."""

from __future__ import annotations

from typing import Any

import click

from dockyard import __version__
from dockyard.errors import DockyardError


class CommandFailed(click.ClickException):
    """A failure the user can fix: printed as one line, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"dockyard: error: {self.message}", err=True)


class DockyardGroup(click.Group):
    """A command group that turns dockyard's errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DockyardError as error:
            raise CommandFailed(error.message) from None


@click.group(cls=DockyardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dockyard")
def main() -> None:
    """dockyard: a registry of containerized tools, served over GA4GH TRS."""


def _register() -> None:
    from dockyard.cli import access, admin, operations, registries, server, tools, workflows

    main.add_command(server.serve)
    main.add_command(server.worker)
    main.add_command(server.db_group)
    main.add_command(operations.check)
    main.add_command(admin.users)
    main.add_command(admin.tokens)
    main.add_command(registries.registries)
    main.add_command(tools.tool)
    main.add_command(workflows.workflow)
    main.add_command(access.access)


_register()
