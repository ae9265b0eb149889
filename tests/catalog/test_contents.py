"""A tool's versions, their images and files, by hand and as refresh and git sources write them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.accounts.models import User
from dockyard.catalog import contents, services
from dockyard.catalog.contents import ImageSpec
from dockyard.catalog.models import Tool, ToolVersion
from dockyard.errors import Conflict, InvalidInput, NotFound
from tests.support.catalog import CATALOG, DIGEST, published, register
from tests.support.descriptors import CWL


def test_versions_carry_images_and_the_first_becomes_default(session: Session, ada: User) -> None:
    tool = register(session, ada)
    version = contents.add_version(
        session,
        ada,
        tool.id,
        "1.0",
        images=[ImageSpec(digest=DIGEST, os="linux", architecture="amd64", size=1234)],
    )
    contents.add_version(session, ada, tool.id, "2.0")
    assert tool.default_version is version
    assert [(i.digest, i.os, i.architecture, i.size) for i in version.images] == [
        (DIGEST, "linux", "amd64", 1234)
    ]
    with pytest.raises(Conflict, match=r"already has a version '1\.0'"):
        contents.add_version(session, ada, tool.id, "1.0")
    with pytest.raises(InvalidInput, match="sha256:<64 lowercase hex digits>"):
        contents.add_version(session, ada, tool.id, "3.0", images=[ImageSpec(digest="sha256:abc")])


def test_hiding_or_deleting_the_default_version_moves_the_default(
    session: Session, ada: User
) -> None:
    tool = register(session, ada)
    contents.add_version(session, ada, tool.id, "1.0")
    contents.add_version(session, ada, tool.id, "2.0")
    contents.update_version(session, ada, tool.id, "1.0", hidden=True)
    assert tool.default_version is not None and tool.default_version.name == "2.0"
    services.update_tool(session, CATALOG, ada, tool.id, default_version="1.0")
    contents.delete_version(session, ada, tool.id, "1.0")
    assert tool.default_version is not None and tool.default_version.name == "2.0"


def test_hidden_versions_are_seen_only_by_maintainers(
    session: Session, ada: User, grace: User
) -> None:
    tool = published(session, ada)
    contents.add_version(session, ada, tool.id, "beta", hidden=True)
    assert [v.name for v in services.visible_versions(tool, grace)] == ["1.0"]
    assert [v.name for v in services.visible_versions(tool, ada)] == ["1.0", "beta"]
    with pytest.raises(NotFound):
        services.visible_version(tool, None, "beta")


def test_files_are_replaced_whole_and_keep_checksums(session: Session, ada: User) -> None:
    tool = register(session, ada)
    contents.add_version(session, ada, tool.id, "1.0")
    version = contents.replace_files(
        session, ada, tool.id, "1.0", [*CWL, ("Dockerfile", "CONTAINERFILE", None, "FROM ubuntu\n")]
    )
    assert [f.path for f in version.files] == ["Dockerfile", "tool.cwl"]
    assert tool.descriptor_types == ",CWL,"
    version = contents.replace_files(
        session, ada, tool.id, "1.0", [("main.wdl", "PRIMARY_DESCRIPTOR", "WDL", "version 1.0\n")]
    )
    assert [f.path for f in version.files] == ["main.wdl"]
    assert tool.descriptor_types == ",WDL,"
    assert contents.version_file(tool, ada, "1.0", "./main.wdl").content == "version 1.0\n"
    with pytest.raises(NotFound):
        contents.version_file(tool, ada, "1.0", "tool.cwl")


def test_bad_files_leave_the_stored_ones_alone(session: Session, ada: User) -> None:
    tool = register(session, ada)
    contents.add_version(session, ada, tool.id, "1.0")
    contents.replace_files(session, ada, tool.id, "1.0", CWL)
    with pytest.raises(InvalidInput, match="leaves the version"):
        contents.replace_files(
            session, ada, tool.id, "1.0", [("../x.cwl", "PRIMARY_DESCRIPTOR", "CWL", "")]
        )
    assert [f.path for f in tool.versions[0].files] == ["tool.cwl"]


def test_versions_are_changed_in_one_unit_of_work_and_never_for_a_deleted_tool(
    engine: Engine,
) -> None:
    sessions = db.make_sessionmaker(engine)
    with db.unit_of_work(sessions) as setting_up:
        ada = accounts.create_user(setting_up, username="ada", email="ada@example.org")
        tool = register(setting_up, ada)
        for name in ("1.0", "2.0", "3.0"):
            contents.add_version(setting_up, ada, tool.id, name)
        tool_id, path = tool.id, tool.path
    given: list[tuple[str, list[str]]] = []

    def describe(_session: Session, changed: Tool, versions: dict[str, ToolVersion]) -> None:
        given.append((changed.path, sorted(versions)))
        for version in versions.values():
            version.description = "read again"

    assert contents.change_versions(sessions, tool_id, describe, names=["1.0", "3.0", "9.9"])
    assert given == [(path, ["1.0", "3.0"])]
    with db.unit_of_work(sessions, write=False) as reading:
        described = reading.scalars(
            select(ToolVersion.name).where(ToolVersion.description == "read again")
        ).all()
    assert sorted(described) == ["1.0", "3.0"]

    with db.unit_of_work(sessions) as deleting:
        admin = accounts.create_user(
            deleting, username="root", email="r@example.org", is_admin=True
        )
        services.delete_tool(deleting, admin, tool_id)
    assert not contents.change_versions(sessions, tool_id, describe)
    assert len(given) == 1
