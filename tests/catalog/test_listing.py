from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.catalog import contents, listing, services
from dockyard.catalog.listing import ToolQuery
from dockyard.errors import InvalidInput
from tests.support.catalog import CATALOG, published, register
from tests.support.descriptors import CWL


def test_search_matches_word_prefixes_across_path_registry_and_description(
    session: Session, ada: User
) -> None:
    published(
        session, ada, "quay.io/biocontainers/samtools", description="Reading and writing SAM files"
    )
    published(session, ada, "quay.io/biocontainers/bwa", description="Burrows-Wheeler aligner")
    published(session, ada, "ghcr.io/nf-core/rnaseq", description="RNA sequencing pipeline")

    def found(q: str) -> list[str]:
        return [t.name for t in listing.find_tools(session, None, ToolQuery(q=q)).items]

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
    services.update_tool(session, CATALOG, ada, tool.id, description="brand new phrasing")
    assert listing.find_tools(session, None, ToolQuery(q="phrasing")).total == 1
    assert listing.find_tools(session, None, ToolQuery(q="old")).total == 0


def test_filters_combine_and_pages_count_everything(
    session: Session, ada: User, grace: User
) -> None:
    for n in range(5):
        tool = published(session, ada, f"quay.io/ns/tool{n}")
        contents.replace_files(session, ada, tool.id, "1.0", CWL)
    published(session, grace, "ghcr.io/ns/other", private=True, maintainer_email="g@example.org")
    register(session, grace, "ghcr.io/ns/draft")

    def query(caller: User | None = None, **kwargs: object) -> tuple[int, list[str]]:
        page = listing.find_tools(session, caller, ToolQuery(**kwargs))  # type: ignore[arg-type]
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
        listing.find_tools(session, None, ToolQuery(sort="size"))
    with pytest.raises(InvalidInput, match="descriptor_type must be one of"):
        listing.find_tools(session, None, ToolQuery(descriptor_type="YAML"))
    with pytest.raises(InvalidInput, match="needs a signed-in caller"):
        listing.find_tools(session, None, ToolQuery(mine=True))


@pytest.mark.parametrize("sort", ["name", "-name", "updated", "created"])
def test_searches_with_many_matches_count_up_to_a_cap_and_still_page_in_order(
    session: Session, ada: User, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    monkeypatch.setattr(listing, "SEARCH_COUNT_LIMIT", 2)
    for n in range(6):
        published(session, ada, f"quay.io/dense/tool{n}")
    page = listing.find_tools(session, None, ToolQuery(q="dense", limit=2, sort=sort))
    assert (page.total, page.total_exact) == (2, False)
    everything = listing.find_tools(session, None, ToolQuery(limit=6, sort=sort))
    assert everything.total_exact
    assert [t.name for t in page.items] == [t.name for t in everything.items][:2]
    second = listing.find_tools(session, None, ToolQuery(q="dense", limit=2, offset=2, sort=sort))
    assert [t.name for t in second.items] == [t.name for t in everything.items][2:4]
    assert second.total == 4
