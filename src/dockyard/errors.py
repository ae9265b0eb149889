"""Every error dockyard raises on purpose, in one tree.

Services raise these; the HTTP adapter maps them to status codes in exactly one place
(`dockyard.app._STATUS_BY_ERROR`) and the CLI prints their message on one line. Messages are
written for the person who has to fix the input: they say what is wrong and what to change,
and never contain a secret.

    DockyardError
    ├── ConfigurationError          settings, registries file or database URL is unusable
    ├── DatabaseUnavailable         the database did not answer
    ├── InvalidInput                a request is well-formed but its content is not acceptable
    │   ├── InvalidReference        an image reference breaks the distribution/reference grammar
    │   ├── InvalidRegistryPath     a registry path does not fit its registry, or is not wanted
    │   └── UnknownRegistry         a registry id that this instance does not know
    ├── AuthenticationRequired      no credentials, or credentials that are not valid
    │   └── SignInRefused           a sign-in provider's answer that signs nobody in
    ├── PermissionDenied            authenticated, but not allowed to do this
    ├── NotFound                    no such thing, or not visible to the caller
    ├── Conflict                    the change collides with something stored
    ├── RateLimited                 too many attempts; try again later
    ├── ProviderUnavailable         a sign-in provider did not answer, or not with OAuth
    └── RegistryError               a container registry failed or refused (names it)
        ├── RegistryUnavailable     unreachable, timed out, or a server error
        ├── RegistryAuthFailed      credentials missing or refused, or the token server failed
        ├── RegistryRateLimited     429 from the registry, with how long to wait
        ├── RegistryNotFound        no such repository, tag or manifest
        ├── RegistryProtocolError   an answer that breaks the OCI Distribution spec
        ├── UnsupportedManifest     a manifest dockyard cannot read (schema 1)
        └── RegistryHostRefused     a host on a private network, refused to prevent SSRF
"""

from __future__ import annotations


class DockyardError(Exception):
    """Base of all of dockyard's own errors; `code` is a stable machine-readable name."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(DockyardError):
    """The operator's configuration cannot be used; raised at start-up."""

    code = "configuration_error"


class DatabaseUnavailable(DockyardError):
    """The database could not be reached or answered with an error."""

    code = "database_unavailable"


class InvalidInput(DockyardError):
    """The request content is not acceptable; the message says what to change."""

    code = "invalid_input"


class InvalidReference(InvalidInput):
    """An image reference that Docker would refuse; `kind` names the exact problem."""

    code = "invalid_reference"

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class InvalidRegistryPath(InvalidInput):
    """A registry path that does not fit its registry's pattern, or is given where none is taken."""

    code = "invalid_registry_path"


class UnknownRegistry(InvalidInput):
    """A registry id that is neither built in nor defined by the operator."""

    code = "unknown_registry"


class AuthenticationRequired(DockyardError):
    """The caller must authenticate (or its credentials are invalid or revoked)."""

    code = "authentication_required"


class SignInRefused(AuthenticationRequired):
    """A sign-in provider's answer that signs nobody in: forged, replayed, issued for another
    application, or refused by the provider; the message says which."""

    code = "sign_in_refused"


class PermissionDenied(DockyardError):
    """The caller is known but may not do this."""

    code = "permission_denied"


class NotFound(DockyardError):
    """Nothing by that name is visible to the caller."""

    code = "not_found"


class Conflict(DockyardError):
    """The change collides with stored state (a duplicate name, for example)."""

    code = "conflict"


class RateLimited(DockyardError):
    """Too many attempts in a short time."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(DockyardError):
    """A sign-in provider did not answer, or answered with something that is not OAuth."""

    code = "provider_unavailable"


class RegistryError(DockyardError):
    """A container registry failed or refused; the message names registry and repository."""

    code = "registry_error"

    def __init__(
        self, message: str, *, host: str = "", repository: str = "", oci_code: str | None = None
    ) -> None:
        where = f"{host}/{repository}" if repository else host
        super().__init__(f"{where}: {message}" if where else message)
        self.host = host
        self.repository = repository
        self.oci_code = oci_code


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, timed out or answered with a server error."""

    code = "registry_unavailable"


class RegistryAuthFailed(RegistryError):
    """The registry (or its token server) refused or needs credentials."""

    code = "registry_auth_failed"


class RegistryRateLimited(RegistryError):
    """The registry asked to slow down; `retry_after` is in seconds."""

    code = "registry_rate_limited"

    def __init__(self, message: str, *, retry_after: float, **where: str) -> None:
        super().__init__(message, **where)
        self.retry_after = retry_after


class RegistryNotFound(RegistryError):
    """The repository, tag or manifest does not exist (or is not visible with these rights)."""

    code = "registry_not_found"


class RegistryProtocolError(RegistryError):
    """An answer that breaks the OCI Distribution spec (bad JSON, wrong digest, ...)."""

    code = "registry_protocol_error"


class UnsupportedManifest(RegistryError):
    """A manifest format dockyard does not read, such as Docker schema 1."""

    code = "unsupported_manifest"


class RegistryHostRefused(RegistryError):
    """A registry host, redirect or token realm that resolves to a private address."""

    code = "registry_host_refused"


def error_body(code: str, message: str) -> dict[str, object]:
    """The JSON error envelope of the REST API."""
    return {"error": {"code": code, "message": message}}
