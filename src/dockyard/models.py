"""Imports every model module so that `Base.metadata` knows the whole schema."""

from dockyard.access.models import (
    AccessEvent,
    AccessRequest,
    GrantToken,
    Notification,
    OutboxEmail,
    RegistryRequest,
)
from dockyard.accounts.models import (
    ApiToken,
    SignInAttempt,
    SignInFailure,
    User,
    UserIdentity,
    WebSession,
)
from dockyard.catalog.models import (
    CatalogState,
    DigestChange,
    Tool,
    ToolCredential,
    ToolMaintainer,
    ToolVersion,
    VersionFile,
    VersionImage,
)
from dockyard.refresh.models import RefreshRun
from dockyard.workflows.models import (
    Workflow,
    WorkflowFile,
    WorkflowImage,
    WorkflowMaintainer,
    WorkflowVersion,
)

__all__ = [
    "AccessEvent",
    "AccessRequest",
    "ApiToken",
    "CatalogState",
    "DigestChange",
    "GrantToken",
    "Notification",
    "OutboxEmail",
    "RefreshRun",
    "RegistryRequest",
    "SignInAttempt",
    "SignInFailure",
    "Tool",
    "ToolCredential",
    "ToolMaintainer",
    "ToolVersion",
    "User",
    "UserIdentity",
    "VersionFile",
    "VersionImage",
    "WebSession",
    "Workflow",
    "WorkflowFile",
    "WorkflowImage",
    "WorkflowMaintainer",
    "WorkflowVersion",
]
