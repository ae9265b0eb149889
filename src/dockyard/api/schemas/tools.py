"""Shapes of tools, versions, images and files in the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dockyard.accounts.models import User
from dockyard.api.schemas import Overlay
from dockyard.catalog.models import Tool, ToolVersion, VersionFile, VersionImage
from dockyard.catalog.services import (
    ToolPage,
    can_change,
    registry_for,
    visible_versions,
)
from dockyard.registries.catalog import Catalog
from dockyard.sources.rules import source_link


class SourceIn(BaseModel):
    """Where a tool's Dockerfile and descriptors live in git (read by a later refresh)."""

    model_config = ConfigDict(extra="forbid")

    git_url: str = Field(min_length=1, max_length=1000)
    dockerfile_path: str = Field(default="/Dockerfile", max_length=1000)
    descriptor_paths: dict[str, str] = Field(
        default_factory=dict,
        description="descriptor type to path; default /Dockstore.cwl and /Dockstore.wdl",
    )
    reference: str = Field(
        default="{version}",
        max_length=255,
        description="the git reference of each version; {version} is replaced by its name",
    )
    references: dict[str, str] = Field(
        default_factory=dict, description="version name to git reference, where they differ"
    )


class ToolIn(BaseModel):
    """A registration: the image, and what the registry and the rules ask for."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, max_length=600, examples=["quay.io/biocontainers/samtools"])
    registry: str | None = Field(default=None, description="registry id, e.g. 'quay'")
    registry_path: str | None = Field(default=None, description="registry host, where needed")
    toolname: str | None = None
    private: bool = False
    maintainer_email: str | None = None
    description: str = ""
    source: SourceIn | None = None


class ToolPatch(BaseModel):
    """Editable fields of a tool; leave out what should not change."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    maintainer_email: str | None = None
    private: bool | None = None
    default_version: str | None = None
    source: SourceIn | None = None
    tag_pattern: str | None = Field(
        default=None, description="only tags matching this regular expression become versions"
    )
    labels: list[str] | None = Field(
        default=None, description="words to find it by, e.g. ['alignment', 'long-reads']"
    )
    organization: str | None = Field(
        default=None, description="the organization it belongs to (its name); null for none"
    )


class CredentialsIn(BaseModel):
    """Registry credentials for refreshing a private image (write-only)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="basic", description="'basic', or 'aws' for private Amazon ECR")
    username: str = Field(min_length=1, max_length=255, description="or the AWS access key id")
    password: str = Field(min_length=1, max_length=8192, description="or the AWS secret key")


class CredentialsOut(BaseModel):
    """Whether a tool has stored credentials; the secret is never returned."""

    configured: bool
    kind: str | None = None
    username: str | None = None
    updated_at: datetime | None = None


class MaintainerIn(BaseModel):
    """A user to add as a maintainer."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=40)


class ImageModel(BaseModel):
    """One platform image behind a version's tag."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    digest: str
    os: str | None = Field(default=None, max_length=40)
    architecture: str | None = Field(default=None, max_length=40)
    variant: str | None = Field(default=None, max_length=40)
    size: int | None = None
    created: datetime | None = None

    @classmethod
    def of(cls, image: VersionImage) -> ImageModel:
        """The API view of an image."""
        return cls.model_validate(image)


class VersionIn(BaseModel):
    """A version added by hand."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, examples=["1.17--h00cdaf9_0"])
    hidden: bool = False
    description: str = Field(default="", examples=["Adds the --threads option"])
    images: list[ImageModel] = Field(default_factory=list, max_length=64)


class VersionPatch(BaseModel):
    """Editable fields of a version."""

    model_config = ConfigDict(extra="forbid")

    hidden: bool | None = None
    description: str | None = None
    images: list[ImageModel] | None = Field(default=None, max_length=64)


class FileIn(BaseModel):
    """One file of a version, as uploaded."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(examples=["tool.cwl"])
    file_type: str = Field(examples=["PRIMARY_DESCRIPTOR"])
    descriptor_type: str | None = Field(default=None, examples=["CWL"])
    content: str


class FilesIn(BaseModel):
    """The complete new set of a version's files."""

    model_config = ConfigDict(extra="forbid")

    files: list[FileIn]


class FileOut(BaseModel):
    """A file's metadata; its content is at `url`."""

    model_config = ConfigDict(from_attributes=True)

    path: str
    file_type: str
    descriptor_type: str | None
    sha256: str
    size: int
    url: str

    @classmethod
    def of(cls, tool: Tool, version: ToolVersion, file: VersionFile) -> FileOut:
        """The API view of a file."""
        url = f"/api/tools/{tool.id}/versions/{version.name}/files/{file.path}"
        return cls.model_validate(Overlay(file, url=url))


class DigestChangeOut(BaseModel):
    """A digest the tag pointed to before it moved."""

    model_config = ConfigDict(from_attributes=True)

    digest: str
    since: datetime | None
    replaced_at: datetime


class VersionOut(BaseModel):
    """A version with its images, files and what the registry last said of its tag."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    hidden: bool
    description: str
    is_default: bool
    from_registry: bool
    digest: str | None
    media_type: str | None
    digest_changed_at: datetime | None
    pushed_at: datetime | None = None
    checked_at: datetime | None
    problem: str | None
    #: Git-backed versions: the reference and commit the files came from (then read-only).
    source_reference: str | None = None
    source_commit: str | None = None
    source_url: str | None = None
    source_checked_at: datetime | None = None
    source_problem: str | None = None
    digest_history: list[DigestChangeOut]
    images: list[ImageModel]
    files: list[FileOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tool: Tool, version: ToolVersion) -> VersionOut:
        """The API view of a version."""
        source_url = (
            source_link(tool.source["git_url"], version.source_commit)
            if tool.source and version.source_commit
            else None
        )
        return cls.model_validate(
            Overlay(
                version,
                is_default=tool.default_version_id == version.id,
                source_url=source_url,
                files=[FileOut.of(tool, version, file) for file in version.files],
            )
        )


class VersionList(BaseModel):
    """A tool's versions visible to the caller."""

    items: list[VersionOut]
    total: int


class ToolOut(BaseModel):
    """A tool as the caller may see it (maintainer-only fields left out for others)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    path: str
    registry: str
    registry_name: str
    host: str
    repository: str
    toolname: str | None
    namespace: str
    name: str
    image: str
    site_url: str | None
    private: bool
    published: bool
    description: str
    descriptor_types: list[str]
    default_version: str | None
    versions: list[str]
    maintainers: list[str]
    maintainer_email: str | None = None
    source: dict[str, Any] | None = None
    tag_pattern: str | None = None
    refreshed_at: datetime | None = None
    refresh_status: str | None = None
    #: Descriptor fetches over TRS and pull instructions, counted (a few seconds behind).
    uses: int = 0
    #: How many users starred it.
    stars: int = 0
    #: Words its maintainers tag it with.
    labels: list[str] = []
    #: The organization it belongs to (its name), if any.
    organization: str | None = None
    refresh_message: str | None = None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @classmethod
    def of(cls, tool: Tool, user: User | None, catalog: Catalog) -> ToolOut:
        """The API view of a tool for this caller."""
        insider = can_change(tool, user) or (user is not None and user.is_admin)
        default = tool.default_version
        return cls._shown(
            tool,
            catalog,
            insider=insider,
            versions=[version.name for version in visible_versions(tool, user)],
            default=default.name if default and (insider or not default.hidden) else None,
            maintainers=[maintainer.user.username for maintainer in tool.maintainers],
            organization=tool.organization.name if tool.organization else None,
        )

    @classmethod
    def of_page(cls, page: ToolPage, user: User | None, catalog: Catalog) -> ToolOut:
        """The same view from a tool's rows (`catalog.services.tool_page`)."""
        return cls._shown(
            page.tool,
            catalog,
            insider=page.maintained_by(user) or (user is not None and user.is_admin),
            versions=[name for _, name in page.versions],
            default=page.default_version,
            maintainers=[username for _, username in page.maintainers],
            organization=page.tool.organization_name,
        )

    @classmethod
    def _shown(
        cls,
        tool: Any,
        catalog: Catalog,
        *,
        insider: bool,
        versions: list[str],
        default: str | None,
        maintainers: list[str],
        organization: str | None,
    ) -> ToolOut:
        registry = registry_for(catalog, tool.registry_id, tool.host)
        return cls.model_validate(
            Overlay(
                tool,
                registry=registry.id,
                registry_name=registry.name,
                image=f"{tool.host}/{tool.repository}",
                site_url=registry.site_url(tool.host, tool.repository),
                descriptor_types=[kind for kind in tool.descriptor_types.split(",") if kind],
                default_version=default,
                versions=versions,
                maintainers=maintainers,
                labels=[label for label in tool.labels.split(",") if label],
                organization=organization,
                # What only maintainers and admins see.
                maintainer_email=tool.maintainer_email if insider else None,
                source=(
                    tool.source if insider or tool.source is None else _public_source(tool.source)
                ),
                refresh_message=tool.refresh_message if insider else None,
            )
        )


def _public_source(source: dict[str, Any]) -> dict[str, Any]:
    return {
        key: source[key]
        for key in ("git_url", "dockerfile_path", "descriptor_paths", "reference", "references")
        if key in source
    }


class StarOut(BaseModel):
    """A tool's stars after a star or unstar."""

    tool: int
    starred: bool
    stars: int


class ToolList(BaseModel):
    """A page of tools."""

    items: list[ToolOut]
    total: int
    total_exact: bool = True
    limit: int
    offset: int
