from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dockyard.accounts import services as accounts
from dockyard.accounts.models import User


@pytest.fixture
def ada(session: Session) -> User:
    return accounts.create_user(session, username="ada", email="ada@example.org")


@pytest.fixture
def grace(session: Session) -> User:
    return accounts.create_user(session, username="grace", email="grace@example.org")


@pytest.fixture
def admin(session: Session) -> User:
    return accounts.create_user(session, username="root", email="root@example.org", is_admin=True)
