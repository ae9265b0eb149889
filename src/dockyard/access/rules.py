"""Pure rules of the access workflow: registry identities, ECR policies, instructions.

No framework or database imports: these are the facts that the services, the API, the CLI
and the web UI share, and the tests check exhaustively.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidInput
from dockyard.registries.ecr import EcrHost, parse_ecr_host
from dockyard.registries.reference import parse_reference
from dockyard.registries.services import pull_commands

MESSAGE_MAX_LENGTH = 2000
REASON_MAX_LENGTH = 2000
#: Access requests one user may make in `REQUEST_WINDOW_SECONDS`.
REQUESTS_PER_WINDOW = 10
REQUEST_WINDOW_SECONDS = 3600
#: Exactly the actions a cross-account pull needs (ECR user guide, repository policies).
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):iam::(\d{12}):"
    r"(root|(?:user|role)/[\w+=,.@/-]{1,512})"
)
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,252}\.[A-Za-z]{2,63}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class IdentityRule:
    """What a registry calls its users, and the pattern their names follow."""

    label: str
    pattern: str
    explanation: str
    lowercase: bool = False


IDENTITY_RULES: dict[str, IdentityRule] = {
    "dockerhub": IdentityRule(
        "Docker Hub username",
        r"[a-z0-9]{4,30}",
        "Docker Hub usernames are 4 to 30 lowercase letters and digits",
        lowercase=True,
    ),
    "quay": IdentityRule(
        "Quay.io username or robot account",
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\+[a-z][a-z0-9_]{1,254})?",
        "Quay.io usernames are lowercase letters and digits, separated by single '.', '_' or "
        "'-'; robot accounts are written namespace+name",
        lowercase=True,
    ),
    "gitlab": IdentityRule(
        "GitLab username",
        r"(?!.*\.(?:git|atom)$)[A-Za-z0-9_.][A-Za-z0-9_.-]{0,253}[A-Za-z0-9_-]",
        "GitLab usernames are 2 to 255 letters, digits, '_', '-' and '.', start with a "
        "letter, digit, '_' or '.', and do not end in '.', '.git' or '.atom'",
    ),
    "ghcr": IdentityRule(
        "GitHub username",
        r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}",
        "GitHub usernames are 1 to 39 letters, digits and single hyphens, and do not start "
        "or end with a hyphen",
    ),
    "ecr": IdentityRule(
        "AWS account id or IAM principal ARN",
        r"\d{12}|" + _ARN.pattern,
        "give a 12-digit AWS account id (123456789012) or an IAM principal ARN "
        "(arn:aws:iam::123456789012:role/name)",
    ),
    "gar": IdentityRule(
        "Google account or service account email",
        _EMAIL.pattern,
        "give the email of a Google account or service account",
        lowercase=True,
    ),
    "acr": IdentityRule(
        "Microsoft Entra user (email) or service principal id",
        _EMAIL.pattern + "|" + _GUID.pattern,
        "give a Microsoft Entra user's email or a service principal's application id (a GUID)",
    ),
}
_ANY_USERNAME = r"[^\s\x00-\x1f\x7f]{1,255}"


def identity_rule(registry_id: str, registry_name: str) -> IdentityRule:
    """The identity rule of a registry; registries without their own take any username."""
    return IDENTITY_RULES.get(
        registry_id,
        IdentityRule(
            f"username in {registry_name}",
            _ANY_USERNAME,
            "give your username in that registry: 1 to 255 characters without spaces",
        ),
    )


def check_identity(registry_id: str, registry_name: str, identity: str, host: str = "") -> str:
    """The requester's identity in the registry, normalized, or say what to change."""
    rule = identity_rule(registry_id, registry_name)
    value = identity.strip()
    if rule.lowercase:
        value = value.lower()
    if not value:
        raise InvalidInput(f"give your {rule.label}")
    if re.fullmatch(rule.pattern, value) is None:
        raise InvalidInput(f"{identity.strip()!r} is not a valid {rule.label}: {rule.explanation}")
    if registry_id == "ecr" and host:
        principal_arn(value, parse_ecr_host(host))
    return value


def check_text(text: str, what: str, limit: int) -> str:
    """A free-text field within its length limit."""
    if len(text) > limit:
        raise InvalidInput(
            f"the {what} has {len(text):,} characters; at most {limit:,} are allowed"
        )
    return text.strip()


# --- Amazon ECR repository policies ---------------------------------------------------------


def principal_arn(identity: str, ecr: EcrHost) -> str:
    """The IAM principal a requester's identity names, in the registry's partition."""
    if identity.isdigit():
        return f"arn:{ecr.partition}:iam::{identity}:root"
    match = _ARN.fullmatch(identity)
    if match is None:
        raise InvalidInput(f"{identity!r} is neither a 12-digit AWS account id nor an IAM ARN")
    if match.group(1) != ecr.partition:
        raise InvalidInput(
            f"{identity} is in the {match.group(1)} partition but the registry "
            f"{ecr.host} is in {ecr.partition}: give a principal of the {ecr.partition} partition"
        )
    return identity


def statement_id(principal: str) -> str:
    """A stable Sid for dockyard's statement about one principal (letters and digits)."""
    return "DockyardPull" + hashlib.sha256(principal.encode()).hexdigest()[:16]


def pull_statement(principal: str) -> dict[str, Any]:
    """The repository policy statement that lets `principal` pull, and nothing more."""
    return {
        "Sid": statement_id(principal),
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": list(ECR_PULL_ACTIONS),
    }


def policy_with(policy_text: str | None, statement: dict[str, Any]) -> str:
    """The policy with `statement` added, or replacing dockyard's earlier one for that Sid."""
    policy = _parse_policy(policy_text)
    kept = [s for s in policy["Statement"] if s.get("Sid") != statement["Sid"]]
    policy["Statement"] = [*kept, statement]
    return json.dumps(policy, indent=2)


def policy_without(policy_text: str | None, sid: str) -> str | None:
    """The policy without the statement `sid`; None when no statement is left."""
    policy = _parse_policy(policy_text)
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
    return json.dumps(policy, indent=2) if policy["Statement"] else None


def _parse_policy(policy_text: str | None) -> dict[str, Any]:
    if not policy_text:
        return {"Version": "2012-10-17", "Statement": []}
    try:
        policy = json.loads(policy_text)
    except json.JSONDecodeError:
        raise InvalidInput("the repository's current policy is not JSON; fix it in ECR") from None
    if not isinstance(policy, dict):
        raise InvalidInput("the repository's current policy is not a JSON object; fix it in ECR")
    statements = policy.get("Statement", [])
    policy["Statement"] = [statements] if isinstance(statements, dict) else list(statements)
    return policy


def set_policy_command(ecr: EcrHost, repository: str, policy_file: str = "policy.json") -> str:
    """The AWS CLI command that applies a policy document to the repository."""
    return (
        f"aws ecr set-repository-policy --region {ecr.region} --registry-id {ecr.registry_id} "
        f"--repository-name {repository} --policy-text file://{policy_file}"
    )


# --- instructions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolImage:
    """What instructions need to know of a tool's image."""

    registry_id: str
    registry_name: str
    host: str
    repository: str


def grant_steps(image: ToolImage, identity: str) -> list[str]:
    """What a maintainer does in the registry to let `identity` pull, step by step."""
    repo, who = image.repository, identity
    if image.registry_id == "dockerhub":
        return [
            f"Sign in at https://hub.docker.com and open the repository {repo}.",
            "For a personal namespace: Settings > Collaborators, add "
            f"{who}. For an organization: add {who} to a team that has Read-only access to "
            f"{repo} (Organizations > Teams > Repository access).",
        ]
    if image.registry_id == "quay":
        return [
            f"Open https://quay.io/repository/{repo}?tab=settings.",
            f"Under 'User and Robot Permissions', add {who} with the role Read.",
            "Or save a Quay API token for this tool (`dockyard access token set`) and "
            "dockyard grants and revokes read access itself.",
        ]
    if image.registry_id == "gitlab":
        return [
            f"Open the GitLab project {repo} and go to Manage > Members.",
            f"Invite {who} with the role Reporter (Reporter and above may pull from the "
            "project's container registry).",
        ]
    if image.registry_id == "ghcr":
        package = repo.split("/", 1)[-1]
        return [
            f"On GitHub, open the package {package} of {repo.split('/')[0]} and go to "
            "Package settings > Manage access.",
            f"Invite {who} with the role Read.",
        ]
    if image.registry_id == "ecr":
        ecr = parse_ecr_host(image.host)
        return [
            "Add the statement shown under `GET /api/tools/{id}/ecr-policy` to the "
            f"repository policy of {repo} (ECR console: Repositories > {repo} > Permissions, "
            "or merge it into the current policy and apply it with "
            f"`{set_policy_command(ecr, repo)}`).",
            "Or save AWS credentials for this tool that may call ecr:GetRepositoryPolicy and "
            "ecr:SetRepositoryPolicy, and dockyard merges and removes the statement itself.",
        ]
    if image.registry_id == "gar":
        location = image.host.removesuffix("-docker.pkg.dev")
        project, _, repository = repo.partition("/")
        return [
            f"gcloud artifacts repositories add-iam-policy-binding {repository.split('/')[0]} "
            f"--project={project} --location={location} --member=user:{who} "
            "--role=roles/artifactregistry.reader",
        ]
    if image.registry_id == "acr":
        name = image.host.split(".", 1)[0]
        return [
            f"az role assignment create --assignee {who} --role AcrPull --scope "
            f"$(az acr show --name {name} --query id --output tsv)",
        ]
    return [
        f"In {image.registry_name} ({image.host}), give {who} permission to pull (read) "
        f"the repository {repo}.",
    ]


def login_commands(image: ToolImage, identity: str | None) -> list[dict[str, str]]:
    """How a user signs in to the registry before pulling, for each client."""
    host = image.host
    user = identity or "<your username>"
    if image.registry_id == "ecr":
        ecr = parse_ecr_host(host)
        return [
            {"tool": "aws", "command": ecr.login_command(), "note": "AWS CLI v2"},
            {
                "tool": "aws",
                "command": ecr.legacy_login_command(),
                "note": "AWS CLI v1 (prints a docker login command to run)",
            },
            {
                "tool": "apptainer",
                "command": f"aws ecr get-login-password --region {ecr.region} | apptainer "
                f"registry login --username AWS --password-stdin docker://{host}",
            },
        ]
    if image.registry_id == "gar":
        return [{"tool": "gcloud", "command": f"gcloud auth configure-docker {host}"}]
    if image.registry_id == "acr":
        return [{"tool": "az", "command": f"az acr login --name {host.split('.', 1)[0]}"}]
    note = {
        "ghcr": "the password is a personal access token with the read:packages scope",
        "gitlab": "the password is a personal access token with the read_registry scope",
    }.get(image.registry_id, "")
    lines = [
        {"tool": "docker", "command": f"docker login --username {user} {host}"},
        {"tool": "podman", "command": f"podman login --username {user} {host}"},
        {
            "tool": "apptainer",
            "command": f"apptainer registry login --username {user} docker://{host}",
        },
    ]
    return [{**line, "note": note} if note else line for line in lines]


def pull_lines(image: ToolImage, tag: str | None, digest: str | None) -> list[dict[str, str]]:
    """docker, podman and apptainer pull lines, pinned by digest when one is known."""
    text = f"{image.host}/{image.repository}"
    if digest:
        text += f"@{digest}"
    elif tag:
        text += f":{tag}"
    return pull_commands(parse_reference(text))
