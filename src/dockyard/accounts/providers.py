"""The sign-in providers an operator configured: OpenID Connect issuers (Keycloak, LS Login,
Entra ID, Google, ORCID) and GitHub's OAuth.

One provider may come from `DOCKYARD_OIDC_ISSUER`, `DOCKYARD_OIDC_CLIENT_ID`,
`DOCKYARD_OIDC_CLIENT_SECRET` and `DOCKYARD_OIDC_NAME` (its key is `default`); any number from
the TOML file `DOCKYARD_AUTH_PROVIDERS_FILE` names, one table each:

    [providers.ls-login]
    display_name = "LS Login"
    issuer = "https://login.aai.lifescience-ri.eu/oidc/"
    client_id = "..."
    client_secret_file = "/run/secrets/ls-login"

    [providers.github]
    kind = "github"
    client_id = "..."
    client_secret = "..."

The key is part of the provider's callback address, `{base}/signin/oidc/{key}/callback`,
which is registered with the provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from dockyard.errors import ConfigurationError
from dockyard.settings import Settings, read_toml_file

KEY_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?"
#: The key of the provider the `DOCKYARD_OIDC_*` variables configure.
ENVIRONMENT_KEY = "default"
ORCID_ISSUER = "https://orcid.org"
GITHUB_ISSUER = "https://github.com"
GITHUB_API = "https://api.github.com"


@dataclass(frozen=True)
class Provider:
    """One way to sign in, as the operator configured it."""

    key: str
    kind: Literal["oidc", "github"]
    display_name: str
    #: OpenID Connect: the issuer (its discovery document is under it). GitHub: the site's
    #: address (https://github.com, or a GitHub Enterprise Server).
    issuer: str
    client_id: str
    client_secret: SecretStr = field(repr=False)
    scopes: tuple[str, ...]
    #: GitHub: the REST API's address (https://api.github.com, or the server's /api/v3).
    api_url: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    #: A username to offer for a new account (preferred_username, login, or the email's
    #: local part), not yet checked against dockyard's rules.
    username_hint: str | None
    name: str | None
    #: Only an address the provider says it verified.
    email: str | None


class _ProviderEntry(BaseModel):
    """One `[providers.KEY]` table of the providers file."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["oidc", "github", "orcid"] = "oidc"
    display_name: str | None = Field(default=None, min_length=1, max_length=60)
    issuer: str | None = None
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    scopes: list[str] | None = None
    #: GitHub Enterprise Server: its address and API address.
    github_url: str | None = None
    api_url: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> _ProviderEntry:
        if (self.client_secret is None) == (self.client_secret_file is None):
            raise ValueError("give exactly one of client_secret and client_secret_file")
        if self.kind == "oidc" and not self.issuer:
            raise ValueError('an OpenID Connect provider needs issuer = "https://..."')
        if self.kind != "github" and (self.github_url or self.api_url):
            raise ValueError('github_url and api_url are for kind = "github" only')
        return self


def load_providers(settings: Settings) -> dict[str, Provider]:
    """The configured providers by key, in the order the sign-in page shows them; a
    `ConfigurationError` that names the file, the provider and what to change otherwise."""
    providers: dict[str, Provider] = {}
    if settings.oidc_issuer or settings.oidc_client_id or settings.oidc_client_secret:
        if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
            raise ConfigurationError(
                "DOCKYARD_OIDC_ISSUER, DOCKYARD_OIDC_CLIENT_ID and DOCKYARD_OIDC_CLIENT_SECRET "
                "go together: set all three (and DOCKYARD_OIDC_NAME for the button's label)"
            )
        providers[ENVIRONMENT_KEY] = Provider(
            key=ENVIRONMENT_KEY,
            kind="oidc",
            display_name=settings.oidc_name or "your institute's login",
            issuer=_address("DOCKYARD_OIDC_ISSUER", settings.oidc_issuer),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=("openid", "email", "profile"),
        )
    if settings.auth_providers_file is not None:
        for provider in _read_file(settings.auth_providers_file):
            if provider.key in providers:
                raise ConfigurationError(
                    f"{settings.auth_providers_file}: the key {provider.key!r} is the one the "
                    "DOCKYARD_OIDC_* variables use: name the provider differently"
                )
            providers[provider.key] = provider
    return providers


def _read_file(path: Path) -> list[Provider]:
    document = read_toml_file(path, what="providers file", variable="DOCKYARD_AUTH_PROVIDERS_FILE")
    tables = document.get("providers")
    if not isinstance(tables, dict) or set(document) - {"providers"}:
        raise ConfigurationError(
            f"{path}: give each provider as a [providers.KEY] table, e.g. [providers.github]"
        )
    found = []
    for key, table in tables.items():
        where = f"{path}: [providers.{key}]"
        if not re.fullmatch(KEY_PATTERN, key):
            raise ConfigurationError(
                f"{where}: a key is 1-40 lowercase letters, digits and '-' (it goes into the "
                "callback address)"
            )
        try:
            entry = _ProviderEntry.model_validate(table)
        except ValidationError as error:
            first = error.errors()[0]
            place = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigurationError(f"{where}: {place + ': ' if place else ''}{message}") from None
        found.append(_provider(key, entry, where))
    return found


def _provider(key: str, entry: _ProviderEntry, where: str) -> Provider:
    secret = entry.client_secret
    if entry.client_secret_file is not None:
        try:
            secret = SecretStr(entry.client_secret_file.read_text(encoding="utf-8").strip())
        except OSError as error:
            raise ConfigurationError(
                f"{where}: cannot read client_secret_file {entry.client_secret_file} "
                f"({error.strerror})"
            ) from None
    assert secret is not None
    if entry.kind == "github":
        site = _address(f"{where} github_url", entry.github_url or GITHUB_ISSUER)
        api = entry.api_url or (GITHUB_API if site == GITHUB_ISSUER else f"{site}/api/v3")
        return Provider(
            key=key,
            kind="github",
            display_name=entry.display_name or "GitHub",
            issuer=site,
            client_id=entry.client_id,
            client_secret=secret,
            scopes=tuple(entry.scopes or ("read:user", "user:email")),
            api_url=_address(f"{where} api_url", api),
        )
    if entry.kind == "orcid":
        return Provider(
            key=key,
            kind="oidc",
            display_name=entry.display_name or "ORCID",
            issuer=_address(f"{where} issuer", entry.issuer or ORCID_ISSUER),
            client_id=entry.client_id,
            client_secret=secret,
            # ORCID's ID token names the person; it hands out no email address.
            scopes=tuple(entry.scopes or ("openid",)),
        )
    assert entry.issuer is not None
    return Provider(
        key=key,
        kind="oidc",
        display_name=entry.display_name or key,
        issuer=_address(f"{where} issuer", entry.issuer),
        client_id=entry.client_id,
        client_secret=secret,
        scopes=tuple(entry.scopes or ("openid", "email", "profile")),
    )


def _address(name: str, value: str) -> str:
    """An https address (plain http only on loopback, for trying things out)."""
    parts = urlsplit(value)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ConfigurationError(
            f"{name} must be an https:// address (http:// only for 127.0.0.1), got {value!r}"
        )
    return value
