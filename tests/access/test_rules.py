"""Registry identities, ECR policy statements and instructions: pure rules."""

from __future__ import annotations

import json

import pytest

from dockyard.access import rules
from dockyard.errors import InvalidInput
from dockyard.registries.ecr import parse_ecr_host

ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"


@pytest.mark.parametrize(
    ("registry", "given", "stored"),
    [
        ("dockerhub", "Ada1", "ada1"),
        ("quay", "ada_l", "ada_l"),
        ("quay", "biocontainers+robot1", "biocontainers+robot1"),
        ("gitlab", "ada.lovelace", "ada.lovelace"),
        ("ghcr", "Ada-L", "Ada-L"),
        ("ecr", "123456789012", "123456789012"),
        (
            "ecr",
            "arn:aws:iam::123456789012:role/pipeline",
            "arn:aws:iam::123456789012:role/pipeline",
        ),
        ("gar", "Ada@Example.org", "ada@example.org"),
        ("acr", "0a1b2c3d-0000-1111-2222-333344445555", "0a1b2c3d-0000-1111-2222-333344445555"),
        ("lab", "any.name@lab", "any.name@lab"),
    ],
)
def test_identities_are_accepted_and_normalized_per_registry(
    registry: str, given: str, stored: str
) -> None:
    assert rules.check_identity(registry, "Lab", given, ECR if registry == "ecr" else "") == stored


@pytest.mark.parametrize(
    ("registry", "given", "explains"),
    [
        ("dockerhub", "ada", "4 to 30 lowercase letters and digits"),
        ("dockerhub", "ada_lovelace", "4 to 30"),
        ("ghcr", "-ada", "do not start or end with a hyphen"),
        ("ghcr", "a" * 40, "1 to 39"),
        ("gitlab", "ada.git", "'.git'"),
        ("ecr", "12345", "12-digit AWS account id"),
        ("ecr", "arn:aws:iam::123456789012:group/devs", "IAM principal ARN"),
        ("ecr", "arn:aws-cn:iam::123456789012:root", "partition"),
        ("lab", "two words", "without spaces"),
        ("quay", "", "give your Quay.io username"),
    ],
)
def test_bad_identities_are_refused_with_what_to_change(
    registry: str, given: str, explains: str
) -> None:
    with pytest.raises(InvalidInput, match=explains):
        rules.check_identity(registry, "Lab", given, ECR if registry == "ecr" else "")


def test_an_account_id_becomes_the_root_principal_of_the_registry_partition() -> None:
    china = parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")
    assert rules.principal_arn("210987654321", china) == "arn:aws-cn:iam::210987654321:root"


def test_the_statement_has_exactly_the_three_pull_actions() -> None:
    statement = rules.pull_statement("arn:aws:iam::123456789012:root")
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert sorted(statement["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert statement["Sid"].isalnum()


def test_merging_keeps_other_statements_and_is_idempotent() -> None:
    other = {"Sid": "Ci", "Effect": "Allow", "Principal": {"AWS": "x"}, "Action": "ecr:*"}
    current = json.dumps({"Version": "2008-10-17", "Statement": other})
    statement = rules.pull_statement("arn:aws:iam::123456789012:root")
    once = rules.policy_with(current, statement)
    assert rules.policy_with(once, statement) == once
    assert json.loads(once) == {"Version": "2008-10-17", "Statement": [other, statement]}
    removed = rules.policy_without(once, statement["Sid"])
    assert removed is not None
    assert json.loads(removed)["Statement"] == [other]
    assert rules.policy_without(rules.policy_with(None, statement), statement["Sid"]) is None


def test_a_policy_that_is_not_json_is_refused_rather_than_replaced() -> None:
    with pytest.raises(InvalidInput, match="not JSON"):
        rules.policy_with("{broken", rules.pull_statement("arn:aws:iam::123456789012:root"))


def test_ecr_login_lines_fill_in_registry_id_and_region() -> None:
    image = rules.ToolImage("ecr", "Amazon ECR", ECR, "team/tool")
    commands = [line["command"] for line in rules.login_commands(image, "123456789012")]
    assert commands[0] == (
        f"aws ecr get-login-password --region us-west-2 | docker login --username AWS "
        f"--password-stdin {ECR}"
    )
    assert commands[1] == "aws ecr get-login --region us-west-2 --registry-ids 312767926603"


def test_pull_lines_are_pinned_by_digest_when_one_is_known() -> None:
    image = rules.ToolImage("quay", "Quay.io", "quay.io", "ns/tool")
    digest = "sha256:" + "a" * 64
    lines = {line["tool"]: line["command"] for line in rules.pull_lines(image, "1.0", digest)}
    assert lines == {
        "docker": f"docker pull quay.io/ns/tool@{digest}",
        "podman": f"podman pull quay.io/ns/tool@{digest}",
        "apptainer": f"apptainer pull docker://quay.io/ns/tool@{digest}",
    }
    assert rules.pull_lines(image, "1.0", None)[0]["command"] == "docker pull quay.io/ns/tool:1.0"
