"""REST adapter for the caller's account and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from dockyard.accounts import services
from dockyard.api.schemas.accounts import NewTokenOut, TokenIn, TokenList, TokenOut, UserOut
from dockyard.http import Id, SessionDep, UserDep

router = APIRouter(prefix="/api", tags=["accounts"])


@router.get("/users/me")
def who_am_i(user: UserDep) -> UserOut:
    """The authenticated caller."""
    return UserOut.of(user)


@router.get("/tokens")
def list_tokens(user: UserDep, session: SessionDep) -> TokenList:
    """The caller's API tokens, without the tokens themselves."""
    tokens = [TokenOut.of(token) for token in services.list_tokens(session, user)]
    return TokenList(items=tokens, total=len(tokens))


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenIn, user: UserDep, session: SessionDep) -> NewTokenOut:
    """A new API token for the caller; the response is the only place it is shown."""
    token, plaintext = services.create_token(session, user, name=body.name)
    return NewTokenOut(**TokenOut.of(token).model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Revoke one of the caller's tokens."""
    services.revoke_token(session, user, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
