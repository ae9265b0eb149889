"""Local administration: `dockyard users ...` and `dockyard tokens ...`."""

from __future__ import annotations

import sys

import click

from dockyard.accounts import services
from dockyard.accounts.models import User
from dockyard.cli.local import echo_table, local_session
from dockyard.errors import InvalidInput


@click.group()
def users() -> None:
    """Manage user accounts on the configured database."""


@users.command("create")
@click.argument("username")
@click.option("--email", required=True, help="The user's email address.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(username: str, email: str, admin: bool, password_stdin: bool) -> None:
    """Create a user (with a password from stdin, or a prompt on a terminal)."""
    password = _read_password(password_stdin)
    with local_session() as session:
        user = services.create_user(
            session, username=username, email=email, password=password, is_admin=admin
        )
        role = "administrator" if user.is_admin else "user"
        login = "with a password" if password else "without a password (API tokens only)"
    click.echo(f"created {role} {user.username} <{user.email}> {login}")


@users.command("list")
@click.option("--awaiting", is_flag=True, help="Only accounts waiting for approval.")
def list_users(awaiting: bool) -> None:
    """List user accounts, with how each signs in."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    with local_session() as session:
        query = select(User).options(selectinload(User.identities)).order_by(User.username)
        if awaiting:
            query = query.where(User.awaiting_approval.is_(True))
        rows = [
            [
                u.username,
                u.email,
                "yes" if u.is_admin else "",
                "yes" if u.password_hash else "",
                ",".join(sorted({linked.provider for linked in u.identities})),
                _status(u),
            ]
            for u in session.scalars(query)
        ]
    echo_table(["USERNAME", "EMAIL", "ADMIN", "PASSWORD", "SIGN-IN", "STATUS"], rows)


def _status(user: User) -> str:
    if user.awaiting_approval:
        return "awaiting approval"
    return "active" if user.is_active else "disabled"


@users.command("approve")
@click.argument("usernames", nargs=-1, required=True)
def approve_users(usernames: tuple[str, ...]) -> None:
    """Let accounts made by a first sign-in (DOCKYARD_SELF_SIGNUP=approval) sign in."""
    with local_session() as session:  # all or none
        approved = [services.approve_user(session, username) for username in usernames]
    for user in approved:
        click.echo(f"approved {user.username} <{user.email}>")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(username: str, password_stdin: bool) -> None:
    """Set or replace a user's password."""
    password = _read_password(password_stdin)
    if password is None:
        raise InvalidInput("give the new password with --password-stdin or at the prompt")
    with local_session() as session:
        services.set_password(services.get_user(session, username), password)
    click.echo(f"password of {username} changed")


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
        if not password:
            raise InvalidInput("--password-stdin was given but standard input was empty")
        return password
    if sys.stdin.isatty():
        entered: str = click.prompt(
            "Password (empty for none)",
            hide_input=True,
            confirmation_prompt=True,
            default="",
            show_default=False,
        )
        return entered or None
    return None


@click.group()
def tokens() -> None:
    """Manage API tokens on the configured database."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def create_token(username: str, name: str) -> None:
    """Create an API token and print it (and nothing else) on stdout."""
    with local_session() as session:
        _, plaintext = services.create_token(
            session, services.get_user(session, username), name=name
        )
    click.echo(plaintext)


@tokens.command("list")
@click.argument("username")
def list_tokens(username: str) -> None:
    """List a user's tokens (never the tokens themselves)."""
    with local_session() as session:
        rows = [
            [
                str(t.id),
                t.name,
                t.prefix + "…",
                t.created_at.strftime("%Y-%m-%d %H:%M"),
                t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never",
                "revoked" if t.revoked_at else "active",
            ]
            for t in services.list_tokens(session, services.get_user(session, username))
        ]
    echo_table(["ID", "NAME", "PREFIX", "CREATED", "LAST USED", "STATE"], rows)


@tokens.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
def revoke_token(username: str, token_id: int) -> None:
    """Revoke one of a user's tokens."""
    with local_session() as session:
        token = services.revoke_token(session, services.get_user(session, username), token_id)
    click.echo(f"token {token.id} ({token.name}) of {username} is revoked")
