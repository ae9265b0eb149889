"""Private ECR hosts: account id, region and partition for every endpoint form."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidRegistryPath
from dockyard.registries.ecr import is_ecr_like, parse_ecr_host


@pytest.mark.parametrize(
    ("host", "registry_id", "region", "partition", "fips", "dual_stack"),
    [
        (
            "312767926603.dkr.ecr.us-west-2.amazonaws.com",
            "312767926603",
            "us-west-2",
            "aws",
            False,
            False,
        ),
        (
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            "123456789012",
            "us-east-1",
            "aws",
            True,
            False,
        ),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "123456789012",
            "cn-north-1",
            "aws-cn",
            False,
            False,
        ),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", "123456789012", "eu-west-1", "aws", False, True),
        (
            "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
            "123456789012",
            "cn-northwest-1",
            "aws-cn",
            False,
            True,
        ),
        (
            "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
            "123456789012",
            "us-gov-west-1",
            "aws-us-gov",
            False,
            False,
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com",
            "123456789012",
            "us-gov-east-1",
            "aws-us-gov",
            True,
            False,
        ),
        (
            "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            "123456789012",
            "eusc-de-east-1",
            "aws-eusc",
            False,
            False,
        ),
        (
            "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            "123456789012",
            "us-isob-east-1",
            "aws-iso-b",
            False,
            False,
        ),
        (
            "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            "123456789012",
            "us-iso-east-1",
            "aws-iso",
            False,
            False,
        ),
        (
            "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            "123456789012",
            "eu-isoe-west-1",
            "aws-iso-e",
            False,
            False,
        ),
        (
            "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            "123456789012",
            "us-isof-south-1",
            "aws-iso-f",
            False,
            False,
        ),
    ],
)
def test_every_private_ecr_host_form_yields_account_and_region(
    host: str, registry_id: str, region: str, partition: str, fips: bool, dual_stack: bool
) -> None:
    ecr = parse_ecr_host(host)
    assert (ecr.registry_id, ecr.region, ecr.partition, ecr.fips, ecr.dual_stack) == (
        registry_id,
        region,
        partition,
        fips,
        dual_stack,
    )


def test_login_commands_fill_in_region_registry_id_and_path() -> None:
    ecr = parse_ecr_host("312767926603.dkr.ecr.us-west-2.amazonaws.com")
    assert ecr.login_command() == (
        "aws ecr get-login-password --region us-west-2 | docker login --username AWS "
        "--password-stdin 312767926603.dkr.ecr.us-west-2.amazonaws.com"
    )
    assert (
        ecr.legacy_login_command()
        == "aws ecr get-login --region us-west-2 --registry-ids 312767926603"
    )


@pytest.mark.parametrize(
    ("host", "says"),
    [
        (
            "31276792660.dkr.ecr.us-west-2.amazonaws.com",
            "12-digit AWS account id, not '31276792660'",
        ),
        ("3127679266034.dkr.ecr.us-west-2.amazonaws.com", "12-digit"),
        ("abcdefghijkl.dkr.ecr.us-west-2.amazonaws.com", "12-digit"),
        ("312767926603.ecr.us-west-2.amazonaws.com", "'.dkr.ecr.'"),
        ("312767926603.dkr.ecr.amazonaws.com", "not an AWS domain"),
        ("312767926603.dkr.ecr.us-west-2.example.com", "'example.com' is not an AWS domain"),
        ("312767926603.dkr.ecr.us-west-2.amazonaws.com:443", "port"),
        ("312767926603.dkr.ecr.", "region is missing"),
    ],
)
def test_malformed_ecr_hosts_are_explained_with_the_expected_form(host: str, says: str) -> None:
    with pytest.raises(InvalidRegistryPath) as caught:
        parse_ecr_host(host)
    assert says in caught.value.message
    assert "<12-digit account id>.dkr.ecr.<region>.amazonaws.com" in caught.value.message
    assert "312767926603.dkr.ecr.us-west-2.amazonaws.com" in caught.value.message


def test_hosts_that_look_meant_for_ecr_are_recognised() -> None:
    assert is_ecr_like("31276792660.dkr.ecr.us-west-2.amazonaws.com")
    assert is_ecr_like("123456789012.DKR.ECR.us-west-2.amazonaws.com")
    assert not is_ecr_like("public.ecr.aws")
    assert not is_ecr_like("quay.io")
