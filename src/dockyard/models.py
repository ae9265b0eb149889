"""Imports every model module so that `Base.metadata` knows the whole schema."""

from dockyard.accounts.models import ApiToken, User
from dockyard.tools.models import Tool, ToolMaintainer, ToolVersion, VersionFile, VersionImage

__all__ = [
    "ApiToken",
    "Tool",
    "ToolMaintainer",
    "ToolVersion",
    "User",
    "VersionFile",
    "VersionImage",
]
