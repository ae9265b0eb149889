"""The one place dockyard's domain errors are mapped to HTTP status codes."""

from __future__ import annotations

from dockyard import errors

#: The one place domain errors are mapped to HTTP status codes.
_STATUS_BY_ERROR: tuple[tuple[type[errors.DockyardError], int], ...] = (
    (errors.InvalidInput, 422),
    (errors.AuthenticationRequired, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.DatabaseUnavailable, 503),
    (errors.ProviderUnavailable, 502),
    (errors.RegistryHostRefused, 422),
    (errors.RegistryRateLimited, 503),
    (errors.RegistryError, 502),
    (errors.ConfigurationError, 500),
)


def status_for(error: errors.DockyardError) -> int:
    """The HTTP status of a domain error."""
    return next((status for kind, status in _STATUS_BY_ERROR if isinstance(error, kind)), 500)
