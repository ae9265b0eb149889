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
    Organization,
    OrganizationMember,
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
from dockyard.collections.models import Collection, CollectionEntry
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
    "Collection",
    "CollectionEntry",
    "DigestChange",
    "GrantToken",
    "Notification",
    "Organization",
    "OrganizationMember",
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
