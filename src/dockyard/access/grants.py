"""Doing the registry part of a decision: ECR repository policies and Quay permissions.

Called between `plan_decision` and `record_decision`, outside any database transaction.
Every failure becomes a `RegistryError` whose message names the registry and repository,
says what to do by hand, and never contains the credential.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from dockyard.access import rules
from dockyard.access.services import RegistryPlan
from dockyard.errors import RegistryAuthFailed, RegistryError, RegistryNotFound
from dockyard.registries.credentials import EcrClientFactory, SecretBox, boto3_ecr_client
from dockyard.registries.ecr import parse_ecr_host

QUAY_TIMEOUT = 20.0


class Granter:
    """Applies and removes pull permissions in registries, through the plan's credential."""

    def __init__(
        self,
        box: SecretBox | None,
        *,
        ecr_client: EcrClientFactory = boto3_ecr_client,
        quay_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._box = box
        self._ecr_client = ecr_client
        self._quay_transport = quay_transport

    def grant(self, plan: RegistryPlan) -> str:
        """Give the requester pull permission; a line for the audit log."""
        if plan.method == "ecr-policy":
            return self._ecr(plan, add=True)
        if plan.method == "quay-api":
            return self._quay(plan, add=True)
        return "manual"

    def revoke(self, plan: RegistryPlan) -> str:
        """Take the permission back; a line for the audit log."""
        if plan.method == "ecr-policy":
            return self._ecr(plan, add=False)
        if plan.method == "quay-api":
            return self._quay(plan, add=False)
        return "manual"

    def _secret(self, plan: RegistryPlan) -> str:
        if self._box is None or plan.sealed_secret is None:
            raise RegistryAuthFailed("no secret key to open the saved credential", host=plan.host)
        return self._box.open(plan.sealed_secret)

    def _ecr(self, plan: RegistryPlan, *, add: bool) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        ecr = parse_ecr_host(plan.host)
        principal = rules.principal_arn(plan.identity, ecr)
        sid = rules.statement_id(principal)
        where = {"host": plan.host, "repository": plan.repository}
        try:
            client = self._ecr_client(ecr.region, plan.username, self._secret(plan))
            try:
                current = client.get_repository_policy(
                    registryId=ecr.registry_id, repositoryName=plan.repository
                )["policyText"]
            except client.exceptions.RepositoryPolicyNotFoundException:
                current = None
            if add:
                updated: str | None = rules.policy_with(current, rules.pull_statement(principal))
            else:
                updated = rules.policy_without(current, sid)
            if updated == current:
                return f"ECR policy already {'had' if add else 'lacked'} {sid} for {principal}"
            if updated is None:
                client.delete_repository_policy(
                    registryId=ecr.registry_id, repositoryName=plan.repository
                )
            else:
                client.set_repository_policy(
                    registryId=ecr.registry_id,
                    repositoryName=plan.repository,
                    policyText=updated,
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            if code == "RepositoryNotFoundException":
                raise RegistryNotFound("no such ECR repository", **where) from None
            raise RegistryAuthFailed(
                f"ECR refused to {'set' if add else 'update'} the repository policy ({code}); "
                "the saved AWS credentials need ecr:GetRepositoryPolicy and "
                "ecr:SetRepositoryPolicy, or apply the statement by hand and decide with "
                "apply=false",
                **where,
            ) from None
        except BotoCoreError as error:
            raise RegistryError(
                f"ECR could not be reached ({type(error).__name__}); try again, or apply the "
                "statement by hand and decide with apply=false",
                **where,
            ) from None
        verb = "added" if add else "removed"
        return f"ECR policy statement {sid} for {principal} {verb}"

    def _quay(self, plan: RegistryPlan, *, add: bool) -> str:
        namespace, _, name = plan.repository.partition("/")
        url = (
            f"https://{plan.host}/api/v1/repository/{quote(namespace)}/{quote(name, safe='')}"
            f"/permissions/user/{quote(plan.identity, safe='+')}"
        )
        where = {"host": plan.host, "repository": plan.repository}
        headers = {"Authorization": f"Bearer {self._secret(plan)}"}
        try:
            with httpx.Client(
                transport=self._quay_transport, timeout=QUAY_TIMEOUT, follow_redirects=False
            ) as client:
                if add:
                    answer = client.put(url, json={"role": "read"}, headers=headers)
                else:
                    answer = client.delete(url, headers=headers)
        except httpx.HTTPError as error:
            raise RegistryError(
                f"Quay could not be reached ({type(error).__name__}); try again, or change the "
                "permission by hand and decide with apply=false",
                **where,
            ) from None
        if answer.status_code in (401, 403):
            raise RegistryAuthFailed(
                f"Quay refused the saved API token ({answer.status_code}); it needs the "
                "'Administer Repositories' scope. Save a new one with `dockyard access token "
                "set`, or change the permission by hand and decide with apply=false",
                **where,
            )
        if answer.status_code == 404:
            raise RegistryNotFound(
                f"Quay knows no repository {plan.repository} or user {plan.identity} "
                f"({_quay_message(answer) or 'not found'})",
                **where,
            )
        if answer.status_code >= 400:
            raise RegistryError(
                f"Quay answered {answer.status_code}: {_quay_message(answer) or 'no detail'}",
                **where,
            )
        return f"Quay read permission for {plan.identity} {'granted' if add else 'removed'}"


def _quay_message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return str(body.get("error_message") or body.get("detail") or body.get("message") or "")[:300]
