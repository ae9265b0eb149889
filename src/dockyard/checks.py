"""`dockyard check`: what is wrong with a deployment, before its users find out.

Each check looks at one thing an operator configures (the public address, the secret key,
the database, email, workers, the registries file, the sign-in providers) and says `ok`,
`warning` (works, but not as an institute would want) or `problem` (something users will see
fail), with what to change. Nothing here changes anything.
"""

from __future__ import annotations

import smtplib
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from dockyard import db
from dockyard.access.mail import SmtpMailer
from dockyard.accounts.oidc import SignInClient
from dockyard.accounts.providers import load_providers
from dockyard.errors import ConfigurationError, DockyardError
from dockyard.health import WORKER_SILENCE
from dockyard.registries.config import catalog_for
from dockyard.settings import SECRET_KEY_FILE, Settings, SmtpConfig

Verdict = Literal["ok", "warning", "problem"]
#: Keys that are examples, not secrets.
_EXAMPLE_KEYS = ("change", "example", "secret-key", "xxxxxxxx", "00000000")


@dataclass(frozen=True)
class Finding:
    """What one check found."""

    check: str
    verdict: Verdict
    detail: str


def check_deployment(settings: Settings, *, timeout: float = 5.0) -> list[Finding]:
    """Every check, in the order an operator fixes things."""
    engine = db.make_engine(settings.database_url)
    try:
        checks: list[tuple[str, Callable[[], Finding]]] = [
            ("base URL", lambda: _base_url(settings, timeout)),
            ("secret key", lambda: _secret_key(settings)),
            ("database", lambda: _database(engine)),
            ("email", lambda: _email(settings, timeout)),
            ("workers", lambda: _workers(settings, engine)),
            ("registries", lambda: _registries(settings)),
            ("sign-in", lambda: _sign_in(settings, timeout)),
        ]
        return [_safely(name, run) for name, run in checks]
    finally:
        engine.dispose()


def _safely(name: str, run: Callable[[], Finding]) -> Finding:
    """The check's finding; one that cannot run says why, and the others go on."""
    try:
        return run()
    except DockyardError as error:
        return Finding(name, "problem", error.message)
    except SQLAlchemyError as error:
        return Finding(name, "problem", f"the database did not answer ({type(error).__name__})")


def _base_url(settings: Settings, timeout: float) -> Finding:
    url = settings.base_url
    if not url:
        if settings.embedded:
            return Finding("base URL", "ok", "not set: links follow each request's Host header")
        return Finding(
            "base URL",
            "warning",
            "DOCKYARD_BASE_URL is not set: links in answers follow each request's Host "
            "header; set it to the public address (https://tools.example.org)",
        )
    parts = urlsplit(url)
    local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme == "http" and not local:
        return Finding(
            "base URL",
            "warning",
            f"{url} is plain HTTP: sign-in and tokens cross the network readable; serve "
            "dockyard behind TLS and give the https:// address",
        )
    try:
        answer = httpx.get(f"{url.rstrip('/')}/readyz", timeout=timeout)
    except httpx.HTTPError as error:
        return Finding(
            "base URL",
            "warning",
            f"{url} did not answer from here ({type(error).__name__}); if it should, check "
            "the proxy or DNS in front of dockyard",
        )
    if answer.status_code != 200:
        return Finding(
            "base URL", "warning", f"{url}/readyz answered {answer.status_code}, not 200"
        )
    return Finding("base URL", "ok", f"{url} answers")


def _secret_key(settings: Settings) -> Finding:
    key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    path = settings.data_dir / SECRET_KEY_FILE
    if not key and settings.embedded:  # the embedded mode keeps its key in the data dir
        if not path.exists():
            return Finding(
                "secret key", "ok", f"not made yet: `dockyard serve` writes one to {path}"
            )
        key = path.read_text().strip()
    if not key:
        return Finding("secret key", "problem", "DOCKYARD_SECRET_KEY is not set")
    lowered = key.lower()
    if len(set(key)) < 8 or any(word in lowered for word in _EXAMPLE_KEYS):
        return Finding(
            "secret key",
            "problem",
            "DOCKYARD_SECRET_KEY looks like an example, not a secret: make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and give every "
            "process the same",
        )
    from_file = settings.embedded and settings.secret_key is None
    if from_file and stat.S_IMODE(path.stat().st_mode) & 0o077:
        return Finding(
            "secret key", "problem", f"{path} can be read by other users: chmod 600 {path}"
        )
    return Finding("secret key", "ok", "set, and not an example")


def _database(engine: Engine) -> Finding:
    where = db.describe(engine)
    current = db.current_revision(engine)  # DatabaseUnavailable tells why it did not answer
    head = db.head_revision()
    if current != head:
        return Finding(
            "database",
            "problem",
            f"{where} is at migration {current or 'none (empty)'}, this release needs {head}: "
            "run `dockyard db upgrade`",
        )
    return Finding("database", "ok", f"{where} answers and is at migration {head}")


def _email(settings: Settings, timeout: float) -> Finding:
    if settings.smtp_url is None:
        return Finding(
            "email",
            "warning",
            "DOCKYARD_SMTP_URL is not set: access requests and grants notify nobody by email",
        )
    config = SmtpConfig.from_url(settings.smtp_url.get_secret_value())
    where = f"{config.host}:{config.port}"
    try:  # first as far as the greeting and TLS: does the server answer at all?
        SmtpMailer(replace(config, username=None, password=None)).check(timeout)
    except (OSError, smtplib.SMTPException) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        return Finding(
            "email",
            "problem",
            f"cannot reach the SMTP server {where} ({reason}): check DOCKYARD_SMTP_URL",
        )
    if config.username:
        try:
            SmtpMailer(config).check(timeout)
        except (OSError, smtplib.SMTPException) as error:
            return Finding(
                "email",
                "problem",
                f"{where} refused the user and password in DOCKYARD_SMTP_URL "
                f"({type(error).__name__})",
            )
    return Finding("email", "ok", f"{where} accepts a session ({config.security})")


def _workers(settings: Settings, engine: Engine) -> Finding:
    if settings.embedded:
        if not settings.background_refresh:
            return Finding(
                "workers",
                "warning",
                "DOCKYARD_BACKGROUND_REFRESH is false: no tool is refreshed on schedule",
            )
        return Finding("workers", "ok", "embedded: `dockyard serve` refreshes tools itself")
    with engine.connect() as connection:
        alive = connection.execute(
            text(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - :silence"
            ),
            {"silence": WORKER_SILENCE},
        ).scalar_one()
    if not alive:
        return Finding(
            "workers",
            "problem",
            "no `dockyard worker` sent a heartbeat in the last minute: scheduled refreshes "
            "and webhooks wait until one runs",
        )
    return Finding("workers", "ok", f"{alive} worker{'s' if alive != 1 else ''} alive")


def _registries(settings: Settings) -> Finding:
    try:
        catalog = catalog_for(settings)
    except ConfigurationError as error:
        return Finding("registries", "problem", error.message)
    count = len(catalog.all())
    source = f" (with {settings.registries_file})" if settings.registries_file else ""
    return Finding("registries", "ok", f"{count} registries known{source}")


def _sign_in(settings: Settings, timeout: float) -> Finding:
    providers = load_providers(settings)
    if not providers:
        return Finding("sign-in", "ok", "dockyard passwords only (no sign-in provider configured)")
    client = SignInClient(timeout=timeout)
    failing = []
    for provider in providers.values():
        try:
            client.check(provider)
        except DockyardError as error:
            failing.append(f"{provider.key}: {error.message}")
    if failing:
        return Finding("sign-in", "problem", "; ".join(failing))
    names = ", ".join(providers)
    if settings.base_url is None:
        return Finding(
            "sign-in",
            "warning",
            f"{names} answer, but DOCKYARD_BASE_URL is unset: the redirect URI sent to each "
            "provider is made from the request's address; set it to the one registered there",
        )
    return Finding(
        "sign-in",
        "ok",
        f"{names} answer; self sign-up {settings.self_signup}; redirect URIs "
        f"{settings.base_url}/signin/oidc/KEY/callback",
    )
