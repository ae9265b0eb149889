"""Anonymous reads answered from rows ahead of the app: which requests they take, which they
leave to the app, and that what they send is what the app sends (ETag, 304, HEAD, errors).
The byte-for-byte comparison over every answer shape is `test_golden.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dockyard.app import create_app
from dockyard.catalog.models import Tool
from dockyard.settings import Settings
from dockyard.trs.fast import FastReads
from tests.support.app import TEST_SECRET_KEY, bearer
from tests.support.queries import statements_during
from tests.support.seeded import seed

TRS = "/ga4gh/trs/v2"
SAMTOOLS = f"{TRS}/tools/quay.io%2Fbiocontainers%2Fsamtools"


def _fast(client: TestClient) -> FastReads:
    layer = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, FastReads):
        layer = layer.app
    return layer


@pytest.fixture
def uncached(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
        background_refresh=False,
        trs_cache_mb=0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_anonymous_reads_of_tools_versions_and_pages_are_answered_from_rows(
    uncached: TestClient, engine: Engine
) -> None:
    seed(engine)
    fast = _fast(uncached)
    for path in (
        SAMTOOLS,
        f"{SAMTOOLS}/versions",
        f"{SAMTOOLS}/versions/1.1",
        f"{SAMTOOLS}/versions/quay.io/biocontainers/samtools:1.1",
        f"{TRS}/tools?limit=2&offset=1",
        f"{TRS}/tools",
        f"{TRS}/tools/quay.io%2Flab%2Fdraft",  # unpublished: the same 404 as a missing tool
    ):
        before = fast.answered
        statements = statements_during(engine, lambda p=path: uncached.get(p))  # type: ignore[misc]
        assert fast.answered == before + 1, path
        assert not any("version_files.content" in s for s in statements), path


FILE_READS = [
    f"{SAMTOOLS}/versions/1.0/CWL/descriptor",
    f"{SAMTOOLS}/versions/1.0/PLAIN_CWL/descriptor",
    f"{SAMTOOLS}/versions/1.0/CWL/descriptor/lib/step.cwl",
    f"{SAMTOOLS}/versions/quay.io%2Fbiocontainers%2Fsamtools:1.0/CWL/files",
    f"{SAMTOOLS}/versions/1.0/CWL/tests",
    f"{SAMTOOLS}/versions/1.0/containerfile",
]


def test_descriptors_tests_and_files_are_answered_from_rows_with_the_apps_headers(
    uncached: TestClient, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seed(engine)
    fast = _fast(uncached)
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "app",
        secret_key=SecretStr(TEST_SECRET_KEY),
        background_refresh=False,
        trs_cache_mb=0,
        trs_fast_reads=False,
    )
    with TestClient(create_app(settings)) as app_only:
        for path in FILE_READS:
            before = fast.answered
            mine, theirs = uncached.get(path), app_only.get(path)
            assert fast.answered == before + 1, path
            assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), path
            assert _headers(mine) == _headers(theirs), path
        plain = uncached.get(FILE_READS[0], headers={"Accept": "text/plain"})
        assert plain.headers["content-type"] == "text/plain; charset=utf-8"
        assert plain.text == app_only.get(FILE_READS[1]).text


def _headers(response: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.items() if k not in {"date", "x-request-id"})


def test_descriptor_reads_count_as_uses_of_the_tool(uncached: TestClient, engine: Engine) -> None:
    seed(engine)
    context = uncached.app.state.context  # type: ignore[attr-defined]
    uncached.get(f"{SAMTOOLS}/versions/1.0/CWL/descriptor")
    uncached.get(f"{SAMTOOLS}/versions/1.0/CWL/files")
    uncached.get(f"{SAMTOOLS}/versions/1.0/CWL/tests")  # not a use: nothing to run
    uncached.get(SAMTOOLS)
    assert context.usage.flush(context.sessions) == 1
    with engine.connect() as connection:
        uses = connection.execute(
            select(Tool.uses).where(Tool.path == "quay.io/biocontainers/samtools")
        ).scalar_one()
    assert uses == 2


@pytest.mark.parametrize(
    "path",
    [
        f"{SAMTOOLS}/versions/1.0/CWL/files?format=zip",
        f"{SAMTOOLS}/versions/1.0/NFL/descriptor",  # none: the app words the error
        f"{SAMTOOLS}/versions/1.0/CWL/descriptor/lib/none.cwl",
        f"{SAMTOOLS}/versions/1.0/TEX/descriptor",
        f"{SAMTOOLS}/versions/2.0-beta",  # hidden: the app words the error
        f"{SAMTOOLS}/versions/2.0-beta/CWL/descriptor",
        f"{TRS}/tools?organization=lab",
        f"{TRS}/tools?limit=0",
        f"{TRS}/tools?offset=x",
        f"{TRS}/service-info",
        f"{TRS}/tools/%23workflow%2Flocalhost%2Flab%2Fnone",
    ],
)
def test_everything_else_is_left_to_the_app(
    uncached: TestClient, engine: Engine, path: str
) -> None:
    seed(engine)
    fast = _fast(uncached)
    before = fast.answered
    uncached.get(path)
    assert fast.answered == before


def test_a_caller_with_a_token_is_answered_by_the_app(uncached: TestClient, engine: Engine) -> None:
    token = seed(engine)
    fast = _fast(uncached)
    hidden = uncached.get(f"{SAMTOOLS}/versions/2.0-beta", headers=bearer(token))
    assert hidden.status_code == 200  # a maintainer sees hidden versions
    assert fast.answered == 0


def test_etags_304_head_and_headers_are_the_apps(uncached: TestClient, engine: Engine) -> None:
    seed(engine)
    answer = uncached.get(SAMTOOLS)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["access-control-allow-origin"] == "*"
    etag = answer.headers["etag"]
    again = uncached.get(SAMTOOLS, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    head = uncached.head(SAMTOOLS)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(answer.content))
    page = uncached.get(f"{TRS}/tools?limit=2&offset=2")
    assert page.headers["next_page"].endswith("/tools?offset=4&limit=2")
    assert page.headers["current_offset"] == "2" and page.headers["current_limit"] == "2"
    assert "strict-transport-security" not in page.headers  # plain HTTP: the app's own rules
    assert page.headers["x-content-type-options"] == "nosniff"  # the boundary still wraps it
