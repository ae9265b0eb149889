"""Tool services on SQLite and PostgreSQL: registration rules, visibility, versions, search."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dockyard import db
from dockyard.accounts.models import User
from dockyard.api.schemas.tools import ToolOut
from dockyard.catalog import contents, listing, services
from dockyard.catalog.listing import ToolQuery
from dockyard.catalog.models import Tool, ToolMaintainer, ToolVersion
from dockyard.errors import Conflict, InvalidInput, InvalidRegistryPath, NotFound, PermissionDenied
from tests.support.catalog import CATALOG, published, register
from tests.support.seeded import CATALOG as SEEDED
from tests.support.seeded import seed

ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"


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
        services.update_tool(session, CATALOG, ada, tool.id, private=not private)


def test_other_registries_let_a_tool_change_visibility(session: Session, ada: User) -> None:
    tool = register(session, ada, "quay.io/ns/img", maintainer_email="ada@example.org")
    assert services.update_tool(session, CATALOG, ada, tool.id, private=True).private


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
        services.update_tool(session, CATALOG, ada, tool.id, maintainer_email=None)


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
    contents.add_version(session, ada, tool.id, "1.0", hidden=True)
    with pytest.raises(InvalidInput, match="no visible version"):
        services.publish(session, ada, tool.id)
    contents.update_version(session, ada, tool.id, "1.0", hidden=False)
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
        assert listing.find_tools(session, caller, ToolQuery()).total == 0
        assert listing.find_tools(session, caller, ToolQuery(q="samtools")).total == 0
    assert services.visible_tool(session, ada, tool.id) is tool
    assert services.visible_tool(session, admin, tool.id) is tool
    assert listing.find_tools(session, admin, ToolQuery()).total == 1


def test_rule_6_the_last_visible_version_of_a_published_tool_stays(
    session: Session, ada: User
) -> None:
    tool = published(session, ada)
    with pytest.raises(InvalidInput, match="unpublish the tool before you hide it"):
        contents.update_version(session, ada, tool.id, "1.0", hidden=True)
    with pytest.raises(InvalidInput, match="unpublish the tool before you delete it"):
        contents.delete_version(session, ada, tool.id, "1.0")
    services.unpublish(session, ada, tool.id)
    contents.delete_version(session, ada, tool.id, "1.0")
    assert tool.versions == []


def test_rule_7_only_maintainers_change_a_tool(session: Session, ada: User, grace: User) -> None:
    tool = published(session, ada)
    with pytest.raises(PermissionDenied, match="only the maintainers"):
        services.update_tool(session, CATALOG, grace, tool.id, description="mine now")
    with pytest.raises(PermissionDenied):
        contents.add_version(session, grace, tool.id, "2.0")
    with pytest.raises(PermissionDenied):
        services.unpublish(session, grace, tool.id)
    with pytest.raises(PermissionDenied):
        services.delete_tool(session, grace, tool.id)


def test_rule_7_strangers_cannot_even_learn_that_an_unpublished_tool_exists(
    session: Session, ada: User, grace: User
) -> None:
    tool = register(session, ada)
    with pytest.raises(NotFound):
        services.update_tool(session, CATALOG, grace, tool.id, description="x")


def test_admins_moderate_but_do_not_edit(session: Session, ada: User, admin: User) -> None:
    tool = published(session, ada)
    with pytest.raises(PermissionDenied):
        services.update_tool(session, CATALOG, admin, tool.id, description="edited")
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
    services.update_tool(session, CATALOG, grace, tool.id, description="grace can edit")
    services.remove_maintainer(session, grace, tool.id, "ada")
    with pytest.raises(InvalidInput, match="last maintainer"):
        services.remove_maintainer(session, grace, tool.id, "grace")
    with pytest.raises(NotFound):
        services.add_maintainer(session, grace, tool.id, "nobody")


def test_the_visibility_conditions_say_what_can_view_and_visible_versions_say(
    session: Session, ada: User, grace: User, admin: User
) -> None:
    shown = published(session, ada, "quay.io/lab/shown")
    contents.add_version(session, ada, shown.id, "beta", hidden=True)
    draft = register(session, ada, "quay.io/lab/draft")
    contents.add_version(session, ada, draft.id, "1.0")
    contents.add_version(session, ada, draft.id, "beta", hidden=True)
    session.flush()
    tools = [shown, draft]

    for caller in (None, ada, grace, admin):
        seen = set(
            session.scalars(
                select(Tool.id).where(
                    Tool.id.in_([t.id for t in tools]), services.tools_visible_to(caller)
                )
            )
        )
        assert seen == {t.id for t in tools if services.can_view(t, caller)}, caller
        versions = set(
            session.scalars(
                select(ToolVersion.id).where(
                    ToolVersion.tool_id.in_([t.id for t in tools]),
                    services.versions_visible_to(caller),
                )
            )
        )
        assert versions == {v.id for t in tools for v in services.visible_versions(t, caller)}, (
            caller
        )
    assert len(seen) == 2 and len(versions) == 4  # the admin sees everything


def test_a_tools_page_from_rows_shows_each_caller_what_its_object_graph_shows(
    engine: Engine,
) -> None:
    seed(engine)
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        maintainer = session.scalars(
            select(User).join(ToolMaintainer, ToolMaintainer.user_id == User.id).limit(1)
        ).one()
        admin = User(id=10_000, username="root", email="root@example.org", is_admin=True)
        stranger = User(id=10_001, username="eve", email="eve@example.org", is_admin=False)
        tool_ids = list(session.scalars(select(Tool.id)))
        compared = 0
        for caller in (None, maintainer, admin, stranger):
            for tool_id in [*tool_ids, 999_999]:
                try:
                    graph = ToolOut.of(
                        services.visible_tool(session, caller, tool_id), caller, SEEDED
                    )
                except NotFound as missing:
                    with pytest.raises(NotFound, match=str(missing)):
                        services.tool_page(session, caller, tool_id)
                    continue
                rows = ToolOut.of_page(services.tool_page(session, caller, tool_id), caller, SEEDED)
                assert rows == graph, (caller and caller.username, tool_id)
                compared += 1
    assert compared > 2 * len(tool_ids)  # hidden versions, unpublished tools, insiders' fields
