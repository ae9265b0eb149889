"""Tool uses: counted on descriptor fetches and pull instructions, added in batches."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from dockyard import db
from dockyard.catalog.models import Tool
from dockyard.refresh.usage import UsageCounter
from tests.support.app import MakeUser, bearer

CWL = {
    "path": "t.cwl",
    "file_type": "PRIMARY_DESCRIPTOR",
    "descriptor_type": "CWL",
    "content": "cwlVersion: v1.2\n",
}


def published(client: TestClient, token: str, image: str) -> Any:
    tool = client.post("/api/tools", json={"image": image}, headers=bearer(token)).json()
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"}, headers=bearer(token))
    client.put(
        f"/api/tools/{tool['id']}/versions/1.0/files", json={"files": [CWL]}, headers=bearer(token)
    )
    client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(token))
    return tool


def uses(engine: Engine) -> dict[str, int]:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        return {row.path: row.uses for row in session.execute(select(Tool.path, Tool.uses))}


def test_descriptor_fetches_and_pull_instructions_count_as_uses(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    _, ada = make_user("ada")
    busy = published(client, ada, "quay.io/ns/busy")
    published(client, ada, "quay.io/ns/quiet")
    descriptor = "/ga4gh/trs/v2/tools/quay.io%2Fns%2Fbusy/versions/1.0/CWL/descriptor"
    first = client.get(descriptor)
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(descriptor, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    client.get("/ga4gh/trs/v2/tools/quay.io%2Fns%2Fbusy/versions/1.0/CWL/files")
    client.get(f"/api/tools/{busy['id']}/pull-instructions")
    client.get("/ga4gh/trs/v2/tools/quay.io%2Fns%2Fbusy")  # reading about it is not a use
    context = client.app.state.context  # type: ignore[attr-defined]
    assert context.usage.flush(context.sessions) == 1
    assert uses(engine) == {"quay.io/ns/busy": 4, "quay.io/ns/quiet": 0}
    assert client.get(f"/api/tools/{busy['id']}").json()["uses"] == 4
    listed = client.get("/api/tools", params={"sort": "-uses"}).json()["items"]
    assert [t["path"] for t in listed] == ["quay.io/ns/busy", "quay.io/ns/quiet"]
    home = client.get("/").text
    most_used = home.split('id="most-used"')[1]
    assert most_used.index("quay.io/ns/busy") < most_used.index("quay.io/ns/quiet")


def test_counts_are_added_not_overwritten_and_kept_when_the_database_fails(
    client: TestClient, make_user: MakeUser, engine: Engine, database_url: str
) -> None:
    _, ada = make_user("ada")
    tool = published(client, ada, "quay.io/ns/shared")
    sessions = db.make_sessionmaker(engine)
    one, two = UsageCounter(), UsageCounter()  # two processes
    for _ in range(3):
        one.add(tool["id"])
    two.add(tool["id"])
    one.flush(sessions)
    two.flush(sessions)
    assert uses(engine)["quay.io/ns/shared"] == 4
    broken = db.make_sessionmaker(db.make_engine("sqlite:////nonexistent/dir/x.db"))
    one.add(tool["id"])
    with pytest.raises(OperationalError):
        one.flush(broken)
    assert one.flush(sessions) == 1
    assert uses(engine)["quay.io/ns/shared"] == 5
