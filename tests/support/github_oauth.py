"""A stand-in for a GitHub Enterprise Server's OAuth and REST endpoints (GitHub itself cannot
run here): it authorizes one person at once, trades each code once for a token when the PKCE
verifier matches, and answers /user and /user/emails as GitHub's API documents them. Errors
come as GitHub sends them: HTTP 200 with an `error` field."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from tests.support.app import serve_asgi

PERSON = {"id": 583231, "login": "octocat", "name": "The Octocat", "email": None}
EMAILS = [
    {"email": "old@example.org", "primary": False, "verified": False},
    {"email": "octocat@example.org", "primary": True, "verified": True},
]


@dataclass
class GitHubStandIn:
    url: str
    client_id: str
    client_secret: str
    codes: dict[str, str] = field(default_factory=dict)  # code -> PKCE challenge
    tokens: set[str] = field(default_factory=set)


@contextmanager
def github_stand_in(client_id: str, client_secret: str) -> Iterator[GitHubStandIn]:
    """The stand-in on loopback, for one OAuth app."""
    app = FastAPI()
    state: list[GitHubStandIn] = []

    @app.get("/login/oauth/authorize")
    def authorize(request: Request) -> Response:
        query = request.query_params
        if (
            query.get("code_challenge_method") != "S256"
            or query.get("client_id") != state[0].client_id
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_hex(10)
        state[0].codes[code] = query["code_challenge"]
        back = {"code": code, "state": query["state"]}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", status_code=302)

    @app.post("/login/oauth/access_token")
    def access_token(
        code: Annotated[str, Form()],
        code_verifier: Annotated[str, Form()],
        authorization: Annotated[str, Header()] = "",
    ) -> Response:
        expected = base64.b64encode(
            f"{state[0].client_id}:{state[0].client_secret}".encode()
        ).decode()
        if authorization != f"Basic {expected}":
            return JSONResponse({"error": "incorrect_client_credentials"})
        challenge = state[0].codes.pop(code, None)
        digest = hashlib.sha256(code_verifier.encode()).digest()
        made = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if challenge is None or challenge != made:
            return JSONResponse(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                }
            )
        token = "gho_" + secrets.token_hex(16)
        state[0].tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": "read:user"})

    def person(authorization: str) -> bool:
        return authorization.removeprefix("Bearer ") in state[0].tokens

    @app.get("/api/v3/user")
    def user(authorization: Annotated[str, Header()] = "") -> Response:
        if not person(authorization):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(PERSON)

    @app.get("/api/v3/user/emails")
    def emails(authorization: Annotated[str, Header()] = "") -> Response:
        if not person(authorization):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(EMAILS)

    with serve_asgi(app) as url:
        state.append(GitHubStandIn(url, client_id, client_secret))
        yield state[0]
