"""Workflow refreshes from the schedulers and from signed git push webhooks: a valid GitHub
signature or GitLab token marks the workflow due and the embedded scheduler refreshes it; a
bad or missing signature is refused (401) and changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from dockyard import db
from dockyard.db.types import utcnow
from dockyard.refresh.tasks import run_embedded_scheduler
from dockyard.refresh.workflows import due_workflow_ids
from dockyard.settings import Settings
from dockyard.workflows.models import Workflow
from tests.support.app import TEST_SECRET_KEY, MakeUser, bearer
from tests.support.catalog import CATALOG
from tests.support.git_repos import Repo
from tests.support.workflows import register_workflow

WDL = """\
version 1.0
task hello {
  command <<< echo hello >>>
  runtime { docker: "ubuntu:22.04" }
}
workflow greet { call hello }
"""


def _registered(client: TestClient, token: str, repo: Repo) -> dict[str, Any]:
    body = {"git_url": repo.url, "descriptor_type": "WDL", "primary_descriptor_path": "/hello.wdl"}
    return dict(register_workflow(client, bearer(token), **body)["items"][0])


def _state(engine: Engine, workflow_id: int) -> Workflow:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        session.expunge(workflow)
        return workflow


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_signed_push_marks_the_workflow_due_and_a_bad_signature_changes_nothing(
    client: TestClient, make_user: MakeUser, engine: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "hello")
    repo.commit({"hello.wdl": WDL})
    _, ada = make_user("ada")
    workflow = _registered(client, ada, repo)
    hook = client.post(f"/api/workflows/{workflow['id']}/webhook", headers=bearer(ada)).json()
    url, secret = hook["url"].removeprefix("http://testserver"), hook["secret"]
    scheduled = _state(engine, workflow["id"]).next_refresh_at
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "lab/hello"}}).encode()

    for headers in (
        {"X-Hub-Signature-256": _signed("not the secret", body), "X-GitHub-Event": "push"},
        {"X-Gitlab-Token": "not the secret", "X-Gitlab-Event": "Push Hook"},
        {"X-GitHub-Event": "push"},
    ):
        refused = client.post(url, content=body, headers=headers)
        assert refused.status_code == 401, refused.text
        assert _state(engine, workflow["id"]).next_refresh_at == scheduled

    ping = client.post(
        url,
        content=b"{}",
        headers={"X-Hub-Signature-256": _signed(secret, b"{}"), "X-GitHub-Event": "ping"},
    )
    assert ping.json()["status"] == "acknowledged"
    assert _state(engine, workflow["id"]).next_refresh_at == scheduled
    other = json.dumps({"repository": {"full_name": "lab/other"}}).encode()
    wrong = client.post(
        url,
        content=other,
        headers={"X-Hub-Signature-256": _signed(secret, other), "X-GitHub-Event": "push"},
    )
    assert wrong.status_code == 422 and "lab/other" in wrong.json()["error"]["message"]

    accepted = client.post(
        url,
        content=body,
        headers={"X-Hub-Signature-256": _signed(secret, body), "X-GitHub-Event": "push"},
    )
    assert accepted.status_code == 202
    assert accepted.json() == {"status": "queued", "workflow": "#workflow/localhost/lab/hello"}
    due = _state(engine, workflow["id"]).next_refresh_at
    assert due is not None and due <= utcnow()
    gitlab = client.post(
        url, content=body, headers={"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}
    )
    assert gitlab.status_code == 202
    assert (
        client.delete(f"/api/workflows/{workflow['id']}/webhook", headers=bearer(ada)).status_code
        == 204
    )
    assert client.post(url, content=body, headers={"X-Gitlab-Token": secret}).status_code == 404


def test_the_embedded_scheduler_refreshes_a_due_workflow_and_reads_the_new_commit(
    client: TestClient, make_user: MakeUser, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "scheduled")
    repo.commit({"hello.wdl": WDL})
    _, ada = make_user("ada")
    workflow = _registered(client, ada, repo)
    pushed = repo.commit({"hello.wdl": WDL.replace("echo hello", "echo again")})
    sessions = db.make_sessionmaker(engine)
    with db.unit_of_work(sessions) as session:
        stored = session.get(Workflow, workflow["id"])
        assert stored is not None
        stored.next_refresh_at = utcnow() - timedelta(seconds=1)
        assert due_workflow_ids(session, utcnow(), 10) == [workflow["id"]]
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
        allow_private_network_registries=True,
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_embedded_scheduler(settings, sessions, CATALOG, stop, poll=0.05)
        )
        for _ in range(200):
            await asyncio.sleep(0.05)
            version = client.get(
                f"/api/workflows/{workflow['id']}/versions/main", headers=bearer(ada)
            ).json()
            if version["commit"] == pushed:
                break
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(scenario())
    version = client.get(
        f"/api/workflows/{workflow['id']}/versions/main", headers=bearer(ada)
    ).json()
    assert version["commit"] == pushed
    state = _state(engine, workflow["id"])
    assert state.refresh_status == "ok"
    assert state.next_refresh_at is not None and state.next_refresh_at > utcnow()
