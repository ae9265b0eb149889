"""One typed settings object, built from `DOCKYARD_*` variables and validated at start-up.

Tests build `Settings(...)` directly and hand it to the app factory; only `load_settings`
reads the environment and the data dir. The embedded mode (SQLite) makes its own secret key;
PostgreSQL deployments must give one, since several processes have to share it.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dockyard.errors import ConfigurationError

ENV_PREFIX = "DOCKYARD_"
DEFAULT_DATA_DIR = Path("~/.local/share/dockyard")
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)
MIN_SECRET_KEY_LENGTH = 32


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand email to an SMTP server, read from `DOCKYARD_SMTP_URL`.

    URL forms: `smtp://[user:pass@]host[:port]` (plain; port 25), `smtp://...?starttls=true`
    (STARTTLS required; port 587), `smtps://...` (TLS from the start; port 465). `cafile=` in
    the query names extra CA certificates (a lab's own CA); otherwise the system's are used.
    """

    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse `DOCKYARD_SMTP_URL`, or say what the accepted forms are."""
        parts = urlsplit(url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "cafile"}
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname or unknown:
            raise ConfigurationError(
                "DOCKYARD_SMTP_URL must look like smtp://[user:pass@]host[:port] (add "
                "?starttls=true for STARTTLS) or smtps://[user:pass@]host[:port]"
            )
        starttls = query.get("starttls", "false").lower() in {"true", "1", "yes"}
        if parts.scheme == "smtps":
            security, port = "tls", 465
        elif starttls:
            security, port = "starttls", 587
        else:
            security, port = "plain", 25
        try:
            port = parts.port or port
        except ValueError:
            raise ConfigurationError("DOCKYARD_SMTP_URL has a port that is not a number") from None
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            cafile=query.get("cafile"),
        )


class Settings(BaseModel):
    """Everything an operator can configure, with the documented defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str
    data_dir: Path = DEFAULT_DATA_DIR
    secret_key: SecretStr | None = None
    base_url: str | None = None
    #: Host names (host or host:port) answered besides `base_url`'s, comma-separated.
    allowed_hosts: str = ""
    smtp_url: SecretStr | None = None
    mail_from: str | None = None
    registries_file: Path | None = None
    allow_private_network_registries: bool = False
    allow_generic_registry: bool = True
    refresh_interval: Annotated[int, Field(ge=60)] = 21600
    #: Seconds one tool's refresh may take before it ends as failed.
    refresh_deadline: Annotated[float, Field(ge=1, le=86400)] = 900.0
    #: In the embedded mode, whether `dockyard serve` refreshes due tools in the background.
    background_refresh: bool = True
    #: Memory for anonymous TRS answers in each web process, in MiB (0 turns the cache off).
    trs_cache_mb: Annotated[int, Field(ge=0, le=65536)] = 64
    #: Whether anonymous reads of TRS tools, versions and pages are answered from rows ahead
    #: of the app's routing (`dockyard.trs.fast`); off only to compare, the answers are equal.
    trs_fast_reads: bool = True
    #: A bearer token `/metrics` asks for (none: it answers anyone who reaches the port).
    metrics_token: SecretStr | None = None
    #: A port of their own for the metrics (then `/metrics` is not on the app's port).
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    #: The address that port listens on.
    metrics_host: str = "127.0.0.1"
    #: "text" (lines for people) or "json" (one object per line, for log collectors).
    log_format: Literal["text", "json"] = "text"
    #: The first administrator, created by `dockyard db upgrade` if no user has this name
    #: (a compose file or Kubernetes Job makes a working instance in one step).
    admin_username: str | None = None
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    #: A file holding that password (a Docker or Kubernetes secret), instead of the variable.
    admin_password_file: Path | None = None
    #: One OpenID Connect provider to sign in with (more: `auth_providers_file`).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    #: The sign-in button's label for that provider.
    oidc_name: str | None = None
    #: A TOML file of sign-in providers (OpenID Connect, GitHub, ORCID); docs/accounts.md.
    auth_providers_file: Path | None = None
    #: What a first sign-in through a provider does: "true" makes the account, "approval"
    #: makes it for an administrator to approve, "false" refuses unknown people.
    self_signup: Literal["true", "false", "approval"] = "false"
    #: A TOML file of launch-with platforms (URL templates) replacing the defaults.
    launch_file: Path | None = None
    environ: Mapping[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, value: str) -> str:
        database_url(value)
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters; generate one with "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_is_usable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                SmtpConfig.from_url(value.get_secret_value())
            except ConfigurationError as error:
                raise ValueError(error.message.removeprefix("DOCKYARD_SMTP_URL ")) from None
        return value

    @field_validator("self_signup", mode="before")
    @classmethod
    def _self_signup_words(cls, value: object) -> object:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("base_url")
    @classmethod
    def _base_url_is_absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _email_links_need_a_base_url(self) -> Settings:
        if self.smtp_url is not None and self.base_url is None:
            raise ValueError(
                "DOCKYARD_SMTP_URL sends email with links to dockyard, which need "
                "DOCKYARD_BASE_URL: set it to the address users reach dockyard at, for "
                "example https://dockyard.example.org"
            )
        return self

    @property
    def answered_hosts(self) -> frozenset[str]:
        """The Host values requests may carry; empty (any) without a base URL."""
        if self.base_url is None:
            return frozenset()
        hosts = {urlsplit(self.base_url).netloc.lower()}
        hosts |= {host.strip().lower() for host in self.allowed_hosts.split(",") if host.strip()}
        return frozenset(hosts)

    @property
    def embedded(self) -> bool:
        """True for the single-process SQLite mode."""
        return database_url(self.database_url).get_backend_name() == "sqlite"


def database_url(text: str) -> URL:
    """Parse a database URL into SQLAlchemy's form with dockyard's driver, or explain why not."""
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigurationError(
            "DOCKYARD_DATABASE_URL is not a database URL: use sqlite:////path/to/dockyard.db or "
            "postgresql://user@host:5432/dbname"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    if backend in {"postgresql", "postgres"}:
        return url.set(drivername="postgresql+psycopg")
    raise ConfigurationError(
        f"DOCKYARD_DATABASE_URL uses {backend!r}; dockyard supports sqlite:// and postgresql://"
    )


def libpq_conninfo(text: str) -> str:
    """A PostgreSQL database URL as libpq (psycopg, procrastinate) takes it, password included."""
    return database_url(text).set(drivername="postgresql").render_as_string(hide_password=False)


def load_settings(
    environ: Mapping[str, str] | None = None, *, make_secret_key: bool = True
) -> Settings:
    """Build settings from `DOCKYARD_*` variables, making the embedded defaults as needed.

    In the embedded mode the secret key is read from (or generated into) the data dir;
    commands that need no key pass `make_secret_key=False` and touch nothing on disk.
    """
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {
        name.removeprefix(ENV_PREFIX).lower(): value
        for name, value in env.items()
        if name.startswith(ENV_PREFIX) and value != ""
    }
    known = set(Settings.model_fields) - {"environ"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown setting {ENV_PREFIX}{unknown[0].upper()}: known settings are "
            + ", ".join(f"{ENV_PREFIX}{name.upper()}" for name in sorted(known))
        )
    data_dir = Path(str(values.get("data_dir", DEFAULT_DATA_DIR))).expanduser()
    values["data_dir"] = data_dir
    values.setdefault("database_url", f"sqlite:///{data_dir / 'dockyard.db'}")
    if "secret_key" not in values and make_secret_key:
        if database_url(str(values["database_url"])).get_backend_name() != "sqlite":
            raise ConfigurationError(
                "DOCKYARD_SECRET_KEY must be set when the database is PostgreSQL: every web and "
                "worker process needs the same key"
            )
        values["secret_key"] = _embedded_secret_key(data_dir)
    try:
        return Settings.model_validate({**values, "environ": env})
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a rule across settings: its message names them
            raise ConfigurationError(message) from None
        field = str(first["loc"][0])
        if first["type"] != "value_error" and field != "secret_key":
            message += f" (got {first['input']!r})"
        raise ConfigurationError(f"{ENV_PREFIX}{field.upper()}: {message}") from None


def read_toml_file(path: Path, *, what: str, variable: str) -> dict[str, object]:
    """A TOML file an operator wrote (the registries file, the providers file), or a
    `ConfigurationError` naming it and what is wrong."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(
            f"{what} {path} ({variable}) cannot be read: {error.strerror or error}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what} {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{what} {path} is not valid TOML: {error}") from None


def _embedded_secret_key(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    try:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
    except OSError as error:
        raise ConfigurationError(
            f"cannot keep the secret key in {path} ({error.strerror}): make DOCKYARD_DATA_DIR "
            "writable or set DOCKYARD_SECRET_KEY"
        ) from None
    return key
