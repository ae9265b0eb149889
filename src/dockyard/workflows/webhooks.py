"""Git push webhooks for workflows: GitHub's signed deliveries and GitLab's token.

GitHub signs each delivery's body with the webhook's secret (`X-Hub-Signature-256:
sha256=<HMAC-SHA256>`); GitLab sends the secret itself (`X-Gitlab-Token`). Checking a
signature needs the secret, so it is stored sealed with the instance key, never in clear. A
delivery without a valid signature is refused (401) and changes nothing; one that is valid
marks the workflow due, so a scheduler refreshes it at once. Deliveries about another
repository are refused too: a webhook belongs to one workflow's repository.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.db.types import utcnow
from dockyard.errors import AuthenticationRequired, InvalidInput, NotFound
from dockyard.registries.credentials import SecretBox
from dockyard.workflows.models import Workflow
from dockyard.workflows.services import changeable_workflow, trs_id

#: The events that say the repository changed; others (GitHub's `ping`) are acknowledged.
PUSH_EVENTS = frozenset({"push", "create", "delete", "release", "Push Hook", "Tag Push Hook"})


class BadSignature(AuthenticationRequired):
    """A delivery whose signature (or token) does not match the workflow's secret."""

    code = "bad_signature"


def create_secret(
    session: Session, user: User, workflow_id: int, box: SecretBox
) -> tuple[Workflow, str]:
    """A new webhook secret for the workflow (the old one stops working); shown this once."""
    workflow = changeable_workflow(session, user, workflow_id)
    secret = secrets.token_urlsafe(32)
    workflow.webhook_secret = box.seal(secret)
    session.flush()
    return workflow, secret


def disable(session: Session, user: User, workflow_id: int) -> None:
    """Stop accepting webhooks for the workflow."""
    changeable_workflow(session, user, workflow_id).webhook_secret = None
    session.flush()


def receive(
    session: Session,
    workflow_id: int,
    box: SecretBox,
    body: bytes,
    headers: Mapping[str, str],
    payload: Any,
) -> tuple[Workflow, bool]:
    """Verify a delivery; the workflow, and whether it was marked due (a push) or only
    acknowledged (a ping)."""
    workflow = session.get(Workflow, workflow_id)
    if workflow is None or workflow.webhook_secret is None:
        raise NotFound(f"workflow {workflow_id} accepts no webhooks")
    secret = box.open(workflow.webhook_secret)
    signature = headers.get("x-hub-signature-256")
    token = headers.get("x-gitlab-token")
    if signature is not None:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(signature.strip().lower(), expected)
    elif token is not None:
        valid = hmac.compare_digest(token.encode(), secret.encode())
    else:
        raise BadSignature(
            "the delivery is not signed: give the webhook's secret to GitHub (Secret) or "
            "GitLab (Secret token)"
        )
    if not valid:
        raise BadSignature("the delivery's signature does not match this workflow's secret")
    event = headers.get("x-github-event") or headers.get("x-gitlab-event") or "push"
    if event not in PUSH_EVENTS:
        return workflow, False
    named = repository_named(payload)
    expected_name = f"{workflow.namespace}/{workflow.repository}".lower()
    if named is not None and named.lower() != expected_name:
        raise InvalidInput(
            f"this delivery is about repository {named!r}, but the webhook belongs to "
            f"{trs_id(workflow)}: point that repository's webhook at its own workflow"
        )
    workflow.next_refresh_at = utcnow()
    session.flush()
    return workflow, True


def repository_named(payload: Any) -> str | None:
    """`owner/name` of the repository a GitHub or GitLab delivery is about, if it says."""
    if not isinstance(payload, dict):
        return None
    repository = payload.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
        return str(repository["full_name"])  # GitHub
    project = payload.get("project")
    if isinstance(project, dict) and isinstance(project.get("path_with_namespace"), str):
        return str(project["path_with_namespace"])  # GitLab
    return None
