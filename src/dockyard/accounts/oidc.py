"""Signing in at a provider: the authorization code flow with PKCE, spoken by Authlib.

For OpenID Connect the provider's discovery document names its endpoints and keys; the
ID token it returns is checked with Authlib's `CodeIDToken` rules (signature by the issuer's
published key, `iss`, `aud` and `azp` for this client, `exp`, `iat`, the `nonce` this sign-in
sent, `at_hash`). GitHub speaks plain OAuth 2: the person is whoever its API says the access
token belongs to.

Nothing here touches the database: `begin` gives the address to send the browser to, and
`finish` turns the provider's answer into an `Identity` (or a `SignInRefused` that says why).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from dockyard.accounts.providers import Identity, Provider
from dockyard.errors import ProviderUnavailable, SignInRefused

log = logging.getLogger("dockyard.signin")

#: Seconds to wait for a provider's answer.
TIMEOUT = 10.0
#: Discovery documents and keys are read again after this many seconds.
METADATA_TTL = 3600.0
#: Clock difference allowed between dockyard and the provider, in seconds.
LEEWAY = 120


class SignInClient:
    """Talks to the configured providers; keeps their discovery documents and keys a while.
    One per process, shared by the request threads."""

    def __init__(self, *, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def check(self, provider: Provider) -> None:
        """`ProviderUnavailable` unless the provider answers as configured (its discovery
        document and keys for OpenID Connect; its site for GitHub)."""
        if provider.kind == "github":
            self._reachable(provider, f"{provider.issuer}/login/oauth/authorize")
            return
        metadata = self._discovered(provider, fresh=True)
        self._key_set(provider, metadata, fresh=True)

    def begin(
        self, provider: Provider, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """The provider's authorization address for this sign-in (with `state`, `nonce` and
        an S256 `code_challenge`)."""
        with self._session(provider, redirect_uri) as oauth:
            if provider.kind == "github":
                url, _ = oauth.create_authorization_url(
                    f"{provider.issuer}/login/oauth/authorize",
                    state=state,
                    code_verifier=code_verifier,
                    allow_signup="false",
                )
                return str(url)
            endpoint = self._discovered(provider)["authorization_endpoint"]
            url, _ = oauth.create_authorization_url(
                endpoint, state=state, nonce=nonce, code_verifier=code_verifier
            )
            return str(url)

    def finish(
        self,
        provider: Provider,
        *,
        redirect_uri: str,
        code: str,
        code_verifier: str,
        nonce: str,
        issuer_parameter: str | None,
    ) -> Identity:
        """The identity an authorization code stands for, checked every way the protocol
        allows; `SignInRefused` or `ProviderUnavailable` otherwise."""
        if provider.kind == "github":
            return self._finish_github(provider, redirect_uri, code, code_verifier)
        metadata = self._discovered(provider)
        # RFC 9207: a provider that names itself in its answer must name the one asked.
        if issuer_parameter is not None and issuer_parameter != metadata["issuer"]:
            raise SignInRefused(
                f"the answer came from {issuer_parameter!r}, not {provider.display_name}: "
                "sign in again"
            )
        with self._session(provider, redirect_uri) as oauth:
            token = self._exchange(provider, oauth, metadata["token_endpoint"], code, code_verifier)
            if "id_token" not in token:
                raise SignInRefused(
                    f"{provider.display_name} sent no ID token: is the client configured for "
                    "OpenID Connect, with the openid scope?"
                )
            claims = self._checked_claims(provider, metadata, token, nonce)
            extra: dict[str, Any] = {}
            wanted = {"email", "preferred_username", "name"}
            if not wanted <= set(claims) and metadata.get("userinfo_endpoint"):
                extra = self._userinfo(provider, oauth, metadata["userinfo_endpoint"], claims)
        seen = {**extra, **claims}
        email = seen.get("email") if seen.get("email_verified") is True else None
        return Identity(
            issuer=metadata["issuer"],
            subject=str(claims["sub"]),
            username_hint=_text(seen.get("preferred_username") or seen.get("nickname"))
            or (email.split("@")[0] if isinstance(email, str) else None),
            name=_text(seen.get("name"))
            or _text(" ".join(str(seen.get(k, "")) for k in ("given_name", "family_name"))),
            email=_text(email),
        )

    # --- OpenID Connect ------------------------------------------------------------------

    def _discovered(self, provider: Provider, *, fresh: bool = False) -> dict[str, Any]:
        with self._lock:
            cached = self._metadata.get(provider.issuer)
        if not fresh and cached is not None and time.monotonic() - cached[0] < METADATA_TTL:
            return cached[1]
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(provider, url, what="discovery document")
        if not isinstance(document, dict) or document.get("issuer") != provider.issuer:
            raise ProviderUnavailable(
                f"{provider.display_name}'s discovery document at {url} names the issuer "
                f"{document.get('issuer') if isinstance(document, dict) else None!r}, not "
                f"{provider.issuer!r}: set the issuer exactly as the provider spells it"
            )
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(needed), str):
                raise ProviderUnavailable(
                    f"{provider.display_name}'s discovery document has no {needed}"
                )
        with self._lock:
            self._metadata[provider.issuer] = (time.monotonic(), document)
        return document

    def _key_set(self, provider: Provider, metadata: dict[str, Any], *, fresh: bool) -> KeySet:
        uri = metadata["jwks_uri"]
        with self._lock:
            cached = self._keys.get(uri)
        if not fresh and cached is not None and time.monotonic() - cached[0] < METADATA_TTL:
            return cached[1]
        document = self._get_json(provider, uri, what="signing keys")
        try:
            keys = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError):
            raise ProviderUnavailable(
                f"{provider.display_name}'s signing keys at {uri} are not a JSON Web Key Set"
            ) from None
        with self._lock:
            self._keys[uri] = (time.monotonic(), keys)
        return keys

    def _checked_claims(
        self, provider: Provider, metadata: dict[str, Any], token: dict[str, Any], nonce: str
    ) -> CodeIDToken:
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
        try:
            try:
                decoded = jwt.decode(
                    token["id_token"],
                    self._key_set(provider, metadata, fresh=False),
                    registry=registry,
                )
            except InvalidKeyIdError:  # the provider rotated its keys since they were read
                decoded = jwt.decode(
                    token["id_token"],
                    self._key_set(provider, metadata, fresh=True),
                    registry=registry,
                )
        except JoseError as error:
            raise SignInRefused(
                f"the ID token from {provider.display_name} is not signed by it "
                f"({error.error}): sign in again"
            ) from None
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "values": [provider.client_id]},
                "sub": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": provider.client_id,
                "access_token": token.get("access_token"),
            },
        )
        try:
            claims.validate(leeway=LEEWAY)
        except JoseError as error:
            raise SignInRefused(_claim_problem(provider, error)) from None
        return claims

    def _userinfo(
        self, provider: Provider, oauth: OAuth2Session, endpoint: str, claims: CodeIDToken
    ) -> dict[str, Any]:
        try:
            answer = oauth.get(endpoint, timeout=self.timeout)
        except requests.RequestException as error:
            raise _unavailable(provider, error) from None
        if answer.status_code != 200:
            log.warning(
                "userinfo answered %s", answer.status_code, extra={"provider": provider.key}
            )
            return {}
        info = _json(provider, answer, what="userinfo")
        # OpenID Connect Core 5.3.2: a userinfo answer for someone else is not used.
        if not isinstance(info, dict) or str(info.get("sub")) != str(claims["sub"]):
            raise SignInRefused(f"{provider.display_name}'s userinfo names another person")
        return info

    # --- GitHub ----------------------------------------------------------------------------

    def _finish_github(
        self, provider: Provider, redirect_uri: str, code: str, code_verifier: str
    ) -> Identity:
        with self._session(provider, redirect_uri) as oauth:
            self._exchange(
                provider, oauth, f"{provider.issuer}/login/oauth/access_token", code, code_verifier
            )
            headers = {"Accept": "application/vnd.github+json"}
            try:
                user = oauth.get(f"{provider.api_url}/user", headers=headers, timeout=self.timeout)
                emails = oauth.get(
                    f"{provider.api_url}/user/emails", headers=headers, timeout=self.timeout
                )
            except requests.RequestException as error:
                raise _unavailable(provider, error) from None
        if user.status_code != 200:
            raise SignInRefused(
                f"{provider.display_name} did not say who signed in (HTTP {user.status_code})"
            )
        person = _json(provider, user, what="user")
        if not isinstance(person, dict) or not isinstance(person.get("id"), int):
            raise ProviderUnavailable(f"{provider.display_name}'s /user answer has no id")
        listed = _json(provider, emails, what="emails") if emails.status_code == 200 else []
        verified = [
            entry.get("email")
            for entry in (listed if isinstance(listed, list) else [])
            if isinstance(entry, dict) and entry.get("verified") is True
        ]
        primary = [
            entry.get("email")
            for entry in (listed if isinstance(listed, list) else [])
            if isinstance(entry, dict) and entry.get("verified") is True and entry.get("primary")
        ]
        return Identity(
            issuer=provider.issuer,
            subject=str(person["id"]),
            username_hint=_text(person.get("login")),
            name=_text(person.get("name")),
            email=_text((primary or verified or [None])[0]),
        )

    # --- both ------------------------------------------------------------------------------

    def _session(self, provider: Provider, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(
            client_id=provider.client_id,
            client_secret=provider.client_secret.get_secret_value(),
            scope=" ".join(provider.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method's name)
        )

    def _exchange(
        self, provider: Provider, oauth: OAuth2Session, endpoint: str, code: str, verifier: str
    ) -> dict[str, Any]:
        try:
            token = oauth.fetch_token(
                endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                timeout=self.timeout,
                headers={"Accept": "application/json"},
            )
        except OAuthError as error:
            # invalid_grant: the code was used already, has expired, or was made for another
            # sign-in (its PKCE verifier does not match).
            description = f" ({error.description})" if error.description else ""
            raise SignInRefused(
                f"{provider.display_name} refused the sign-in: {error.error}{description}; "
                "sign in again"
            ) from None
        except requests.RequestException as error:
            raise _unavailable(provider, error) from None
        except ValueError:
            raise ProviderUnavailable(
                f"{provider.display_name}'s token endpoint answered with something that is not "
                "an OAuth token"
            ) from None
        if not isinstance(token, dict) or "access_token" not in token:
            raise ProviderUnavailable(f"{provider.display_name} sent no access token")
        return dict(token)

    def _reachable(self, provider: Provider, url: str) -> None:
        try:
            requests.head(url, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as error:
            raise _unavailable(provider, error) from None

    def _get_json(self, provider: Provider, url: str, *, what: str) -> Any:
        try:
            answer = requests.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
        except requests.RequestException as error:
            raise _unavailable(provider, error) from None
        if answer.status_code != 200:
            raise ProviderUnavailable(
                f"{provider.display_name}'s {what} at {url} answered HTTP {answer.status_code}"
            )
        return _json(provider, answer, what=what)


def _json(provider: Provider, answer: requests.Response, *, what: str) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise ProviderUnavailable(
            f"{provider.display_name}'s {what} is not JSON (HTTP {answer.status_code})"
        ) from None


def _unavailable(provider: Provider, error: requests.RequestException) -> ProviderUnavailable:
    kind = "timed out" if isinstance(error, requests.Timeout) else "could not be reached"
    return ProviderUnavailable(f"{provider.display_name} {kind}: try again in a moment")


def _claim_problem(provider: Provider, error: JoseError) -> str:
    claim = getattr(error, "claim", None) or ""
    if claim in {"aud", "azp"}:
        return (
            f"the ID token from {provider.display_name} was issued for another application, "
            "not this dockyard: sign in again"
        )
    if claim == "nonce":
        return "the ID token belongs to another sign-in (its nonce does not match): sign in again"
    if claim == "exp":
        return f"the ID token from {provider.display_name} has expired: sign in again"
    if claim == "iss":
        return f"the ID token was not issued by {provider.display_name}: sign in again"
    return (
        f"the ID token from {provider.display_name} is not acceptable ({error.error}): "
        "sign in again"
    )


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = re.sub(r"\s+", " ", value).strip()
    return cleaned[:254] or None
