"""The operator's registries file (`DOCKYARD_REGISTRIES_FILE`, TOML).

Read once at start-up. Every problem is reported as one `ConfigurationError` line that names
the file, the entry and the field, so an operator can fix it without reading a traceback.
An entry whose id is a built-in registry's gives that registry operator credentials.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dockyard.errors import ConfigurationError
from dockyard.registries.catalog import (
    BUILTIN_REGISTRIES,
    GENERIC_REGISTRY,
    OPERATOR_IN_FLIGHT,
    Catalog,
    PrivateTools,
    Registry,
    Source,
)
from dockyard.registries.reference import DOMAIN_AND_PORT
from dockyard.settings import Settings, read_toml_file

#: The most requests one process may have on the wire to one registry.
MAX_IN_FLIGHT_LIMIT = 256
_ID = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
#: What an entry with a built-in registry's id may set.
_BUILTIN_FIELDS = frozenset({"id", "username", "password_env", "max_in_flight"})


class RegistryEntry(BaseModel):
    """One `[[registry]]` table of the registries file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: Annotated[str, Field(pattern=f"^{_ID}$", max_length=40)]
    name: str | None = None
    host: str | None = None
    host_pattern: str | None = None
    site: str | None = None
    private_only: bool = False
    needs_registry_path: bool = False
    registry_path_example: str | None = None
    insecure: bool = False
    counts_pulls: bool = False
    max_in_flight: Annotated[int | None, Field(ge=1, le=MAX_IN_FLIGHT_LIMIT)] = None
    username: str | None = None
    password_env: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = None
    description: str | None = None

    @field_validator("host")
    @classmethod
    def _host_is_a_registry_host(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(DOMAIN_AND_PORT, value):
            raise ValueError(
                "must be a host name or IP address with an optional :port, without scheme or path"
            )
        return value

    @field_validator("host_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"is not a valid regular expression: {error}") from None
        return value

    @field_validator("site")
    @classmethod
    def _site_is_a_url_template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        unknown = set(re.findall(r"{([^}]*)}", value)) - {"repository", "host"}
        if unknown:
            raise ValueError(
                f"may use only {{repository}} and {{host}}, not {', '.join(sorted(unknown))}"
            )
        return value


def load_catalog(
    path: Path | None,
    *,
    environ: Mapping[str, str],
    generic_enabled: bool = True,
) -> Catalog:
    """The built-in registries plus the operator's, validated; `path` None means none."""
    if path is None:
        return Catalog(BUILTIN_REGISTRIES, generic_enabled=generic_enabled)
    entries = _read_entries(path)
    builtins = {registry.id: registry for registry in BUILTIN_REGISTRIES}
    operator: list[Registry] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries, start=1):
        where = f"{path}: registry #{index}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            where += f" (id {raw['id']!r})"
        entry = _validate_entry(raw, where)
        if entry.id in seen:
            raise ConfigurationError(f"{where}: id {entry.id!r} is defined twice")
        seen.add(entry.id)
        secret_present = _check_credentials(entry, where, environ)
        if entry.id in builtins:
            builtins[entry.id] = _with_credentials(builtins[entry.id], entry, where, secret_present)
            continue
        operator.append(_operator_registry(entry, where))
    _check_no_shadowing(operator, path)
    return Catalog((*operator, *builtins.values()), generic_enabled=generic_enabled)


def _read_entries(path: Path) -> list[object]:
    data = read_toml_file(path, what="registries file", variable="DOCKYARD_REGISTRIES_FILE")
    unknown = sorted(set(data) - {"registry"})
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown top-level key {unknown[0]!r}; define registries as "
            "[[registry]] tables"
        )
    entries = data.get("registry", [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: 'registry' must be an array of tables: use [[registry]]")
    return entries


def _validate_entry(raw: object, where: str) -> RegistryEntry:
    try:
        return RegistryEntry.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "entry"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(RegistryEntry.model_fields)
            message = f"is not a known field (known: {allowed})"
        elif first["type"] == "missing":
            message = "is required"
        elif first["type"] == "string_pattern_mismatch" and field == "id":
            message = "must be lowercase letters, digits and '-' (for example 'lab-registry')"
        raise ConfigurationError(f"{where}: field {field!r} {message}") from None


def _check_credentials(entry: RegistryEntry, where: str, environ: Mapping[str, str]) -> bool:
    if (entry.username is None) != (entry.password_env is None):
        raise ConfigurationError(
            f"{where}: give both 'username' and 'password_env' for operator credentials, or neither"
        )
    if entry.password_env is not None and not environ.get(entry.password_env):
        raise ConfigurationError(
            f"{where}: field 'password_env' names {entry.password_env}, which is not set in "
            "the environment: export it before starting dockyard"
        )
    return entry.password_env is not None


def _with_credentials(
    builtin: Registry, entry: RegistryEntry, where: str, secret_present: bool
) -> Registry:
    given = {name for name in entry.model_fields_set if name not in _BUILTIN_FIELDS}
    if given:
        raise ConfigurationError(
            f"{where}: {entry.id!r} is a built-in registry; an entry with its id may only set "
            f"'username', 'password_env' and 'max_in_flight', not {', '.join(sorted(given))}"
        )
    if not secret_present and entry.max_in_flight is None:
        raise ConfigurationError(
            f"{where}: an entry for the built-in registry {entry.id!r} must give 'username' "
            "and 'password_env', or 'max_in_flight'"
        )
    return dataclasses.replace(
        builtin,
        username=entry.username if secret_present else builtin.username,
        password_env=entry.password_env if secret_present else builtin.password_env,
        max_in_flight=entry.max_in_flight or builtin.max_in_flight,
    )


def _operator_registry(entry: RegistryEntry, where: str) -> Registry:
    if entry.id == GENERIC_REGISTRY.id:
        raise ConfigurationError(
            f"{where}: id 'generic' is reserved for the catch-all registry; choose another id"
        )
    if (entry.host is None) == (entry.host_pattern is None):
        raise ConfigurationError(f"{where}: give exactly one of 'host' and 'host_pattern'")
    if entry.needs_registry_path and entry.host_pattern is None:
        raise ConfigurationError(
            f"{where}: 'needs_registry_path' needs a 'host_pattern' (a single host leaves the "
            "user nothing to supply)"
        )
    if entry.name is None:
        raise ConfigurationError(f"{where}: field 'name' is required")
    return Registry(
        id=entry.id,
        name=entry.name,
        hosts=(entry.host,) if entry.host else (),
        host_pattern=_anchored(entry.host_pattern),
        site=entry.site,
        public=entry.site is not None,
        private_tools=PrivateTools.REQUIRED if entry.private_only else PrivateTools.ALLOWED,
        needs_registry_path=entry.needs_registry_path,
        registry_path_example=entry.registry_path_example,
        registry_path_form=entry.host_pattern if entry.needs_registry_path else None,
        insecure=entry.insecure,
        counts_pulls=entry.counts_pulls,
        max_in_flight=entry.max_in_flight or OPERATOR_IN_FLIGHT,
        source=Source.OPERATOR,
        username=entry.username,
        password_env=entry.password_env,
        description=entry.description or "Defined by this instance's operator.",
    )


def _anchored(pattern: str | None) -> str | None:
    if pattern is None:
        return None
    return pattern if pattern.startswith("^") and pattern.endswith("$") else f"^(?:{pattern})$"


def _check_no_shadowing(operator: list[Registry], path: Path) -> None:
    for registry in operator:
        for builtin in BUILTIN_REGISTRIES:
            clash = next((host for host in registry.hosts if builtin.matches(host)), None)
            if clash is not None:
                raise ConfigurationError(
                    f"{path}: registry {registry.id!r} claims host {clash!r}, which belongs to "
                    f"the built-in registry {builtin.id!r}; to give it credentials use "
                    f'id = "{builtin.id}" with username and password_env'
                )


def catalog_for(settings: Settings) -> Catalog:
    """The catalog the settings describe: built-ins, the operator's file, the catch-all."""
    return load_catalog(
        settings.registries_file,
        environ=settings.environ,
        generic_enabled=settings.allow_generic_registry,
    )
