"""Imports every model module so that `Base.metadata` knows the whole schema."""

from dockyard.accounts.models import ApiToken, User

__all__ = ["ApiToken", "User"]
