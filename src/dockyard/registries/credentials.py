"""Registry credentials: operator credentials per registry, maintainer credentials per tool.

Maintainer secrets are encrypted at rest with a key derived from `DOCKYARD_SECRET_KEY`
(HKDF-SHA256, then Fernet). For private ECR, a password is obtained from
`ecr:GetAuthorizationToken` with the maintainer's AWS keys (or the operator's default AWS
credentials) and cached until shortly before it expires. Secrets never appear in messages.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dockyard.errors import ConfigurationError, RegistryAuthFailed
from dockyard.registries.catalog import Registry
from dockyard.registries.ecr import parse_ecr_host
from dockyard.registries.repository import Credentials

if TYPE_CHECKING:
    from dockyard.settings import Settings

ECR_TOKEN_MARGIN = 300.0


class SecretBox:
    """Encrypts and decrypts stored secrets with a key derived from the instance secret."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"dockyard registry credentials"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, plaintext: str) -> str:
        """The encrypted form of a secret."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """The secret, or `ConfigurationError` when the instance key changed since sealing."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise ConfigurationError(
                "stored registry credentials cannot be decrypted: DOCKYARD_SECRET_KEY changed "
                "since they were saved; the maintainers must enter them again"
            ) from None


def secret_box(settings: Settings) -> SecretBox | None:
    """The box for this instance's secret key; None when it has none."""
    key = settings.secret_key
    return SecretBox(key.get_secret_value()) if key is not None else None


def sealing_box(settings: Settings) -> SecretBox:
    """The box for this instance's key, or `ConfigurationError` when there is no key."""
    box = secret_box(settings)
    if box is None:
        raise ConfigurationError("this server has no secret key to encrypt credentials with")
    return box


@dataclass(frozen=True)
class StoredCredential:
    """A tool's credential row as read from the database (secret still sealed)."""

    kind: str
    username: str
    sealed_secret: str = field(repr=False)


EcrClientFactory = Callable[[str, str | None, str | None], Any]


def boto3_ecr_client(region: str, access_key_id: str | None, secret_access_key: str | None) -> Any:
    """An ECR client; without keys boto3 finds the server's own AWS credentials."""
    import boto3

    return boto3.client(
        "ecr",
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
    )


class CredentialResolver:
    """Chooses the credentials a refresh uses for one tool's registry."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        box: SecretBox | None,
        ecr_client: EcrClientFactory = boto3_ecr_client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._environ = environ
        self._box = box
        self._ecr_client = ecr_client
        self._clock = clock
        self._ecr_tokens: dict[tuple[str, str, str], tuple[Credentials, float]] = {}

    async def for_tool(
        self, registry: Registry, host: str, stored: StoredCredential | None
    ) -> Credentials | None:
        """The maintainer's credentials, else the operator's, else none (anonymous)."""
        if registry.id == "ecr":
            return await self._ecr(host, stored)
        if stored is not None and stored.kind == "basic":
            return Credentials(stored.username, self._open(stored))
        if registry.username and registry.password_env:
            return Credentials(registry.username, self._environ.get(registry.password_env, ""))
        return None

    def _open(self, stored: StoredCredential) -> str:
        if self._box is None:
            raise ConfigurationError("no secret key is configured to decrypt stored credentials")
        return self._box.open(stored.sealed_secret)

    async def _ecr(self, host: str, stored: StoredCredential | None) -> Credentials:
        ecr = parse_ecr_host(host)
        access_key = stored.username if stored is not None and stored.kind == "aws" else None
        secret = self._open(stored) if stored is not None and stored.kind == "aws" else None
        key = (ecr.registry_id, ecr.region, access_key or "")
        cached = self._ecr_tokens.get(key)
        if cached and cached[1] > self._clock():
            return cached[0]
        credentials, expires = await asyncio.to_thread(
            self._ecr_token, ecr.registry_id, ecr.region, access_key, secret, host
        )
        self._ecr_tokens[key] = (credentials, expires - ECR_TOKEN_MARGIN)
        return credentials

    def _ecr_token(
        self,
        registry_id: str,
        region: str,
        access_key: str | None,
        secret: str | None,
        host: str,
    ) -> tuple[Credentials, float]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = self._ecr_client(region, access_key, secret)
            answer = client.get_authorization_token(registryIds=[registry_id])
            data = answer["authorizationData"][0]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise RegistryAuthFailed(
                f"ecr:GetAuthorizationToken was refused ({code}); check the AWS credentials "
                "saved for this tool",
                host=host,
            ) from None
        except (BotoCoreError, KeyError, IndexError) as error:
            raise RegistryAuthFailed(
                f"no ECR authorization token ({type(error).__name__}); save AWS credentials "
                "for this tool or give the server AWS credentials",
                host=host,
            ) from None
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        expires_at = data.get("expiresAt")
        expires = (
            expires_at.timestamp() if hasattr(expires_at, "timestamp") else self._clock() + 3600
        )
        return Credentials(username, password), expires
