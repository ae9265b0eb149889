"""Shapes of account resources in the REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from dockyard.accounts.models import ApiToken, User


class UserOut(BaseModel):
    """A user as the API shows it to that user."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    is_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        """The API view of a user."""
        return cls.model_validate(user)


class TokenIn(BaseModel):
    """A request for a new API token."""

    name: str = Field(min_length=1, max_length=100, examples=["laptop"])


class TokenOut(BaseModel):
    """An API token's metadata; the token itself only in `NewTokenOut`, once."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        """The API view of a token."""
        return cls.model_validate(token)


class NewTokenOut(TokenOut):
    """A token just created: the only time the token itself is shown."""

    token: str


class TokenList(BaseModel):
    """The caller's tokens."""

    items: list[TokenOut]
    total: int
