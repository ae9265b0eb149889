"""A decision end to end: check, do the registry part outside any transaction, record.

The REST API and the web UI both decide through `decide`; they differ only in how they know
the caller and what they make of the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from dockyard.access import services
from dockyard.access.grants import Granter
from dockyard.access.models import AccessRequest
from dockyard.accounts.models import User
from dockyard.db import unit_of_work
from dockyard.errors import RegistryError
from dockyard.registries.catalog import Catalog

T = TypeVar("T")


class Deciding(Protocol):
    """What a decision needs from the app: units of work, the registries, the granter."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def granter(self) -> Granter: ...


@dataclass(frozen=True)
class Step:
    """What was done in the registry: the method and a line for people."""

    method: str
    detail: str


def decide(
    context: Deciding,
    caller: Callable[[Session], User],
    request_id: int,
    action: str,
    *,
    reason: str,
    apply: bool,
    base_url: str,
    shape: Callable[[AccessRequest, User, Step], T],
) -> T:
    """Grant, deny, revoke or withdraw; a failed registry step leaves the request as it was."""
    with unit_of_work(context.sessions, write=False) as session:
        plan = services.plan_decision(
            session, context.catalog, caller(session), request_id, action, apply=apply
        )
    try:
        if action == "grant":
            detail = context.granter.grant(plan)
        elif action == "revoke":
            detail = context.granter.revoke(plan)
        else:
            detail = "manual"
    except RegistryError as error:
        with unit_of_work(context.sessions) as session:
            services.record_registry_step(
                session, caller(session), request_id, "registry-failed", error.message
            )
        raise
    with unit_of_work(context.sessions) as session:
        user = caller(session)
        if plan.method != "manual":
            done = "registry-applied" if action == "grant" else "registry-removed"
            services.record_registry_step(session, user, request_id, done, detail)
        decided = services.record_decision(
            session,
            user,
            request_id,
            action,
            reason=reason,
            method=plan.method,
            base_url=base_url,
        )
        return shape(decided, user, Step(plan.method, detail))
