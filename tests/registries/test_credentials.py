"""Registry credentials: sealing, choosing whose credentials to use, ECR tokens (moto)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dockyard.errors import ConfigurationError, RegistryAuthFailed
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog
from dockyard.registries.credentials import (
    CredentialResolver,
    SecretBox,
    StoredCredential,
    boto3_ecr_client,
)
from dockyard.registries.repository import Credentials

CATALOG = Catalog(BUILTIN_REGISTRIES)
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_sealed_secrets_open_only_with_the_same_key() -> None:
    box = SecretBox("k" * 40)
    sealed = box.seal("hunter2")
    assert "hunter2" not in sealed
    assert box.open(sealed) == "hunter2"
    with pytest.raises(ConfigurationError, match="DOCKYARD_SECRET_KEY changed"):
        SecretBox("j" * 40).open(sealed)


def resolve(
    resolver: CredentialResolver,
    registry_id: str,
    host: str,
    stored: StoredCredential | None = None,
) -> Credentials | None:
    return asyncio.run(resolver.for_tool(CATALOG.get(registry_id), host, stored))


def test_maintainer_credentials_come_before_the_operators() -> None:
    box = SecretBox("k" * 40)
    import dataclasses

    quay = dataclasses.replace(CATALOG.get("quay"), username="operator", password_env="QUAY_PW")
    resolver = CredentialResolver(environ={"QUAY_PW": "op-secret"}, box=box)
    mine = StoredCredential("basic", "maintainer", box.seal("m-secret"))
    assert asyncio.run(resolver.for_tool(quay, "quay.io", mine)) == Credentials(
        "maintainer", "m-secret"
    )
    assert asyncio.run(resolver.for_tool(quay, "quay.io", None)) == Credentials(
        "operator", "op-secret"
    )
    assert resolve(resolver, "quay", "quay.io") is None


class TwelveHourTokens:
    """moto's ECR answers with a fixed expiry in 2015; AWS gives twelve hours from now."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_authorization_token(self, **kwargs: Any) -> Any:
        answer = self.client.get_authorization_token(**kwargs)
        answer["authorizationData"][0]["expiresAt"] = datetime.now(UTC) + timedelta(hours=12)
        return answer


def test_ecr_passwords_come_from_get_authorization_token_and_are_cached(aws: Any) -> None:
    calls: list[tuple[str, str | None]] = []

    def factory(region: str, key: str | None, secret: str | None) -> Any:
        calls.append((region, key))
        return TwelveHourTokens(boto3_ecr_client(region, key, secret))

    box = SecretBox("k" * 40)
    resolver = CredentialResolver(environ={}, box=box, ecr_client=factory)
    stored = StoredCredential("aws", "AKIAEXAMPLE", box.seal("secret-key"))
    first = resolve(resolver, "ecr", ECR, stored)
    second = resolve(resolver, "ecr", ECR, stored)
    assert first is not None and first.username == "AWS" and first.password
    assert second == first
    assert calls == [("us-east-1", "AKIAEXAMPLE")]


def test_an_expired_ecr_token_is_not_reused(aws: Any) -> None:
    calls: list[str] = []

    def factory(region: str, key: str | None, secret: str | None) -> Any:
        calls.append(region)
        return boto3_ecr_client(region, key, secret)

    resolver = CredentialResolver(environ={}, box=None, ecr_client=factory)
    resolve(resolver, "ecr", ECR)
    resolve(resolver, "ecr", ECR)
    assert calls == ["us-east-1", "us-east-1"]


def test_ecr_without_aws_credentials_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import NoCredentialsError

    class Refusing:
        def get_authorization_token(self, **kwargs: Any) -> Any:
            raise NoCredentialsError()

    resolver = CredentialResolver(environ={}, box=None, ecr_client=lambda *args: Refusing())
    with pytest.raises(RegistryAuthFailed, match="save AWS credentials for this tool"):
        resolve(resolver, "ecr", ECR)
