"""Tool services on SQLite and PostgreSQL: registration rules, visibility, versions, search."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dockyard.accounts import services as accounts
from dockyard.accounts.models import User
from dockyard.catalog import services
from dockyard.catalog.models import Tool
from dockyard.catalog.services import ImageSpec, Registration, ToolQuery
from dockyard.errors import Conflict, InvalidInput, InvalidRegistryPath, NotFound, PermissionDenied
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from tests.support.descriptors import CWL

catalog = Catalog(BUILTIN_REGISTRIES)
ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"
DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def ada(session: Session) -> User:
    return accounts.create_user(session, username="ada", email="ada@example.org")


@pytest.fixture
def grace(session: Session) -> User:
    return accounts.create_user(session, username="grace", email="grace@example.org")


@pytest.fixture
def admin(session: Session) -> User:
    return accounts.create_user(session, username="root", email="root@example.org", is_admin=True)


def register(
    session: Session, user: User, image: str = "quay.io/biocontainers/samtools", **kwargs: object
) -> Tool:
    return services.register_tool(session, catalog, user, Registration(image=image, **kwargs))  # type: ignore[arg-type]


def published(
    session: Session, user: User, image: str = "quay.io/biocontainers/samtools", **kwargs: object
) -> Tool:
    tool = register(session, user, image, **kwargs)
    services.add_version(session, user, tool.id, "1.0")
    return services.publish(session, user, tool.id)


def test_registration_derives_path_names_and_first_maintainer(session: Session, ada: User) -> None:
    tool = register(session, ada, "quay.io/biocontainers/samtools", description="SAM tools")
    assert (tool.path, tool.registry_id, tool.namespace, tool.name) == (
        "quay.io/biocontainers/samtools",
        "quay",
        "biocontainers",
        "samtools",
    )
    assert [m.user.username for m in tool.maintainers] == ["ada"]
    assert tool.published is False


def test_a_bare_repository_with_a_registry_id_gets_its_host(session: Session, ada: User) -> None:
    assert (
        register(session, ada, "biocontainers/samtools", registry="quay").path
        == "quay.io/biocontainers/samtools"
    )
    assert register(session, ada, "ubuntu").path == "docker.io/library/ubuntu"


def test_registration_takes_a_repository_not_a_tag(session: Session, ada: User) -> None:
    with pytest.raises(InvalidInput, match="without a tag or digest"):
        register(session, ada, "quay.io/biocontainers/samtools:1.17")


@pytest.mark.parametrize(
    ("image", "kwargs"),
    [
        (f"{ECR}/ns/img", {}),
        ("ns/img", {"registry_path": ECR}),
        ("cgc-images.sbgenomics.com/ns/img", {}),
    ],
)
def test_rule_1_private_only_registries_refuse_public_tools(
    session: Session, ada: User, image: str, kwargs: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput, match="private-only"):
        register(session, ada, image, **kwargs)
    tool = register(session, ada, image, private=True, maintainer_email="ada@example.org", **kwargs)
    assert tool.private


def test_rule_2_ecr_public_tools_cannot_be_private(session: Session, ada: User) -> None:
    with pytest.raises(InvalidInput, match="always public"):
        register(
            session, ada, "public.ecr.aws/ns/img", private=True, maintainer_email="ada@example.org"
        )


@pytest.mark.parametrize(
    ("image", "private"), [(f"{ECR}/ns/img", True), ("public.ecr.aws/ns/img", False)]
)
def test_rule_2_ecr_tools_cannot_change_visibility(
    session: Session, ada: User, image: str, private: bool
) -> None:
    tool = register(session, ada, image, private=private, maintainer_email="ada@example.org")
    with pytest.raises(InvalidInput, match="cannot change visibility"):
        services.update_tool(session, catalog, ada, tool.id, private=not private)


def test_other_registries_let_a_tool_change_visibility(session: Session, ada: User) -> None:
    tool = register(session, ada, "quay.io/ns/img", maintainer_email="ada@example.org")
    assert services.update_tool(session, catalog, ada, tool.id, private=True).private


@pytest.mark.parametrize(
    "image",
    ["quay.io/ns/img", "ghcr.io/ns/img", "registry.gitlab.com/g/p", "ubuntu", "registry.lab.org/x"],
)
def test_rule_3_private_tools_need_a_maintainer_email(
    session: Session, ada: User, image: str
) -> None:
    with pytest.raises(InvalidInput, match="needs a maintainer email"):
        register(session, ada, image, private=True)


def test_rule_3_the_email_cannot_be_removed_from_a_private_tool(
    session: Session, ada: User
) -> None:
    tool = register(
        session, ada, "quay.io/ns/img", private=True, maintainer_email="ada@example.org"
    )
    with pytest.raises(InvalidInput, match="needs a maintainer email"):
        services.update_tool(session, catalog, ada, tool.id, maintainer_email=None)


def test_rule_4_a_registry_path_is_refused_where_not_needed(session: Session, ada: User) -> None:
    with pytest.raises(InvalidRegistryPath, match="does not take a registry path"):
        register(session, ada, "ns/img", registry_path="quay.io")


def test_rule_4_a_malformed_ecr_registry_path_is_explained(session: Session, ada: User) -> None:
    with pytest.raises(InvalidRegistryPath, match="12-digit AWS account id"):
        register(
            session,
            ada,
            "ns/img",
            registry_path="1234.dkr.ecr.us-west-2.amazonaws.com",
            private=True,
            maintainer_email="a@b.org",
        )


def test_rule_5_a_path_is_registered_once(session: Session, ada: User, grace: User) -> None:
    register(session, ada, "quay.io/ns/img")
    with pytest.raises(Conflict, match="already registered"):
        register(session, grace, "Quay.io/ns/img")


def test_rule_5_a_toolname_path_cannot_equal_a_deeper_repository(
    session: Session, ada: User
) -> None:
    register(session, ada, "quay.io/ns/img", toolname="x")
    with pytest.raises(Conflict):
        register(session, ada, "quay.io/ns/img/x")


def test_rule_5_a_deeper_repository_blocks_the_same_toolname_path(
    session: Session, ada: User
) -> None:
    register(session, ada, "quay.io/ns/img/x")
    with pytest.raises(Conflict):
        register(session, ada, "quay.io/ns/img", toolname="x")
    assert register(session, ada, "quay.io/ns/img", toolname="y").path == "quay.io/ns/img/y"


def test_rule_5_bad_toolnames_are_refused(session: Session, ada: User) -> None:
    with pytest.raises(InvalidInput, match="toolname '_x' is not allowed"):
        register(session, ada, "quay.io/ns/img", toolname="_x")


def test_rule_6_publishing_needs_a_visible_version(session: Session, ada: User) -> None:
    tool = register(session, ada)
    with pytest.raises(InvalidInput, match="no visible version"):
        services.publish(session, ada, tool.id)
    services.add_version(session, ada, tool.id, "1.0", hidden=True)
    with pytest.raises(InvalidInput, match="no visible version"):
        services.publish(session, ada, tool.id)
    services.update_version(session, ada, tool.id, "1.0", hidden=False)
    assert services.publish(session, ada, tool.id).published


def test_rule_6_unpublished_tools_are_not_found_by_others(
    session: Session, ada: User, grace: User, admin: User
) -> None:
    tool = register(session, ada)
    for caller in (None, grace):
        with pytest.raises(NotFound):
            services.visible_tool(session, caller, tool.id)
        with pytest.raises(NotFound):
            services.tool_by_path(session, caller, tool.path)
        assert services.find_tools(session, caller, ToolQuery()).total == 0
        assert services.find_tools(session, caller, ToolQuery(q="samtools")).total == 0
    assert services.visible_tool(session, ada, tool.id) is tool
    assert services.visible_tool(session, admin, tool.id) is tool
    assert services.find_tools(session, admin, ToolQuery()).total == 1


def test_rule_6_the_last_visible_version_of_a_published_tool_stays(
    session: Session, ada: User
) -> None:
    tool = published(session, ada)
    with pytest.raises(InvalidInput, match="unpublish the tool before you hide it"):
        services.update_version(session, ada, tool.id, "1.0", hidden=True)
    with pytest.raises(InvalidInput, match="unpublish the tool before you delete it"):
        services.delete_version(session, ada, tool.id, "1.0")
    services.unpublish(session, ada, tool.id)
    services.delete_version(session, ada, tool.id, "1.0")
    assert tool.versions == []


def test_rule_7_only_maintainers_change_a_tool(session: Session, ada: User, grace: User) -> None:
    tool = published(session, ada)
    with pytest.raises(PermissionDenied, match="only the maintainers"):
        services.update_tool(session, catalog, grace, tool.id, description="mine now")
    with pytest.raises(PermissionDenied):
        services.add_version(session, grace, tool.id, "2.0")
    with pytest.raises(PermissionDenied):
        services.unpublish(session, grace, tool.id)
    with pytest.raises(PermissionDenied):
        services.delete_tool(session, grace, tool.id)


def test_rule_7_strangers_cannot_even_learn_that_an_unpublished_tool_exists(
    session: Session, ada: User, grace: User
) -> None:
    tool = register(session, ada)
    with pytest.raises(NotFound):
        services.update_tool(session, catalog, grace, tool.id, description="x")


def test_admins_moderate_but_do_not_edit(session: Session, ada: User, admin: User) -> None:
    tool = published(session, ada)
    with pytest.raises(PermissionDenied):
        services.update_tool(session, catalog, admin, tool.id, description="edited")
    assert not services.unpublish(session, admin, tool.id).published
    services.delete_tool(session, admin, tool.id)
    assert session.get(Tool, tool.id) is None


def test_maintainers_add_each_other_but_never_remove_the_last(
    session: Session, ada: User, grace: User
) -> None:
    tool = register(session, ada)
    services.add_maintainer(session, ada, tool.id, "grace")
    services.add_maintainer(session, ada, tool.id, "grace")
    assert [m.user.username for m in tool.maintainers] == ["ada", "grace"]
    services.update_tool(session, catalog, grace, tool.id, description="grace can edit")
    services.remove_maintainer(session, grace, tool.id, "ada")
    with pytest.raises(InvalidInput, match="last maintainer"):
        services.remove_maintainer(session, grace, tool.id, "grace")
    with pytest.raises(NotFound):
        services.add_maintainer(session, grace, tool.id, "nobody")


def test_versions_carry_images_and_the_first_becomes_default(session: Session, ada: User) -> None:
    tool = register(session, ada)
    version = services.add_version(
        session,
        ada,
        tool.id,
        "1.0",
        images=[ImageSpec(digest=DIGEST, os="linux", architecture="amd64", size=1234)],
    )
    services.add_version(session, ada, tool.id, "2.0")
    assert tool.default_version is version
    assert [(i.digest, i.os, i.architecture, i.size) for i in version.images] == [
        (DIGEST, "linux", "amd64", 1234)
    ]
    with pytest.raises(Conflict, match=r"already has a version '1\.0'"):
        services.add_version(session, ada, tool.id, "1.0")
    with pytest.raises(InvalidInput, match="sha256:<64 lowercase hex digits>"):
        services.add_version(session, ada, tool.id, "3.0", images=[ImageSpec(digest="sha256:abc")])


def test_hiding_or_deleting_the_default_version_moves_the_default(
    session: Session, ada: User
) -> None:
    tool = register(session, ada)
    services.add_version(session, ada, tool.id, "1.0")
    services.add_version(session, ada, tool.id, "2.0")
    services.update_version(session, ada, tool.id, "1.0", hidden=True)
    assert tool.default_version is not None and tool.default_version.name == "2.0"
    services.update_tool(session, catalog, ada, tool.id, default_version="1.0")
    services.delete_version(session, ada, tool.id, "1.0")
    assert tool.default_version is not None and tool.default_version.name == "2.0"


def test_hidden_versions_are_seen_only_by_maintainers(
    session: Session, ada: User, grace: User
) -> None:
    tool = published(session, ada)
    services.add_version(session, ada, tool.id, "beta", hidden=True)
    assert [v.name for v in services.visible_versions(tool, grace)] == ["1.0"]
    assert [v.name for v in services.visible_versions(tool, ada)] == ["1.0", "beta"]
    with pytest.raises(NotFound):
        services.visible_version(tool, None, "beta")


def test_files_are_replaced_whole_and_keep_checksums(session: Session, ada: User) -> None:
    tool = register(session, ada)
    services.add_version(session, ada, tool.id, "1.0")
    version = services.replace_files(
        session, ada, tool.id, "1.0", [*CWL, ("Dockerfile", "CONTAINERFILE", None, "FROM ubuntu\n")]
    )
    assert [f.path for f in version.files] == ["Dockerfile", "tool.cwl"]
    assert tool.descriptor_types == ",CWL,"
    version = services.replace_files(
        session, ada, tool.id, "1.0", [("main.wdl", "PRIMARY_DESCRIPTOR", "WDL", "version 1.0\n")]
    )
    assert [f.path for f in version.files] == ["main.wdl"]
    assert tool.descriptor_types == ",WDL,"
    assert services.version_file(tool, ada, "1.0", "./main.wdl").content == "version 1.0\n"
    with pytest.raises(NotFound):
        services.version_file(tool, ada, "1.0", "tool.cwl")


def test_bad_files_leave_the_stored_ones_alone(session: Session, ada: User) -> None:
    tool = register(session, ada)
    services.add_version(session, ada, tool.id, "1.0")
    services.replace_files(session, ada, tool.id, "1.0", CWL)
    with pytest.raises(InvalidInput, match="leaves the version"):
        services.replace_files(
            session, ada, tool.id, "1.0", [("../x.cwl", "PRIMARY_DESCRIPTOR", "CWL", "")]
        )
    assert [f.path for f in tool.versions[0].files] == ["tool.cwl"]


def test_search_matches_word_prefixes_across_path_registry_and_description(
    session: Session, ada: User
) -> None:
    published(
        session, ada, "quay.io/biocontainers/samtools", description="Reading and writing SAM files"
    )
    published(session, ada, "quay.io/biocontainers/bwa", description="Burrows-Wheeler aligner")
    published(session, ada, "ghcr.io/nf-core/rnaseq", description="RNA sequencing pipeline")

    def found(q: str) -> list[str]:
        return [t.name for t in services.find_tools(session, None, ToolQuery(q=q)).items]

    assert found("samtools") == ["samtools"]
    assert found("sam") == ["samtools"]
    assert found("biocontainers") == ["bwa", "samtools"]
    assert found("aligner") == ["bwa"]
    assert found("quay") == ["bwa", "samtools"]
    assert found("github") == ["rnaseq"]
    assert found("nf-core rna") == ["rnaseq"]
    assert found("bio sam") == ["samtools"]
    assert found("nothing-like-this") == []
    assert found("!!!") == ["bwa", "rnaseq", "samtools"]


def test_search_follows_description_changes(session: Session, ada: User) -> None:
    tool = published(session, ada, "quay.io/ns/img", description="old words")
    services.update_tool(session, catalog, ada, tool.id, description="brand new phrasing")
    assert services.find_tools(session, None, ToolQuery(q="phrasing")).total == 1
    assert services.find_tools(session, None, ToolQuery(q="old")).total == 0


def test_filters_combine_and_pages_count_everything(
    session: Session, ada: User, grace: User
) -> None:
    for n in range(5):
        tool = published(session, ada, f"quay.io/ns/tool{n}")
        services.replace_files(session, ada, tool.id, "1.0", CWL)
    published(session, grace, "ghcr.io/ns/other", private=True, maintainer_email="g@example.org")
    register(session, grace, "ghcr.io/ns/draft")

    def query(caller: User | None = None, **kwargs: object) -> tuple[int, list[str]]:
        page = services.find_tools(session, caller, ToolQuery(**kwargs))  # type: ignore[arg-type]
        return page.total, [t.name for t in page.items]

    assert query(limit=2) == (6, ["other", "tool0"])
    assert query(limit=2, offset=4) == (6, ["tool3", "tool4"])
    assert query(registry="quay", descriptor_type="cwl") == (5, [f"tool{n}" for n in range(5)])
    assert query(registry="ghcr") == (1, ["other"])
    assert query(private=True) == (1, ["other"])
    assert query(descriptor_type="WDL") == (0, [])
    assert query(grace, mine=True) == (2, ["draft", "other"])
    assert query(grace, registry="ghcr") == (2, ["draft", "other"])
    assert query(sort="-name", limit=1) == (6, ["tool4"])
    assert query(q="tool", namespace="ns", registry="quay", limit=1) == (5, ["tool0"])


def test_bad_queries_are_explained(session: Session) -> None:
    with pytest.raises(InvalidInput, match="sort must be one of"):
        services.find_tools(session, None, ToolQuery(sort="size"))
    with pytest.raises(InvalidInput, match="descriptor_type must be one of"):
        services.find_tools(session, None, ToolQuery(descriptor_type="YAML"))
    with pytest.raises(InvalidInput, match="needs a signed-in caller"):
        services.find_tools(session, None, ToolQuery(mine=True))


@pytest.mark.parametrize("sort", ["name", "-name", "updated", "created"])
def test_searches_with_many_matches_count_up_to_a_cap_and_still_page_in_order(
    session: Session, ada: User, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    monkeypatch.setattr(services, "SEARCH_COUNT_LIMIT", 2)
    for n in range(6):
        published(session, ada, f"quay.io/dense/tool{n}")
    page = services.find_tools(session, None, ToolQuery(q="dense", limit=2, sort=sort))
    assert (page.total, page.total_exact) == (2, False)
    everything = services.find_tools(session, None, ToolQuery(limit=6, sort=sort))
    assert everything.total_exact
    assert [t.name for t in page.items] == [t.name for t in everything.items][:2]
    second = services.find_tools(session, None, ToolQuery(q="dense", limit=2, offset=2, sort=sort))
    assert [t.name for t in second.items] == [t.name for t in everything.items][2:4]
    assert second.total == 4
