"""Imports every model module so that `Base.metadata` knows the whole schema."""

from dockyard.accounts.models import ApiToken, User
from dockyard.tools.models import (
    DigestChange,
    RefreshRun,
    Tool,
    ToolCredential,
    ToolMaintainer,
    ToolVersion,
    VersionFile,
    VersionImage,
)

__all__ = [
    "ApiToken",
    "DigestChange",
    "RefreshRun",
    "Tool",
    "ToolCredential",
    "ToolMaintainer",
    "ToolVersion",
    "User",
    "VersionFile",
    "VersionImage",
]
