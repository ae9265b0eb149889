"""Amazon ECR private registry hosts: what a registry path says about its account and region.

The host regex is amazon-ecr-credential-helper's (`ecr-login/api/client.go`), verbatim; it
covers FIPS endpoints, China, dual-stack (`on.aws`) and the sovereign partitions. Pure
functions only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidRegistryPath

ECR_HOST_PATTERN = (
    r"^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\."
    r"(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov"
    r"|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$"
)
_ecr_host_re = re.compile(ECR_HOST_PATTERN)

#: Hosts that look like they are meant for ECR, so a mistake gets ECR's explanation.
ECR_HOST_FAMILY = r"(?i)^[^/]*\bdkr[.-]ecr\b[^/]*$"

ECR_EXAMPLE = "312767926603.dkr.ecr.us-west-2.amazonaws.com"
ECR_FORM = "<12-digit account id>.dkr.ecr.<region>.amazonaws.com"

_PARTITION_BY_SUFFIX = {
    "amazonaws.com": "aws",
    "amazonaws.com.cn": "aws-cn",
    "amazonaws.eu": "aws-eusc",
    "on.aws": "aws",
    "on.amazonwebservices.com.cn": "aws-cn",
    "sc2s.sgov.gov": "aws-iso-b",
    "c2s.ic.gov": "aws-iso",
    "cloud.adc-e.uk": "aws-iso-e",
    "csp.hci.ic.gov": "aws-iso-f",
}
_DUAL_STACK_SUFFIXES = frozenset({"on.aws", "on.amazonwebservices.com.cn"})


@dataclass(frozen=True, slots=True)
class EcrHost:
    """What a private ECR registry path tells: account, region, partition and endpoint kind."""

    host: str
    registry_id: str
    region: str
    partition: str
    fips: bool
    dual_stack: bool

    def login_command(self) -> str:
        """The AWS CLI v2 login command for this registry."""
        return (
            f"aws ecr get-login-password --region {self.region} | docker login --username AWS "
            f"--password-stdin {self.host}"
        )

    def legacy_login_command(self) -> str:
        """The AWS CLI v1 form that Dockstore's documentation shows."""
        return f"aws ecr get-login --region {self.region} --registry-ids {self.registry_id}"


def parse_ecr_host(host: str) -> EcrHost:
    """Read account id, region and partition from a private ECR host, or say what is wrong."""
    match = _ecr_host_re.fullmatch(host)
    if match is None:
        raise InvalidRegistryPath(_explain(host))
    registry_id, fips, region, suffix = match.groups()
    partition = _PARTITION_BY_SUFFIX[suffix]
    if partition == "aws" and region.startswith("us-gov-"):
        partition = "aws-us-gov"
    return EcrHost(
        host=host,
        registry_id=registry_id,
        region=region,
        partition=partition,
        fips=fips is not None,
        dual_stack=suffix in _DUAL_STACK_SUFFIXES,
    )


def is_ecr_like(host: str) -> bool:
    """True when a host looks meant for private ECR, whether or not it is well-formed."""
    return re.match(ECR_HOST_FAMILY, host) is not None


def _explain(host: str) -> str:
    account, _, rest = host.partition(".")
    if ":" in host:
        problem = "it must not carry a port"
    elif not re.fullmatch(r"\d{12}", account):
        problem = f"it must start with the 12-digit AWS account id, not {account!r}"
    elif not re.match(r"dkr[.-]ecr(-fips)?\.", rest):
        problem = "the account id must be followed by '.dkr.ecr.' (or '.dkr-ecr.' for dual-stack)"
    else:
        region_and_suffix = re.sub(r"^dkr[.-]ecr(-fips)?\.", "", rest)
        region, _, suffix = region_and_suffix.partition(".")
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-_]*", region) or not suffix:
            problem = "the region is missing after 'dkr.ecr.'"
        else:
            problem = (
                f"{suffix!r} is not an AWS domain; expected amazonaws.com, amazonaws.com.cn, "
                "amazonaws.eu, on.aws or a sovereign-partition domain"
            )
    return (
        f"{host!r} is not a valid Amazon ECR registry path: {problem}. Expected {ECR_FORM}, "
        f"for example {ECR_EXAMPLE}"
    )
